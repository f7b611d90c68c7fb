"""`RunBackup`: Keras' `BackupAndRestore`, made kill-safe and aware of a recipe's phases."""

import json
import pathlib

import keras

from tfxfer.utils.atomic_files import remove_dead_temporaries, replaced_atomically, write_text_atomically
from tfxfer.utils.keras_internals import load_weights_except


class RunBackup(keras.callbacks.BackupAndRestore):
    """Backs up the training state at every epoch end; restores it when `fit` starts again.

    The state is the model's weights (w⁰ included), the optimizer's (its
    slots and its step count, hence the learning-rate schedule's position)
    and every epoch's logs. Differences from `BackupAndRestore`:
    - each backup is one file named by its epoch, written under a temporary
      name and renamed (`epoch-<N>.weights.h5`, after its logs
      `epoch-<N>.json`), and the previous one is deleted only after that:
      a kill at any moment leaves a complete backup;
    - one instance serves every `fit` of a recipe whose phases count epochs
      on one axis (`two_phase`: head epochs, then fine-tuning epochs). A
      `fit` whose epochs are all behind the backup trains nothing; the
      first `fit` after a phase boundary takes the model's weights but
      starts its own optimizer, as the uninterrupted recipe did;
    - `history` holds the logs of every epoch, before and after a resume;
    - the epoch a `fit` starts from is worked out before it starts
      (`resume_epoch`); `TransferModel.fit` and the head model's `fit`
      pass it as `initial_epoch`: no callback moves a running `fit`.

    Args:
        backup_dir: a folder of its own (a run folder's `backup/`).

    Example:

    >>> backup = RunBackup("runs/ants-20261124-101500/backup")
    >>> model.fit(train_ds, epochs=4, callbacks=[backup])  # killed, run again: continues

    A plain Keras model's `fit` does not ask where to start; give it
    `initial_epoch=resume_epoch([backup])` (a fit that would train restored
    epochs again is refused).
    """

    def __init__(self, backup_dir):
        super().__init__(str(backup_dir), save_freq="epoch", delete_checkpoint=False)
        self.folder = pathlib.Path(backup_dir)
        self.epoch_logs = {}
        self.resumed_from = None  # the epoch count restored at the first resume
        self._fit_end = None
        self._restored_epoch = None  # checked against the epoch the fit starts at
        self._first_fit = True
        remove_dead_temporaries(self.folder)

    @property
    def history(self):
        """`{metric: [value per epoch]}` over every epoch so far, in order."""
        merged = {}
        for epoch in sorted(self.epoch_logs):
            for key, value in self.epoch_logs[epoch].items():
                merged.setdefault(key, []).append(value)
        return merged

    def latest(self):
        """`(epochs_completed, weights_file, state)` of the newest complete backup, or None."""
        return latest_backup(self.folder)

    def start_epoch(self, initial_epoch=0):
        """The epoch a `fit` from `initial_epoch` starts at: past the newest backup's epochs, if there is one."""
        latest = self.latest()
        return initial_epoch if latest is None else max(initial_epoch, latest[0])

    def on_train_begin(self, logs=None):
        self._fit_end = self.params["epochs"]
        self._restored_epoch = None
        first_fit, self._first_fit = self._first_fit, False
        latest = self.latest()
        if latest is None:
            return
        epoch, weights, state = latest
        self.epoch_logs = {int(key): value for key, value in state["logs"].items()}
        if first_fit:  # later fits of the recipe find this process's own backups
            self.resumed_from = epoch
        self._restored_epoch = epoch
        optimizer = self.model.optimizer
        if state["fit_end"] == self._fit_end:  # the same phase: its optimizer state too
            if optimizer is not None and not optimizer.built:
                optimizer.build(self.model.trainable_variables)
            self.model.load_weights(str(weights))
        else:
            # Another phase's backup (this fit starts a phase, or a phase
            # finished before the kill trains nothing): its weights, with this
            # fit's own optimizer, as without the kill. Keras' public
            # load_weights has no way to leave the optimizer out.
            load_weights_except(self.model, str(weights), objects_to_skip=[optimizer])

    def on_epoch_begin(self, epoch, logs=None):
        restored, self._restored_epoch = self._restored_epoch, None
        if restored is not None and epoch < restored:
            raise RuntimeError(
                f"RunBackup restored the state after epoch {restored}, but this fit starts at epoch {epoch + 1} and "
                f"would train epochs {epoch + 1}-{restored} again. Only tfxfer's TransferModel.fit asks RunBackup "
                "where to start; for another Keras model pass "
                "initial_epoch=tfxfer.callbacks.resume_epoch(callbacks) to fit, or use "
                "keras.callbacks.BackupAndRestore."
            )

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_logs[epoch] = {key: float(value) for key, value in (logs or {}).items()}
        self._save(epoch + 1)

    def _save(self, epochs_completed):
        self.folder.mkdir(parents=True, exist_ok=True)
        state = {"epoch": epochs_completed, "fit_end": self._fit_end, "logs": self.epoch_logs}
        write_text_atomically(self.folder / f"epoch-{epochs_completed}.json", json.dumps(state))
        weights = self.folder / f"epoch-{epochs_completed}.weights.h5"
        with replaced_atomically(weights, fault_name="backup:before-rename") as temporary:
            self.model.save_weights(str(temporary), overwrite=True)
        for older in self.folder.glob("epoch-*"):
            if _epoch_of(older) < epochs_completed:
                older.unlink(missing_ok=True)


def resume_epoch(callbacks, initial_epoch=0):
    """The epoch a `fit` given `callbacks` starts at: past a `RunBackup`'s restored epochs, else `initial_epoch`.

    `TransferModel.fit` calls it; pass its answer as `initial_epoch` to the
    `fit` of any other Keras model.

    Example:

    >>> model.fit(x, y, epochs=4, callbacks=callbacks, initial_epoch=resume_epoch(callbacks))
    """
    for callback in callbacks or []:
        if isinstance(callback, RunBackup):
            return callback.start_epoch(initial_epoch)
    return initial_epoch


def latest_backup(folder):
    """`(epochs_completed, weights_file, state)` of the newest complete backup in `folder`, or None."""
    for weights in sorted(pathlib.Path(folder).glob("epoch-*.weights.h5"), key=_epoch_of, reverse=True):
        state_file = weights.with_name(f"epoch-{_epoch_of(weights)}.json")
        if state_file.exists():
            return _epoch_of(weights), weights, json.loads(state_file.read_text())
    return None


def _epoch_of(path):
    return int(path.name.split(".", 1)[0].removeprefix("epoch-"))
