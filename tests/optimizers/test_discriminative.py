import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import random_images
from tfxfer import TransferModel, discriminative_optimizer, warmup_cosine
from tfxfer.optimizers import ScaledSchedule, clone_optimizer
from tfxfer.regularizers import L2SP

LEARNING_RATE, DECAY = 0.1, 0.5


def _data():
    return random_images(8, seed=6), np.array([0, 1] * 4)


def _gradients(model, x, y):
    weights = model.trainable_weights
    with tf.GradientTape() as tape:
        loss = model.loss(y, model(model.preprocessor(x), training=True))
    return {id(w): g.numpy() for w, g in zip(weights, tape.gradient(loss, weights))}


def _effective_rates(model, x, y):
    """Per-weight learning rate actually applied: -Δw / g after one SGD step."""
    gradients = _gradients(model, x, y)
    before = {id(w): w.numpy().copy() for w in model.trainable_weights}
    model.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0)
    rates = {}
    for weight in model.trainable_weights:
        g = gradients[id(weight)]
        mask = np.abs(g) > 1e-6
        if mask.any():
            ratio = -(weight.numpy() - before[id(weight)])[mask] / g[mask]
            rates[weight.path] = float(np.median(ratio))
    return rates


def _decay_steps(rates):
    """Distinct rates as powers of the decay: lr·DECAY**k -> k."""
    return sorted({round(float(np.log(LEARNING_RATE / r) / np.log(1 / DECAY)), 2) for r in rates.values()})


def test_each_group_trains_at_its_configured_rate(image_module):
    model = TransferModel.from_hub(image_module, input_shape=(10, 10, 3), num_classes=2, trainable_backbone=True)
    model.compile(optimizer=discriminative_optimizer(model, LEARNING_RATE, layer_decay=DECAY, optimizer="sgd"))
    rates = _effective_rates(model, *_data())
    expected = {"head": LEARNING_RATE}
    for depth, group in enumerate(reversed(model.backbone_layer_groups()), start=1):
        for weight in group.weights:
            expected[weight.path] = LEARNING_RATE * DECAY**depth
    assert rates  # every trainable weight got a gradient
    for path, rate in rates.items():
        target = expected["head"] if path.startswith("head") else expected[path]
        assert rate == pytest.approx(target, rel=1e-3), path
    # Head at lr, four groups: b1 at lr/2 … stem_conv at lr/16.
    assert _decay_steps(rates) == [0, 1, 2, 3, 4]


def test_explicit_group_rates_override_the_decay(image_module):
    model = TransferModel.from_hub(image_module, input_shape=(10, 10, 3), num_classes=2, trainable_backbone=True)
    model.compile(
        optimizer=discriminative_optimizer(
            model, LEARNING_RATE, layer_decay=DECAY, optimizer="sgd", group_learning_rates={"b0": 0.3}
        )
    )
    rates = _effective_rates(model, *_data())
    b0 = next(g for g in model.backbone_layer_groups() if g.name == "b0")
    for weight in b0.weights:
        if weight.path in rates:
            assert rates[weight.path] == pytest.approx(0.3, rel=1e-3)
    with pytest.raises(ValueError, match=r"unknown layer groups \['b9'\]"):
        discriminative_optimizer(model, 0.1, group_learning_rates={"b9": 0.1})


def test_discriminative_rates_with_the_regularized_step(image_module):
    model = TransferModel.from_hub(
        image_module,
        input_shape=(10, 10, 3),
        num_classes=2,
        trainable_backbone=True,
        regularizer=L2SP(alpha=1.0, beta=0.0),
    )
    model.compile(optimizer=discriminative_optimizer(model, LEARNING_RATE, layer_decay=DECAY, optimizer="sgd"))
    history = model.fit(*_data(), epochs=1, verbose=0)
    assert np.isfinite(history.history["regularization_loss"][0])


def test_schedules_scale_per_group():
    schedule = warmup_cosine(1e-3, total_steps=100, warmup_steps=10)
    assert float(schedule(0)) == pytest.approx(0.0)
    assert float(schedule(10)) == pytest.approx(1e-3)
    assert float(schedule(100)) == pytest.approx(0.0, abs=1e-9)
    assert float(schedule(5)) == pytest.approx(5e-4)
    scaled = ScaledSchedule(schedule, 0.25)
    assert float(scaled(10)) == pytest.approx(2.5e-4)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(scaled))
    assert float(restored(10)) == pytest.approx(2.5e-4)
    with pytest.raises(ValueError, match="must exceed warmup_steps"):
        warmup_cosine(1e-3, total_steps=10, warmup_steps=10)


def test_clone_keeps_shared_inner_optimizers(image_module):
    model = TransferModel.from_hub(image_module, input_shape=(10, 10, 3), num_classes=2, trainable_backbone=True)
    optimizer = discriminative_optimizer(model, LEARNING_RATE, layer_decay=DECAY)
    clone = clone_optimizer(optimizer)
    assert len(clone.optimizers) == len(optimizer.optimizers) == 5  # head + 4 groups
    assert clone is not optimizer


def test_recompile_after_unfreeze_keeps_discriminative_rates(image_module):
    model = TransferModel.from_hub(image_module, input_shape=(10, 10, 3), num_classes=2, trainable_backbone=True)
    model.compile(optimizer=discriminative_optimizer(model, LEARNING_RATE, layer_decay=DECAY, optimizer="sgd"))
    model.freeze_backbone()
    model.fit(*_data(), epochs=1, verbose=0)  # recompiles: head only
    model.unfreeze()
    rates = _effective_rates(model, *_data())  # recompiles again
    assert _decay_steps(rates) == [0, 1, 2, 3, 4]


def test_weights_without_gradient_do_not_break_a_multi_optimizer(tiny_bert_preset):
    # masked_avg pooling leaves the BERT pooler without gradient.
    model = TransferModel.from_preset(tiny_bert_preset, num_classes=2, pooling="masked_avg", trainable_backbone=True)
    model.compile(optimizer=discriminative_optimizer(model, 0.01, layer_decay=0.5))
    pooler = [w.numpy().copy() for w in model.backbone.get_layer("pooled_dense").weights]
    history = model.fit(["good film", "bad plot"] * 4, np.array([1, 0] * 4), epochs=1, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    for before, weight in zip(pooler, model.backbone.get_layer("pooled_dense").weights):
        np.testing.assert_array_equal(weight.numpy(), before)
