"""`SourceWeights`: the pretrained values w⁰ kept beside the model."""

import keras


@keras.saving.register_keras_serializable(package="tfxfer")
class SourceWeights(keras.layers.Layer):
    """Non-trainable copies of backbone weights, taken before training.

    A `TransferModel` with a regularizer that needs them makes one from the
    pretrained values when it is built. As model state they are saved in
    `.keras` and `.weights.h5` files and checkpoints, so a resumed run keeps
    penalising the distance to the original pretrained weights. No serving
    function reads them, so exports leave them out. They cost one copy of
    the weights they cover.

    Args:
        sources: `(path, variable)` pairs to copy.

    Example:

    >>> source = SourceWeights([("dense/kernel", layer.kernel)])
    >>> source.by_path()["dense/kernel"] is source.weights[0]
    True
    """

    def __init__(self, sources, **kwargs):
        super().__init__(trainable=False, **kwargs)
        self.paths = [path for path, _ in sources]
        for path, variable in sources:
            copy = self.add_weight(
                shape=tuple(variable.shape),
                dtype=variable.dtype,
                initializer="zeros",
                trainable=False,
                name=path.replace("/", "_"),
            )
            copy.assign(variable)
        self.built = True

    def by_path(self):
        """`{path: copy}` for every copied weight."""
        return dict(zip(self.paths, self.weights))

    def call(self, *args, **kwargs):
        raise TypeError("SourceWeights holds state for a regularizer; it is not called.")
