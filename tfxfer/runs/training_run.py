"""`train_run` and `resume_run`: data → model → training → evaluation → export → report, in one call.

This module decides which job runs (a new run, a resume, a restarted job, a
worker beside the chief), under which strategy and dtype policy;
`tfxfer.runs.training_job.TrainingJob` runs its stages; it (and with it
TensorFlow) is imported only when a job starts, so a refused resume or a
restarted job that already completed answers without it.
"""

import contextlib
import dataclasses
import os
import pathlib
import shutil
import tempfile
import time

from tfxfer.option_errors import OptionValueError, escaped, option
from tfxfer.runs.moved_data import check_recorded_data, record_moved_data
from tfxfer.runs.output_folders import check_output_folders
from tfxfer.runs.progress import speaker
from tfxfer.runs.run_data import data_modality
from tfxfer.runs.run_folder import RunFolder
from tfxfer.runs.train_config import TrainConfig


def train_run(config, verbose=1, callbacks=()):
    """Runs a whole training job and writes its run folder.

    The run folder (`config.runs_dir/<name>-<time>/`) holds `config.yaml`,
    `metrics.json`, `training_curves.png`, `confusion_matrix.png`,
    `checkpoints/best.keras`, `data_report.txt` and `report.md`; the export
    goes to `config.export_dir/<name>/<version>/`.

    Args:
        config: a `TrainConfig`.
        verbose: 0 silent, 1 progress bars and stage messages, 2 one line
            per epoch.
        callbacks: Keras callbacks added to every fit of the recipe (e.g.
            `tfxfer.tune`'s pruning of poor trials).

    Returns:
        The run's metrics dict (also written to `metrics.json`).

    Example:

    >>> metrics = train_run(TrainConfig(
    ...     backbone="../shared/models/tfhub/efficientnet_lite0_feature_vector",
    ...     data="../shared/data/images/hymenoptera", epochs=1))
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"train_run takes a TrainConfig, got {type(config).__name__}.")
    if config.run_folder:
        path = pathlib.Path(config.run_folder).expanduser().resolve()
        config = dataclasses.replace(config, run_folder=str(path))
        if (path / "config.yaml").exists():  # the same job, started again: continue it
            return _resume(RunFolder(path), verbose, given=config, callbacks=callbacks)
        RunFolder.check_can_create_at(path)  # before anything slow
    return _start(config, verbose, folder=None, callbacks=callbacks)


def resume_run(run_folder, verbose=1, moved_data=None):
    """Continues a killed, interrupted or failed run from its last completed epoch.

    The run's recorded options (`config.yaml`) are used as they are, but
    for data that was moved: `moved_data` maps `data` / `validation_data`
    to their new paths, taken only where the recorded path no longer exists
    (and recorded in `config.yaml`; the run keeps its name). Its
    backup (`backup/`, written at every epoch end by `RunBackup`) brings
    back the weights, the original w⁰, the optimizer's state and step (the
    learning-rate schedule's position), and the recipe's phase and
    gradual-unfreezing stage; the finished run reports every epoch, before
    and after the interruption. A run killed before its first epoch ended
    starts again from the beginning in the same folder.

    Args:
        run_folder: `runs/<name>-<time>/`.
        verbose: as for `train_run`.
        moved_data: `{"data": new_path}` (and/or `"validation_data"`) for
            data moved since the run started.

    Returns:
        The run's metrics dict.

    Example:

    >>> metrics = resume_run("runs/hymenoptera-20261124-101500")
    """
    folder = RunFolder(pathlib.Path(run_folder).expanduser().resolve())
    if not folder.path.exists():
        raise FileNotFoundError(f"Run folder not found: {folder.path}.")
    if not folder.config_file.exists():
        raise FileNotFoundError(f"{folder.path} is not a run folder (it has no config.yaml); nothing to resume.")
    if moved_data:
        record_moved_data(folder, moved_data)
    check_recorded_data(folder)
    return _resume(folder, verbose)


def _resume(folder, verbose, given=None, callbacks=()):
    status = folder.status(check_liveness=False)  # only "completed" matters here
    if given is not None:
        _check_same_options(folder, folder.read_config(), given)
        if status["state"] == "completed":
            # A cluster manager restarting a job that already finished: nothing to do, and no failure.
            speaker(verbose)(f"The run {folder.path} already completed; its results are in {folder.metrics_file}.")
            return folder.read_metrics()
    if status["state"] == "completed":
        raise OptionValueError(
            f"The run {folder.path} already completed; there is nothing to resume. Its results are in "
            f"{folder.metrics_file}; start a new run with {{train}}.",
            train=("tfxfer.train_run(...)", "tfxfer train"),
        )
    return _start(folder.read_config(), verbose, folder=folder, callbacks=callbacks)


def _check_same_options(folder, recorded, given):
    """A restarted job must be the same job: its options must be those the folder recorded."""
    before, now = recorded.to_dict(absolute_paths=True), given.to_dict(absolute_paths=True)
    changed = [
        name
        for name in now
        if name != "run_folder"
        and before.get(name) != now[name]
        # Runs recorded before cache_features became "when possible" (None) recorded it as True.
        and not (name == "cache_features" and {before.get(name), now[name]} == {True, None})
    ]
    if changed:
        spellings = {name: option(name) for name in changed}
        # Values are text in the template: their braces are escaped.
        shown = lambda value: "not given" if value is None else escaped(repr(value))  # noqa: E731
        listing = ", ".join(f"{{{name}}} {shown(before.get(name))} (now {shown(now[name])})" for name in changed)
        raise OptionValueError(
            f"The run folder {folder.path} holds a run started with other options: {listing}. "
            "Restart it with the options it recorded (its config.yaml), or give another {run_folder}.",
            run_folder=option("run_folder"),
            **spellings,
        )


def _start(config, verbose, folder, callbacks=()):
    import keras

    from tfxfer.distribute import select_strategy, worker_role
    from tfxfer.runs.training_job import TrainingJob, lock_run_folder

    say = speaker(verbose)
    started = time.time()
    keras.utils.set_random_seed(config.seed)
    role = worker_role()
    if folder is None:  # a new run; a resumed one keeps the options it recorded
        check_feature_caching(config, data_modality(config.data))
    if role.is_chief:  # the others write to a scratch folder of their own
        check_output_folders(config, resuming=folder is not None)
    if role.workers > 1 and config.strategy not in ("auto", "multi_worker"):
        raise OptionValueError(
            f"TF_CONFIG names {role.workers} workers, but {{strategy}} {config.strategy} trains on one "
            "machine: every worker would train and write a model of its own. Use {strategy} multi_worker "
            "(or auto), or unset TF_CONFIG.",
            strategy=option("strategy"),
        )
    if role.workers > 1:
        say(f"Waiting for the {role.workers} workers TF_CONFIG names to start (this blocks until all have started) ...")
    choice = select_strategy(config.strategy)
    if choice.workers > 1 and not role.is_chief:
        return _run_beside_the_chief(config, choice, role, started, verbose, folder)
    precision = run_precision(config, choice, folder)
    say(f"Strategy: {choice.describe()}; dtype policy: {precision.policy} ({precision.reason})")
    # One process trains a run folder; a killed one's lock is taken over, so
    # a resumed run takes it before anything slow and a second resume fails at once.
    lock = lock_run_folder(folder) if folder is not None else None
    try:
        with _global_dtype_policy(precision.policy):
            job = TrainingJob(config, choice, precision, verbose, folder=folder, started=started, callbacks=callbacks)
            return job.run()
    finally:
        if lock is not None:
            lock.release()


@contextlib.contextmanager
def _global_dtype_policy(policy):
    """Keras' global dtype policy set to `policy` for the block."""
    import keras

    previous = keras.mixed_precision.global_policy()
    try:
        keras.mixed_precision.set_global_policy(policy)
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _run_beside_the_chief(config, choice, role, started, verbose, chief_folder):
    """A non-chief worker: the same steps as the chief (collectives need every
    worker), with its run folder and export in a temporary place it removes.
    A restarted job starts from a copy of the chief's last backup and best
    checkpoint, so every worker continues from the same weights."""
    from tfxfer.runs.training_job import TrainingJob

    _remove_dead_scratch_folders()
    scratch = pathlib.Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-"))
    say = speaker(verbose)
    say(f"{role.describe()}: the chief writes the run's results; this worker's copies go to {scratch}")
    try:
        local = dataclasses.replace(
            config, runs_dir=str(scratch / "runs"), export_dir=str(scratch / "saved_models"), run_folder=None
        )
        folder = None
        if chief_folder is not None:
            folder = RunFolder.create_at(scratch / "run")
            folder.write_config(local.to_dict())
            for part in ("backup", "checkpoints"):
                if (chief_folder.path / part).exists():
                    shutil.copytree(chief_folder.path / part, folder.path / part, dirs_exist_ok=True)
        precision = run_precision(config, choice, chief_folder)
        with _global_dtype_policy(precision.policy):
            return TrainingJob(local, choice, precision, verbose, folder=folder, started=started).run()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


