"""The two-phase fine-tuning recipe: head first, then the backbone."""

import math

import keras
import tensorflow as tf

from tfxfer.optimizers.discriminative import discriminative_optimizer
from tfxfer.optimizers.schedules import warmup_cosine

HEAD_LEARNING_RATE = 1e-3
FINE_TUNING_LEARNING_RATE = 1e-4


def fine_tune(
    model,
    x,
    y=None,
    *,
    validation_data=None,
    head_epochs=1,
    epochs=3,
    head_learning_rate=HEAD_LEARNING_RATE,
    learning_rate=FINE_TUNING_LEARNING_RATE,
    warmup_fraction=0.1,
    layer_decay=None,
    unfreeze_top=None,
    optimizer="adam",
    batch_size=None,
    steps_per_epoch=None,
    callbacks=None,
    verbose="auto",
    **fit_options,
):
    """Trains the head on a frozen backbone, then fine-tunes the backbone.

    Phase 1 (`head_epochs`): the backbone is frozen and the head trains at
    `head_learning_rate`. Phase 2 (`epochs`): the backbone (or its top
    `unfreeze_top` layer groups) is unfrozen and everything trains at the
    lower `learning_rate`, with a linear warmup over `warmup_fraction` of
    the phase and cosine decay after it; with `layer_decay`, the backbone's
    groups get discriminative rates (`tfxfer.discriminative_optimizer`).
    The model is recompiled between the phases (Keras needs it for a new
    trainable set), keeping its loss and metrics. Both phases count epochs
    on one axis, so callbacks and the returned history see epochs
    1 … head_epochs + epochs.

    Args:
        model: a `TransferModel`.
        x, y: training data as for `fit` (a `tf.data.Dataset`, arrays, or
            raw strings for text models).
        validation_data: as for `fit`.
        head_epochs: epochs of phase 1 (0 skips it).
        epochs: epochs of phase 2.
        head_learning_rate, learning_rate: peak rates of the two phases.
        warmup_fraction: share of phase 2 spent warming up.
        layer_decay: per-group learning-rate decay toward the input in
            phase 2, e.g. 0.8; None for one rate.
        unfreeze_top: layer groups to unfreeze in phase 2 (None: all).
        optimizer: optimizer class or name for both phases.
        batch_size, steps_per_epoch, callbacks, verbose, **fit_options:
            passed to `fit`.

    Returns:
        A `keras.callbacks.History` with both phases, one entry per epoch.

    Example:

    >>> history = model.fine_tune(train_ds, validation_data=val_ds, head_epochs=1, epochs=3)
    """
    if not isinstance(head_epochs, int) or head_epochs < 0:
        raise ValueError(f"head_epochs must be an integer >= 0, got {head_epochs!r}.")
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}.")
    if not 0.0 <= warmup_fraction < 1.0:
        raise ValueError(f"warmup_fraction must be in [0, 1), got {warmup_fraction!r}.")
    optimizer_class = type(keras.optimizers.get(optimizer)) if isinstance(optimizer, str) else optimizer
    loss_and_metrics = {
        key: value
        for key, value in (model._compile_arguments or {}).items()
        if key not in ("optimizer",)
    }
    fit = dict(
        validation_data=validation_data,
        batch_size=batch_size,
        steps_per_epoch=steps_per_epoch,
        callbacks=callbacks,
        verbose=verbose,
        **fit_options,
    )
    histories = []
    if head_epochs:
        model.freeze_backbone()
        model.compile(optimizer=optimizer_class(learning_rate=head_learning_rate), **loss_and_metrics)
        histories.append(model.fit(x, y, epochs=head_epochs, **fit))

    model.unfreeze(top=unfreeze_top)
    steps = steps_per_epoch or _steps_per_epoch(x, y, batch_size)
    rate = learning_rate
    if steps:
        total = steps * epochs
        rate = warmup_cosine(
            learning_rate, total_steps=total, warmup_steps=int(total * warmup_fraction)
        )
    if layer_decay is None:
        phase_two_optimizer = optimizer_class(learning_rate=rate)
    else:
        phase_two_optimizer = discriminative_optimizer(
            model, rate, layer_decay=layer_decay, optimizer=optimizer_class
        )
    model.compile(optimizer=phase_two_optimizer, **loss_and_metrics)
    histories.append(
        model.fit(x, y, initial_epoch=head_epochs, epochs=head_epochs + epochs, **fit)
    )
    return merge_histories(model, histories)


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


def merge_histories(model, histories):
    """One `History` holding the epochs of several `fit` calls in order."""
    merged = keras.callbacks.History()
    merged.set_model(model)
    merged.history = {}
    merged.epoch = []
    for history in histories:
        merged.epoch.extend(history.epoch)
        for key, values in history.history.items():
            merged.history.setdefault(key, []).extend(values)
    merged.params = histories[-1].params if histories else {}
    return merged
