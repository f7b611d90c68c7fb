"""A learning-rate finder: the loss along an exponential ramp of rates."""

import dataclasses
import inspect
import math

import keras
import numpy as np

from tfxfer.optimizers.discriminative import optimizer_class
from tfxfer.utils.array_batches import is_array_like, shuffled_batches


@dataclasses.dataclass
class LearningRateCurve:
    """The finder's result: rates tried, the loss at each, and a suggestion.

    `suggestion` is the rate where the smoothed loss falls fastest (the
    steepest descent on a log-rate axis, before the loss's minimum), the
    rule of fastai's `lr_find(suggest_funcs=steep)` and Lightning's
    `suggestion()`.
    """

    learning_rates: list
    losses: list
    smoothed_losses: list
    suggestion: float
    stopped_early: bool

    @property
    def caveat(self):
        """Why the suggestion should not be trusted, or None.

        A suggestion at the start of the range means the steepest fall was
        found at its first rate: too few steps to see the curve, nothing
        that trains, or every rate already too high.
        """
        if self.learning_rates and self.suggestion <= self.learning_rates[min(1, len(self.learning_rates) - 1)]:
            return (
                f"the suggestion {self.suggestion:.1e} is at the very start of the range tried, where the loss "
                "had not yet begun to fall steeply, so it is no measured optimum. Try more steps, and check that "
                "something trains (an unfrozen backbone, or the head)."
            )
        return None

    def as_dict(self):
        return {**dataclasses.asdict(self), "caveat": self.caveat}


class _ExponentialRamp(keras.optimizers.schedules.LearningRateSchedule):
    def __init__(self, start, end, steps):
        self.start, self.end, self.steps = float(start), float(end), int(steps)

    def __call__(self, step):
        fraction = keras.ops.cast(step, "float32") / max(self.steps - 1, 1)
        return self.start * keras.ops.power(self.end / self.start, fraction)

    def get_config(self):
        return {"start": self.start, "end": self.end, "steps": self.steps}


class _BatchLosses(keras.callbacks.Callback):
    """Each batch's own loss (Keras logs the running mean), stopping on divergence."""

    def __init__(self, diverge, smooth):
        super().__init__()
        self.diverge, self.smooth = diverge, smooth
        self.losses, self.smoothed = [], []
        self.stopped_early = False
        self._previous_mean = 0.0

    def on_train_batch_end(self, batch, logs=None):
        mean = float(logs["loss"])
        loss = (batch + 1) * mean - batch * self._previous_mean
        self._previous_mean = mean
        self.losses.append(loss)
        average = loss if not self.smoothed else self.smooth * self.smoothed[-1] + (1 - self.smooth) * loss
        self.smoothed.append(average)
        if not math.isfinite(loss) or average > self.diverge * min(self.smoothed):
            self.stopped_early = True
            self.model.stop_training = True


def lr_find(
    model,
    x,
    y=None,
    *,
    start=1e-7,
    end=1.0,
    steps=100,
    batch_size=None,
    optimizer=None,
    smooth=0.9,
    diverge=4.0,
    verbose=0,
):
    """Trains with the rate rising from `start` to `end`, then puts everything back.

    One step per rate, `steps` rates spaced evenly on a log scale (data is
    repeated as needed). Training stops early once the smoothed loss
    exceeds `diverge` times its lowest value. Afterwards the model's
    weights, trainable flags and compile state (optimizer and its state
    included) are as before the call: the finder trains a throw-away copy
    of the weights, as fastai's and Lightning's do.

    Args:
        model: a `TransferModel` (compiled or not; its loss is used).
        x, y: training data as for `fit`.
        start, end: the first and last learning rate.
        steps: how many rates (training steps).
        batch_size: for array inputs (default 32).
        optimizer: optimizer class or name (default: the class the model
            was compiled with, else Adam).
        smooth: the exponential smoothing of the plotted loss (0: none).
        diverge: stop when the smoothed loss is this many times its minimum.
        verbose: `fit`'s verbosity.

    Returns:
        A `LearningRateCurve`.

    Example:

    >>> curve = model.lr_find(train_ds, steps=100)
    >>> 1e-7 <= curve.suggestion <= 1.0
    True
    """
    if not (isinstance(start, (int, float)) and isinstance(end, (int, float)) and 0 < start < end):
        raise ValueError(f"start and end must be rates with 0 < start < end, got start={start!r}, end={end!r}.")
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 5:
        raise ValueError(f"steps must be an integer >= 5, got {steps!r}.")
    if not 0.0 <= smooth < 1.0:
        raise ValueError(f"smooth must be in [0, 1), got {smooth!r}.")
    if not diverge > 1.0:
        raise ValueError(f"diverge must be > 1, got {diverge!r}.")
    if y is not None and is_array_like(x):
        x, y = shuffled_batches(x, y, None, batch_size or 32), None
    if not hasattr(x, "repeat"):
        raise ValueError("lr_find takes arrays with labels (x, y) or a tf.data.Dataset of (inputs, labels).")
    previous_optimizer = model.optimizer if model.compile_arguments else None
    weights = [np.array(weight) for weight in model.get_weights()]
    optimizer_type = optimizer_class(optimizer or _compiled_optimizer(previous_optimizer))
    recorder = _BatchLosses(diverge, smooth)
    try:
        with model.compiled_temporarily(optimizer_type(learning_rate=_ExponentialRamp(start, end, steps))):
            model.fit(x.repeat(), epochs=1, steps_per_epoch=steps, callbacks=[recorder], verbose=verbose)
    finally:
        model.set_weights(weights)
    rates = [float(_ExponentialRamp(start, end, steps)(step)) for step in range(len(recorder.losses))]
    if len(rates) < 3:
        raise ValueError(f"The loss diverged within {len(rates)} steps of start={start}: start from a lower rate.")
    return LearningRateCurve(
        learning_rates=rates,
        losses=recorder.losses,
        smoothed_losses=recorder.smoothed,
        suggestion=steepest_descent(rates, recorder.smoothed),
        stopped_early=recorder.stopped_early,
    )


def steepest_descent(rates, losses):
    """The rate where `losses` falls fastest per log-rate, before their minimum.

    Example:

    >>> steepest_descent([1e-4, 1e-3, 1e-2, 1e-1], [1.0, 0.9, 0.4, 2.0])
    0.01
    """
    lowest = int(np.argmin(losses))
    if lowest < 1:
        return float(rates[0])
    slopes = np.gradient(np.asarray(losses[: lowest + 1], float), np.log(np.asarray(rates[: lowest + 1], float)))
    return float(rates[int(np.argmin(slopes))])


def _compiled_optimizer(optimizer):
    """The compiled optimizer's class when it takes one learning rate, else Adam."""
    if optimizer is None or "learning_rate" not in inspect.signature(type(optimizer)).parameters:
        return "adam"
    return type(optimizer)
