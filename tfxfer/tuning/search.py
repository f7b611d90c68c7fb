"""`tfxfer tune`: a search over the recipe, learning rate, alpha and beta, then the best trained on all the data.

Optuna runs the search: TPE proposes each trial from the earlier ones,
`MedianPruner` stops a trial whose validation accuracy at an epoch end is
below the median of earlier trials there, and the study lives in a journal
file in the study folder, so a killed search run again with the same command
continues (a trial cut off by the kill is tried again with the same
options). Trials tune on a validation split carved from the training data
(`tfxfer.tuning.tuning_data`); the data's own validation split is left for
the final run's evaluation.
"""

import dataclasses
import logging
import pathlib
import time

from tfxfer.option_errors import OptionValueError, escaped, option
from tfxfer.runs.progress import speaker
from tfxfer.tuning.search_space import described, suggested_options
from tfxfer.tuning.trial_pruning import TrialPruned, TrialPruning
from tfxfer.tuning.tuning_data import carve_validation
from tfxfer.tuning.tuning_report import trial_rows, write_tuning_report
from tfxfer.utils.atomic_files import write_text_atomically
from tfxfer.utils.owner_lock import OwnerLock

logger = logging.getLogger("tfxfer")

# Trials that fail one after another before the search gives up (a broken setup, not a bad draw).
_FAILURES_IN_A_ROW = 3
# Options a rerun may change: they do not change what the trials do.
_FREE_TO_CHANGE = ("export", "export_dir")


def tune(
    config,
    trials=12,
    time_budget=None,
    train_best=True,
    study_folder=None,
    validation_fraction=0.2,
    verbose=1,
):
    """Searches a `TrainConfig`'s recipe, learning rate, alpha, beta and head epochs; trains the best.

    Args:
        config: a `TrainConfig`: the backbone, data and every option that
            is not searched (`tfxfer.tuning.search_space` lists the ranges).
        trials: trials to finish (complete or pruned), counting those of
            earlier runs of the same study.
        time_budget: seconds after which this call starts no new trial.
        train_best: train the best options on the whole training data and
            export them (`config.export`) once the search is over.
        study_folder: where the study lives (default
            `config.runs_dir/<name>-tune`); run again, a search continues.
        validation_fraction: the share of each class carved from the
            training data to tune on.
        verbose: 0 silent, 1 a line per trial and epoch.

    Returns:
        A dict: `best` (trial number, options, validation accuracy),
        `trials` (a row per trial), `best_config` (its path) and
        `final_run` (the final run's metrics, or None).

    Example:

    >>> result = tfxfer.tune(tfxfer.TrainConfig(
    ...     preset=minilm_dir, data="../shared/data/text/sst2/stsa.binary.train", epochs=2), trials=8)
    """

    _check_arguments(trials, time_budget, validation_fraction)
    if config.data.startswith("tfds:"):
        raise OptionValueError(
            "tfxfer tune carves its validation split from the examples of an image folder or a text file; a TFDS "
            "dataset ({data} " + escaped(config.data) + ") lists none. Save the split as files first (an image "
            "folder, or a CSV of text and label).",
            data=option("data"),
        )
    say = speaker(verbose)
    folder = pathlib.Path(study_folder or pathlib.Path(config.runs_dir) / f"{config.run_name}-tune").expanduser()
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    lock = OwnerLock(folder / "tune.lock")
    if not lock.acquire():
        raise RuntimeError(
            f"The search in {folder} is running right now ({lock.describe_owner()}); wait for it, or stop it first."
        )
    try:
        from tfxfer.runs.run_data import load_run_data

        say(f"Study folder: {folder}")
        data = load_run_data(config)
        # Recorded once the data loads: a first call that fails leaves nothing that refuses the fixed command.
        _record_options(folder, config, validation_fraction)
        carved, facts = carve_validation(data, validation_fraction, config.seed, folder)
        say(
            f"Tuning on {facts['validation']} training examples held out ({validation_fraction:.0%} of each class), "
            f"training each trial on the other {facts['train']}."
        )
        study = _study(folder, config.seed, trials)
        _retry_cut_off_trials(study, say)
        _search(study, config, carved, folder, trials, time_budget, say)
        rows = trial_rows(study)
        best = _best(study)
        if best is None:
            raise RuntimeError(
                f"No trial of the search in {folder} completed"
                + (f"; see the trial runs in {folder / 'trials'}." if (folder / "trials").exists() else ".")
            )
        best_config = dataclasses.replace(config, **best["options"], run_folder=None)
        best_file = folder / "best_config.yaml"
        import yaml

        write_text_atomically(best_file, yaml.safe_dump(best_config.to_dict(absolute_paths=True), sort_keys=False))
        write_tuning_report(folder, rows, best, facts)
        say(
            f"Best: trial {best['number']}, validation accuracy {best['validation_accuracy']:.4f}: {described(best['options'])}"
        )
        say(f"  options in {best_file}; report: {folder / 'tuning_report.md'}")
        final = None
        if train_best:
            say("Training the best options on the whole training data ...")
            final_metrics = _final_run(best_config, folder, best["number"], verbose)
            final = {
                "run_folder": final_metrics["run_folder"],
                "accuracy": final_metrics["evaluation"]["accuracy"],
                "split": final_metrics["evaluation"]["split"],
                "export": (final_metrics.get("export") or {}).get("path"),
            }
            write_tuning_report(folder, rows, best, facts, final)
        return {"best": best, "trials": rows, "best_config": str(best_file), "final_run": final, "folder": str(folder)}
    finally:
        lock.release()


