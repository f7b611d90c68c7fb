"""Regression tests for the model's contract off the default path (issue 11)."""

import json
import shutil

import keras
import numpy as np
import pytest

import tfxfer
from tfxfer.cli.main import main
from tfxfer.data import DataError
from tfxfer.export import predict_from_export
from tfxfer.runs import TrainConfig, evaluate_run, train_run
from tfxfer.runs.run_folder import RunFolder


def image_run(tmp_path, image_module, data, **options):
    values = dict(
        backbone=image_module,
        data=str(data),
        image_size=(10, 10),
        augment="none",
        runs_dir=str(tmp_path / "runs"),
        export_dir=str(tmp_path / "saved_models"),
        batch_size=8,
        recipe="linear_probe",
        epochs=2,
        head_learning_rate=0.05,
        regularizer="none",
    )
    values.update(options)
    return train_run(TrainConfig(**values), verbose=0)


@pytest.fixture(scope="module")
def _value_range_run_once(tmp_path_factory, image_module):
    """One run for the module, on the image_folder fixture's images (they are the same every time)."""
    from tests.conftest import make_image_folder

    tmp_path = tmp_path_factory.mktemp("value_range_run")
    return tmp_path, image_run(tmp_path, image_module, make_image_folder(tmp_path), value_range=(-1, 1))


@pytest.fixture
def value_range_run(_value_range_run_once, tmp_path):
    """The module's run, copied into this test's tmp_path: what a test writes (evaluation files) stays its own."""
    source, metrics = _value_range_run_once
    copy = tmp_path / "value_range_run"
    shutil.copytree(source, copy)
    return json.loads(json.dumps(metrics).replace(str(source), str(copy)))


def test_best_keras_reloads_with_plain_keras_and_carries_its_contract(value_range_run):
    model = keras.models.load_model(RunFolder(value_range_run["run_folder"]).best_checkpoint)
    assert isinstance(model, tfxfer.TransferModel)
    assert model.class_names == ["dark", "light"]
    assert model.preprocessor.image_size == (10, 10)
    assert model.preprocessor.value_range == (-1.0, 1.0)


def test_export_of_best_keras_needs_no_flags_and_agrees_with_the_run(value_range_run, image_folder, tmp_path):
    best = RunFolder(value_range_run["run_folder"]).best_checkpoint
    assert main(["export", str(best), "--export-dir", str(tmp_path / "again"), "--quiet"]) == 0
    files = sorted((image_folder / "val").rglob("*.png"))
    raw = [f.read_bytes() for f in files]
    ours = predict_from_export(value_range_run["export"]["path"], raw)
    again = predict_from_export(str(tmp_path / "again" / "shapes" / "1"), raw)  # named after its run
    np.testing.assert_allclose(again["probabilities"], ours["probabilities"], atol=1e-6)
    assert list(again["class_names"]) == list(ours["class_names"])
    assert set(n.decode() for n in again["class_names"]) <= {"dark", "light"}


def test_evaluate_of_best_keras_scores_as_the_run_did(value_range_run, image_folder):
    best = RunFolder(value_range_run["run_folder"]).best_checkpoint
    evaluation = evaluate_run(best, data=str(image_folder), verbose=0)
    assert evaluation["accuracy"] == pytest.approx(value_range_run["evaluation"]["accuracy"], abs=1e-9)
    assert (best.parent / "evaluation-best.json").is_file()


def test_labels_are_matched_by_name_a_renamed_folder_is_refused(value_range_run, image_folder, tmp_path):
    renamed = tmp_path / "renamed"
    shutil.copytree(image_folder / "val", renamed)
    (renamed / "light").rename(renamed / "Light")
    for target in (RunFolder(value_range_run["run_folder"]).best_checkpoint, value_range_run["export"]["path"]):
        with pytest.raises(DataError, match=r"'Light' vs 'light'.*|.*\['dark', 'light'\]") as error:
            evaluate_run(target, data=str(renamed), verbose=0)
        assert "['Light', 'dark']" in str(error.value) and "['dark', 'light']" in str(error.value)


def test_labels_follow_the_models_names_not_positions(value_range_run, image_folder):
    from tfxfer.runs.run_evaluation import evaluate_model

    model = tfxfer.load_model(RunFolder(value_range_run["run_folder"]).best_checkpoint)
    data = tfxfer.data.from_image_folder(image_folder, preprocessor=model.preprocessor)
    accuracy = evaluate_model(model, data.validation, data.class_names)["accuracy"]
    assert accuracy == pytest.approx(value_range_run["evaluation"]["accuracy"], abs=1e-9)
    # Same outputs, names in the other order: every label now maps to the other output.
    model.class_names = ["light", "dark"]
    swapped = evaluate_model(model, data.validation, data.class_names)["accuracy"]
    assert swapped == pytest.approx(1.0 - accuracy, abs=1e-9)


