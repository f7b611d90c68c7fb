"""The `linear_probe` recipe: train only the new head on a frozen backbone."""

from tfxfer.choices import HEAD_LEARNING_RATE
from tfxfer.optimizers.discriminative import optimizer_class
from tfxfer.recipes.compiling import compile_keeping_loss


def linear_probe(
    model,
    x,
    y=None,
    *,
    epochs=1,
    learning_rate=HEAD_LEARNING_RATE,
    optimizer="adam",
    compile_options=None,
    **fit_options,
):
    """Freezes the backbone and trains the head at `learning_rate`.

    Args:
        model: a `TransferModel`.
        x, y: training data as for `fit`.
        epochs: epochs to train.
        learning_rate: the head's rate.
        optimizer: optimizer class or name.
        compile_options: extra `compile` arguments (e.g. `steps_per_execution`).
        **fit_options: passed to `fit` (validation_data, callbacks, ...).

    Returns:
        The `History` of the `fit`.

    Example:

    >>> history = linear_probe(model, train_ds, epochs=3, validation_data=val_ds)
    """
    _check_epochs(epochs)
    model.freeze_backbone()
    compile_keeping_loss(model, optimizer_class(optimizer)(learning_rate=learning_rate), compile_options)
    return model.fit(x, y, epochs=fit_options.pop("initial_epoch", 0) + epochs, **fit_options)


def _check_epochs(epochs):
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}.")
