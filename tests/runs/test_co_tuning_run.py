"""`tfxfer train --regularizer co_tuning`: trained, killed, resumed with its original relationship, exported."""

import json

import numpy as np
import pytest
import tensorflow as tf

import tfxfer
from tests.conftest import make_image_folder
from tests.subprocesses import killed, run, run_in_process, tfxfer_command
from tfxfer.regularizers import CoTuning
from tfxfer.runs.run_folder import RunFolder


def _arguments(classification_modules, images, tmp_path, regularizer="l2_sp+co_tuning", *extra):
    feature_vector, classification = classification_modules
    return (
        "train", "--backbone", feature_vector, "--data", images, "--image-size", 10, 10,
        "--regularizer", regularizer, "--source-classifier", classification, "--head-epochs", 1,
        "--epochs", 2, "--batch-size", 8, "--runs-dir", tmp_path / "runs", "--export-dir",
        tmp_path / "saved_models", "--name", "co", "--quiet", *extra,
    )  # fmt: skip


def _relationship(classification_modules, images):
    feature_vector, classification = classification_modules
    model = tfxfer.TransferModel.from_hub(
        feature_vector, num_classes=2, input_shape=(10, 10, 3), regularizer=CoTuning(),
        source_classifier=classification,
    )  # fmt: skip
    data = tfxfer.data.from_image_folder(images, image_size=(10, 10), batch_size=8)
    return model.compute_relationship(data.train)


def _overwrite_dark_with_light(images):
    """The same file names and counts (a resume accepts them), other pixels: a recomputed relationship would differ."""
    light = sorted((images / "train" / "light").iterdir())
    for dark, source in zip(sorted((images / "train" / "dark").iterdir()), light):
        dark.write_bytes(source.read_bytes())


def test_killed_co_tuning_run_resumes_with_the_relationship_it_measured_first(classification_modules, tmp_path):
    images = make_image_folder(tmp_path)
    original = _relationship(classification_modules, images)
    command = tfxfer_command(*_arguments(classification_modules, images, tmp_path))
    assert killed(run(command, kill_at="train:epoch-end@2"))  # the head phase and one fine-tuning epoch
    _overwrite_dark_with_light(images)
    changed = _relationship(classification_modules, images)
    assert np.abs(changed - original).max() > 5e-3  # else this test could not tell them apart
    (path,) = (tmp_path / "runs").iterdir()
    resumed = run_in_process("train", "--resume", path, "--quiet")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    folder = RunFolder(path)
    metrics = json.loads(folder.metrics_file.read_text())
    co_tuning = metrics["co_tuning"]
    assert co_tuning["trade_off"] == 2.3 and co_tuning["source_classes"] == 7
    for row, name in enumerate(["dark", "light"]):
        for entry in co_tuning["top_source_classes"][name]:
            assert entry["probability"] == pytest.approx(original[row, entry["index"]], abs=1e-4)
        assert co_tuning["top_source_classes"][name][0]["index"] == int(np.argmax(original[row]))
    assert metrics["resumed_after_epoch"] == 2
    report = folder.report.read_text()
    assert "Co-Tuning (trade-off 2.3)" in report and "| dark |" in report
    # The export serves the target head only.
    (version,) = (tmp_path / "saved_models" / "co").iterdir()
    shapes = [tuple(shape) for _, shape in tf.train.list_variables(str(version / "variables" / "variables"))]
    assert (4, 7) not in shapes and (2, 7) not in shapes and (4, 2) in shapes


def test_co_tuning_needs_a_source_classifier_flag(classification_modules, image_folder, tmp_path):
    feature_vector, _ = classification_modules
    result = run_in_process(
        "train", "--backbone", feature_vector, "--data", image_folder, "--regularizer", "co_tuning",
        "--runs-dir", tmp_path / "runs",
    )  # fmt: skip
    assert result.returncode == 2
    assert "--regularizer co_tuning trains the pretrained model's own classifier" in result.stderr
    assert "give --source-classifier" in result.stderr and "Traceback" not in result.stderr


def test_a_source_classifier_flag_needs_co_tuning(classification_modules, image_folder, tmp_path):
    arguments = _arguments(classification_modules, image_folder, tmp_path, "l2_sp")
    result = run_in_process(*arguments)
    assert result.returncode == 2
    assert "--source-classifier applies to --regularizer co_tuning or l2_sp+co_tuning, not 'l2_sp'" in result.stderr


def test_a_source_classifier_of_another_network_is_refused_by_flag(
    classification_modules, image_module, image_folder, tmp_path
):
    _, classification = classification_modules
    result = run_in_process(
        "train", "--backbone", image_module, "--data", image_folder, "--image-size", 10, 10,
        "--regularizer", "co_tuning", "--source-classifier", classification, "--runs-dir", tmp_path / "runs",
    )  # fmt: skip
    assert result.returncode == 2, result.stderr[-2000:]
    assert "is not the backbone's network plus a classifier" in result.stderr
    assert "--source-classifier must be" in result.stderr and "Traceback" not in result.stderr


def test_a_trade_off_without_co_tuning_is_refused(image_module, image_folder, tmp_path):
    result = run_in_process(
        "train", "--backbone", image_module, "--data", image_folder, "--trade-off", 3, "--runs-dir", tmp_path
    )
    assert result.returncode == 2
    assert "--trade-off weighs Co-Tuning's term: it applies to --regularizer co_tuning" in result.stderr
