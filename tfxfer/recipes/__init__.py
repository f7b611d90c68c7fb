"""Fine-tuning recipes."""

from tfxfer.recipes.fine_tune import fine_tune, merge_histories

__all__ = ["fine_tune", "merge_histories"]
