"""What `tfxfer tune` searches: the recipe, its learning rate and epochs of head training, alpha and beta.

Each trial draws the options below from an Optuna trial and lays them over
the user's `TrainConfig`; options a choice does not use are not drawn (a
linear probe has no fine-tuning rate, `--regularizer none` no alpha), so the
sampler learns only from what mattered.

Example:

>>> options = suggested_options(trial, config)
>>> sorted(options)
['alpha', 'beta', 'head_epochs', 'learning_rate', 'recipe']
"""

from tfxfer.choices import FINE_TUNING_LEARNING_RATE, LORA_LEARNING_RATE

SEARCHED_RECIPES = ("linear_probe", "two_phase", "fine_tune")
# The regularizers whose strength on the pretrained weights is `alpha`; `beta` weighs the head in all but these.
_WITH_ALPHA = ("l2", "l2_sp", "cosine_sp", "orthogonal_sp", "l2_sp+bss", "delta", "l2_sp+co_tuning")
_WITHOUT_BETA = ("none", "bss")
_CO_TUNING = ("co_tuning", "l2_sp+co_tuning")


def suggested_options(trial, config):
    """The options one trial tries (a dict of `TrainConfig` fields), drawn from `trial`.

    Ranges (log-uniform where a scale is): the fine-tuning learning rate
    within 10× of the default either way (1e-5 to 1e-3; with LoRA 3e-4 to
    3e-2), alpha 1e-4 to 1, beta 1e-4 to 0.1, Co-Tuning's trade-off 0.1 to
    10, head epochs 1 to 3 before fine-tuning (`two_phase`).
    """
    options = {"recipe": trial.suggest_categorical("recipe", list(SEARCHED_RECIPES))}
    fine_tunes = options["recipe"] != "linear_probe"
    if fine_tunes:
        default = LORA_LEARNING_RATE if config.lora_rank else FINE_TUNING_LEARNING_RATE
        options["learning_rate"] = trial.suggest_float("learning_rate", default / 10, default * 10, log=True)
    if options["recipe"] == "two_phase":
        options["head_epochs"] = trial.suggest_int("head_epochs", 1, 3)
    if fine_tunes and config.regularizer in _WITH_ALPHA:
        options["alpha"] = trial.suggest_float("alpha", 1e-4, 1.0, log=True)
    if config.regularizer not in _WITHOUT_BETA:
        options["beta"] = trial.suggest_float("beta", 1e-4, 0.1, log=True)
    if fine_tunes and config.regularizer in _CO_TUNING:
        options["trade_off"] = trial.suggest_float("trade_off", 0.1, 10.0, log=True)
    return options


def described(options):
    """A trial's options in one short line, e.g. `two_phase, learning rate 2.1e-04, alpha 0.031`."""
    parts = [options["recipe"]]
    names = {
        "learning_rate": "learning rate",
        "head_epochs": "head epochs",
        "alpha": "alpha",
        "beta": "beta",
        "trade_off": "trade-off",
    }
    for key, label in names.items():
        if key in options:
            value = options[key]
            parts.append(f"{label} {value}" if isinstance(value, int) else f"{label} {value:.2g}")
    return ", ".join(parts)
