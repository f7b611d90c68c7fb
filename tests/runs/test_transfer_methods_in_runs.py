"""LoRA, DELTA, WiSE-FT and the learning-rate finder from `tfxfer train` and `tfxfer lr-find`."""

import io
import json
import warnings
import zipfile

import h5py
import pytest

from tests.runs.test_training_run import _config as training_run_config
from tests.subprocesses import run as run_command
from tests.subprocesses import run_in_process, tfxfer_command
from tfxfer.runs import train_run


def _config(tmp_path, **options):
    """test_training_run's tiny-run config: one epoch each phase, a quarter held out for validation."""
    return training_run_config(tmp_path, **{"epochs": 1, "validation_split": 0.25, **options})


def test_a_lora_run_with_l2_sp_reports_its_parameters_and_exports_merged(tiny_bert_preset, text_file, tmp_path):
    metrics = train_run(_config(tmp_path, preset=tiny_bert_preset, data=str(text_file), lora_rank=2), verbose=0)
    assert metrics["lora"] == {"rank": 2, "targets": None, "alpha": None}
    network = metrics["parameters"]["network"]
    assert 0 < network["trainable"] < network["total"] / 5
    assert metrics["export"]["max_abs_difference"] <= 1e-5
    report = (tmp_path / "runs").glob("*/report.md").__next__().read_text()
    assert f"{network['trainable']:,} of {network['total']:,}" in report and "LoRA adapters of rank 2" in report


def test_model_errors_name_the_config_fields_from_python(tiny_bert_preset, text_file, tmp_path):
    with pytest.raises(ValueError, match="matches lora_targets nothing"):
        train_run(
            _config(tmp_path, preset=tiny_bert_preset, data=str(text_file), lora_rank=2, lora_targets=["nothing"]),
            verbose=0,
        )
    with pytest.raises(ValueError, match="give delta_layers among"):
        train_run(
            _config(
                tmp_path,
                preset=tiny_bert_preset,
                data=str(text_file),
                regularizer="delta",
                delta_layers=["padding_mask"],
            ),
            verbose=0,
        )


def test_lora_on_a_tf_hub_backbone_names_the_flags(image_module, image_folder, tmp_path):
    with pytest.raises(ValueError, match="lora_rank adds LoRA adapters .* give a KerasHub preset"):
        train_run(
            _config(tmp_path, backbone=image_module, data=str(image_folder), image_size=(10, 10), lora_rank=4),
            verbose=0,
        )
    assert not (tmp_path / "runs").exists()


def test_delta_wise_ft_and_the_learning_rate_finder_in_one_run(tiny_bert_preset, text_file, tmp_path):
    metrics = train_run(
        _config(
            tmp_path,
            preset=tiny_bert_preset,
            data=str(text_file),
            regularizer="delta",
            delta_layers=["transformer_layer_1"],
            wise_ft="auto",
            learning_rate="auto",
            export=False,  # the mixed model's export: test_a_wise_ft_run_killed_before_its_mixed_model_...
        ),
        verbose=0,
    )
    folder = tmp_path / "runs" / metrics["run_folder"].rsplit("/", 1)[1]
    found = json.loads((folder / "lr_find.json").read_text())
    assert metrics["learning_rate"] == {"value": found["suggestion"], "found": True}
    assert (folder / "lr_find.png").stat().st_size > 0 and (folder / "wise_ft.png").stat().st_size > 0
    # The mixed model is saved with a fresh optimizer: none of the fine-tuning's slots, which a resumed
    # process would not have (at most its step counter and rate).
    with zipfile.ZipFile(folder / "checkpoints" / "wise_ft.keras") as archive:
        weights = h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r")
        optimizer_values = []
        weights.visititems(
            lambda name, item: (
                optimizer_values.append(item.size)
                if isinstance(item, h5py.Dataset) and name.startswith(("optimizer", "compile_arguments"))
                else None
            )
        )
        assert "layers" in weights and sum(optimizer_values) <= 2
    curve = metrics["wise_ft"]["curve"]
    assert metrics["wise_ft"]["mix"] == curve["best_mix"] and len(curve["scores"]) == 11
    assert metrics["history"]["regularization_loss"][-1] > 0
    report = (folder / "report.md").read_text()
    assert "lr_find.png" in report and "WiSE-FT" in report


