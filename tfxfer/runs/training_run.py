"""`train_run`: data → model → training → evaluation → export → report, in one call.

Each stage lives in its own module (`run_data`, `run_model`, the recipes,
`run_evaluation`, `run_export`); this one puts them in order.
"""

import contextlib
import dataclasses
import os
import pathlib
import shutil
import tempfile
import time
import warnings

import numpy as np

from tfxfer import faults
from tfxfer.callbacks.best_checkpoint import BestCheckpoint
from tfxfer.callbacks.run_backup import RunBackup, latest_backup
from tfxfer.data.dataset_inspection import fixed_batch_size
from tfxfer.faults import fault_point
from tfxfer.models.length_grouping import batches_may_vary_in_length
from tfxfer.option_errors import OptionMessage, OptionValueError, escaped, option
from tfxfer.recipes.recipe import recipe_named
from tfxfer.runs.moved_data import check_recorded_data, data_facts, record_moved_data
from tfxfer.runs.output_folders import check_output_folders
from tfxfer.runs.progress import speaker
from tfxfer.runs.run_data import data_modality, load_run_data
from tfxfer.runs.run_evaluation import evaluate_model
from tfxfer.runs.run_export import export_run_model
from tfxfer.runs.run_folder import RunFolder
from tfxfer.runs.run_model import build_run_model
from tfxfer.runs.run_status import write_status
from tfxfer.runs.train_config import TrainConfig
from tfxfer.utils.atomic_files import replaced_atomically
from tfxfer.utils.owner_lock import OwnerLock


def train_run(config, verbose=1):
    """Runs a whole training job and writes its run folder.

    The run folder (`config.runs_dir/<name>-<time>/`) holds `config.yaml`,
    `metrics.json`, `training_curves.png`, `confusion_matrix.png`,
    `checkpoints/best.keras`, `data_report.txt` and `report.md`; the export
    goes to `config.export_dir/<name>/<version>/`.

    Args:
        config: a `TrainConfig`.
        verbose: 0 silent, 1 progress bars and stage messages, 2 one line
            per epoch.

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
            return _resume(RunFolder(path), verbose, given=config)
        RunFolder.check_can_create_at(path)  # before anything slow
    return _start(config, verbose, folder=None)


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


def _resume(folder, verbose, given=None):
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
    return _start(folder.read_config(), verbose, folder=folder)


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


def _start(config, verbose, folder):
    import keras

    from tfxfer.distribute import select_strategy, worker_role

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
    policy = _mixed_precision_policy(config.mixed_precision, choice)
    say(f"Strategy: {choice.describe()}; dtype policy: {policy or 'float32'}")
    # One process trains a run folder; a killed one's lock is taken over, so
    # a resumed run takes it before anything slow and a second resume fails at once.
    lock = _lock(folder) if folder is not None else None
    try:
        with _global_dtype_policy(policy):
            return _run(config, choice, policy, started, verbose, say, folder)
    finally:
        if lock is not None:
            lock.release()


@contextlib.contextmanager
def _global_dtype_policy(policy):
    """Keras' global dtype policy set to `policy` (None: left as it is) for the block."""
    import keras

    previous = keras.mixed_precision.global_policy()
    try:
        if policy:
            keras.mixed_precision.set_global_policy(policy)
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _run_beside_the_chief(config, choice, role, started, verbose, chief_folder):
    """A non-chief worker: the same steps as the chief (collectives need every
    worker), with its run folder and export in a temporary place it removes.
    A restarted job starts from a copy of the chief's last backup and best
    checkpoint, so every worker continues from the same weights."""
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
        policy = _mixed_precision_policy(config.mixed_precision, choice)
        with _global_dtype_policy(policy):
            return _run(local, choice, policy, started, verbose, say, folder)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


SCRATCH_PREFIX = "tfxfer-worker-"


def _remove_dead_scratch_folders():
    """A SIGKILLed worker cannot clean up; the next one removes what it left."""
    from tfxfer.utils.process_liveness import remove_folders_of_dead_processes

    remove_folders_of_dead_processes(SCRATCH_PREFIX)


