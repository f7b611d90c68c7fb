"""The `two_phase` recipe: the head on a frozen backbone, then the backbone (LP-FT)."""

import keras

from tfxfer.choices import HEAD_LEARNING_RATE
from tfxfer.recipes.fine_tune import check_no_rate_callbacks, fine_tune
from tfxfer.recipes.linear_probe import check_cache_features, linear_probe


def two_phase(
    model,
    x,
    y=None,
    *,
    validation_data=None,
    head_epochs=1,
    epochs=3,
    head_learning_rate=HEAD_LEARNING_RATE,
    learning_rate=None,
    warmup_fraction=0.1,
    layer_decay=None,
    unfreeze_top=None,
    optimizer="adam",
    cache_features="auto",
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
        head_learning_rate, learning_rate: peak rates of the two phases
            (`learning_rate` default: 1e-4, or 3e-3 with LoRA; see `fine_tune`).
        warmup_fraction: share of phase 2 spent warming up.
        layer_decay: per-group learning-rate decay toward the input in
            phase 2, e.g. 0.8; None for one rate.
        unfreeze_top: layer groups to unfreeze in phase 2 (None: all).
        optimizer: optimizer class or name for both phases.
        cache_features: for phase 1, `"auto"`, True or False (see
            `linear_probe`: the head trains on the backbone's features,
            computed once).
        batch_size, steps_per_epoch, callbacks, verbose, **fit_options:
            passed to `fit`.

    Returns:
        A `keras.callbacks.History` with both phases, one entry per epoch.

    Example:

    >>> history = two_phase(model, train_ds, validation_data=val_ds, head_epochs=1, epochs=3)
    """
    if not isinstance(head_epochs, int) or head_epochs < 0:
        raise ValueError(f"head_epochs must be an integer >= 0, got {head_epochs!r}.")
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}.")
    if not 0.0 <= warmup_fraction < 1.0:
        raise ValueError(f"warmup_fraction must be in [0, 1), got {warmup_fraction!r}.")
    check_cache_features(cache_features)
    check_no_rate_callbacks(callbacks)  # before the head phase, not after it
    start = fit_options.pop("initial_epoch", None) or 0  # both phases count on from it
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
        histories.append(
            linear_probe(
                model,
                x,
                y,
                epochs=head_epochs,
                initial_epoch=start,
                learning_rate=head_learning_rate,
                optimizer=optimizer,
                cache_features=cache_features,
                **fit,
            )
        )
    histories.append(
        fine_tune(
            model,
            x,
            y,
            epochs=epochs,
            initial_epoch=start + head_epochs,
            learning_rate=learning_rate,
            warmup_fraction=warmup_fraction,
            layer_decay=layer_decay,
            unfreeze_top=unfreeze_top,
            optimizer=optimizer,
            **fit,
        )
    )
    return merge_histories(model, histories)


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
    merged.cached_features = next((h.cached_features for h in histories if getattr(h, "cached_features", None)), None)
    return merged
