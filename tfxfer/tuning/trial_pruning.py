"""Stopping poor trials early: each epoch's validation accuracy reported to the study, pruned below the median."""

import keras


class TrialPruned(Exception):
    """A trial stopped early: its validation accuracy fell below that of earlier trials at the same epoch."""


class TrialPruning(keras.callbacks.Callback):
    """Reports `val_accuracy` at each epoch end to an Optuna trial, and stops the trial when the pruner says so.

    Epochs count across a recipe's phases (Keras numbers them so), so a
    two-phase trial is compared epoch for epoch with the others.

    Args:
        trial: the `optuna.Trial`.
        say: where a line per epoch goes (progress of a long search).
    """

    def __init__(self, trial, say=print):
        super().__init__()
        self.trial = trial
        self.say = say
        self.last_epoch = None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get("val_accuracy")
        if value is None:
            return
        self.last_epoch = epoch + 1
        self.trial.report(float(value), step=epoch)
        self.say(f"    epoch {epoch + 1}: validation accuracy {float(value):.3f}")
        if self.trial.should_prune():
            raise TrialPruned(
                f"trial {self.trial.number} pruned after epoch {epoch + 1}: validation accuracy {float(value):.3f} "
                "is below the median of earlier trials at that epoch"
            )
