import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import random_images
from tfxfer import HubBackbone


def _weight_values(layer):
    return [weight.numpy().copy() for _, weight in layer.module_weights]


def _changed(layer, before):
    return [name for (name, weight), old in zip(layer.module_weights, before) if not np.allclose(weight.numpy(), old)]


def _sgd_step(model, x, y, learning_rate=0.5):
    model.compile(
        keras.optimizers.SGD(learning_rate),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(x, y, epochs=1, batch_size=len(x), verbose=0)


# --- Weights ----------------------------------------------------------------


def test_module_variables_are_keras_weights_without_copies(image_module):
    backbone = HubBackbone(image_module, trainable=True)
    module_variables = {id(v) for v in backbone._hub_module.variables}
    assert len(backbone.weights) == 18
    assert {id(weight.value) for weight in backbone.weights} == module_variables
    # Conv kernel + bias and BN gamma + beta are trainable, moving stats not.
    assert len(backbone.trainable_weights) == 12
    assert all("moving" in weight.name for weight in backbone.non_trainable_weights)


def test_frozen_layer_exposes_no_trainable_weights(image_module):
    backbone = HubBackbone(image_module)  # trainable=False by default
    assert backbone.trainable_weights == []
    assert len(backbone.non_trainable_weights) == 18
    backbone.trainable = True
    assert len(backbone.trainable_weights) == 12


def test_variables_of_a_module_without_variables_attribute(dict_module):
    backbone = HubBackbone(dict_module, trainable=True)
    names = sorted(name for name, _ in backbone.module_weights)
    assert names == [
        "pooled_dense/kernel",
        "token_embedding/embeddings",
        "transformer_layer_0/dense/kernel",
    ]


# --- Training ---------------------------------------------------------------


def test_gradient_reaches_a_trainable_module(image_module):
    backbone = HubBackbone(image_module, trainable=True)
    model = keras.Sequential([keras.Input((10, 10, 3)), backbone, keras.layers.Dense(2)])
    x, y = random_images(8), np.array([0, 1] * 4)
    outputs_before = backbone(x).numpy()
    before = _weight_values(backbone)
    _sgd_step(model, x, y)
    changed = _changed(backbone, before)
    assert "stem_conv/kernel" in changed and "b1_bn/gamma" in changed
    assert not np.allclose(backbone(x).numpy(), outputs_before)


def test_frozen_module_does_not_change(image_module):
    backbone = HubBackbone(image_module, trainable=False)
    model = keras.Sequential([keras.Input((10, 10, 3)), backbone, keras.layers.Dense(2)])
    x, y = random_images(8), np.array([0, 1] * 4)
    before = _weight_values(backbone)
    head_before = model.layers[-1].kernel.numpy().copy()
    _sgd_step(model, x, y)
    assert _changed(backbone, before) == []  # BN statistics included
    assert not np.allclose(model.layers[-1].kernel.numpy(), head_before)


def _moving_statistics(backbone):
    return {name: weight.numpy().copy() for name, weight in backbone.module_weights if "moving" in name}


@pytest.mark.parametrize(
    "trainable, train_batchnorm, training, expect_update",
    [
        (True, True, True, True),
        (True, True, False, False),
        (False, True, True, False),
        (True, False, True, False),
    ],
)
def test_batchnorm_statistics_update_only_when_trainable_and_training(
    image_module, trainable, train_batchnorm, training, expect_update
):
    backbone = HubBackbone(image_module, trainable=trainable, train_batchnorm=train_batchnorm)
    before = _moving_statistics(backbone)
    backbone(random_images(4) * 5.0, training=training)
    after = _moving_statistics(backbone)
    updated = any(not np.allclose(before[name], after[name]) for name in before)
    assert updated == expect_update


def test_training_flag_reaches_the_module(dict_module):
    backbone = HubBackbone(dict_module, trainable=True, output_key="sequence_output")
    inputs = {
        "input_word_ids": tf.constant([[2, 3, 4, 5]]),
        "input_mask": tf.constant([[1, 1, 1, 1]]),
    }
    inference = backbone(inputs, training=False)
    np.testing.assert_allclose(backbone(inputs, training=False), inference)
    # The module applies dropout only when it receives training=True.
    assert not np.allclose(backbone(inputs, training=True), inference)


# --- Model styles -----------------------------------------------------------


def test_functional_and_subclassed_models(image_module):
    backbone = HubBackbone(image_module)
    inputs = keras.Input((None, None, 3))
    functional = keras.Model(inputs, keras.layers.Dense(3)(backbone(inputs)))
    assert functional(random_images(2)).shape == (2, 3)

    class Classifier(keras.Model):
        def __init__(self):
            super().__init__()
            self.backbone = HubBackbone(image_module, trainable=True)
            self.dense = keras.layers.Dense(2)

        def call(self, x, training=False):
            return self.dense(self.backbone(x, training=training))

    model = Classifier()
    x, y = random_images(8), np.array([0, 1] * 4)
    model(x)
    before = _weight_values(model.backbone)
    _sgd_step(model, x, y)
    assert _changed(model.backbone, before)


def test_dict_inputs_and_output_key(dict_module):
    backbone = HubBackbone(dict_module, output_key="pooled_output")
    inputs = {
        "input_word_ids": keras.Input((None,), dtype="int32", name="input_word_ids"),
        "input_mask": keras.Input((None,), dtype="int32", name="input_mask"),
    }
    model = keras.Model(inputs, keras.layers.Dense(2)(backbone(inputs)))
    outputs = model(
        {
            "input_word_ids": np.array([[2, 3, 0]], "int64"),  # cast to int32
            "input_mask": np.array([[1, 1, 0]], "int32"),
        }
    )
    assert outputs.shape == (1, 2)


def test_dict_outputs_without_output_key(dict_module):
    backbone = HubBackbone(dict_module)
    outputs = backbone({"input_word_ids": tf.constant([[2, 3]]), "input_mask": tf.constant([[1, 1]])})
    assert set(outputs) == {"pooled_output", "sequence_output"}


def test_text_preprocessor_module_as_first_stage(text_preprocessor_module, dict_module):
    preprocessor = HubBackbone(text_preprocessor_module)
    encoder = HubBackbone(dict_module, output_key="pooled_output")
    assert preprocessor.weights == []
    encoder_inputs = preprocessor(tf.constant(["Good film", "awful plot twist"]))
    np.testing.assert_array_equal(encoder_inputs["input_word_ids"], [[2, 4, 0, 0, 0, 0], [6, 7, 1, 0, 0, 0]])
    assert encoder(encoder_inputs).shape == (2, 8)

    texts = keras.Input((), dtype="string")
    model = keras.Model(texts, encoder(preprocessor(texts)))
    assert model(tf.constant(["great film"])).shape == (1, 8)


def test_signature_only_module(signature_module):
    with pytest.raises(ValueError, match="no __call__.*serving_default"):
        HubBackbone(signature_module)
    backbone = HubBackbone(signature_module, signature="serving_default")
    assert len(backbone.weights) == 1
    outputs = backbone(np.ones((2, 3), "float32"))  # one input: tensor is enough
    np.testing.assert_allclose(outputs, np.ones((2, 3)) @ (np.arange(12).reshape(3, 4) / 10), rtol=1e-6)
    assert backbone({"features": np.ones((1, 3), "float32")}).shape == (1, 4)


# --- Bad input --------------------------------------------------------------


def test_unknown_signature_lists_the_available_ones(signature_module):
    with pytest.raises(ValueError, match="no signature 'serve'.*serving_default"):
        HubBackbone(signature_module, signature="serve")


def test_unknown_output_key_lists_the_outputs(dict_module):
    with pytest.raises(ValueError, match="no output 'pooled'.*pooled_output"):
        HubBackbone(dict_module, output_key="pooled")


def test_output_key_on_single_output_module(image_module):
    with pytest.raises(ValueError, match="single tensor, not a dict"):
        HubBackbone(image_module, output_key="default")


def test_wrong_rank_is_explained(image_module):
    backbone = HubBackbone(image_module)
    with pytest.raises(
        ValueError, match=r"shape \(10, 10, 3\).*expects \(None, None, None, 3\).*batch dimension is missing"
    ):
        backbone(random_images(1)[0])


def test_wrong_channels_are_explained(image_module):
    backbone = HubBackbone(image_module)
    with pytest.raises(ValueError, match=r"shape \(1, 10, 10, 4\).*expects \(None, None, None, 3\)"):
        backbone(np.zeros((1, 10, 10, 4), "float32"))


def test_strings_into_an_image_module_are_rejected(image_module):
    backbone = HubBackbone(image_module)
    with pytest.raises(ValueError, match="dtype string.*expects float32"):
        backbone(tf.constant([["a"]]))


def test_missing_dict_input_is_named(dict_module):
    backbone = HubBackbone(dict_module)
    with pytest.raises(ValueError, match=r"missing inputs \['input_mask'\]"):
        backbone({"input_word_ids": tf.constant([[2]])})


def test_functional_model_rejects_wrong_input_at_build(image_module):
    backbone = HubBackbone(image_module)
    with pytest.raises(ValueError, match="expects"):
        backbone(keras.Input((10, 10)))


# --- Saving -----------------------------------------------------------------


def _trained_model(image_module):
    backbone = HubBackbone(image_module, trainable=True)
    model = keras.Sequential([keras.Input((10, 10, 3)), backbone, keras.layers.Dense(2)])
    _sgd_step(model, random_images(8), np.array([0, 1] * 4))
    return model


def test_weights_h5_round_trip(image_module, tmp_path):
    model = _trained_model(image_module)
    x = random_images(3, seed=5)
    expected = model.predict(x, verbose=0)
    model.save_weights(tmp_path / "model.weights.h5")

    fresh = keras.Sequential(
        [keras.Input((10, 10, 3)), HubBackbone(image_module, trainable=True), keras.layers.Dense(2)]
    )
    assert not np.allclose(fresh.predict(x, verbose=0), expected)
    fresh.load_weights(tmp_path / "model.weights.h5")
    np.testing.assert_allclose(fresh.predict(x, verbose=0), expected, rtol=1e-6, atol=1e-6)


def test_tf_train_checkpoint_round_trip(image_module, tmp_path):
    model = _trained_model(image_module)
    backbone = model.layers[0]
    saved = _weight_values(backbone)
    path = tf.train.Checkpoint(model=model).write(str(tmp_path / "ckpt"))
    for weight in backbone.weights:
        weight.assign(tf.zeros_like(weight))
    tf.train.Checkpoint(model=model).read(path).assert_consumed()
    for (_, weight), value in zip(backbone.module_weights, saved):
        np.testing.assert_array_equal(weight.numpy(), value)
    # Each module variable is stored once (not also through the module).
    backbone_path = tf.train.Checkpoint(backbone=backbone).write(str(tmp_path / "bb"))
    values = [name for name, _ in tf.train.list_variables(backbone_path) if name.endswith("VARIABLE_VALUE")]
    assert len(values) == len(backbone.weights) == 18


def test_keras_file_round_trip_re_resolves_the_handle(image_module, tmp_path):
    model = _trained_model(image_module)
    x = random_images(3, seed=6)
    expected = model.predict(x, verbose=0)
    model.save(tmp_path / "model.keras")
    restored = keras.models.load_model(tmp_path / "model.keras")
    restored_backbone = restored.layers[0]
    assert isinstance(restored_backbone, HubBackbone)
    assert restored_backbone.handle == image_module
    np.testing.assert_allclose(restored.predict(x, verbose=0), expected, rtol=1e-6, atol=1e-6)


def test_get_config_round_trip(dict_module):
    backbone = HubBackbone(dict_module, trainable=True, output_key="pooled_output", name="encoder")
    config = backbone.get_config()
    clone = HubBackbone.from_config(config)
    assert clone.get_config() == config
    assert clone.trainable and clone.output_key == "pooled_output"


def test_layer_groups_round_trip_through_the_config(image_module):
    from tfxfer import layer_groups

    backbone = HubBackbone(image_module, layer_groups=[("stem", "stem_"), ("blocks", r"b\d+_")])
    config = backbone.get_config()
    assert config["layer_groups"] == [["stem", "stem_"], ["blocks", r"b\d+_"]]  # JSON-friendly
    clone = HubBackbone.from_config(config)
    assert [group.name for group in layer_groups(clone)] == ["stem", "blocks"]
    # Configs saved before layer_groups existed load with inferred groups.
    del config["layer_groups"]
    assert [group.name for group in layer_groups(HubBackbone.from_config(config))][:2] == ["stem_conv", "stem_bn"]
