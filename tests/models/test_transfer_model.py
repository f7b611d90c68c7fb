import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import random_images
from tfxfer import ClassificationHead, HubBackbone, TransferModel


def _image_data(count=16, seed=0):
    x = random_images(count, seed=seed)
    # A learnable rule: label 1 when the red channel is brighter on average.
    y = (x[..., 0].mean(axis=(1, 2)) > x[..., 1].mean(axis=(1, 2))).astype("int32")
    return x, y


def _snapshot(model):
    return {name: weight.numpy().copy() for name, weight in model.backbone.module_weights}


def _changed_groups(model, before):
    changed = {name for name, weight in model.backbone.module_weights if not np.allclose(weight.numpy(), before[name])}
    return [
        group.name
        for group in model.backbone_layer_groups()
        if any(
            name in changed for name, weight in model.backbone.module_weights if any(weight is w for w in group.weights)
        )
    ]


def _moving_statistics(model):
    return [weight.numpy().copy() for name, weight in model.backbone.module_weights if "moving" in name]


# --- Building ---------------------------------------------------------------


def test_from_hub_builds_backbone_and_head(image_module):
    model = TransferModel.from_hub(image_module, num_classes=3, input_shape=(10, 10, 3), dropout=0.2)
    assert isinstance(model.backbone, HubBackbone)
    assert isinstance(model.head, ClassificationHead)
    assert model.head.dropout == 0.2
    probabilities = model.predict(random_images(4), verbose=0)
    assert probabilities.shape == (4, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_image_modules_get_an_image_preprocessor_of_the_default_size(image_module):
    model = TransferModel.from_hub(image_module, num_classes=2)
    assert tuple(model.input.shape) == (None, 224, 224, 3)
    assert model.preprocessor.image_size == (224, 224) and model.modality == "image"
    # Raw images of any size are resized by the preprocessor.
    assert model.predict(random_images(2, size=13), verbose=0).shape == (2, 2)


def test_binary_sigmoid_and_multi_label_heads(image_module):
    binary = TransferModel.from_hub(image_module, input_shape=(10, 10, 3), num_classes=1)
    assert binary.head.activation == "sigmoid"
    assert isinstance(binary.loss, keras.losses.BinaryCrossentropy)
    two_way_sigmoid = TransferModel.from_hub(image_module, input_shape=(10, 10, 3), num_classes=2, activation="sigmoid")
    assert two_way_sigmoid.predict(random_images(2), verbose=0).shape == (2, 2)
    multi_label = TransferModel.from_hub(image_module, input_shape=(10, 10, 3), num_classes=3, multi_label=True)
    x = random_images(8)
    y = np.random.default_rng(0).integers(0, 2, (8, 3)).astype("float32")
    history = multi_label.fit(x, y, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    logits = TransferModel.from_hub(image_module, input_shape=(10, 10, 3), num_classes=2, activation=None)
    assert logits.loss.get_config()["from_logits"]


# --- Bad input --------------------------------------------------------------


@pytest.mark.parametrize("num_classes", [0, -1, 2.5, True])
def test_invalid_num_classes(image_module, num_classes):
    with pytest.raises(ValueError, match="num_classes must be a positive integer"):
        TransferModel.from_hub(image_module, input_shape=(10, 10, 3), num_classes=num_classes)


def test_softmax_over_one_class_is_rejected(image_module):
    with pytest.raises(ValueError, match="softmax over num_classes=1"):
        TransferModel.from_hub(image_module, input_shape=(10, 10, 3), num_classes=1, activation="softmax")


def test_input_shape_that_does_not_fit_the_module(image_module):
    with pytest.raises(ValueError, match=r"input_shape=\(10, 10\) does not fit.*channel axis is missing"):
        TransferModel.from_hub(image_module, num_classes=2, input_shape=(10, 10))
    with pytest.raises(ValueError, match=r"input_shape=\(10, 10, 1\) does not fit"):
        TransferModel.from_hub(image_module, num_classes=2, input_shape=(10, 10, 1))


def test_wrong_input_at_predict_is_explained(image_module):
    model = TransferModel.from_hub(image_module, num_classes=2, input_shape=(10, 10, 3))
    with pytest.raises(ValueError, match="expected shape=\\(None, 10, 10, 3\\)|incompatible"):
        model(np.zeros((2, 10, 10), "float32"))


def test_missing_handle(tmp_path):
    with pytest.raises(FileNotFoundError, match="TF Hub module not found"):
        TransferModel.from_hub(str(tmp_path / "missing"), num_classes=2)


# --- Freezing ---------------------------------------------------------------


def test_backbone_starts_frozen_and_only_the_head_trains(image_module):
    model = TransferModel.from_hub(image_module, input_shape=(10, 10, 3), num_classes=2)
    assert model.trainable_backbone is False
    assert {id(w) for w in model.trainable_weights} == {id(w) for w in model.head.trainable_weights}
    x, y = _image_data()
    before = _snapshot(model)
    head_before = model.head.dense.kernel.numpy().copy()
    model.fit(x, y, epochs=2, verbose=0)
    assert _changed_groups(model, before) == []
    assert not np.allclose(model.head.dense.kernel.numpy(), head_before)


def test_unfreeze_top_trains_exactly_the_top_groups(image_module):
    model = TransferModel.from_hub(image_module, input_shape=(10, 10, 3), num_classes=2)
    x, y = _image_data()
    model.fit(x, y, epochs=1, verbose=0)
    model.unfreeze(top=2)
    assert model.trainable_backbone == 2
    assert "top 2 trainable (b0 ... b1)" in model.trainability_report()
    before = _snapshot(model)
    model.fit(x, y, epochs=2, verbose=0)  # recompiles by itself
    assert _changed_groups(model, before) == ["b0", "b1"]


def test_unfreeze_all_then_freeze_again_after_compile(image_module):
    model = TransferModel.from_hub(image_module, input_shape=(10, 10, 3), num_classes=2)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    x, y = _image_data()
    model.unfreeze()
    assert model.trainable_backbone is True
    before = _snapshot(model)
    model.fit(x, y, epochs=1, verbose=0)
    assert _changed_groups(model, before) == ["stem_conv", "stem_bn", "b0", "b1"]
    # The user's optimizer choice survives the automatic recompile.
    assert isinstance(model.optimizer, keras.optimizers.SGD)
    assert model.optimizer.learning_rate.numpy() == pytest.approx(0.1)

    model.freeze_backbone()
    before = _snapshot(model)
    model.fit(x, y, epochs=1, verbose=0)
    assert _changed_groups(model, before) == []


def test_explicit_compile_after_unfreeze_is_respected(image_module):
    model = TransferModel.from_hub(image_module, input_shape=(10, 10, 3), num_classes=2)
    model.unfreeze()
    model.compile(optimizer=keras.optimizers.Adam(1e-5))
    x, y = _image_data()
    model.fit(x, y, epochs=1, verbose=0)
    assert model.optimizer.learning_rate.numpy() == pytest.approx(1e-5)


def test_auto_optimizer_learning_rate_follows_freezing(image_module):
    model = TransferModel.from_hub(image_module, input_shape=(10, 10, 3), num_classes=2)
    assert model.optimizer.learning_rate.numpy() == pytest.approx(1e-3)
    model.unfreeze(top=1)
    model.fit(*_image_data(4), epochs=1, verbose=0)
    assert model.optimizer.learning_rate.numpy() == pytest.approx(1e-4)


@pytest.mark.parametrize("top", [0, 5, -1, 1.5])
def test_unfreeze_top_out_of_range(image_module, top):
    model = TransferModel.from_hub(image_module, input_shape=(10, 10, 3), num_classes=2)
    with pytest.raises(ValueError, match="top must be an integer from 1 to 4"):
        model.unfreeze(top=top)


def test_batchnorm_stays_in_inference_mode_unless_asked(image_module):
    x, y = _image_data()
    frozen_stats = TransferModel.from_hub(image_module, input_shape=(10, 10, 3), num_classes=2, trainable_backbone=True)
    before = _moving_statistics(frozen_stats)
    frozen_stats.fit(x, y, epochs=1, verbose=0)
    assert all(np.allclose(a, b) for a, b in zip(before, _moving_statistics(frozen_stats)))

    batch_stats = TransferModel.from_hub(image_module, num_classes=2, trainable_backbone=True, train_batchnorm=True)
    before = _moving_statistics(batch_stats)
    batch_stats.fit(x, y, epochs=1, verbose=0)
    assert not all(np.allclose(a, b) for a, b in zip(before, _moving_statistics(batch_stats)))


def test_keras_backbone_batchnorm_policy():
    inputs = keras.Input((4,))
    x = keras.layers.Dense(3, name="block1_dense")(inputs)
    x = keras.layers.BatchNormalization(name="block1_bn")(x)
    x = keras.layers.Dense(3, name="block2_dense")(x)
    x = keras.layers.BatchNormalization(name="block2_bn")(x)
    backbone = keras.Model(inputs, x, name="backbone")
    model = TransferModel(backbone, num_classes=2, trainable_backbone=True)
    assert not backbone.get_layer("block1_bn").trainable
    assert backbone.get_layer("block1_dense").trainable

    model = TransferModel(backbone, num_classes=2, trainable_backbone=1, train_batchnorm=True)
    assert backbone.get_layer("block2_bn").trainable
    assert not backbone.get_layer("block1_bn").trainable  # its block is frozen
    assert sorted(w.path for w in backbone.trainable_weights) == [
        "block2_bn/beta",
        "block2_bn/gamma",
        "block2_dense/bias",
        "block2_dense/kernel",
    ]
    model.freeze_backbone()
    assert backbone.trainable_weights == []


def test_summary_shows_what_is_trainable(image_module):
    model = TransferModel.from_hub(image_module, input_shape=(10, 10, 3), num_classes=2)
    model.unfreeze(top=1)
    lines = []
    model.summary(print_fn=lambda line, **kwargs: lines.append(line))
    text = "\n".join(lines)
    assert "Trainable" in text
    assert "Backbone: 4 layer groups, top 1 trainable (b1)" in text
    assert "BatchNorm in inference mode" in text


# --- Saving -----------------------------------------------------------------


def test_keras_round_trip_keeps_predictions_and_freezing(image_module, tmp_path):
    model = TransferModel.from_hub(image_module, num_classes=3, input_shape=(10, 10, 3), dropout=0.1)
    model.unfreeze(top=2)
    x = random_images(6)
    model.fit(x, np.array([0, 1, 2] * 2), epochs=1, verbose=0)
    expected = model.predict(x, verbose=0)
    model.save(tmp_path / "model.keras")

    restored = keras.models.load_model(tmp_path / "model.keras")
    assert isinstance(restored, TransferModel)
    assert restored.trainable_backbone == 2
    assert restored.head.dropout == 0.1
    np.testing.assert_allclose(restored.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)
    assert len(restored.trainable_weights) == len(model.trainable_weights)
    # The optimizer state comes back too, so training can resume.
    assert int(restored.optimizer.iterations.numpy()) == int(model.optimizer.iterations.numpy()) > 0
    np.testing.assert_allclose(restored.optimizer.variables[-1].numpy(), model.optimizer.variables[-1].numpy())


def test_weights_round_trip(image_module, tmp_path):
    model = TransferModel.from_hub(image_module, input_shape=(10, 10, 3), num_classes=2, trainable_backbone=True)
    x, y = _image_data()
    model.fit(x, y, epochs=1, verbose=0)
    model.save_weights(tmp_path / "model.weights.h5")
    fresh = TransferModel.from_hub(image_module, input_shape=(10, 10, 3), num_classes=2, trainable_backbone=True)
    fresh.load_weights(tmp_path / "model.weights.h5")
    np.testing.assert_allclose(fresh.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)


def test_mixed_precision_policy_survives_save_and_load(image_module, tmp_path):
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = TransferModel.from_hub(image_module, num_classes=3, input_shape=(10, 10, 3))
        x = random_images(4)
        expected = model.predict(x, verbose=0)
        model.save(tmp_path / "mixed.keras")
    finally:
        keras.mixed_precision.set_global_policy("float32")
    restored = keras.models.load_model(tmp_path / "mixed.keras")
    assert restored.head.dtype_policy.name == restored.dtype_policy.name == "mixed_bfloat16"
    np.testing.assert_array_equal(restored.predict(x, verbose=0), expected)


def test_get_config_round_trip(image_module):
    model = TransferModel.from_hub(
        image_module, input_shape=(10, 10, 3), num_classes=2, dropout=0.3, trainable_backbone=1
    )
    config = model.get_config()
    clone = TransferModel.from_config(config)
    assert clone.get_config()["trainable_backbone"] == 1
    assert clone.get_config()["dropout"] == 0.3


# --- Text through TF Hub modules ---------------------------------------------


TEXTS = ["good film", "great plot", "bad film", "awful plot"] * 4
LABELS = np.array([1, 1, 0, 0] * 4)


def test_text_model_takes_raw_strings_end_to_end(dict_module, text_preprocessor_module):
    model = TransferModel.from_hub(dict_module, num_classes=2, preprocessor=text_preprocessor_module)
    assert isinstance(model.preprocessor, HubBackbone)
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    history = model.fit(TEXTS, LABELS, epochs=15, batch_size=8, verbose=0)
    assert history.history["accuracy"][-1] == 1.0
    probabilities = model.predict(["good film", "awful plot"], verbose=0)
    assert probabilities.shape == (2, 2)
    assert probabilities[0, 1] > 0.5 > probabilities[1, 1]
    dataset = tf.data.Dataset.from_tensor_slices((TEXTS, LABELS)).batch(4)
    assert model.evaluate(dataset, verbose=0, return_dict=True)["accuracy"] == 1.0
    with pytest.raises(ValueError, match="string input"):
        model(tf.constant(["good film"]))


def test_text_model_keras_round_trip(dict_module, text_preprocessor_module, tmp_path):
    model = TransferModel.from_hub(dict_module, num_classes=2, preprocessor=text_preprocessor_module)
    expected = model.predict(TEXTS[:4], verbose=0)
    model.save(tmp_path / "text.keras")
    restored = keras.models.load_model(tmp_path / "text.keras")
    np.testing.assert_allclose(restored.predict(TEXTS[:4], verbose=0), expected, rtol=1e-6)


def test_mismatched_preprocessor_is_rejected(dict_module, signature_module):
    with pytest.raises(ValueError, match="does not produce the inputs"):
        TransferModel.from_hub(
            dict_module,
            num_classes=2,
            preprocessor=HubBackbone(signature_module, signature="serving_default"),
        )


def test_sequence_features_with_feature_key(dict_module):
    model = TransferModel.from_hub(dict_module, num_classes=2, feature_key="sequence_output", pooling="avg")
    outputs = model.predict({"input_word_ids": np.array([[2, 3, 0]]), "input_mask": np.array([[1, 1, 0]])}, verbose=0)
    assert outputs.shape == (1, 2)


# --- KerasHub presets ----------------------------------------------------------


def test_from_preset_directory_trains_on_raw_strings(tiny_bert_preset):
    import keras_hub

    model = TransferModel.from_preset(tiny_bert_preset, num_classes=2, trainable_backbone=True)
    assert isinstance(model.backbone, keras_hub.models.BertBackbone)
    assert isinstance(model.preprocessor, keras_hub.models.TextClassifierPreprocessor)
    # BertBackbone declares its groups: the pooler is part of the last transformer layer's.
    assert [g.name for g in model.backbone_layer_groups()] == [
        "embeddings",
        "transformer_layer_0",
        "transformer_layer_1",
    ]
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    # 40 steps, as 20 epochs of TEXTS would be, in 2 epochs (an epoch's start costs more than its steps).
    model.fit(TEXTS * 10, np.tile(LABELS, 10), epochs=2, batch_size=8, verbose=0)
    assert model.evaluate(TEXTS, LABELS, verbose=0, return_dict=True)["accuracy"] == 1.0
    assert model.predict(["good plot"], verbose=0).shape == (1, 2)


def test_from_preset_round_trip(tiny_bert_preset, tmp_path):
    model = TransferModel.from_preset(tiny_bert_preset, num_classes=3, sequence_length=6)
    assert model.preprocessor.sequence_length == 6
    expected = model.predict(TEXTS[:3], verbose=0)
    model.save(tmp_path / "preset.keras")
    restored = keras.models.load_model(tmp_path / "preset.keras")
    np.testing.assert_allclose(restored.predict(TEXTS[:3], verbose=0), expected, rtol=1e-5, atol=1e-6)


def test_unknown_preset_name():
    with pytest.raises(ValueError, match="Unknown KerasHub preset 'bert_tiny_en_cased_typo'.*Similar presets"):
        TransferModel.from_preset("bert_tiny_en_cased_typo", num_classes=2)


def test_missing_preset_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="Preset directory not found"):
        TransferModel.from_preset(str(tmp_path / "nowhere"), num_classes=2)


def test_directory_that_is_not_a_preset(tmp_path):
    with pytest.raises(ValueError, match="not a KerasHub preset or Hugging Face model directory"):
        TransferModel.from_preset(str(tmp_path), num_classes=2)


def test_known_preset_name_offline_explains(monkeypatch):
    # A built-in name with no network: a clear error, not a raw stack trace.
    monkeypatch.setenv("KAGGLE_USERNAME", "nobody")
    with pytest.raises((OSError, ValueError), match="preset 'bert_tiny_en_uncased'"):
        TransferModel.from_preset("bert_tiny_en_uncased", num_classes=2)


def test_raw_strings_with_validation_split(dict_module, text_preprocessor_module):
    model = TransferModel.from_hub(dict_module, num_classes=2, preprocessor=text_preprocessor_module)
    history = model.fit(TEXTS, LABELS, validation_split=0.25, epochs=1, batch_size=4, verbose=0)
    assert "val_accuracy" in history.history


def test_inputs_of_the_other_modality_are_named(image_module, tiny_bert_preset):
    image_model = TransferModel.from_hub(image_module, num_classes=2, input_shape=(10, 10, 3))
    for x in (["a good film"], tf.data.Dataset.from_tensor_slices((["a"], [0])).batch(1)):
        with pytest.raises(ValueError, match="got strings, but this model takes images"):
            image_model.fit(x, None if not isinstance(x, list) else np.array([0]), verbose=0)
    text_model = TransferModel.from_preset(tiny_bert_preset, num_classes=2)
    with pytest.raises(ValueError, match="got numbers .* but this model takes text"):
        text_model.predict(random_images(2), verbose=0)
    with pytest.raises(ValueError, match="got numbers .* but this model takes text"):
        text_model.evaluate(tf.data.Dataset.from_tensor_slices((random_images(2), [0, 1])).batch(2), verbose=0)


def test_unknown_keyword_arguments_are_refused_with_the_likely_typo(image_module, tiny_bert_preset):
    with pytest.raises(TypeError, match=r"'dropuot' \(did you mean 'dropout'\?\)"):
        TransferModel.from_hub(image_module, num_classes=2, input_shape=(10, 10, 3), dropuot=0.5)
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) 'foo'"):
        TransferModel(HubBackbone(image_module), 2, input_shape=(10, 10, 3), foo=1)
    with pytest.raises(TypeError, match=r"from_preset takes no layer_groups.*register_layer_groups"):
        TransferModel.from_preset(tiny_bert_preset, num_classes=2, layer_groups=[("all", "")])
    named = TransferModel.from_hub(image_module, num_classes=2, input_shape=(10, 10, 3), name="mine", trainable=True)
    assert named.name == "mine"


def test_a_top_out_of_range_is_named_as_the_caller_named_it(image_module):
    from tfxfer.recipes import fine_tune

    with pytest.raises(ValueError, match="^trainable_backbone must be an integer from 1 to 4"):
        TransferModel.from_hub(image_module, input_shape=(10, 10, 3), num_classes=2, trainable_backbone=50)
    model = TransferModel.from_hub(image_module, input_shape=(10, 10, 3), num_classes=2)
    with pytest.raises(ValueError, match="^unfreeze_top must be an integer from 1 to 4"):
        fine_tune(model, *_image_data(4), epochs=1, unfreeze_top=40, verbose=0)
