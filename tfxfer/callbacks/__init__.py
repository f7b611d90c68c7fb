"""Keras callbacks for fine-tuning."""

from tfxfer.callbacks.best_checkpoint import BestCheckpoint
from tfxfer.callbacks.gradual_unfreezing import GradualUnfreezing
from tfxfer.callbacks.run_backup import RunBackup, resume_epoch

__all__ = ["BestCheckpoint", "GradualUnfreezing", "RunBackup", "resume_epoch"]
