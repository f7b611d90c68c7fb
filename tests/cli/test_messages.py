"""Every bad input named in issue 12 gets one clear line, in the CLI's own words."""

import json

import keras
import numpy as np
import pytest

from tests.subprocesses import run, tfxfer_command
from tfxfer.cli.main import main, op_error_message
from tfxfer.runs import TrainConfig, load_config


def _cli(argv, capsys):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _train_argv(image_module, image_folder, tmp_path, *extra):
    return ["train", "--backbone", image_module, "--data", image_folder, "--runs-dir", tmp_path / "runs",
            "--export-dir", tmp_path / "saved_models", "--quiet", *extra]  # fmt: skip


@pytest.mark.parametrize(
    "flags, expected",
    [
        (["--image-size", 8192, 8192], "--image-size 8192 8192 is above 4096 pixels a side"),
        (["--image-size", 0, 0], "--image-size must be two positive whole numbers"),
        (["--learning-rate", 0], "--learning-rate must be a positive number"),
        (["--dropout", 1.5], "--dropout must be in [0, 1)"),
        (["--layer-decay", 2], "--layer-decay must be in (0, 1]"),
        (["--batch-size", 0], "--batch-size must be at least 1"),
        (["--steps-per-execution", 0], "--steps-per-execution must be at least 1"),
    ],
)
def test_bad_flags_are_refused_before_a_run_folder_exists(
    image_module, image_folder, tmp_path, capsys, flags, expected
):
    code, _, err = _cli(_train_argv(image_module, image_folder, tmp_path, *flags), capsys)
    assert code == 2 and expected in err, err
    assert "\x1b[" not in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_large_images_need_the_flag_that_allows_them():
    with pytest.raises(ValueError, match=r"Pass allow_large_images=True if you mean it"):
        TrainConfig(backbone="m", data="d", image_size=(5000, 5000))
    assert TrainConfig(backbone="m", data="d", image_size=(5000, 5000), allow_large_images=True).image_size == (
        5000,
        5000,
    )


@pytest.mark.parametrize(
    "line, python, cli",
    [
        (
            "learning_rate: fast",
            "learning_rate must be auto or a number, got 'fast'",
            "--learning-rate must be auto or a number",
        ),
        ("image_size: [64]", "image_size takes two numbers", "--image-size takes two numbers"),
        ("image_size: [64.5, 64]", "image_size takes two numbers", "--image-size takes two numbers"),
        ("export: maybe", "export must be true or false", "--export must be true or false"),
        ("recipe: fast", "recipe must be one of linear_probe", "--recipe must be one of"),
        ("epochs: 2.5", "epochs must be a whole number", "--epochs must be a whole number"),
        ("learning_rate: .inf", "learning_rate must be a positive number", "--learning-rate must be a positive"),
        ("dropout: null", r"dropout needs a value \(default 0.0\)", "--dropout needs a value"),
        ("seed: -1", r"seed must be a whole number from 0 to 2\*\*32 - 1", "--seed must be a whole number"),
        ("name: ../escape", "name must be a plain name", "--name must be a plain name"),
        ("augment: bogus", "augment must be one of default, randaugment, none", "--augment must be one of"),
    ],
)
def test_config_file_values_are_checked_by_kind(tmp_path, capsys, line, python, cli):
    config = tmp_path / "run.yaml"
    config.write_text(f"backbone: m\ndata: d\n{line}\n")
    with pytest.raises(ValueError, match=python):
        load_config(config)
    code, _, err = _cli(["train", "--config", config, "--runs-dir", tmp_path / "runs"], capsys)
    assert code == 2 and cli in err, err
    assert not (tmp_path / "runs").exists()


def test_an_unparsable_config_file_is_one_line(tmp_path, capsys):
    config = tmp_path / "run.yaml"
    config.write_text("backbone: m\ndata: [d\nepochs: 2\n")
    code, _, err = _cli(["train", "--config", config], capsys)
    assert code == 2 and "is not valid YAML:" in err and "at line" in err, err
    assert len(err.strip().splitlines()) == 2


