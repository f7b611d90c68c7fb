import dataclasses
import json

import numpy as np
import pytest

from tfxfer.runs import TrainConfig, evaluate_run, train_run
from tfxfer.runs.run_folder import RunFolder


def _config(tmp_path, **options):
    defaults = dict(
        runs_dir=str(tmp_path / "runs"),
        export_dir=str(tmp_path / "saved_models"),
        batch_size=8,
        epochs=2,
        head_epochs=1,
        head_learning_rate=0.05,
        learning_rate=0.01,
    )
    defaults.update(options)
    return TrainConfig(**defaults)


def test_image_run_writes_every_artifact_and_a_verified_export(image_module, image_folder, tmp_path):
    config = _config(
        tmp_path,
        backbone=image_module,
        data=str(image_folder),
        image_size=(10, 10),
        augment="none",
        regularizer="l2_sp",
    )
    metrics = train_run(config, verbose=0)
    folder = RunFolder(metrics["run_folder"])
    for path in (
        folder.config_file,
        folder.metrics_file,
        folder.training_curves,
        folder.confusion_matrix,
        folder.best_checkpoint,
        folder.report,
        folder.path / "data_report.txt",
    ):
        assert path.is_file() and path.stat().st_size > 0, path
    for png in (folder.training_curves, folder.confusion_matrix):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(folder.metrics_file.read_text()) == json.loads(json.dumps(metrics))
    assert metrics["history"]["val_accuracy"] and len(metrics["history"]["loss"]) == 3
    assert metrics["phase_boundaries"] == [1]
    evaluation = metrics["evaluation"]
    assert evaluation["examples"] == 12 and evaluation["split"] == "validation"
    assert np.sum(evaluation["confusion_matrix"]) == 12
    # The evaluated weights are the best epoch's.
    best = max(metrics["history"]["val_accuracy"])
    assert evaluation["accuracy"] == pytest.approx(best, abs=1e-6)
    export = metrics["export"]
    assert export["path"] == str(tmp_path / "saved_models" / "shapes" / "1")
    assert export["max_abs_difference"] <= 1e-5 and export["verified_examples"] == 8
    report = folder.report.read_text()
    assert f"**{evaluation['accuracy']:.3f}**" in report and "confusion_matrix.png" in report
    assert "1 (head only)" in report and export["path"] in report
    saved = folder.read_config()
    assert saved.backbone == image_module and saved.image_size == (10, 10)

    # The export, run through serving_default on the raw files, agrees with the run.
    served = evaluate_run(export["path"], data=str(image_folder), verbose=0)
    assert served["accuracy"] == pytest.approx(evaluation["accuracy"], abs=1e-6)
    reloaded = evaluate_run(folder.path, verbose=0)
    assert reloaded["confusion_matrix"] == evaluation["confusion_matrix"]
    assert (folder.path / "evaluation.json").is_file()
    # A bare .keras file reads the data at the model's own image size.
    assert evaluate_run(folder.best_checkpoint, data=str(image_folder), verbose=0)["examples"] == 12


@pytest.mark.parametrize("recipe", ["linear_probe", "fine_tune", "gradual"])
def test_other_recipes(image_module, image_folder, tmp_path, recipe):
    config = _config(
        tmp_path,
        backbone=image_module,
        data=str(image_folder),
        image_size=(10, 10),
        recipe=recipe,
        regularizer="none",
        export=False,
        augment="none",
    )
    metrics = train_run(config, verbose=0)
    assert len(metrics["history"]["loss"]) == 2 and metrics["export"] is None
    assert metrics["phase_boundaries"] == []


def test_text_run_on_raw_strings(dict_module, text_preprocessor_module, text_file, tmp_path):
    config = _config(
        tmp_path,
        backbone=dict_module,
        preprocessor=text_preprocessor_module,
        data=str(text_file),
        validation_split=0.25,
        regularizer="l2",
        epochs=1,
    )
    metrics = train_run(config, verbose=0)
    assert metrics["data"]["train_examples"] == 30 and metrics["data"]["validation_examples"] == 10
    assert metrics["export"]["max_abs_difference"] <= 1e-5
    # Given data is evaluated whole; a run folder alone gives back its own validation split.
    served = evaluate_run(metrics["export"]["path"], data=str(text_file), verbose=0)
    assert served["examples"] == 40
    again = evaluate_run(metrics["run_folder"], verbose=0)
    assert again["confusion_matrix"] == metrics["evaluation"]["confusion_matrix"]


def test_mismatched_data_and_backbone_is_explained(
    image_module, dict_module, text_preprocessor_module, image_folder, text_file, tmp_path
):
    with pytest.raises(ValueError, match="are texts but .* takes images"):
        train_run(_config(tmp_path, backbone=image_module, data=str(text_file)), verbose=0)
    with pytest.raises(ValueError, match="are images but a text preprocessor was given"):
        train_run(
            _config(
                tmp_path,
                backbone=dict_module,
                preprocessor=text_preprocessor_module,
                data=str(image_folder),
                image_size=(10, 10),
            ),
            verbose=0,
        )
    assert not (tmp_path / "runs").exists()  # no half-made run folders


def test_missing_data_is_explained(image_module, tmp_path):
    with pytest.raises(FileNotFoundError, match="Data not found"):
        train_run(_config(tmp_path, backbone=image_module, data=str(tmp_path / "nowhere")), verbose=0)