def test_text_export_on_image_data_is_refused_before_running(text_module_export, image_folder):
    with pytest.raises(ValueError, match="takes texts but --data .* holds images"):
        evaluate_run(text_module_export, data=str(image_folder), verbose=0)


def test_image_model_on_text_data_is_refused(value_range_run, text_file):
    with pytest.raises(ValueError, match="takes images but --data .* holds texts"):
        evaluate_run(value_range_run["export"]["path"], data=str(text_file), verbose=0)
    with pytest.raises(ValueError, match="takes images but --data .* holds texts"):
        evaluate_run(RunFolder(value_range_run["run_folder"]).best_checkpoint, data=str(text_file), verbose=0)


@pytest.fixture
def text_module_export(dict_module, text_preprocessor_module, tmp_path):
    model = tfxfer.TransferModel.from_hub(
        dict_module, num_classes=2, preprocessor=text_preprocessor_module, class_names=["0", "1"]
    )
    return tfxfer.export_for_serving(model, tmp_path / "text_export")


def test_binary_sigmoid_export_thresholds_instead_of_argmax(image_module, tmp_path):
    model = tfxfer.TransferModel.from_hub(image_module, num_classes=1, input_shape=(8, 8, 3), class_names=["no", "yes"])
    images = np.random.default_rng(0).integers(0, 256, (16, 8, 8, 3)).astype(np.uint8)
    positive = model.predict(images, verbose=0)[:, 0]
    threshold = float(np.median(positive))  # half the examples on each side
    import tensorflow as tf

    path = tfxfer.export_for_serving(model, tmp_path / "binary", threshold=threshold)
    served = predict_from_export(path, [tf.io.encode_png(image).numpy() for image in images])
    np.testing.assert_array_equal(served["class_ids"], (positive > threshold).astype(np.int64))
    assert 0 < served["class_ids"].sum() < 16
    assert (
        json.loads((tmp_path / "binary" / "1" / "assets.extra" / "tfxfer_export.json").read_text())["threshold"]
        == threshold
    )


