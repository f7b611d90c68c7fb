"""Discriminative (layer-wise) learning rates with Keras' MultiOptimizer."""

import keras

from tfxfer.freezing.layer_groups import layer_groups
from tfxfer.optimizers.schedules import scale_learning_rate


def discriminative_optimizer(
    model,
    learning_rate,
    *,
    layer_decay=0.8,
    group_learning_rates=None,
    optimizer="adam",
    **optimizer_options,
):
    """A `keras.optimizers.MultiOptimizer` with a learning rate per layer group.

    The head trains at `learning_rate`; the backbone's top layer group at
    `learning_rate·layer_decay`, the next at `learning_rate·layer_decay²`,
    and so on toward the input (ULMFiT's discriminative fine-tuning, BEiT's
    layer decay). The groups are `tfxfer.layer_groups(model.backbone)`, the
    same ones `unfreeze(top=k)` counts.

    Args:
        model: a `TransferModel`.
        learning_rate: the head's rate, a float or a Keras schedule (each
            group then gets the same schedule, scaled).
        layer_decay: factor per group, from the top down.
        group_learning_rates: explicit rates (floats or schedules) for some
            groups by name, e.g. `{"b15": 1e-4}`; they override the decay.
        optimizer: an optimizer class or its name (`"adam"`, `"sgd"`, ...).
        **optimizer_options: passed to every inner optimizer (e.g.
            `momentum=0.9`).

    Example:

    >>> model.compile(optimizer=tfxfer.discriminative_optimizer(
    ...     model, 1e-3, layer_decay=0.8))
    """
    if not 0.0 < layer_decay <= 1.0:
        raise ValueError(f"layer_decay must be in (0, 1], got {layer_decay!r}.")
    groups = layer_groups(model.backbone)
    explicit = dict(group_learning_rates or {})
    unknown = sorted(set(explicit) - {group.name for group in groups})
    if unknown:
        raise ValueError(
            f"group_learning_rates names unknown layer groups {unknown}; the "
            f"backbone's groups are {[group.name for group in groups]}."
        )
    chosen_class = optimizer_class(optimizer)

    def make(rate):
        return chosen_class(learning_rate=rate, **optimizer_options)

    mapping = keras.optimizers.OptimizerMap(make(learning_rate))
    for depth, group in enumerate(reversed(groups), start=1):
        rate = explicit.get(group.name)
        if rate is None:
            rate = scale_learning_rate(learning_rate, layer_decay**depth)
        group_optimizer = make(rate)
        for weight in group.weights:
            mapping[weight.path] = group_optimizer
    return keras.optimizers.MultiOptimizer(mapping)


def optimizer_class(optimizer):
    """A Keras optimizer class from a class or a name (`"adam"`, `"sgd"`, ...); `"adam"` is `FusedAdam`."""
    if isinstance(optimizer, str):
        if optimizer.lower() == "adam":
            from tfxfer.optimizers.fused_adam import FusedAdam

            return FusedAdam
        return type(keras.optimizers.get(optimizer))
    if isinstance(optimizer, type) and issubclass(optimizer, keras.optimizers.Optimizer):
        return optimizer
    raise TypeError(f"optimizer must be a Keras optimizer class or name (e.g. 'adam'), got {optimizer!r}.")