def test_mixed_precision_policy_is_restored(image_module, image_folder, tmp_path):
    import keras

    config = _config(
        tmp_path,
        backbone=image_module,
        data=str(image_folder),
        image_size=(10, 10),
        mixed_precision="mixed_bfloat16",
        recipe="linear_probe",
        epochs=1,
        export=False,
    )
    metrics = train_run(config, verbose=0)
    assert metrics["dtype_policy"] == "mixed_bfloat16"
    assert keras.mixed_precision.global_policy().name == "float32"


def test_auto_precision_is_bfloat16_for_text_on_a_bfloat16_cpu_and_says_why(
    tiny_bert_preset, text_file, image_module, image_folder, tmp_path, monkeypatch
):
    import keras

    monkeypatch.setenv("TFXFER_CPU_FLAGS", "avx512f avx512_bf16")
    text = _config(tmp_path / "text", preset=tiny_bert_preset, data=str(text_file), validation_split=0.25)
    metrics = train_run(dataclasses.replace(text, recipe="linear_probe", epochs=1), verbose=0)
    assert metrics["dtype_policy"] == "mixed_bfloat16"
    assert "natively (avx512_bf16)" in metrics["dtype_policy_reason"]
    assert metrics["export"]["max_abs_difference"] <= 1e-2  # the served graph computes in bfloat16 too
    (run,) = (tmp_path / "text" / "runs").iterdir()
    assert "mixed_bfloat16 (the CPU computes bfloat16 natively" in (run / "report.md").read_text()
    assert keras.mixed_precision.global_policy().name == "float32"

    # The other answers of a bfloat16 CPU, and of one without it, as a run works them out.
    from tfxfer.distribute import select_strategy
    from tfxfer.runs.training_run import run_precision

    choice = select_strategy("default")
    image = _config(tmp_path, backbone=image_module, data=str(image_folder))
    assert run_precision(image, choice).policy == "float32"
    assert "a TF Hub module computes in the dtypes it was saved with" in run_precision(image, choice).reason
    assert run_precision(dataclasses.replace(image, mixed_precision="off"), choice).reason == "--mixed-precision off"
    monkeypatch.setenv("TFXFER_CPU_FLAGS", "avx2")
    plain = run_precision(text, choice)
    assert (plain.policy, plain.reason) == (
        "float32",
        "the CPU has no native bfloat16 (neither avx512_bf16 nor amx_bf16) (TFXFER_CPU_FLAGS says so)",
    )
    # Resumed on a machine without bfloat16, the run keeps the format it started in.
    from tfxfer.runs.run_folder import RunFolder

    kept = run_precision(text, choice, RunFolder(run))
    assert kept.policy == "mixed_bfloat16" and kept.reason.endswith("; kept from the run's start")
    forced = run_precision(dataclasses.replace(text, mixed_precision="mixed_float16"), choice)
    assert forced.policy == "mixed_float16" and "a CPU has no native float16" in forced.reason


def test_drop_remainder_gives_fixed_training_batches(image_module, image_folder, tmp_path):
    from tfxfer.runs.run_data import load_run_data

    config = _config(tmp_path, backbone=image_module, data=str(image_folder), image_size=(10, 10), batch_size=5)
    sizes = [int(x.shape[0]) for x, _ in load_run_data(config, drop_remainder=True).train]
    assert sizes == [5] * 4  # 24 training images, the last 4 dropped
    assert sum(int(x.shape[0]) for x, _ in load_run_data(config).train) == 24


def test_run_folder_holding_another_job_is_refused(image_module, image_folder, tmp_path):
    from tfxfer.option_errors import OptionValueError

    config = _config(
        tmp_path, backbone=image_module, data=str(image_folder), image_size=(10, 10), run_folder=str(tmp_path / "job")
    )
    folder = RunFolder.create_at(tmp_path / "job")
    folder.write_config(config.to_dict(absolute_paths=True))
    changed = _config(
        tmp_path,
        backbone=image_module,
        data=str(image_folder),
        image_size=(10, 10),
        run_folder=str(tmp_path / "job"),
        epochs=5,
        layer_decay=0.8,
    )
    with pytest.raises(OptionValueError, match=r"started with other options: epochs 2 \(now 5\)") as error:
        train_run(changed, verbose=0)
    assert "--epochs 2 (now 5)" in error.value.cli_message and "--run-folder" in error.value.cli_message
    assert "--layer-decay not given (now 0.8)" in error.value.cli_message
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(OptionValueError, match="exists and is not a run folder"):
        train_run(
            _config(
                tmp_path,
                backbone=image_module,
                data=str(image_folder),
                image_size=(10, 10),
                run_folder=str(tmp_path / "other"),
            ),
            verbose=0,
        )
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"


def test_unfreeze_top_past_the_backbones_groups_is_refused_before_training(image_module, image_folder, tmp_path):
    from tfxfer.option_errors import OptionValueError

    config = _config(tmp_path, backbone=image_module, data=str(image_folder), image_size=(10, 10), unfreeze_top=40)
    with pytest.raises(OptionValueError, match=r"^unfreeze_top must be an integer from 1 to 4") as error:
        train_run(config, verbose=0)
    assert error.value.cli_message.startswith("--unfreeze-top must be an integer from 1 to 4")
    assert "or left out for the whole backbone" in error.value.cli_message and "None" not in error.value.cli_message
    assert not list((tmp_path / "runs").glob("*"))  # refused before a run folder exists
