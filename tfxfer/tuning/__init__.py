"""Automatic choice of the recipe, learning rate, alpha and beta: `tfxfer.tune` and `tfxfer tune`.

Example:

>>> result = tfxfer.tune(config, trials=12)
"""

from tfxfer.tuning.search import tune

__all__ = ["tune"]
