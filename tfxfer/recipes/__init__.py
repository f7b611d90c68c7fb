"""Fine-tuning recipes, one registry for Python and the CLI.

Example:

>>> sorted(tfxfer.recipes.RECIPES)
['fine_tune', 'gradual', 'linear_probe', 'two_phase']
"""

from tfxfer.recipes.fine_tune import fine_tune, fine_tuning_rate
from tfxfer.recipes.linear_probe import linear_probe
from tfxfer.recipes.registry import RECIPE_NAMES, RECIPES, gradual, run_recipe
from tfxfer.recipes.two_phase import merge_histories, two_phase
from tfxfer.recipes.wise_ft import WiseFTCurve, choose_wise_ft_mix, fine_tuned_weights, wise_ft

__all__ = [
    "RECIPES",
    "RECIPE_NAMES",
    "WiseFTCurve",
    "choose_wise_ft_mix",
    "fine_tune",
    "fine_tuned_weights",
    "fine_tuning_rate",
    "gradual",
    "linear_probe",
    "merge_histories",
    "run_recipe",
    "two_phase",
    "wise_ft",
]