def _run(config, choice, policy, started, verbose, say, folder):
    say(f"Loading data from {config.data} ...")
    drop_remainder = config.drop_remainder if config.drop_remainder is not None else choice.fixed_shapes
    data = _sharded(load_run_data(config, drop_remainder=drop_remainder), choice, config, drop_remainder)
    if folder is None:
        check_feature_caching(config, data.modality)  # tfds:NAME: known once loaded
    say(
        f"  {data.train_size} training and {data.validation_size} validation examples, "
        f"{data.num_classes} classes: {', '.join(map(str, data.class_names[:10]))}"
        + (" ..." if data.num_classes > 10 else "")
    )

    with choice.strategy.scope():
        say(f"Building the model on {config.backbone or config.preset} ...")
        model = build_run_model(config, data)
        if model.modality == "image" and tuple(model.preprocessor.image_size) != tuple(data.image_size):
            # A KerasHub image preset brings its own image size.
            data = _sharded(
                load_run_data(config, drop_remainder=drop_remainder, preprocessor=model.preprocessor),
                choice,
                config,
                drop_remainder,
            )
    # The folder appears once data and model are sound, so mistakes leave none behind.
    resuming = folder is not None
    lock = None
    if not resuming:
        if config.run_folder:
            folder = RunFolder.create_at(config.run_folder)
        else:
            folder = RunFolder.create(config.runs_dir, config.run_name)
        folder.write_config(config.to_dict(absolute_paths=True))
        lock = _lock(folder)
    try:
        return _train_and_finish(model, config, data, choice, policy, started, folder, resuming, verbose, say)
    except KeyboardInterrupt:
        progress = _progress(folder, config)
        write_status(folder, "interrupted", **progress)
        raise RunInterrupted(
            f"The run {folder.path} was interrupted after {progress['epochs_completed']} of "
            f"{progress['epochs_total']} epochs; continue it with {{resume}}.",
            resume=(f"tfxfer.resume_run({str(folder.path)!r})", f"tfxfer train --resume {folder.path}"),
        ) from None
    except Exception as error:
        lost = _lost_worker(error, choice, config)
        write_status(folder, "failed", error=_one_line(lost or error), **_progress(folder, config))
        if lost is not None:
            raise lost from None
        raise
    finally:
        if lock is not None:
            lock.release()


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


