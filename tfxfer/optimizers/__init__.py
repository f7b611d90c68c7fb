"""Optimizers and schedules for fine-tuning."""

from tfxfer.optimizers.cloning import clone_optimizer
from tfxfer.optimizers.discriminative import discriminative_optimizer
from tfxfer.optimizers.fused_adam import FusedAdam
from tfxfer.optimizers.schedules import ScaledSchedule, scale_learning_rate, warmup_cosine

__all__ = [
    "FusedAdam",
    "ScaledSchedule",
    "clone_optimizer",
    "discriminative_optimizer",
    "scale_learning_rate",
    "warmup_cosine",
]