def test_integer_text_labels_compare_as_integers(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("01 good film\n1 great plot\n0 bad film\n00 awful plot\n")
    data = tfxfer.data.from_text_file(path)
    assert data.class_names == ["0", "1"]
    assert sorted(label for _, label in data.train_examples) == [0, 0, 1, 1]


def test_a_label_outside_the_declared_classes_names_its_line(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("0 good film\n1 great plot\n7 bad film\n")
    with pytest.raises(DataError, match=r"labels.txt:3.*'7' is not one of the declared classes"):
        tfxfer.data.from_text_file(path, class_names=["0", "1"])


def test_a_label_only_in_validation_data_names_its_line(tmp_path):
    train, validation = tmp_path / "train.txt", tmp_path / "val.txt"
    train.write_text("0 good film\n1 great plot\n0 bad\n1 fine\n")
    validation.write_text("1 good\n2 awful plot\n")
    with pytest.raises(DataError, match=r"val.txt:2.*label '2' appears in the validation data but in no training"):
        tfxfer.data.from_text_file(train, validation_path=validation)


def test_cli_class_names_declare_the_text_classes(tmp_path, dict_module, text_preprocessor_module):
    path = tmp_path / "texts.txt"
    path.write_text("".join(f"{i % 2} good film\n" for i in range(8)) + "7 bad plot\n")
    code = main(
        [
            "train",
            "--backbone",
            dict_module,
            "--preprocessor",
            text_preprocessor_module,
            "--data",
            str(path),
            "--class-names",
            "0",
            "1",
            "--runs-dir",
            str(tmp_path / "runs"),
            "--quiet",
        ]
    )
    assert code == 2 and not (tmp_path / "runs").exists()


def test_validation_class_folder_without_training_folder_is_an_error(image_folder):
    shutil.copytree(image_folder / "val" / "dark", image_folder / "val" / "wasps")
    with pytest.raises(DataError, match=r"\['wasps'\] have no training folder"):
        tfxfer.data.from_image_folder(image_folder)


def test_a_moved_hub_module_names_the_handle_and_how_to_point_elsewhere(image_module, tmp_path):
    module = tmp_path / "module"
    shutil.copytree(image_module, module)
    model = tfxfer.TransferModel.from_hub(str(module), num_classes=2, input_shape=(8, 8, 3), class_names=["a", "b"])
    model.save(tmp_path / "model.keras")
    expected = model.predict(np.full((1, 8, 8, 3), 100, np.uint8), verbose=0)
    moved = tmp_path / "moved"
    module.rename(moved)
    with pytest.raises(Exception, match=r"not at '.*module' any more.*hub_handles=.*--hub-handle") as error:
        tfxfer.load_model(tmp_path / "model.keras")
    assert str(module) in str(error.value)
    reloaded = tfxfer.load_model(tmp_path / "model.keras", hub_handles={str(module): str(moved)})
    np.testing.assert_allclose(reloaded.predict(np.full((1, 8, 8, 3), 100, np.uint8), verbose=0), expected, atol=1e-6)
    # And from the command line:
    assert (
        main(
            [
                "export",
                str(tmp_path / "model.keras"),
                "--export-dir",
                str(tmp_path / "exports"),
                "--hub-handle",
                f"{module}={moved}",
                "--quiet",
            ]
        )
        == 0
    )


def test_float_images_in_zero_one_are_refused_with_the_fix(image_module):
    model = tfxfer.TransferModel.from_hub(image_module, num_classes=2, input_shape=(8, 8, 3))
    with pytest.raises(ValueError, match="raw pixel values in \\[0, 255\\].*times 255"):
        model.predict(np.random.default_rng(0).random((2, 8, 8, 3), dtype=np.float32))


def test_tfds_run_is_export_checked(tmp_path, image_module, tfds_dir, monkeypatch):
    import tensorflow_datasets as tfds

    real_load = tfds.load
    monkeypatch.setattr(tfds, "load", lambda *a, **k: real_load(*a, **{**k, "data_dir": tfds_dir, "download": False}))
    metrics = image_run(tmp_path, image_module, "tfds:tfxfer_tiny_shapes")
    assert metrics["export"]["verified_examples"] == 6
    assert metrics["export"]["max_abs_difference"] <= 1e-5


def test_predict_on_a_keras_file_answers_as_its_export(value_range_run, image_folder, capsys):
    files = [str(f) for f in sorted((image_folder / "val").rglob("*.png"))[:4]]
    best = RunFolder(value_range_run["run_folder"]).best_checkpoint
    assert main(["predict", str(best), *files, "--json"]) == 0
    from_keras = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert main(["predict", value_range_run["export"]["path"], *files, "--json"]) == 0
    from_export = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["decision"] for r in from_keras] == [r["decision"] for r in from_export]
    for a, b in zip(from_keras, from_export):
        assert a["predictions"][0]["probability"] == pytest.approx(b["predictions"][0]["probability"], abs=1e-5)


def test_predict_refuses_image_files_for_a_text_export(text_module_export, image_folder, capsys):
    files = [str(f) for f in sorted((image_folder / "val").rglob("*.png"))[:2]]
    assert main(["predict", text_module_export, *files]) == 2
    assert "is a text model but the inputs are image file names" in capsys.readouterr().err


def test_evaluation_on_a_one_class_subset_is_fine(value_range_run, image_folder, tmp_path):
    subset = tmp_path / "subset"
    shutil.copytree(image_folder / "val" / "light", subset / "light")
    for target in (RunFolder(value_range_run["run_folder"]).best_checkpoint, value_range_run["export"]["path"]):
        evaluation = evaluate_run(target, data=str(subset), verbose=0)
        assert evaluation["examples"] == 6
        assert evaluation["per_class"]["dark"]["support"] == 0


def test_relative_hub_paths_are_saved_absolute(image_module, tmp_path, monkeypatch):
    shutil.copytree(image_module, tmp_path / "module")
    monkeypatch.chdir(tmp_path)
    model = tfxfer.TransferModel.from_hub("module", num_classes=2, input_shape=(8, 8, 3))
    model.save("model.keras")
    monkeypatch.chdir(tmp_path.parent)
    assert tfxfer.load_model(tmp_path / "model.keras").backbone.handle == str(tmp_path / "module")


def test_predict_takes_flags_before_inputs_and_names_an_undecodable_file(
    value_range_run, image_folder, tmp_path, capsys
):
    image = str(sorted((image_folder / "val").rglob("*.png"))[0])
    assert main(["predict", value_range_run["export"]["path"], "--top", "2", image]) == 0
    assert image in capsys.readouterr().out
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"not an image at all")
    assert main(["predict", value_range_run["export"]["path"], str(junk)]) == 2
    err = capsys.readouterr().err
    assert "junk.jpg: unreadable" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("image_size", "64", "image_size takes two numbers \\(e.g. 224 224\\)"),
        ("epochs", "abc", "epochs must be a whole number"),
        ("validation_split", "abc", "validation_split must be a number"),
    ],
)
def test_config_values_of_the_wrong_kind_name_the_option(option, value, message):
    with pytest.raises(ValueError, match=message) as raised:
        TrainConfig(backbone="x", data="y", **{option: value})
    assert raised.value.cli_message.startswith("--" + option.replace("_", "-"))
