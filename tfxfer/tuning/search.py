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

from tfxfer.option_errors import OptionValueError
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
    import optuna

    _check_arguments(trials, time_budget, validation_fraction)
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
        _record_options(folder, config, validation_fraction)
        from tfxfer.runs.run_data import load_run_data

        say(f"Study folder: {folder}")
        data = load_run_data(config)
        carved, facts = carve_validation(data, validation_fraction, config.seed, folder)
        say(
            f"Tuning on {facts['validation']} training examples held out ({validation_fraction:.0%} of each class), "
            f"training each trial on the other {facts['train']}."
        )
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        storage = optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(folder / "study.journal"))
        )
        study = optuna.create_study(
            study_name="tfxfer",
            storage=storage,
            load_if_exists=True,
            direction="maximize",
            sampler=optuna.samplers.TPESampler(seed=config.seed, n_startup_trials=min(5, trials)),
            pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
        )
        _retry_cut_off_trials(study, say)
        _search(study, config, carved, folder, trials, time_budget, say, verbose)
        rows = trial_rows(study)
        best = _best(study)
        if best is None:
            raise RuntimeError(
                f"No trial of the search in {folder} completed; see the trial runs in {folder / 'trials'}."
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
            final_metrics = _final_run(best_config, folder, verbose)
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


def _search(study, config, carved, folder, trials, time_budget, say, verbose):
    from optuna.trial import TrialState

    from tfxfer.runs.training_run import train_run

    started, failures = time.time(), 0
    while _finished(study) < trials:
        if time_budget is not None and time.time() - started >= time_budget:
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
            logger.warning("Trial %d failed: %s", trial.number, error)
            say(f"  trial {trial.number} failed: {error}")
            if failures >= _FAILURES_IN_A_ROW:
                raise
            continue
        failures = 0
        accuracy = float(metrics["evaluation"]["accuracy"])
        study.tell(trial, accuracy)
        say(f"  validation accuracy {accuracy:.4f} ({metrics['seconds']:.0f} s)")


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
    best = study.best_trial
    return {"number": best.number, "options": dict(best.params), "validation_accuracy": float(best.value)}


def _final_run(config, folder, verbose):
    """The best options trained on the whole training data; a rerun after a kill resumes it."""
    from tfxfer.runs.training_run import train_run

    final = dataclasses.replace(config, run_folder=str(folder / "final"))
    return train_run(final, verbose=verbose)


def _record_options(folder, config, validation_fraction):
    """The options a study started with, kept in `tune_options.yaml`; a rerun with other options is refused."""
    import yaml

    options = {"config": config.to_dict(absolute_paths=True), "validation_fraction": validation_fraction}
    record = folder / "tune_options.yaml"
    if record.exists():
        before = yaml.safe_load(record.read_text())
        changed = sorted(
            key
            for key in set(before["config"]) | set(options["config"])
            if before["config"].get(key) != options["config"].get(key)
        )
        if before.get("validation_fraction") != validation_fraction:
            changed.append("validation_fraction")
        if changed:
            raise OptionValueError(
                f"The search in {folder} was started with other options ({', '.join(changed)} differ); run it "
                "again with the options it started with to continue it, or give another {study_folder}.",
                study_folder=("study_folder", "--study-folder"),
            )
        return
    write_text_atomically(record, yaml.safe_dump(options, sort_keys=False))


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
