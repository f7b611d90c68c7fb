"""`BestCheckpoint`: keeps the best epoch's model in one `.keras` file, written atomically."""

import json
import math
import pathlib

import keras

from tfxfer.utils.atomic_files import remove_dead_temporaries, replaced_atomically, write_text_atomically


class BestCheckpoint(keras.callbacks.Callback):
    """Saves the model whenever an epoch beats the best so far.

    Unlike `keras.callbacks.ModelCheckpoint(save_best_only=True)`:
    - the file is written under a temporary name and renamed, so a kill at
      any moment leaves the previous good checkpoint (or none), never a torn
      one;
    - ties on `monitor` go to the lower `tie_breaker` (validation loss), so
      a fine-tuned epoch with the same accuracy and a lower loss wins over
      an earlier one;
    - the best value is recorded beside the file (`<name>.json`) and read
      back when training resumes, so a resumed run never replaces a better
      checkpoint with a worse one.

    Args:
        filepath: the `.keras` file.
        monitor: the metric to maximise (falls back to `accuracy` when the
            logs have no validation metrics).
        tie_breaker: the metric to minimise among equal `monitor` values.

    Example:

    >>> model.fit(train_ds, validation_data=val_ds, callbacks=[BestCheckpoint("best.keras")])
    """

    def __init__(self, filepath, monitor="val_accuracy", tie_breaker="val_loss"):
        super().__init__()
        self.filepath = pathlib.Path(filepath)
        if self.filepath.suffix != ".keras":
            raise ValueError(f"filepath must end in .keras, got {filepath!r}.")
        self.monitor = monitor
        self.tie_breaker = tie_breaker
        self.best = None  # {"epoch": 1-based, "monitor": value, "tie_breaker": value}
        self._read_record()
        remove_dead_temporaries(self.filepath.parent)

    @property
    def record_file(self):
        return self.filepath.with_suffix(".json")

    @property
    def best_epoch(self):
        return None if self.best is None else self.best["epoch"]

    def _read_record(self):
        if self.record_file.exists() and self.filepath.exists():
            self.best = json.loads(self.record_file.read_text())

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        monitor, tie_breaker = self.monitor, self.tie_breaker
        if monitor not in logs:
            monitor, tie_breaker = monitor.removeprefix("val_"), tie_breaker.removeprefix("val_")
        if monitor not in logs:
            return
        value, tie = float(logs[monitor]), float(logs.get(tie_breaker, math.inf))
        if math.isnan(value) or not self._better(value, tie):
            return
        self._save_atomically()
        self.best = {"epoch": epoch + 1, "monitor": value, "tie_breaker": tie, "metric": monitor}
        write_text_atomically(self.record_file, json.dumps(self.best))

    def _better(self, value, tie):
        if self.best is None:
            return True
        if value != self.best["monitor"]:
            return value > self.best["monitor"]
        return tie < self.best["tie_breaker"]

    def _save_atomically(self):
        self.filepath.parent.mkdir(parents=True, exist_ok=True)
        with replaced_atomically(self.filepath, fault_name="checkpoint:before-rename") as temporary:
            self.model.save(temporary)
