"""The recipes by name: what `tfxfer train --recipe` and Python share."""

from tfxfer.choices import RECIPE_NAMES
from tfxfer.recipes.fine_tune import fine_tune
from tfxfer.recipes.linear_probe import linear_probe
from tfxfer.recipes.two_phase import two_phase


def gradual(model, x, y=None, **options):
    """ULMFiT's gradual unfreezing: the `fine_tune` recipe with `gradual=True`."""
    options.pop("unfreeze_top", None)
    return fine_tune(model, x, y, gradual=True, **options)


RECIPES = {
    "linear_probe": linear_probe,
    "fine_tune": fine_tune,
    "two_phase": two_phase,
    "gradual": gradual,
}
assert tuple(RECIPES) == RECIPE_NAMES


def run_recipe(
    name,
    model,
    x,
    y=None,
    *,
    epochs,
    head_epochs=1,
    learning_rate=None,
    head_learning_rate=None,
    layer_decay=None,
    unfreeze_top=None,
    cache_features="auto",
    **fit_options,
):
    """Runs the recipe called `name` with the options it takes.

    `cache_features` applies to the frozen-backbone phases (`linear_probe`,
    the head phase of `two_phase`).

    Returns `(history, phase_boundaries)`: the epochs after which a new
    phase starts (for plots).

    Example:

    >>> history, boundaries = run_recipe("two_phase", model, train_ds, epochs=2, head_epochs=1)
    """
    if name not in RECIPES:
        raise ValueError(f"recipe must be one of {RECIPE_NAMES}, got {name!r}.")
    rates = {}
    if name == "linear_probe":
        if head_learning_rate is not None:
            rates["learning_rate"] = head_learning_rate
        return linear_probe(model, x, y, epochs=epochs, cache_features=cache_features, **rates, **fit_options), []
    if learning_rate is not None:
        rates["learning_rate"] = learning_rate
    options = dict(layer_decay=layer_decay, unfreeze_top=unfreeze_top, **rates, **fit_options)
    if name == "two_phase":
        if head_learning_rate is not None:
            options["head_learning_rate"] = head_learning_rate
        history = two_phase(
            model, x, y, head_epochs=head_epochs, epochs=epochs, cache_features=cache_features, **options
        )
        return history, [head_epochs] if head_epochs else []
    return RECIPES[name](model, x, y, epochs=epochs, **options), []
