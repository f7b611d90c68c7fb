"""Keras callbacks for fine-tuning."""

from tfxfer.callbacks.best_checkpoint import BestCheckpoint
from tfxfer.callbacks.gradual_unfreezing import GradualUnfreezing
from tfxfer.callbacks.run_backup import RunBackup

__all__ = ["BestCheckpoint", "GradualUnfreezing", "RunBackup"]
