"""Co-Tuning's source classifier and relationship, kept by the model (issue 27)."""

import os
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfxfer
from tests.subprocesses import script_report
from tfxfer.option_errors import OptionValueError
from tfxfer.regularizers import L2SP, CoTuning


def _pixels(count=16, seed=0):
    rng = np.random.default_rng(seed)
    dark = rng.integers(0, 90, (count // 2, 10, 10, 3))
    light = rng.integers(165, 255, (count // 2, 10, 10, 3))
    return np.concatenate([dark, light]).astype(np.float32), np.array([0] * (count // 2) + [1] * (count // 2))


def _model(classification_modules, regularizer=None, **kwargs):
    feature_vector, classification = classification_modules
    return tfxfer.TransferModel.from_hub(
        feature_vector,
        num_classes=2,
        input_shape=(10, 10, 3),
        class_names=["dark", "light"],
        regularizer=regularizer or CoTuning(),
        source_classifier=kwargs.pop("source_classifier", classification),
        **kwargs,
    )


def test_source_logits_are_the_classification_modules_own(classification_modules):
    model = _model(classification_modules)
    x, _ = _pixels()
    preprocessed = model.preprocessor(x)
    module = tfxfer.load_hub_module(classification_modules[1])
    expected = module(preprocessed, training=False).numpy()
    actual = model.source_classifier(model.backbone_features(preprocessed)).numpy()
    np.testing.assert_allclose(actual, expected, atol=1e-5)
    assert model.source_classifier.num_source_classes == 7


def test_relationship_is_the_per_class_mean_of_the_source_softmax(classification_modules):
    model = _model(classification_modules)
    x, y = _pixels()
    relationship = model.compute_relationship(x, y, batch_size=5)
    probabilities = tf.nn.softmax(model.source_classifier(model.backbone_features(model.preprocessor(x)))).numpy()
    expected = np.stack([probabilities[y == label].mean(axis=0) for label in (0, 1)])
    np.testing.assert_allclose(relationship, expected, atol=1e-5)
    np.testing.assert_allclose(model.source_classifier.relationship.numpy(), expected, atol=1e-5)
    assert model.source_classifier.is_measured
    np.testing.assert_allclose(relationship.sum(axis=1), 1.0, atol=1e-5)
    # Labels as names work too (the model's class_names).
    by_name = model.compute_relationship(x, np.array(["dark", "light"])[y])
    np.testing.assert_allclose(by_name, expected, atol=1e-5)


def test_fit_measures_the_relationship_once_then_keeps_it(classification_modules):
    model = _model(classification_modules, trainable_backbone=True)
    x, y = _pixels()
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    first = model.source_classifier.relationship.numpy().copy()
    assert model.source_classifier.is_measured and not np.allclose(first, 1 / 7)
    model.fit(x[::-1], 1 - y[::-1], epochs=1, batch_size=8, verbose=0)  # other labels: not measured again
    np.testing.assert_array_equal(model.source_classifier.relationship.numpy(), first)


def test_fit_with_validation_split_measures_on_the_trained_part_only(classification_modules):
    model = _model(classification_modules, trainable_backbone=True)
    x, y = _pixels()
    order = np.random.default_rng(1).permutation(len(y))
    x, y = x[order], y[order]
    model.fit(x, y, epochs=1, batch_size=8, verbose=0, validation_split=0.25)
    fresh = _model(classification_modules)
    np.testing.assert_allclose(model.source_classifier.relationship.numpy(), fresh.compute_relationship(x[:12], y[:12]))


def test_one_hot_labels_relate_by_their_class(classification_modules):
    model = _model(classification_modules)
    x, y = _pixels()
    by_ids = model.compute_relationship(x, y)
    model.compile(loss="categorical_crossentropy")  # a loss that takes one-hot rows as they are
    np.testing.assert_allclose(model.compute_relationship(x, np.eye(2)[y]), by_ids, atol=1e-6)


def test_a_step_trains_the_source_classifier_toward_the_relationship(classification_modules):
    model = _model(classification_modules, trainable_backbone=True)
    x, y = _pixels()
    model.compute_relationship(x, y)
    kernel = model.source_classifier.kernel.numpy().copy()
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    history = model.fit(x, y, epochs=1, batch_size=16, verbose=0, shuffle=False)
    assert not np.allclose(model.source_classifier.kernel.numpy(), kernel)
    # The logged penalty is trade_off · CE(relationship rows, source softmax) at the step's weights.
    fresh = _model(classification_modules, trainable_backbone=True)
    fresh.compute_relationship(x, y)
    features = fresh.backbone_features(fresh.preprocessor(x), training=True)
    rows = fresh.source_classifier.relationship.numpy()[y]
    log_p = tf.nn.log_softmax(fresh.source_classifier(features)).numpy()
    expected = 2.3 * float(np.mean(-(rows * log_p).sum(axis=1)))
    assert history.history["regularization_loss"][0] == pytest.approx(expected, rel=1e-4)


def test_co_tuning_composes_with_l2_sp(classification_modules):
    x, y = _pixels()
    models = {}
    for name, regularizer in {
        "co": CoTuning(trade_off=1.0),
        "l2": L2SP(alpha=1.0, beta=0.0),
        "both": L2SP(alpha=1.0, beta=0.0) + CoTuning(trade_off=1.0),
    }.items():
        co_tuning = regularizer.co_tuning_component is not None
        source = classification_modules[1] if co_tuning else None
        model = _model(
            classification_modules, regularizer=regularizer, trainable_backbone=True, source_classifier=source
        )
        if co_tuning:
            model.compute_relationship(x, y)
        for _, weight in model.backbone.module_weights:
            if weight.trainable:
                weight.assign(weight + 0.05)  # w != w0
        features = model.backbone_features(model.preprocessor(x))
        models[name] = float(model.regularization_penalty(features, labels=tf.constant(y)))
    assert models["co"] > 0 and models["l2"] > 0
    assert models["both"] == pytest.approx(models["co"] + models["l2"], rel=1e-5)


def test_keras_round_trip_keeps_relationship_and_source_classifier(classification_modules, tmp_path):
    model = _model(classification_modules, trainable_backbone=True)
    x, y = _pixels()
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    model.save(tmp_path / "co.keras")
    loaded = keras.models.load_model(tmp_path / "co.keras")
    assert loaded.source_classifier.is_measured
    for name in ("kernel", "bias", "relationship"):
        np.testing.assert_array_equal(
            getattr(loaded.source_classifier, name).numpy(), getattr(model.source_classifier, name).numpy()
        )
    assert loaded.regularizer.get_config() == model.regularizer.get_config()


def test_export_holds_only_the_target_head(classification_modules, tmp_path):
    model = _model(classification_modules, trainable_backbone=True)
    x, y = _pixels()
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    path = tfxfer.export_for_serving(model, tmp_path / "saved_models" / "co", version=1)
    saved = tf.train.list_variables(os.path.join(path, "variables", "variables"))
    shapes = [tuple(shape) for name, shape in saved if not name.startswith("_CHECKPOINTABLE_OBJECT_GRAPH")]
    assert (4, 7) not in shapes and (7,) not in shapes and (2, 7) not in shapes  # no source classifier
    assert (4, 2) in shapes  # the target head
    # The server's answers are the target head's.
    encoded = [tf.io.encode_png(image.astype(np.uint8)).numpy() for image in x[:3]]
    probabilities = tfxfer.predict_from_export(path, encoded)["probabilities"]
    np.testing.assert_allclose(probabilities, model.predict(x[:3], verbose=0), atol=1e-5)


def test_a_keras_models_dense_top_is_a_source_classifier():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6,))
    features = keras.layers.Dense(5, activation="relu", name="body")(inputs)
    top = keras.layers.Dense(9, activation="softmax", name="predictions")
    pretrained = keras.Model(inputs, top(features))
    backbone = keras.Model(inputs, features)
    model = tfxfer.TransferModel(
        backbone, num_classes=3, regularizer=CoTuning(), source_classifier=pretrained.get_layer("predictions")
    )
    x = np.random.default_rng(0).random((4, 6)).astype(np.float32)
    expected = pretrained.predict(x, verbose=0)
    actual = tf.nn.softmax(model.source_classifier(model.backbone_features(x))).numpy()
    np.testing.assert_allclose(actual, expected, atol=1e-5)  # the logits, before the top's softmax


def test_source_class_names_from_a_list_a_file_or_imagenet(tmp_path):
    names = tmp_path / "labels.txt"
    names.write_text("\n".join(f"class {i}" for i in range(7)) + "\n")
    assert tfxfer.SourceClassifier(7, class_names=str(names)).class_names[3] == "class 3"
    imagenet = tfxfer.SourceClassifier(1000, class_names="imagenet").class_names
    assert imagenet[310] == "n02219486" and imagenet[309] == "n02206856"  # ant, bee
    with pytest.raises(OptionValueError, match="lists 3 names but the source classifier has 7"):
        tfxfer.SourceClassifier(7, class_names=["a", "b", "c"])
    with pytest.raises(OptionValueError, match="no file at"):
        tfxfer.SourceClassifier(7, class_names=str(tmp_path / "missing.txt"))


def test_co_tuning_without_a_source_classifier_is_refused(classification_modules):
    with pytest.raises(OptionValueError, match="this backbone has none: give source_classifier"):
        _model(classification_modules, source_classifier=None)


def test_a_source_classifier_without_co_tuning_is_refused(classification_modules):
    with pytest.raises(OptionValueError, match="source_classifier is read by Co-Tuning only"):
        _model(classification_modules, regularizer=L2SP())


def test_a_classification_module_of_another_network_is_refused(classification_modules, image_module):
    feature_vector, classification = classification_modules
    # The backbone's own module has no classifier on top.
    with pytest.raises(OptionValueError, match="has no dense layer on top, so it has no classifier to reuse"):
        _model(classification_modules, source_classifier=feature_vector)
    # Another network's module.
    with pytest.raises(OptionValueError, match="is not the backbone's network plus a classifier"):
        tfxfer.TransferModel.from_hub(
            image_module, num_classes=2, input_shape=(10, 10, 3), regularizer=CoTuning(),
            source_classifier=classification,
        )  # fmt: skip


def test_a_source_classifier_without_pretrained_weights_is_refused(classification_modules):
    with pytest.raises(OptionValueError, match="holds no pretrained weights: build it with SourceClassifier.from_hub"):
        _model(classification_modules, source_classifier=tfxfer.SourceClassifier(7))


def test_co_tuning_twice_is_refused(classification_modules):
    with pytest.raises(OptionValueError, match="holds Co-Tuning more than once"):
        _model(classification_modules, regularizer=CoTuning() + CoTuning())


def test_multi_label_heads_are_refused(classification_modules):
    with pytest.raises(OptionValueError, match="does not apply to multi-label heads"):
        _model(classification_modules, multi_label=True)


def test_trade_off_is_checked():
    for bad in (-1, float("nan"), float("inf"), "2.3"):
        with pytest.raises(ValueError, match="trade_off must be a finite number >= 0"):
            CoTuning(trade_off=bad)


def test_mirrored_strategy_counts_the_co_tuning_term_once(classification_modules):
    report = script_report(pathlib.Path(__file__).with_name("distributed_step.py"), *classification_modules)
    assert report["replicas"] == 2
    assert report["mirrored"] < 1e-5  # L2-SP + Co-Tuning over 2 replicas = one replica
    assert report["naive"] > 1e-2  # the penalty counted once per replica would show


@pytest.mark.parametrize("policy", [None, "mixed_bfloat16"])
def test_xla_and_mixed_precision_steps_match_the_plain_step(classification_modules, policy):
    x, y = _pixels(8)
    weights = {}
    for jit_compile in (False, True):
        keras.utils.set_random_seed(0)
        if policy:
            keras.mixed_precision.set_global_policy(policy)
        try:
            model = _model(classification_modules, regularizer=L2SP(1.0, 0.1) + CoTuning(), trainable_backbone=True)
        finally:
            keras.mixed_precision.set_global_policy("float32")
        model.compute_relationship(x, y)
        model.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=jit_compile)
        model.fit(x, y, epochs=1, batch_size=8, verbose=0, shuffle=False)
        weights[jit_compile] = [w.numpy() for w in model.source_classifier.weights + model.head.weights]
        assert model.source_classifier.kernel.dtype == "float32"
    for plain, compiled in zip(weights[False], weights[True]):
        np.testing.assert_allclose(plain, compiled, atol=2e-3 if policy else 1e-5)