class RunInterrupted(OptionMessage, KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped a run; the message says how to continue it."""


def _lock(folder):
    """One process trains a run folder at a time; a killed one's lock is taken over."""
    lock = OwnerLock(folder.lock_file)
    if not lock.acquire():
        raise RuntimeError(
            f"The run {folder.path} is being trained right now by {lock.describe_owner()}; "
            "wait for it to finish or stop it first."
        )
    return lock


def _train_and_finish(model, config, data, choice, policy, started, folder, resuming, verbose, say):
    with choice.strategy.scope():
        if not resuming:
            folder.write_text(
                "data_report.txt",
                "\n".join([data.report.summary()] + [f"skipped {where}: {why}" for where, why in data.report.skipped])
                + "\n",
            )
            folder.write_data_facts(data_facts(data))
            say(f"Run folder: {folder.path}")
        else:
            done = _progress(folder, config)["epochs_completed"]
            say(f"Resuming {folder.path} after epoch {done} of {_total_epochs(config)}")
        write_status(folder, "running", **_progress(folder, config))
        recipe = _train(model, config, data, choice, folder, verbose, say)
    fault_point("run:before-evaluation")
    if folder.best_checkpoint.exists():
        with warnings.catch_warnings():
            # The best epoch may predate a recompile; only the model's weights matter here.
            warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
            model.load_weights(str(folder.best_checkpoint))

    wise_ft = _apply_wise_ft(model, config, data, folder, say) if config.wise_ft is not None else None

    say("Evaluating the WiSE-FT model ..." if wise_ft else "Evaluating the best checkpoint ...")
    evaluation_data = data.validation if data.validation is not None else data.train
    evaluation = evaluate_model(model, evaluation_data, data.class_names)
    evaluation["split"] = "validation" if data.validation is not None else "training (no validation split)"

    from tfxfer.reports import plot_confusion_matrix, plot_training_curves

    plot_training_curves(
        recipe["history"], folder.training_curves, title=config.run_name, phase_boundaries=recipe["phase_boundaries"]
    )
    plot_confusion_matrix(
        evaluation["confusion_matrix"],
        data.class_names,
        folder.confusion_matrix,
        title=f"{config.run_name}: {evaluation['split'].split(' ')[0]}",
    )

    export = None
    if config.export:
        say(f"Exporting for TF Serving to {config.export_dir}/{config.run_name}/ ...")
        export = export_run_model(model, config, data)
        if export["max_abs_difference"] is not None:
            say(f"  {export['path']} (fresh-process check: max |Δ| {export['max_abs_difference']:.1e})")

    metrics = {
        "name": config.run_name,
        "run_folder": str(folder.path),
        "strategy": choice.describe(),
        "workers": choice.workers,
        "replicas": choice.replicas,
        "dtype_policy": policy or "float32",
        "compiled_with": {
            "jit_compile": bool(model.jit_compile),
            "steps_per_execution": int(model.steps_per_execution),
            "fixed_batch_shapes": fixed_batch_size(data.train.element_spec),
            "length_bucketing": batches_may_vary_in_length(model, data.train.element_spec[0]),
        },
        "cached_features": recipe["cached_features"],
        "learning_rate": recipe["learning_rate"],
        "lora": model.lora,
        "wise_ft": wise_ft,
        "data": {
            "source": config.data,
            "class_names": list(model.class_names),
            "train_examples": data.train_size,
            "validation_examples": data.validation_size,
            "skipped": len(data.report.skipped),
        },
        "history": {key: [float(v) for v in values] for key, values in recipe["history"].items()},
        "phase_boundaries": recipe["phase_boundaries"],
        "best_epoch": recipe["best_epoch"],
        "resumed_after_epoch": recipe["resumed_after_epoch"],
        "evaluation": evaluation,
        "export": export,
        "parameters": {
            "total": int(model.count_params()),
            "trainable_at_end": int(sum(np.prod(w.shape) for w in model.trainable_weights)),
            # The network alone (no w⁰ copies), as the last phase trained it (LoRA: the adapters).
            "network": model.parameter_counts(),
        },
        "seconds": round(time.time() - started, 1),
    }
    folder.write_metrics(metrics)

    from tfxfer.reports import write_run_report

    write_run_report(folder, config.to_dict(), metrics)
    write_status(folder, "completed", **_progress(folder, config, finished=True))
    shutil.rmtree(folder.backup_dir, ignore_errors=True)
    say(
        f"Accuracy on {evaluation['split']}: {evaluation['accuracy']:.3f} "
        f"(macro F1 {evaluation['macro_f1']:.3f}); report: {folder.report}"
    )
    return metrics


def _train(model, config, data, choice, folder, verbose, say):
    import keras

    from tfxfer.recipes.recipe import run_recipe

    checkpoint = BestCheckpoint(folder.best_checkpoint)
    backup = RunBackup(folder.backup_dir)
    progress = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: (
            write_status(folder, "running", epochs_completed=epoch + 1, epochs_total=_total_epochs(config)),
            fault_point("train:epoch-end"),
        )
    )
    if faults.armed():  # a per-batch hook makes Keras wait on every step; only for fault tests
        progress.on_train_batch_end = lambda batch, logs: fault_point("train:batch-end")
    tensorboard = keras.callbacks.TensorBoard(log_dir=str(folder.logs_dir), write_graph=False, profile_batch=0)
    # The checkpoint goes first: a backup of epoch N exists only once epoch N's best checkpoint does.
    callbacks = [_epoch_header(_total_epochs(config)), checkpoint, tensorboard, backup, progress]
    steps_per_execution = config.steps_per_execution or choice.steps_per_execution
    compile_options = {"steps_per_execution": steps_per_execution} if steps_per_execution > 1 else {}
    if choice.jit_compile is not None:
        compile_options["jit_compile"] = choice.jit_compile
    learning_rate = config.learning_rate
    if learning_rate == "auto":
        learning_rate = _found_learning_rate(model, config, data, folder, say)
    say(
        f"Training: {config.recipe}, regularizer {config.regularizer}"
        + (f", LoRA rank {model.lora['rank']}" if model.lora else "")
    )
    history, boundaries = run_recipe(
        config.recipe,
        model,
        data.train,
        epochs=config.epochs,
        head_epochs=config.head_epochs,
        learning_rate=learning_rate,
        head_learning_rate=config.head_learning_rate,
        layer_decay=config.layer_decay,
        unfreeze_top=config.unfreeze_top,
        compile_options=compile_options,
        validation_data=data.validation,
        verbose=verbose,
        callbacks=callbacks,
        # A TPU runs the backbone only inside its compiled steps; the rehearsal does as the TPU does.
        cache_features="auto" if config.cache_features is not False and not choice.fixed_shapes else False,
    )
    if getattr(history, "cached_features", None):
        cache = history.cached_features
        say(
            f"  The frozen backbone's features were computed once ({cache['examples']} examples, "
            f"{cache['storage']}, {cache['seconds']:.0f} s) and the head trained on them."
        )
    return {
        "history": backup.history,  # every epoch, also those before a resume
        "phase_boundaries": boundaries,
        "best_epoch": checkpoint.best_epoch,
        "resumed_after_epoch": backup.resumed_from,
        "cached_features": getattr(history, "cached_features", None),
        "learning_rate": {"value": learning_rate, "found": config.learning_rate == "auto"},
    }


