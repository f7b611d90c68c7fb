"""Fine-tuning recipes, one registry for Python and the CLI (`tfxfer.recipes.recipe`).

Example:

>>> sorted(tfxfer.recipes.RECIPES)
['fine_tune', 'gradual', 'linear_probe', 'two_phase']
"""

from tfxfer.choices import RECIPE_NAMES
from tfxfer.recipes.fine_tune import fine_tune, fine_tuning_rate, gradual
from tfxfer.recipes.linear_probe import linear_probe
from tfxfer.recipes.lr_finder import LearningRateCurve, lr_find, steepest_descent
from tfxfer.recipes.recipe import RECIPES, Recipe, recipe_named, run_recipe
from tfxfer.recipes.two_phase import merge_histories, two_phase
from tfxfer.recipes.wise_ft import WiseFTCurve, choose_wise_ft_mix, fine_tuned_weights, wise_ft

__all__ = [
    "LearningRateCurve",
    "RECIPES",
    "RECIPE_NAMES",
    "Recipe",
    "WiseFTCurve",
    "choose_wise_ft_mix",
    "fine_tune",
    "fine_tuned_weights",
    "fine_tuning_rate",
    "gradual",
    "linear_probe",
    "lr_find",
    "merge_histories",
    "recipe_named",
    "run_recipe",
    "steepest_descent",
    "two_phase",
    "wise_ft",
]