def test_a_single_image_size_means_a_square(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("backbone: m\ndata: d\nimage_size: 64\n")
    assert load_config(config).image_size == (64, 64)


def test_bad_data_messages_name_the_cli_flag(image_module, image_folder, tmp_path, capsys):
    (image_folder / "train" / "dark" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    code, _, err = _cli(_train_argv(image_module, image_folder, tmp_path, "--image-size", 10, 10), capsys)
    assert code == 2 and "broken.png" in err and "--on-bad-data skip" in err, err
    assert "on_bad_data='skip'" not in err
    from tfxfer.data import DataError, from_image_folder

    with pytest.raises(DataError, match=r"pass on_bad_data='skip' to skip"):
        from_image_folder(str(image_folder), image_size=(10, 10))


def test_text_encoding_message_names_the_cli_flag(tmp_path, capsys, dict_module):
    data = tmp_path / "bad.txt"
    data.write_bytes(b"0 good film\n1 bad \xff plot\n")
    code, _, err = _cli(["train", "--backbone", dict_module, "--data", data, "--runs-dir", tmp_path / "runs"], capsys)
    assert code == 2 and "--encoding-errors replace" in err and "encoding_errors=" not in err, err


def test_signature_message_names_the_cli_flag(image_module, image_folder, tmp_path, capsys):
    code, _, err = _cli(
        _train_argv(image_module, image_folder, tmp_path, "--image-size", 10, 10, "--signature", "nope"), capsys
    )
    assert code == 2 and "has no signature 'nope'" in err and "leave out --signature" in err, err
    assert not (tmp_path / "runs").exists()


def test_info_on_a_keras_file_and_a_run(trained_run, capsys):
    folder, model_file = trained_run
    code, out, err = _cli(["info", model_file], capsys)
    assert code == 0, err
    assert f"Model: {model_file}" in out and "class names: dark, light" in out and "image size: (10, 10)" in out
    model = keras.models.load_model(model_file)
    counts = model.parameter_counts()
    # L2-SP's w⁰ is kept with the model but is no parameter; Keras' count_params agrees.
    assert counts["total"] == model.count_params() < sum(int(np.prod(w.shape)) for w in model.weights)
    assert f"parameters: {counts['total']:,} ({counts['trainable']:,} trainable)" in out
    code, out, err = _cli(["info", folder], capsys)
    assert code == 0 and "status: completed" in out and "accuracy:" in out, err
    code, _, err = _cli(["info", folder / "config.yaml"], capsys)
    assert code == 2 and "is a file, but info describes a .keras model" in err


def test_undecodable_image_in_predict_is_one_line_naming_the_file(trained_run, image_folder, tmp_path, capsys):
    folder, model_file = trained_run
    good = image_folder / "val" / "dark" / "0.png"
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:60])  # a PNG header, then nothing
    export = json.loads((folder / "metrics.json").read_text())["export"]["path"]
    for target in (export, model_file):
        code, out, err = _cli(["predict", target, good, truncated], capsys)
        assert code == 2, (target, err)
        assert str(truncated) in err and "Traceback" not in err and len(err.strip().splitlines()) == 2, err


def test_predict_on_a_folder_or_with_bad_files_skipped(trained_run, image_folder, tmp_path, capsys):
    folder, model_file = trained_run
    export = json.loads((folder / "metrics.json").read_text())["export"]["path"]
    code, _, err = _cli(["predict", export, image_folder / "val"], capsys)
    assert code == 2 and "is a folder; pass the image files in it" in err, err
    junk = tmp_path / "notes.jpg"
    junk.write_text("not an image")
    good = image_folder / "val" / "light" / "1.png"
    code, out, err = _cli(["predict", export, junk, good, "--on-bad-data", "skip"], capsys)
    assert code == 0 and f"skipped {junk}: unreadable" in err and "{{function_node" not in err, err
    assert out.startswith(str(good)) and len(out.strip().splitlines()) == 1


def test_continuing_fit_at_a_decayed_rate_is_refused(trained_run):
    import tfxfer

    _, model_file = trained_run
    model = tfxfer.load_model(model_file)  # its warmup + cosine schedule ran its course
    x, y = np.zeros((4, 10, 10, 3), "uint8"), np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match="learning rate is 0 at its step .* schedule has run its course"):
        model.fit(x, y, epochs=1, verbose=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    before = [w.numpy().copy() for w in model.trainable_weights]
    model.fit(x, y, epochs=1, verbose=0)
    assert any(not np.allclose(b, w.numpy()) for b, w in zip(before, model.trainable_weights))


def test_tensorflow_runtime_errors_become_one_line():
    import tensorflow as tf

    error = tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor with shape[32,8192,8192,3]\n dump")
    assert op_error_message(error) == (
        "out of memory (OOM when allocating tensor with shape[32,8192,8192,3]). Use a smaller --batch-size or "
        "--image-size."
    )


def test_native_start_up_lines_are_hidden_unless_verbose(tmp_path):
    quiet = run(tfxfer_command("evaluate", tmp_path / "nowhere"))
    assert quiet.returncode == 2 and "Nothing to evaluate" in quiet.stderr
    assert "I0000" not in quiet.stderr and "absl::InitializeLog" not in quiet.stderr
    loud = run(tfxfer_command("evaluate", tmp_path / "nowhere", "--verbose", 2))
    assert "Nothing to evaluate" in loud.stderr


@pytest.fixture(scope="module")
def _trained_once(image_module, tmp_path_factory):
    """One run for the module, on the image_folder fixture's images (they are the same every time)."""
    from tests.conftest import make_image_folder
    from tfxfer.runs import train_run

    tmp_path = tmp_path_factory.mktemp("trained_run")
    image_folder = make_image_folder(tmp_path)
    config = TrainConfig(
        backbone=image_module, data=str(image_folder), image_size=(10, 10), augment="none", epochs=1, head_epochs=0,
        batch_size=8, runs_dir=str(tmp_path / "runs"), export_dir=str(tmp_path / "saved_models"),
    )  # fmt: skip
    train_run(config, verbose=0)
    return tmp_path


@pytest.fixture
def trained_run(_trained_once, tmp_path):
    """The module's run, copied into this test's tmp_path."""
    from tests.conftest import relocated_copy

    (folder,) = (relocated_copy(_trained_once, tmp_path / "trained_run") / "runs").iterdir()
    return folder, folder / "checkpoints" / "best.keras"