def _epoch_header(total):
    """Prints `Epoch 1/N` over a one-epoch fit's line (a two-phase run's head phase), where Keras prints none.

    Keras heads an epoch's line only in fits of more than one epoch, so the
    first line of a log had no `Epoch 1/N`; later fits (`initial_epoch` > 0)
    are headed by Keras itself.
    """
    import keras

    class EpochHeader(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if self.params.get("verbose") and (self.params.get("epochs") or 0) <= 1:
                print(f"Epoch {epoch + 1}/{total}", flush=True)

    return EpochHeader()


def _found_learning_rate(model, config, data, folder, say):
    """`--learning-rate auto`: the finder's suggestion, found once per run (a resume reads it back)."""
    import json

    from tfxfer.runs.learning_rate_search import FINDER_STEPS, find_fine_tuning_rate, write_learning_rate_curve

    recorded = folder.path / "lr_find.json"
    if recorded.exists():
        return float(json.loads(recorded.read_text())["suggestion"])
    say(f"Finding the learning rate ({FINDER_STEPS} steps on a copy of the weights) ...")
    curve = find_fine_tuning_rate(model, config, data.train)
    write_learning_rate_curve(curve, folder.path, title=f"{config.run_name}: learning-rate finder")
    say(f"  suggested learning rate {curve.suggestion:.2e} (lr_find.png)")
    if curve.caveat:
        say(f"  Careful: {curve.caveat}")
    return curve.suggestion


def _apply_wise_ft(model, config, data, folder, say):
    """`--wise-ft`: the backbone mixed with the pretrained one, at a given mix or the best on validation."""
    from tfxfer.recipes import choose_wise_ft_mix, wise_ft
    from tfxfer.reports import plot_wise_ft_curve

    if config.wise_ft != "auto":
        wise_ft(model, config.wise_ft)
        say(f"WiSE-FT: backbone mixed at {config.wise_ft:g} toward the fine-tuned weights")
        _save_wise_ft_model(model, folder, say)
        return {"mix": config.wise_ft}
    if data.validation is None:
        raise OptionValueError(
            "{wise_ft} auto picks the mix on the validation split, and this run has none: give "
            "{validation_data} or {validation_split}, or a fixed mix such as {wise_ft} 0.5.",
            wise_ft=option("wise_ft"),
            validation_data=option("validation_data"),
            validation_split=option("validation_split"),
        )
    say("WiSE-FT: choosing the mix on the validation split ...")
    curve = choose_wise_ft_mix(model, data.validation)
    plot_wise_ft_curve(curve, folder.path / "wise_ft.png", title=f"{config.run_name}: WiSE-FT")
    say(f"  mix {curve.best_mix:g}: validation {curve.metric} {max(curve.scores):.3f} (wise_ft.png)")
    _save_wise_ft_model(model, folder, say)
    return {"mix": curve.best_mix, "curve": curve.as_dict()}


def _save_wise_ft_model(model, folder, say):
    """The mixed model beside `best.keras`, which stays unmixed so a resume mixes it once again, not twice."""
    # The fine-tuning optimizer's slots are no part of the mixed model, and a resumed process has none:
    # it is saved with a fresh optimizer of the same configuration, so the file is the same either way.
    with model.without_training_state():
        with replaced_atomically(folder.wise_ft_checkpoint, fault_name="checkpoint:wise-ft-before-rename") as temporary:
            model.save(temporary)
    say(f"  {folder.wise_ft_checkpoint} is the run's model (export and evaluate use it)")


def _sharded(data, choice, config, drop_remainder):
    """Each worker trains on its share of every epoch's examples."""
    if choice.workers > 1:
        from tfxfer.distribute.dataset_sharding import batch_size_for_replicas, leaves_a_replica_empty

        counts = [data.validation_size] + ([] if drop_remainder else [data.train_size])
        if any(count and leaves_a_replica_empty(count, config.batch_size, choice.replicas) for count in counts):
            better = batch_size_for_replicas(counts, config.batch_size, choice.replicas)
            raise OptionValueError(
                f"With {{batch_size}} {config.batch_size} on {choice.replicas} replicas, a batch of the "
                f"{data.train_size} training or {data.validation_size} validation examples leaves a replica "
                "with no examples, which TensorFlow cannot run a backbone on. "
                + (f"Use {{batch_size}} {better}" if better else "Use another {batch_size}")
                + " (or another number of workers).",
                batch_size=option("batch_size"),
            )
        from tfxfer.distribute.dataset_sharding import sharded_by_examples

        data.train = sharded_by_examples(data.train)
        if data.validation is not None:
            data.validation = sharded_by_examples(data.validation)
    return data


def _total_epochs(config):
    return recipe_named(config.recipe).total_epochs(config.epochs, config.head_epochs)


def _progress(folder, config, finished=False):
    total = _total_epochs(config)
    if finished:
        return {"epochs_completed": total, "epochs_total": total}
    latest = latest_backup(folder.backup_dir)
    return {"epochs_completed": latest[0] if latest else 0, "epochs_total": total}


def _lost_worker(error, choice, config):
    """A collective failed because another worker is gone: say so, and how to continue."""
    import tensorflow as tf

    if choice.workers < 2 or not isinstance(
        error, (tf.errors.UnavailableError, tf.errors.CancelledError, tf.errors.AbortedError, tf.errors.InternalError)
    ):
        return None
    again = (
        "the same command (same {run_folder})"
        if config.run_folder
        else "with {resume} RUN_FOLDER (or give every worker the same {run_folder})"
    )
    return OptionRuntimeError(
        f"Another worker of this {choice.workers}-worker job stopped or became unreachable, so training "
        f"cannot go on (TensorFlow {type(error).__name__}). Start every worker again with {again}: the "
        "job continues from its last completed epoch.",
        run_folder=option("run_folder"),
        resume=("tfxfer.resume_run", "tfxfer train --resume"),
    )


class OptionRuntimeError(OptionMessage, RuntimeError):
    """A runtime failure whose message names options."""


def _one_line(error):
    import tensorflow as tf

    if isinstance(error, tf.errors.OpError):
        from tfxfer.data.image_folder import tensorflow_reason

        return f"TensorFlow {type(error).__name__}: {tensorflow_reason(error)}"
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 500 else text[:497] + "..."


def _mixed_precision_policy(setting, choice):
    if setting == "off":
        return None
    if setting == "auto":
        return choice.mixed_precision
    return setting
