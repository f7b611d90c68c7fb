"""Setting which parts of a backbone train: whole, none, or the top groups."""

import keras

from tfxfer.backbones.hub_backbone import HubBackbone
from tfxfer.freezing.layer_groups import layer_groups
from tfxfer.option_errors import OptionValueError, escaped
from tfxfer.utils.keras_internals import nested_layers, trainable_capable_weights


def set_layer_trainable(layer, value):
    """Sets `layer.trainable` and, always, that of all its sublayers.

    `tf.Module.__setattr__` skips an assignment of the value an attribute
    already has, so `layer.trainable = True` on a trainable model does not
    reach sublayers that were frozen one by one. Going through the other
    value first makes Keras' setter run and recurse.
    """
    layer.trainable = not value
    layer.trainable = value


def check_top(backbone, top):
    """The backbone's layer groups, once `top` is a number of them (1 to their count).

    Raises an `OptionValueError` naming `top` (`respelled` by callers whose
    argument is called otherwise: `unfreeze_top`, `--unfreeze-top`).
    """
    groups = layer_groups(backbone)
    if not isinstance(top, int) or isinstance(top, bool) or not 1 <= top <= len(groups):
        raise OptionValueError(
            f"{{top}} must be an integer from 1 to {len(groups)} (the backbone has {len(groups)} layer groups, "
            f"last ones: {escaped([group.name for group in groups[-3:]])}), or {{whole}} for the whole backbone. "
            f"Received: {escaped(repr(top))}",
            top=("top", "--unfreeze-top"),
            whole=("None", "left out"),
        )
    return groups


def set_backbone_trainable(backbone, state, train_batchnorm=False):
    """Freezes or unfreezes a backbone.

    Args:
        backbone: a `HubBackbone` or a Keras model/layer.
        state: False (frozen), True (all trainable) or an int k: the top k
            layer groups (`tfxfer.freezing.layer_groups`) trainable, the
            groups below frozen.
        train_batchnorm: Keras BatchNormalization layers use batch statistics
            only when this is True and their own weights train. (A
            `HubBackbone` applies its `train_batchnorm` at call time.)

    Returns:
        The normalized state: False, True, or k with 1 <= k < group count.

    Example:

    >>> set_backbone_trainable(model.backbone, 3)
    3
    """
    groups = None
    if state is not True and state is not False:
        groups = check_top(backbone, state)
        if state == len(groups):
            state = True
    set_layer_trainable(backbone, state is not False)
    if groups is not None and state is not True:
        for group in groups[: len(groups) - state]:
            for weight in group.weights:
                weight.trainable = False
    if state is not False and not isinstance(backbone, HubBackbone):
        _apply_batchnorm_policy(backbone, train_batchnorm)
    return state


def _apply_batchnorm_policy(backbone, train_batchnorm):
    for layer in nested_layers(backbone):
        if isinstance(layer, keras.layers.BatchNormalization):
            own_weights_train = all(weight.trainable for weight in trainable_capable_weights(layer))
            set_layer_trainable(layer, train_batchnorm and own_weights_train)


def has_batchnorm(backbone):
    """Whether the backbone contains BatchNorm layers (or BN statistics)."""
    if isinstance(backbone, HubBackbone):
        return backbone.has_batchnorm
    return any(isinstance(layer, keras.layers.BatchNormalization) for layer in nested_layers(backbone))


def trainability_report(model):
    """One line saying which of `model`'s backbone layer groups train, LoRA's share and BatchNorm's mode."""
    from tfxfer.freezing.layer_groups import layer_groups
    from tfxfer.models.lora_adapters import lora_layers

    groups = layer_groups(model.backbone)
    trainable = [group.name for group in groups if group.trainable_weights]
    if not trainable:
        state = "frozen"
    elif len(trainable) == len(groups):
        state = "fully trainable"
    else:
        span = trainable[0] if len(trainable) == 1 else f"{trainable[0]} ... {trainable[-1]}"
        state = f"top {len(trainable)} trainable ({span})"
    if model.lora is not None:
        counts = model.parameter_counts()
        state += (
            f" (LoRA rank {model.lora['rank']} on {len(lora_layers(model.backbone))} layers: "
            f"{counts['trainable']:,} of {counts['total']:,} parameters train)"
        )
    if not has_batchnorm(model.backbone):
        batchnorm = "no BatchNorm"
    elif model.train_batchnorm:
        batchnorm = "BatchNorm uses batch statistics"
    else:
        batchnorm = "BatchNorm in inference mode"
    return f"Backbone: {len(groups)} layer groups, {state}; {batchnorm}."
