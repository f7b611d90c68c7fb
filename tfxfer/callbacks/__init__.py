"""Keras callbacks for fine-tuning."""

from tfxfer.callbacks.gradual_unfreezing import GradualUnfreezing

__all__ = ["GradualUnfreezing"]
