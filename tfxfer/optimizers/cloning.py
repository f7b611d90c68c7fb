"""Fresh copies of optimizers, for recompiling with the same configuration."""

import keras

from tfxfer.utils.keras_internals import optimizer_map


def clone_optimizer(optimizer):
    """A new, unbuilt optimizer configured like `optimizer`.

    A `MultiOptimizer` keeps its structure: variables that shared one inner
    optimizer share one clone.

    Example:

    >>> clone_optimizer(keras.optimizers.Adam(1e-4)).learning_rate.numpy()
    1e-04
    """
    if isinstance(optimizer, str):
        return optimizer
    if isinstance(optimizer, keras.optimizers.MultiOptimizer):
        return _clone_multi_optimizer(optimizer)
    return optimizer.__class__.from_config(optimizer.get_config())


def _clone_multi_optimizer(optimizer):
    mapping = optimizer_map(optimizer)
    if not isinstance(mapping, keras.optimizers.OptimizerMap):
        return optimizer.__class__.from_config(optimizer.get_config())
    clones = {}

    def clone(inner):
        if id(inner) not in clones:
            clones[id(inner)] = inner.__class__.from_config(inner.get_config())
        return clones[id(inner)]

    new_mapping = keras.optimizers.OptimizerMap(clone(mapping.default_optimizer))
    for key in mapping:
        new_mapping[key] = clone(mapping[key])
    return keras.optimizers.MultiOptimizer(new_mapping, name=optimizer.name)