def _search(study, config, carved, folder, trials, time_budget, say):
    from optuna.trial import TrialState

    from tfxfer.runs.training_run import train_run

    started, failures = time.time(), 0
    while _finished(study) < trials:
        spent = time_budget is not None and time.time() - started >= time_budget
        if spent and _best(study) is not None:  # with no trial done yet, one runs whatever the budget
            say(f"Time budget of {time_budget:g} s spent after {_finished(study)} of {trials} trials.")
            break
        trial = study.ask()
        options = suggested_options(trial, config)
        say(f"Trial {trial.number} ({_finished(study) + 1} of {trials}): {described(options)}")
        trial_config = dataclasses.replace(
            config,
            **carved,
            **options,
            export=False,
            name=f"trial-{trial.number:03d}",
            run_folder=str(folder / "trials" / f"trial-{trial.number:03d}"),
        )
        pruning = TrialPruning(trial, say=say)
        _release_models()  # the last trial's: a search of many trials in one process would outgrow memory
        try:
            metrics = train_run(trial_config, verbose=0, callbacks=[pruning])
        except TrialPruned as pruned:
            study.tell(trial, state=TrialState.PRUNED)
            say(f"  {pruned}")
            failures = 0
            continue
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as error:
            study.tell(trial, state=TrialState.FAIL)
            failures += 1
            # Options that cannot work (a missing file, a refused combination) fail every trial alike.
            if isinstance(error, (OptionValueError, FileNotFoundError)) or failures >= _FAILURES_IN_A_ROW:
                raise
            logger.warning("Trial %d failed: %s", trial.number, error)
            continue
        failures = 0
        accuracy = float(metrics["evaluation"]["accuracy"])
        # Accuracy ties on small splits; the loss breaks them (`_best`).
        trial.set_user_attr("validation_loss", float(metrics["evaluation"]["loss"]))
        study.tell(trial, accuracy)
        say(f"  validation accuracy {accuracy:.4f} ({metrics['seconds']:.0f} s)")


def _release_models():
    import gc

    import keras

    keras.backend.clear_session()
    gc.collect()


def _finished(study):
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def _retry_cut_off_trials(study, say):
    """Trials a killed search left running: failed, and their options queued to be tried again."""
    from optuna.trial import TrialState

    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(trial.number, state=TrialState.FAIL)
        if trial.params:
            study.enqueue_trial(trial.params)
        say(f"Trial {trial.number} was cut off by an earlier stop; its options will be tried again.")


