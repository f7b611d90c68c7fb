"""`tfxfer tune` / `tfxfer.tune`: a search that finds, reports and trains its best, and continues after a kill."""

import json
import pathlib
import shutil

import keras
import numpy as np
import optuna
import pytest
import tensorflow as tf
import yaml

import tfxfer
from tests.conftest import make_image_folder
from tests.subprocesses import killed, run, run_in_process, tfxfer_command
from tfxfer.option_errors import OptionValueError
from tfxfer.runs.config_files import load_config
from tfxfer.tuning.search_space import suggested_options
from tfxfer.tuning.trial_pruning import TrialPruned, TrialPruning
from tfxfer.utils.owner_lock import OwnerLock


def _config(image_module, images, tmp_path, **options):
    options = {"export_dir": str(tmp_path / "saved_models"), **options}
    return tfxfer.TrainConfig(
        backbone=image_module, data=str(images), image_size=(10, 10), epochs=1, batch_size=8, augment="none",
        head_learning_rate=0.05, runs_dir=str(tmp_path / "runs"), name="shapes", **options,
    )  # fmt: skip


@pytest.fixture(scope="module")
def finished_search(image_module, tmp_path_factory):
    """One search of 3 trials on the image_folder fixture's images, its best trained and exported."""
    keras.utils.clear_session(free_memory=False)  # a module fixture runs before the autouse reset
    keras.utils.set_random_seed(0)
    tmp_path = tmp_path_factory.mktemp("search")
    images = make_image_folder(tmp_path)
    return tfxfer.tune(_config(image_module, images, tmp_path), trials=3, verbose=0), images, tmp_path


def test_tune_finds_reports_and_trains_its_best(image_module, finished_search):
    result, images, tmp_path = finished_search
    folder = pathlib.Path(result["folder"])
    assert folder == (tmp_path / "runs" / "shapes-tune").resolve()
    rows = result["trials"]
    assert len(rows) == 3 and all(row["state"] in ("complete", "pruned") for row in rows)
    complete = [row for row in rows if row["state"] == "complete"]
    best = result["best"]
    assert best["validation_accuracy"] == max(row["validation_accuracy"] for row in complete)
    # The carved split: the training folder's images only, every class in both parts, none of val/.
    carved = folder / "data"
    linked = [path.resolve() for path in carved.rglob("*.png")]
    assert len(linked) == 24 and all("/train/" in str(path) for path in linked)
    assert {path.parent.name for path in (carved / "val").rglob("*.png")} == {"dark", "light"}
    facts = json.loads((carved / "carved.json").read_text())
    assert facts["validation"] + facts["train"] == 24
    # best_config.yaml: the best options on the original data, runnable by tfxfer train --config.
    best_config = load_config(result["best_config"])
    assert best_config.data == str(images.resolve()) and best_config.validation_split is None
    for key, value in best["options"].items():
        assert getattr(best_config, key) == pytest.approx(value)
    # The final run trained on all the training data and exported.
    final = result["final_run"]
    metrics = json.loads((pathlib.Path(final["run_folder"]) / "metrics.json").read_text())
    assert metrics["data"]["train_examples"] == 24 and metrics["data"]["validation_examples"] == 12
    assert pathlib.Path(final["export"]).is_dir()
    report = (folder / "tuning_report.md").read_text()
    assert f"| {best['number']} **best** |" in report and "Trained on the whole training data" in report
    assert (folder / "tuning_trials.png").stat().st_size > 1000
    assert json.loads((folder / "tuning.json").read_text())["best"]["number"] == best["number"]


def test_a_larger_budget_searches_on(image_module, finished_search, tmp_path):
    result, images, base = finished_search
    copy = tmp_path / "study"
    shutil.copytree(result["folder"], copy, symlinks=True)  # the module's search stays as it is
    again = tfxfer.tune(_config(image_module, images, base), trials=4, train_best=False, study_folder=copy, verbose=0)
    assert len(again["trials"]) == 4 and [row["number"] for row in again["trials"][:3]] == [0, 1, 2]
    # A new draw, not the first trial's options again (the sampler's seed moves on with the study).
    assert again["trials"][3]["options"] not in [row["options"] for row in again["trials"][:3]]