SCRATCH_PREFIX = "tfxfer-worker-"


def _remove_dead_scratch_folders():
    """A SIGKILLed worker cannot clean up; the next one removes what it left."""
    from tfxfer.utils.process_liveness import remove_folders_of_dead_processes

    remove_folders_of_dead_processes(SCRATCH_PREFIX)


def check_feature_caching(config, modality):
    """Refuses `cache_features=True` (`--cache-features`) with image augmentation, which it cannot be used with.

    Cached features are computed once, and augmentation changes the training
    images every epoch; left to its default, caching is used only where the
    data allows it.
    """
    if config.cache_features is not True or modality != "image" or config.augment == "none":
        return
    raise OptionValueError(
        "{cache} asks for the frozen backbone's features to be computed once, but {augment} changes the "
        "training images every epoch, so they cannot be cached. Pass {none} to cache them, or {drop} to train "
        "with augmentation (the backbone then runs every epoch).",
        cache=("cache_features=True", "--cache-features"),
        augment=(f"augment={config.augment!r}", f"--augment {config.augment}"),
        none=("augment='none'", "--augment none"),
        drop=("leave out cache_features=True", "drop --cache-features"),
    )


def run_precision(config, choice, folder=None):
    """The run's dtype policy and why (`PrecisionChoice`): `--mixed-precision auto` asks the hardware.

    A resumed run (`folder`) keeps the policy it started with, whatever this
    machine would pick: its backup's weights and optimizer state were
    trained in it, and its report describes one run.

    Example:

    >>> run_precision(TrainConfig(data="ants", backbone="m", mixed_precision="off"), choice).reason
    '--mixed-precision off'
    """
    from tfxfer.distribute.native_precision import PrecisionChoice, forced_precision, native_precision

    recorded = folder.read_precision() if folder is not None else None
    if recorded is not None:
        return PrecisionChoice(recorded.policy, f"{recorded.reason}; kept from the run's start")
    if config.mixed_precision != "auto":
        return forced_precision(config.mixed_precision, choice.name)
    backbone = "keras_hub" if config.preset else "tf_hub"
    return native_precision(choice.name, modality=data_modality(config.data), backbone=backbone)