def _best(study):
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return None
    best = max(complete, key=lambda t: (t.value, -t.user_attrs.get("validation_loss", 0.0), -t.number))
    return {
        "number": best.number,
        "options": dict(best.params),
        "validation_accuracy": float(best.value),
        "validation_loss": best.user_attrs.get("validation_loss"),
    }


def _study(folder, seed, trials):
    """The study in `folder/study.journal`, created or continued.

    The sampler's seed moves on with the trials already in the study: with
    the same seed, a continued search would draw its first options again.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(folder / "study.journal")))
    try:
        earlier = len(optuna.load_study(study_name="tfxfer", storage=storage).get_trials(deepcopy=False))
    except KeyError:
        earlier = 0
    return optuna.create_study(
        study_name="tfxfer",
        storage=storage,
        load_if_exists=True,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed + earlier, n_startup_trials=min(5, trials)),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
    )


def _final_run(config, folder, number, verbose):
    """The best options trained on the whole training data, in a folder named by the trial; a rerun resumes it."""
    from tfxfer.runs.training_run import train_run

    final = dataclasses.replace(config, run_folder=str(folder / f"final-trial-{number:03d}"))
    return train_run(final, verbose=verbose)


def _record_options(folder, config, validation_fraction):
    """The options a study started with, kept in `tune_options.yaml`; a rerun with other options is refused."""
    import yaml

    now = {**config.to_dict(absolute_paths=True), "validation_fraction": validation_fraction}
    record = folder / "tune_options.yaml"
    if record.exists():
        before = yaml.safe_load(record.read_text())
        before = {**before["config"], "validation_fraction": before.get("validation_fraction")}
        changed = sorted(
            key for key in set(before) | set(now) if key not in _FREE_TO_CHANGE and before.get(key) != now.get(key)
        )
        if not changed:
            return
        if _has_finished_trials(folder):
            spellings = {key: _spelling(key) for key in changed}
            listing = ", ".join(
                f"{{{key}}} {escaped(repr(before.get(key)))} (now {escaped(repr(now.get(key)))})" for key in changed
            )
            raise OptionValueError(
                f"The search in {escaped(folder)} was started with other options: {listing}. Run it again with "
                "the options it started with to continue it, or give another {study_folder}.",
                study_folder=("study_folder", "--study-folder"),
                **spellings,
            )
        _start_over(folder)  # nothing was learnt under the old options
    record_options = {"config": config.to_dict(absolute_paths=True), "validation_fraction": validation_fraction}
    write_text_atomically(record, yaml.safe_dump(record_options, sort_keys=False))


def _spelling(key):
    return ("validation_fraction", "--tune-validation-split") if key == "validation_fraction" else option(key)


def _has_finished_trials(folder):
    if not (folder / "study.journal").exists():
        return False
    return _finished(_study(folder, 0, 1)) > 0


def _start_over(folder):
    """Clears a study in which no trial finished, so that other options can start it afresh."""
    import shutil

    for name in ("study.journal", "tune_options.yaml"):
        (folder / name).unlink(missing_ok=True)
    for name in ("data", "trials"):
        shutil.rmtree(folder / name, ignore_errors=True)


def _check_arguments(trials, time_budget, validation_fraction):
    if not isinstance(trials, int) or isinstance(trials, bool) or trials < 1:
        raise OptionValueError("{trials} must be a whole number, 1 or more; got " + repr(trials) + ".",
                               trials=("trials", "--trials"))  # fmt: skip
    if time_budget is not None and not time_budget > 0:
        raise OptionValueError(
            "{time_budget} must be a number of seconds above 0; got " + repr(time_budget) + ".",
            time_budget=("time_budget", "--time-budget"),
        )
    if not 0.0 < validation_fraction < 1.0:
        raise OptionValueError(
            "{fraction} must be in (0, 1) (e.g. 0.2); got " + repr(validation_fraction) + ".",
            fraction=("validation_fraction", "--tune-validation-split"),
        )
