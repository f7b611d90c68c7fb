import keras
import numpy as np
import pytest
import tensorflow as tf

import tfxfer
from tests.models.test_lora_adapters import sentences, text_model
from tfxfer.models.feature_maps import forward_with_feature_maps
from tfxfer.regularizers.delta import attention_from_importance


def delta_model(**options):
    return text_model(regularizer=tfxfer.regularizers.DELTA(**{"alpha": 0.5, "beta": 0.0, **options}))


def test_the_penalty_is_zero_at_the_source_and_follows_tllib_off_it():
    model = delta_model(layers=["transformer_layer_0", "transformer_layer_1"], attention=False)
    model.unfreeze()
    texts, _ = sentences(8)
    x = model.preprocessor(texts)
    _, _, maps = forward_with_feature_maps(model, x, training=False)
    assert float(model.regularization_penalty(None, maps)) == pytest.approx(0.0, abs=1e-7)
    rng = np.random.default_rng(0)
    for weight in model.backbone.trainable_weights:
        weight.assign(weight.numpy() + rng.normal(0, 0.05, weight.shape).astype("float32"))
    _, _, maps = forward_with_feature_maps(model, x, training=False)
    mask = x["padding_mask"].numpy().astype("float64")[:, :, None]
    expected = 0.0
    for current, source, attention, _ in maps:
        squared = (current.numpy() - source.numpy()) ** 2
        per_channel = (squared * mask).sum(axis=1) / mask.sum(axis=1)
        channels = current.shape[-1]
        expected += np.mean(channels * (per_channel * attention.numpy()).sum(axis=-1))
    assert float(model.regularization_penalty(None, maps)) == pytest.approx(0.5 * 0.5 * expected, rel=1e-4)


def test_fit_measures_the_attention_once_and_training_pulls_toward_the_source(tmp_path):
    texts, labels = sentences(32)
    model = delta_model(layers=["transformer_layer_1"], attention_batches=2)
    model.unfreeze()
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    assert not model.feature_attention.is_measured
    history = model.fit(texts, labels, epochs=2, batch_size=8, verbose=0)
    attention = model.feature_attention.weights_per_map[0].numpy()
    assert model.feature_attention.is_measured
    assert attention.sum() == pytest.approx(1.0, rel=1e-5) and attention.std() > 0
    assert history.history["regularization_loss"][-1] > 0
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(loaded.feature_attention.weights_per_map[0].numpy(), attention)
    for original, copy in zip(model.source_backbone.weights, loaded.source_backbone.weights):
        np.testing.assert_array_equal(original.numpy(), copy.numpy())
    x = model.preprocessor(texts[:4])
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-6)
    loaded.fit(texts, labels, epochs=1, batch_size=8, verbose=0)  # the attention is not measured again
    np.testing.assert_allclose(loaded.feature_attention.weights_per_map[0].numpy(), attention)


def test_the_source_copy_stays_at_the_pretrained_weights():
    model = delta_model()
    pretrained = [w.numpy() for w in model.backbone.weights]
    model.unfreeze()
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    texts, labels = sentences(16)
    model.fit(texts, labels, epochs=1, batch_size=8, verbose=0)
    assert all(np.array_equal(a, b.numpy()) for a, b in zip(pretrained, model.source_backbone.weights))
    assert not all(np.array_equal(a, b.numpy()) for a, b in zip(pretrained, model.backbone.weights))
    assert not model.source_backbone.trainable_weights
    assert model.parameter_counts()["total"] == sum(int(np.prod(w.shape)) for w in model.backbone.weights) + sum(
        int(np.prod(w.shape)) for w in model.head.weights
    )


def test_tf_hub_outputs_can_be_regularized(dict_module, text_preprocessor_module):
    model = tfxfer.TransferModel.from_hub(
        dict_module,
        num_classes=2,
        preprocessor=text_preprocessor_module,
        regularizer=tfxfer.regularizers.DELTA(alpha=0.5, layers=["sequence_output"]),
    )
    model.unfreeze()
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    texts = ["good film", "bad plot awful", "great film", "awful bad"] * 4
    history = model.fit(texts, np.array([1, 0, 1, 0] * 4), epochs=2, batch_size=4, verbose=0)
    assert model.feature_attention.is_measured
    assert np.isfinite(history.history["loss"]).all()


def test_bad_layers_and_options_are_named(dict_module, text_preprocessor_module, image_module):
    with pytest.raises(ValueError, match="no top-level layers named \\['nope'\\] for layers.*transformer_layer_0"):
        delta_model(layers=["nope"])
    with pytest.raises(
        ValueError, match="\\['padding_mask'\\] is an input of the backbone, not feature maps"
    ) as raised:
        delta_model(layers=["transformer_layer_0", "padding_mask"])
    assert "token_ids" not in str(raised.value) and "transformer_layer_1" in str(raised.value)
    assert "give --delta-layers among" in raised.value.cli_message
    with pytest.raises(ValueError, match="has a single output.*leave out layers and DELTA regularizes that output"):
        tfxfer.TransferModel.from_hub(
            image_module, num_classes=2, input_shape=(10, 10, 3), regularizer=tfxfer.regularizers.DELTA(layers=["x"])
        )
    with pytest.raises(ValueError, match="no outputs named \\['nope'\\]"):
        tfxfer.TransferModel.from_hub(
            dict_module,
            num_classes=2,
            preprocessor=text_preprocessor_module,
            regularizer=tfxfer.regularizers.DELTA(layers=["nope"]),
        )
    for options, message in (
        ({"layers": "transformer_layer_0"}, "layers must be a non-empty list"),
        ({"attention_batches": 0}, "attention_batches must be a positive integer"),
        ({"temperature": 0}, "temperature must be a positive number"),
        ({"alpha": -1}, "alpha must be a number >= 0"),
    ):
        with pytest.raises(ValueError, match=message):
            tfxfer.regularizers.DELTA(**options)


def test_attention_is_tllib_softmax_of_standardized_importance():
    importance = np.array([0.0, 1.0, 3.0])
    scaled = (importance - importance.mean()) / importance.std() / 5.0
    expected = np.exp(scaled) / np.exp(scaled).sum()
    np.testing.assert_allclose(attention_from_importance(importance), expected, rtol=1e-6)
    np.testing.assert_allclose(attention_from_importance(np.zeros(4)), np.full(4, 0.25))


def test_delta_round_trips_through_its_config():
    regularizer = tfxfer.regularizers.DELTA(alpha=0.1, beta=0.2, layers=["a"], attention=False, temperature=2.0)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(regularizer))
    assert restored.get_config() == regularizer.get_config()
    assert tf.is_tensor(restored([], [], None, None))
