"""Learning-rate schedules for fine-tuning."""

import keras
from keras import ops


def warmup_cosine(learning_rate, total_steps, warmup_steps=0, final_fraction=0.0):
    """Linear warmup from 0 to `learning_rate`, then cosine decay.

    A thin use of Keras' own `CosineDecay` (which has a linear warmup).

    Args:
        learning_rate: the peak rate, reached after `warmup_steps`.
        total_steps: warmup plus decay steps.
        warmup_steps: steps of linear warmup.
        final_fraction: the rate at the end as a fraction of the peak.

    Example:

    >>> schedule = warmup_cosine(1e-4, total_steps=1000, warmup_steps=100)
    >>> round(float(schedule(100)), 8)
    0.0001
    """
    if total_steps <= warmup_steps:
        raise ValueError(f"total_steps ({total_steps}) must exceed warmup_steps ({warmup_steps}).")
    if warmup_steps == 0:
        return keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=total_steps, alpha=final_fraction)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0,
        decay_steps=total_steps - warmup_steps,
        alpha=final_fraction,
        warmup_target=learning_rate,
        warmup_steps=warmup_steps,
    )


@keras.saving.register_keras_serializable(package="tfxfer")
class ScaledSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Another schedule multiplied by a constant factor.

    Lets discriminative learning rates keep one schedule shape for every
    layer group.

    Example:

    >>> ScaledSchedule(keras.optimizers.schedules.ExponentialDecay(1e-3, 100, 0.9), 0.5)
    """

    def __init__(self, schedule, factor):
        if isinstance(schedule, dict):
            schedule = keras.saving.deserialize_keras_object(schedule)
        self.schedule = schedule
        self.factor = float(factor)

    def __call__(self, step):
        return ops.multiply(self.schedule(step), self.factor)

    def get_config(self):
        return {
            "schedule": keras.saving.serialize_keras_object(self.schedule),
            "factor": self.factor,
        }


def scale_learning_rate(learning_rate, factor):
    """`learning_rate` (a float or a schedule) times `factor`."""
    if isinstance(learning_rate, keras.optimizers.schedules.LearningRateSchedule):
        return ScaledSchedule(learning_rate, factor)
    return float(learning_rate) * factor
