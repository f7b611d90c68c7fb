"""The `fine_tune` recipe: unfreeze the backbone and train everything at a small, scheduled rate."""

import math

import keras
import tensorflow as tf

from tfxfer.choices import fine_tuning_learning_rate
from tfxfer.optimizers.discriminative import discriminative_optimizer, optimizer_class
from tfxfer.optimizers.schedules import warmup_cosine
from tfxfer.option_errors import respelled_as
from tfxfer.recipes.linear_probe import _check_epochs

WARMUP_FRACTION = 0.1


def fine_tune(
    model,
    x,
    y=None,
    *,
    epochs=3,
    initial_epoch=0,
    learning_rate=None,
    warmup_fraction=WARMUP_FRACTION,
    layer_decay=None,
    unfreeze_top=None,
    optimizer="adam",
    gradual=False,
    compile_options=None,
    batch_size=None,
    steps_per_epoch=None,
    callbacks=None,
    **fit_options,
):
    """Unfreezes the backbone (or its top groups) and trains with warmup + cosine decay.

    The rate warms up linearly over `warmup_fraction` of the steps, then
    decays along a cosine (`fine_tuning_rate`); with `layer_decay` the
    backbone's groups get discriminative rates. With `gradual=True` the
    backbone starts frozen and `GradualUnfreezing` unfreezes a group per
    epoch instead.

    Args:
        model: a `TransferModel`.
        x, y: training data as for `fit`.
        epochs: epochs to train (counted from `initial_epoch`).
        learning_rate: peak rate (default: `FINE_TUNING_LEARNING_RATE`, 1e-4;
            `LORA_LEARNING_RATE`, 3e-3, once `enable_lora` was called).
        warmup_fraction: share of the steps spent warming up.
        layer_decay: per-group decay toward the input, e.g. 0.8.
        unfreeze_top: layer groups to unfreeze (None: all).
        optimizer: optimizer class or name.
        gradual: ULMFiT's gradual unfreezing.
        compile_options: extra `compile` arguments.
        batch_size, steps_per_epoch, callbacks, **fit_options: for `fit`.

    Example:

    >>> history = fine_tune(model, train_ds, epochs=3, learning_rate=1e-4, layer_decay=0.8)
    """
    _check_epochs(epochs)
    if not 0.0 <= warmup_fraction < 1.0:
        raise ValueError(f"warmup_fraction must be in [0, 1), got {warmup_fraction!r}.")
    check_no_rate_callbacks(callbacks)
    callbacks = list(callbacks or [])
    if gradual:
        from tfxfer.callbacks.gradual_unfreezing import GradualUnfreezing

        model.freeze_backbone()
        callbacks.append(GradualUnfreezing())
    else:
        with respelled_as(top=("unfreeze_top", "--unfreeze-top")):
            model.unfreeze(top=unfreeze_top)
    steps = steps_per_epoch or _steps_per_epoch(x, y, batch_size)
    if learning_rate is None:
        learning_rate = fine_tuning_learning_rate(lora=bool(getattr(model, "lora", None)))
    rate = fine_tuning_rate(learning_rate, steps, epochs, warmup_fraction)
    if layer_decay is None:
        phase_optimizer = optimizer_class(optimizer)(learning_rate=rate)
    else:
        phase_optimizer = discriminative_optimizer(
            model, rate, layer_decay=layer_decay, optimizer=optimizer_class(optimizer)
        )
    model.recompile(phase_optimizer, **(compile_options or {}))
    return model.fit(
        x,
        y,
        initial_epoch=initial_epoch,
        epochs=initial_epoch + epochs,
        batch_size=batch_size,
        steps_per_epoch=steps_per_epoch,
        callbacks=callbacks,
        **fit_options,
    )


def fine_tuning_rate(learning_rate, steps_per_epoch, epochs, warmup_fraction=WARMUP_FRACTION):
    """Warmup + cosine over `epochs` when the steps are known, else the constant rate.

    Example:

    >>> round(float(fine_tuning_rate(1e-4, 10, 2)(2)), 8)
    0.0001
    """
    if not steps_per_epoch:
        return learning_rate
    total = steps_per_epoch * epochs
    return warmup_cosine(learning_rate, total_steps=total, warmup_steps=int(total * warmup_fraction))


def _steps_per_epoch(x, y, batch_size):
    """Batches per epoch, or None when it cannot be known in advance."""
    if isinstance(x, tf.data.Dataset):
        cardinality = int(x.cardinality())
        return cardinality if cardinality > 0 else None
    first = x
    while isinstance(first, dict):
        first = next(iter(first.values()))
    try:
        count = len(first)
    except TypeError:
        return None
    return max(1, math.ceil(count / (batch_size or 32)))


def gradual(model, x, y=None, **options):
    """ULMFiT's gradual unfreezing: the `fine_tune` recipe with `gradual=True`.

    >>> history = gradual(model, train_ds, epochs=4)
    """
    options.pop("unfreeze_top", None)
    return fine_tune(model, x, y, gradual=True, **options)


# Keras callbacks that set the optimizer's learning rate: a schedule's rate cannot be set.
_RATE_SETTERS = (keras.callbacks.LearningRateScheduler, keras.callbacks.ReduceLROnPlateau)


def check_no_rate_callbacks(callbacks):
    """Refuses callbacks that set the learning rate: fine-tuning's rate is a warmup-cosine schedule."""
    setters = sorted({type(callback).__name__ for callback in callbacks or () if isinstance(callback, _RATE_SETTERS)})
    if setters:
        raise ValueError(
            f"The fine-tuning phase schedules its learning rate itself (warmup, then cosine decay: learning_rate "
            f"and warmup_fraction), so {' and '.join(setters)} cannot set it. Drop the callback, or train with "
            "model.fit and an optimizer at a constant rate."
        )