def test_killed_search_continues_with_the_same_split_and_retries_the_cut_off_trial(image_module, tmp_path):
    images = make_image_folder(tmp_path)
    arguments = (
        "tune", "--backbone", image_module, "--data", images, "--image-size", 10, 10, "--epochs", 1,
        "--batch-size", 8, "--augment", "none", "--runs-dir", tmp_path / "runs", "--name", "shapes",
        "--trials", 3, "--no-train", "--quiet",
    )  # fmt: skip
    assert killed(run(tfxfer_command(*arguments), kill_at="train:epoch-end@3"))
    folder = tmp_path / "runs" / "shapes-tune"
    carved_at = (folder / "data" / "carved.json").stat().st_mtime_ns
    resumed = run_in_process(*arguments)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert (folder / "data" / "carved.json").stat().st_mtime_ns == carved_at
    rows = json.loads((folder / "tuning.json").read_text())["trials"]
    finished = [row for row in rows if row["state"] in ("complete", "pruned")]
    cut_off = [row for row in rows if row["state"] == "fail"]
    assert len(finished) == 3 and len(cut_off) == 1
    # The cut-off trial's options were tried again.
    assert any(row["options"] == cut_off[0]["options"] for row in finished)
    assert not (tmp_path / "saved_models").exists()  # --no-train


def test_a_rerun_with_other_options_is_refused(image_module, tmp_path):
    images = make_image_folder(tmp_path)
    tfxfer.tune(_config(image_module, images, tmp_path), trials=1, train_best=False, verbose=0)
    with pytest.raises(OptionValueError, match=r"started with other options: alpha 0.01 \(now 0.5\)"):
        tfxfer.tune(_config(image_module, images, tmp_path, alpha=0.5), trials=1, train_best=False, verbose=0)
    result = run_in_process(
        "tune", "--backbone", image_module, "--data", images, "--image-size", 10, 10, "--epochs", 1,
        "--batch-size", 8, "--augment", "none", "--head-learning-rate", 0.05, "--runs-dir", tmp_path / "runs",
        "--export-dir", tmp_path / "saved_models", "--name", "shapes", "--trials", 1, "--no-train", "--epochs", 2,
    )  # fmt: skip
    assert result.returncode == 2 and "started with other options: --epochs 1 (now 2)" in result.stderr
    # Where the exports go does not change the trials: a rerun may change it.
    tfxfer.tune(
        _config(image_module, images, tmp_path, export_dir=str(tmp_path / "elsewhere")), trials=1, train_best=False,
        verbose=0,
    )  # fmt: skip


def test_options_that_cannot_work_stop_at_the_first_trial_and_the_fixed_command_starts_over(
    classification_modules, image_folder, tmp_path
):
    feature_vector, classification = classification_modules
    arguments = (
        "tune", "--backbone", feature_vector, "--data", image_folder, "--image-size", 10, 10, "--epochs", 1,
        "--batch-size", 8, "--augment", "none", "--regularizer", "co_tuning", "--source-classifier",
        classification, "--runs-dir", tmp_path / "runs", "--name", "co", "--trials", 3, "--no-train", "--quiet",
    )  # fmt: skip
    failed = run_in_process(*arguments, "--source-class-names", tmp_path / "missing.txt")
    assert failed.returncode == 2 and "--source-class-names: no file at" in failed.stderr
    rows = optuna.load_study(
        study_name="tfxfer",
        storage=optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(tmp_path / "runs" / "co-tune" / "study.journal"))
        ),
    ).trials
    assert len(rows) == 1  # stopped at the first trial, not three
    fixed = run_in_process(*arguments)  # other options, but no trial had finished: the study starts over
    assert fixed.returncode == 0, fixed.stderr[-2000:]
    trials = json.loads((tmp_path / "runs" / "co-tune" / "tuning.json").read_text())["trials"]
    assert len(trials) == 3 and all(row["state"] != "fail" for row in trials)


def test_a_split_that_cannot_be_carved_names_the_tune_flag(image_module, tmp_path):
    images = tmp_path / "tiny"
    for split in ("train", "val"):
        for label, value in (("dark", 20), ("light", 230)):
            (images / split / label).mkdir(parents=True)
            pixels = np.full((10, 10, 3), value, np.uint8)
            (images / split / label / "0.png").write_bytes(tf.io.encode_png(pixels).numpy())
    result = run_in_process("tune", "--backbone", image_module, "--data", images, "--runs-dir", tmp_path / "runs")
    assert result.returncode == 2
    assert "--tune-validation-split 0.2 of each class of the training split" in result.stderr
    assert "dark: 1, light: 1" in result.stderr and "--validation-split" not in result.stderr


