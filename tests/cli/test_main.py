import json
import subprocess
import sys

import pytest

from tests.conftest import make_image_folder, relocated_copy
from tests.subprocesses import run_in_process
from tfxfer.cli.main import main


def _run(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def _trained_once(image_module, tmp_path_factory):
    """One run for the module, on the image_folder fixture's images (they are the same every time)."""
    tmp_path = tmp_path_factory.mktemp("trained")
    config = tmp_path / "run.yaml"
    config.write_text(
        f"backbone: {image_module}\ndata: {make_image_folder(tmp_path)}\nimage-size: [10, 10]\naugment: none\n"
        f"epochs: 5\nhead_epochs: 0\nlearning_rate: 0.05\nbatch_size: 8\n"
        f"runs_dir: {tmp_path / 'runs'}\nexport_dir: {tmp_path / 'saved_models'}\n"
    )
    result = run_in_process("train", "--config", config, "--epochs", "1", "--quiet")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""  # --quiet prints nothing
    return tmp_path


@pytest.fixture
def trained(_trained_once, tmp_path):
    """The module's run, copied into this test's tmp_path (an export into it stays this test's)."""
    copy = relocated_copy(_trained_once, tmp_path / "trained")
    (run,) = (copy / "runs").iterdir()
    return run, copy / "saved_models" / "shapes"


def test_train_flags_override_the_config_file(trained):
    run, export = trained
    metrics = json.loads((run / "metrics.json").read_text())
    assert len(metrics["history"]["loss"]) == 1  # --epochs 1 beat the file's 5
    assert "epochs: 1" in (run / "config.yaml").read_text()
    assert (export / "1" / "saved_model.pb").is_file()


def test_predict_evaluate_export_info(trained, image_folder, capsys):
    run, export = trained
    images = sorted((image_folder / "val" / "dark").glob("*.png"))[:2]
    code, out, _ = _run(["predict", str(export), *map(str, images), "--json", "--top", "2"], capsys)
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["input"] for line in lines] == list(map(str, images))
    assert {p["class_name"] for p in lines[0]["predictions"]} == {"dark", "light"}
    assert sum(p["probability"] for p in lines[0]["predictions"]) == pytest.approx(1.0, abs=1e-5)

    code, out, _ = _run(["evaluate", str(export), "--data", str(image_folder)], capsys)
    assert code == 0 and "on 12 examples" in out

    code, out, _ = _run(["export", str(run)], capsys)
    assert code == 0 and f"to {export / '2'} (fresh-process check: max |Δ| " in out

    code, out, _ = _run(["info", str(export)], capsys)
    assert "signature serving_default: inputs {image_bytes: string[?]}" in out
    assert "class names: dark, light" in out and "warmup requests: 2" in out


def test_info_on_a_hub_module(image_module, capsys):
    code, out, _ = _run(["info", image_module], capsys)
    assert code == 0
    assert "BatchNorm: yes" in out and "float32[?, ?, ?, 3]" in out and "stem_conv" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--data", "x"], "exactly one of --backbone"),
        (["predict", "nowhere", "a.jpg"], "No export at nowhere"),
        (["evaluate", "nowhere"], "Nothing to evaluate at nowhere"),
        (["info", "/no/such/module/dir"], "not found"),
    ],
)
def test_errors_are_one_clear_line(argv, message, capsys):
    code, _, err = _run(argv, capsys)
    assert code == 2
    assert message in err and "Traceback" not in err


def test_python_dash_m_and_light_help():
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, runpy; sys.argv=['tfxfer', '--help'];\n"
            "try:\n    runpy.run_module('tfxfer', run_name='__main__')\n"
            "except SystemExit: pass\n"
            "print('tensorflow' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "train" in result.stdout and "predict" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "False"  # --help does not import TensorFlow


def test_boolean_flags_and_unset_flags_stay_out_of_the_overrides():
    from tfxfer.cli.main import build_parser

    args = build_parser().parse_args(["train", "--drop-remainder", "--no-export", "--image-size", "32", "48"])
    given = {k: v for k, v in vars(args).items() if k not in ("command", "config", "quiet", "verbose", "resume")}
    assert given == {"drop_remainder": True, "export": False, "image_size": [32, 48]}


def test_demo_without_local_copies_or_network_is_explained(monkeypatch, capsys):
    import keras

    from tfxfer.cli import demo_config

    def offline(*args, **kwargs):
        raise OSError("Name or service not known")

    monkeypatch.setattr(demo_config, "find_shared", lambda shared=None: None)
    monkeypatch.setattr(keras.utils, "get_file", offline)
    code, _, err = _run(["demo"], capsys)
    assert code == 2
    assert "no local copy was found (pass --shared or set TFXFER_SHARED)" in err
    assert "download.pytorch.org" in err and "Name or service not known" in err


def test_info_on_a_preset_directory(tiny_bert_preset, capsys):
    code, out, _ = _run(["info", tiny_bert_preset], capsys)
    assert code == 0
    assert "backbone: BertBackbone" in out and "preprocessor: BertTextClassifierPreprocessor" in out
    assert "transformer_layer_0" in out
