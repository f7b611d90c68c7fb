"""The recipes as objects, one registry for Python and the CLI.

A `Recipe` says what a run needs to know of a recipe without running it
(does it train the backbone? a head phase first? its epochs and phase
boundaries, its own option checks) and runs it. No module compares recipe
names: they ask the recipe. The module imports no TensorFlow, so config
checks and `tfxfer --help` stay fast; `run` imports the recipe's function.

Example:

>>> recipe_named("two_phase").total_epochs(epochs=3, head_epochs=1)
4
>>> recipe_named("linear_probe").trains_backbone
False
"""

import importlib

from tfxfer.choices import RECIPE_NAMES
from tfxfer.option_errors import OptionValueError, option


class Recipe:
    """A training recipe: `recipe(model, x, y, **options)` runs its function."""

    name = None
    function = None  # "module:function", imported when the recipe runs
    trains_backbone = True
    head_phase = False  # head_epochs on a frozen backbone come first

    def __call__(self, model, x, y=None, **options):
        module, function = self.function.split(":")
        return getattr(importlib.import_module(module), function)(model, x, y, **options)

    def total_epochs(self, epochs, head_epochs=0):
        """The epochs the whole recipe trains (the `fit` epoch numbers it ends at)."""
        return epochs + (head_epochs if self.head_phase else 0)

    def phase_boundaries(self, head_epochs=0):
        """The epochs after which a new phase starts (for plots)."""
        return [head_epochs] if self.head_phase and head_epochs else []

    def check_config(self, config):
        """Raises `OptionValueError` for options that mean nothing with this recipe."""

    def run(
        self,
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
        """Runs the recipe with the options a run has; returns `(history, phase_boundaries)`."""
        options = dict(layer_decay=layer_decay, unfreeze_top=unfreeze_top, **fit_options)
        if learning_rate is not None:
            options["learning_rate"] = learning_rate
        return self(model, x, y, epochs=epochs, **options), []

    def __repr__(self):
        return f"<Recipe {self.name}>"


class LinearProbe(Recipe):
    name, function, trains_backbone = "linear_probe", "tfxfer.recipes.linear_probe:linear_probe", False

    def check_config(self, config):
        if config.learning_rate == "auto":
            raise OptionValueError(
                "{learning_rate} auto finds the fine-tuning rate, and {recipe} linear_probe fine-tunes nothing: "
                "it trains the head at {head_learning_rate} (`tfxfer lr-find --recipe linear_probe` suggests one).",
                learning_rate=option("learning_rate"),
                recipe=option("recipe"),
                head_learning_rate=option("head_learning_rate"),
            )
        if config.wise_ft is not None:
            raise OptionValueError(
                "{wise_ft} mixes the fine-tuned backbone with the pretrained one, and {recipe} linear_probe "
                "leaves the backbone pretrained, so every mix is the same model; drop {wise_ft} or fine-tune "
                "(e.g. {recipe} two_phase).",
                wise_ft=option("wise_ft"),
                recipe=option("recipe"),
            )

    def run(self, model, x, y=None, *, epochs, head_learning_rate=None, cache_features="auto", **fit_options):
        for unused in ("head_epochs", "learning_rate", "layer_decay", "unfreeze_top"):
            fit_options.pop(unused, None)
        rates = {} if head_learning_rate is None else {"learning_rate": head_learning_rate}
        return self(model, x, y, epochs=epochs, cache_features=cache_features, **rates, **fit_options), []


class FineTune(Recipe):
    name, function = "fine_tune", "tfxfer.recipes.fine_tune:fine_tune"

    def run(self, model, x, y=None, *, head_learning_rate=None, cache_features="auto", head_epochs=1, **options):
        return super().run(model, x, y, **options)


class TwoPhase(Recipe):
    name, function, head_phase = "two_phase", "tfxfer.recipes.two_phase:two_phase", True

    def run(self, model, x, y=None, *, epochs, head_epochs=1, head_learning_rate=None, learning_rate=None, **options):
        if head_learning_rate is not None:
            options["head_learning_rate"] = head_learning_rate
        if learning_rate is not None:
            options["learning_rate"] = learning_rate
        history = self(model, x, y, head_epochs=head_epochs, epochs=epochs, **options)
        return history, self.phase_boundaries(head_epochs)


class Gradual(FineTune):
    """ULMFiT's gradual unfreezing: the `fine_tune` recipe with `gradual=True`."""

    name, function = "gradual", "tfxfer.recipes.fine_tune:gradual"


RECIPES = {recipe.name: recipe for recipe in (LinearProbe(), FineTune(), TwoPhase(), Gradual())}
assert tuple(RECIPES) == RECIPE_NAMES


def recipe_named(name):
    """The `Recipe` called `name` (one of `RECIPE_NAMES`)."""
    if name not in RECIPES:
        raise ValueError(f"recipe must be one of {RECIPE_NAMES}, got {name!r}.")
    return RECIPES[name]


def run_recipe(name, model, x, y=None, **options):
    """Runs the recipe called `name`; returns `(history, phase_boundaries)` (see `Recipe.run`).

    Example:

    >>> history, boundaries = run_recipe("two_phase", model, train_ds, epochs=2, head_epochs=1)
    """
    return recipe_named(name).run(model, x, y, **options)