def test_tfds_data_is_refused_before_anything_loads(image_module, tmp_path):
    result = run_in_process("tune", "--backbone", image_module, "--data", "tfds:mnist", "--runs-dir", tmp_path)
    assert result.returncode == 2 and "a TFDS dataset (--data tfds:mnist) lists none" in result.stderr


def test_a_second_search_in_the_same_folder_is_refused(image_module, tmp_path):
    images = make_image_folder(tmp_path)
    folder = tmp_path / "study"
    folder.mkdir()
    lock = OwnerLock(folder / "tune.lock")
    assert lock.acquire()
    try:
        with pytest.raises(RuntimeError, match="is running right now"):
            tfxfer.tune(_config(image_module, images, tmp_path), trials=1, study_folder=folder, verbose=0)
    finally:
        lock.release()


def test_text_search_tunes_on_a_carved_csv(tiny_bert_preset, text_file, tmp_path):
    config = tfxfer.TrainConfig(
        preset=tiny_bert_preset, data=str(text_file), epochs=1, batch_size=4, runs_dir=str(tmp_path / "runs"),
        name="texts", sequence_length=6,
    )  # fmt: skip
    result = tfxfer.tune(config, trials=1, train_best=False, verbose=0)
    folder = pathlib.Path(result["folder"])
    assert (folder / "data" / "train.csv").exists() and (folder / "data" / "validation.csv").exists()
    assert result["best"] is not None and result["final_run"] is None


@pytest.mark.parametrize(
    "regularizer, recipe, drawn",
    [
        ("l2_sp", "two_phase", {"recipe", "learning_rate", "head_epochs", "alpha", "beta"}),
        ("l2_sp", "linear_probe", {"recipe", "beta"}),
        ("none", "fine_tune", {"recipe", "learning_rate"}),
        ("l2_sp+co_tuning", "fine_tune", {"recipe", "learning_rate", "alpha", "beta", "trade_off"}),
    ],
)
def test_each_trial_draws_only_what_its_choices_use(regularizer, recipe, drawn):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    config = type("Config", (), {"regularizer": regularizer, "lora_rank": None})()
    study.enqueue_trial({"recipe": recipe})
    options = suggested_options(study.ask(), config)
    assert set(options) == drawn
    if "learning_rate" in options:
        assert 1e-5 <= options["learning_rate"] <= 1e-3


def test_pruning_stops_a_trial_below_the_median_of_earlier_ones():
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.MedianPruner(1, 0))
    for value in (0.8, 0.9):
        trial = study.ask()
        TrialPruning(trial, say=lambda message: None).on_epoch_end(0, {"val_accuracy": value})
        study.tell(trial, value)
    poor = TrialPruning(study.ask(), say=lambda message: None)
    with pytest.raises(TrialPruned, match="pruned after epoch 1: validation accuracy 0.100"):
        poor.on_epoch_end(0, {"val_accuracy": 0.1})


def test_bad_budgets_are_refused_in_cli_words(image_module, image_folder, tmp_path):
    result = run_in_process("tune", "--backbone", image_module, "--data", image_folder, "--trials", 0)
    assert result.returncode == 2 and "--trials must be a whole number, 1 or more" in result.stderr
    result = run_in_process("tune", "--backbone", image_module, "--data", image_folder, "--time-budget", -5)
    assert result.returncode == 2 and "--time-budget must be a number of seconds above 0" in result.stderr


def test_best_config_runs_with_tfxfer_train_config(finished_search, tmp_path):
    result, _, _ = finished_search
    values = yaml.safe_load(pathlib.Path(result["best_config"]).read_text())
    values.update(runs_dir=str(tmp_path / "again"), export=False)
    config_file = tmp_path / "best.yaml"
    config_file.write_text(yaml.safe_dump(values))
    trained = run_in_process("train", "--config", config_file, "--quiet")
    assert trained.returncode == 0, trained.stderr[-2000:]


def test_a_time_budget_starts_no_trial_once_spent(image_module, tmp_path):
    images = make_image_folder(tmp_path)
    result = tfxfer.tune(
        _config(image_module, images, tmp_path), trials=5, time_budget=0.5, train_best=False, verbose=0
    )
    assert len(result["trials"]) == 1  # the first trial starts at once; none after the budget is spent
    assert result["best"]["number"] == 0
