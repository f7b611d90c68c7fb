"""The `linear_probe` recipe: train only the new head on a frozen backbone."""

from tfxfer.choices import HEAD_LEARNING_RATE
from tfxfer.models.input_assertions import readable_errors
from tfxfer.models.raw_inputs import prepared_class_weight, prepared_data
from tfxfer.optimizers.discriminative import optimizer_class
from tfxfer.recipes.cached_features import CachedFeatures, cache_blockers
from tfxfer.utils.array_batches import is_array_like, ordered_batches, shuffled_batches, split_last


def linear_probe(
    model,
    x,
    y=None,
    *,
    epochs=1,
    learning_rate=HEAD_LEARNING_RATE,
    optimizer="adam",
    compile_options=None,
    cache_features="auto",
    **fit_options,
):
    """Freezes the backbone and trains the head at `learning_rate`.

    The frozen backbone runs in inference mode, so with `cache_features`
    its pooled features are computed once (`tfxfer.recipes.CachedFeatures`:
    in memory, on disk past 1 GiB) and the head trains on them, which trains
    the same head without running the backbone every epoch. `"auto"` caches
    when `x` and `validation_data` are finite `tf.data` datasets of (inputs,
    labels) whose pipelines draw no random numbers (no augmentation), on one
    device, with no callback that unfreezes layers; `True` demands it
    (a `ValueError` says what prevents it); `False` never caches. The
    returned history's `cached_features` describes the cache (None when not
    used).

    Args:
        model: a `TransferModel`.
        x, y: training data as for `fit`.
        epochs: epochs to train (counted from `initial_epoch`, if given).
        learning_rate: the head's rate.
        optimizer: optimizer class or name.
        compile_options: extra `compile` arguments (e.g. `steps_per_execution`).
        cache_features: `"auto"`, True or False (see above).
        **fit_options: passed to `fit` (validation_data, callbacks, ...).

    Returns:
        The `History` of the `fit`.

    Example:

    >>> history = linear_probe(model, train_ds, epochs=3, validation_data=val_ds)
    """
    _check_epochs(epochs)
    check_cache_features(cache_features)
    model.freeze_backbone()
    model.recompile(optimizer_class(optimizer)(learning_rate=learning_rate), **(compile_options or {}))
    # `epochs` more, counted from `initial_epoch`, as fine_tune counts them.
    fit_options["initial_epoch"] = fit_options.get("initial_epoch") or 0
    if not isinstance(fit_options["initial_epoch"], int) or fit_options["initial_epoch"] < 0:
        raise ValueError(f"initial_epoch must be an integer >= 0, got {fit_options['initial_epoch']!r}.")
    end = fit_options["initial_epoch"] + epochs
    if cache_features:
        # The head then trains on features, past the checks and label mapping
        # of the model's own fit: the raw data gets them here, first.
        x, y, validation = prepared_data(model, "fit", x, y, fit_options.get("validation_data"))
        if fit_options.get("class_weight") is not None:
            fit_options["class_weight"] = prepared_class_weight(model, fit_options["class_weight"])
        if validation is not None:
            fit_options["validation_data"] = validation
        if y is not None and is_array_like(x):
            # Arrays become the batches fit would make of them: validation_split
            # taken off the end first, then reshuffled each epoch unless shuffle=False.
            sample_weight = fit_options.pop("sample_weight", None)
            split = fit_options.pop("validation_split", None)
            if split and fit_options.get("validation_data") is None:
                (x, y, sample_weight), validation = split_last(split, x, y, sample_weight)
                fit_options["validation_data"] = tuple(v for v in validation if v is not None)
            batch_size = fit_options.get("batch_size") or 32
            if fit_options.get("shuffle", True):
                x = shuffled_batches(x, y, sample_weight, batch_size)
            else:
                x = ordered_batches(x, y, sample_weight, batch_size=batch_size)
            y = None
        validation = fit_options.get("validation_data")
        if isinstance(validation, tuple) and validation and is_array_like(validation[0]):
            fit_options["validation_data"] = ordered_batches(
                *validation, batch_size=fit_options.get("batch_size") or 32
            )
        blockers = cache_blockers(model, x, fit_options.get("validation_data"), fit_options.get("callbacks"))
        if y is not None:
            blockers.append("labels were given separately (y)")
        if cache_features is True and blockers:
            raise ValueError(f"cache_features=True, but the features cannot be cached: {'; '.join(blockers)}.")
        if not blockers and not _already_trained(fit_options.get("callbacks"), end):
            return _fit_on_cached_features(model, x, end, **fit_options)
    history = model.fit(x, y, epochs=end, **fit_options)
    history.cached_features = None
    return history


def _fit_on_cached_features(model, x, epochs, *, validation_data=None, verbose="auto", **fit_options):
    fit_options.pop("batch_size", None)  # the cache keeps the dataset's batches
    fit_options["shuffle"] = False  # the cache reshuffles its batches when the dataset does
    show = verbose if verbose in (0, 2) else 1  # 2 (logs): one line per cache, no progress bar
    with readable_errors():  # a failed input check of the pipeline, met while caching
        return _fit_on_features(model, x, epochs, validation_data, show, verbose, fit_options)


def _fit_on_features(model, x, epochs, validation_data, show, verbose, fit_options):
    train = CachedFeatures(model, x, verbose=show)
    validation = None
    try:
        if validation_data is not None:
            validation = CachedFeatures(model, validation_data, verbose=show)
        head_model = model.head_on_features(train.input_batch)
        history = head_model.fit(
            train.dataset(),
            epochs=epochs,
            validation_data=None if validation is None else validation.dataset(),
            verbose=verbose,
            **fit_options,
        )
    finally:
        train.close()
        if validation is not None:
            validation.close()
    history.cached_features = train.describe()
    if validation is not None:
        history.cached_features["validation_examples"] = validation.examples
        history.cached_features["seconds"] = round(train.seconds + validation.seconds, 1)
    return history


def _already_trained(callbacks, end):
    """A resumed run whose backup is past this phase trains nothing here: no need to cache."""
    for callback in callbacks or ():
        latest = callback.latest() if hasattr(callback, "latest") else None
        if latest is not None and latest[0] >= end:
            return True
    return False


def check_cache_features(cache_features):
    """`cache_features` must be "auto", True or False (not 1, 0 or "yes")."""
    if not (cache_features == "auto" or cache_features is True or cache_features is False):
        raise ValueError(f"cache_features must be 'auto', True or False, got {cache_features!r}.")


def _check_epochs(epochs):
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}.")