def test_a_wise_ft_run_killed_before_its_mixed_model_is_written_resumes_and_exports_the_mix(
    tiny_bert_preset, text_file, tmp_path
):
    import keras

    import tfxfer
    from tests.subprocesses import killed
    from tfxfer.runs.run_folder import RunFolder

    command = tfxfer_command(
        "train", "--preset", tiny_bert_preset, "--data", text_file, "--wise-ft", "0", "--recipe", "fine_tune",
        "--epochs", 1, "--learning-rate", 0.01, "--batch-size", 8, "--validation-split", 0.25, "--runs-dir", tmp_path / "runs",
        "--export-dir", tmp_path / "saved_models", "--name", "mixed", "--quiet", "--no-export",
    )  # fmt: skip
    assert killed(run_command(command, kill_at="checkpoint:wise-ft-before-rename", timeout=300))
    (path,) = (tmp_path / "runs").iterdir()
    folder = RunFolder(path)
    assert not folder.wise_ft_checkpoint.exists()
    resumed = run_in_process("train", "--resume", folder.path, "--quiet")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    # The killed writer's temporary file is gone; best.keras stays unmixed, so the resume mixed it once.
    assert sorted(p.name for p in folder.best_checkpoint.parent.iterdir()) == [
        "best.json",
        "best.keras",
        "wise_ft.keras",
    ]
    exported = run_in_process("export", folder.path, "--export-dir", tmp_path / "saved_models", "--quiet")
    assert exported.returncode == 0, exported.stderr[-3000:]

    best = keras.models.load_model(folder.best_checkpoint)
    texts = ["good film", "bad plot awful", "great"]
    fine_tuned = best.predict(texts, verbose=0)
    tfxfer.wise_ft(best, 0.0)  # the pretrained backbone under the fine-tuned head
    mixed = best.predict(texts, verbose=0)
    assert abs(mixed - fine_tuned).max() > 1e-4  # the mix is visible in the outputs
    served = tfxfer.predict_from_export(str(tmp_path / "saved_models" / "mixed" / "1"), texts)["probabilities"]
    assert abs(served - mixed).max() <= 1e-5
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no optimizer warning: the mixed model is saved without one
        saved_mix = keras.models.load_model(folder.wise_ft_checkpoint).predict(texts, verbose=0)
    assert abs(saved_mix - mixed).max() <= 1e-6


def test_lr_find_command_writes_the_curve_and_a_suggestion(tiny_bert_preset, text_file, tmp_path):
    result = run_in_process(
        "lr-find",
        "--preset",
        tiny_bert_preset,
        "--data",
        str(text_file),
        "--steps",
        "20",
        "--output",
        str(tmp_path / "finder"),
        "--batch-size",
        "8",
        "--recipe",
        "linear_probe",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Suggested learning rate" in result.stdout
    # A linear probe trains only the head: the rate found is the head's.
    assert "--recipe linear_probe --head-learning-rate " in result.stdout, result.stdout
    curve = json.loads((tmp_path / "finder" / "lr_find.json").read_text())
    assert len(curve["learning_rates"]) == 20 and (tmp_path / "finder" / "lr_find.png").exists()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--learning-rate", "fast"], "--learning-rate must be auto or a number, got 'fast'"),
        (["--wise-ft", "2"], "--wise-ft must be auto or a number in \\[0, 1\\], got '2'"),
        (["--lora-targets", "query"], "--lora-targets chooses where LoRA adapters go; give --lora-rank too"),
        (["--delta-layers", "x"], "--delta-layers applies to --regularizer delta"),
        (["--recipe", "linear_probe", "--learning-rate", "auto"], "linear_probe fine-tunes nothing"),
        (["--recipe", "linear_probe", "--wise-ft", "auto"], "--recipe linear_probe leaves the backbone pretrained"),
        (["--lora-rank", "2", "--lora-targets", "nothing"], "matches --lora-targets nothing"),
        (
            ["--lora-rank", "2", "--lora-targets", "pooled_dense", "--pooling", "masked_avg"],
            "\\(--pooling masked_avg\\).*leave them out of --lora-targets",
        ),
        (["--regularizer", "delta", "--delta-layers", "padding_mask"], "give --delta-layers among"),
    ],
)
def test_bad_flags_are_named_before_anything_runs(tiny_bert_preset, text_file, tmp_path, flags, message):
    result = run_in_process(
        "train",
        "--preset",
        tiny_bert_preset,
        "--data",
        str(text_file),
        "--runs-dir",
        str(tmp_path / "runs"),
        *flags,
    )
    assert result.returncode == 2
    assert __import__("re").search(message, result.stderr), result.stderr[-2000:]
    assert not (tmp_path / "runs").exists()
