"""`FusedAdam` computes Keras' Adam update, with TensorFlow's one-pass kernel."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfxfer
from tfxfer.optimizers.discriminative import optimizer_class
from tfxfer.optimizers.fused_adam import FusedAdam


def _train(optimizer, steps=5, jit_compile=False):
    keras.utils.set_random_seed(3)
    weights = [
        keras.Variable(np.random.default_rng(0).normal(size=shape).astype("float32")) for shape in ((6, 4), (4,))
    ]
    gradients = [
        [
            tf.constant(np.random.default_rng(step + 10 * i).normal(size=w.shape).astype("float32"))
            for i, w in enumerate(weights)
        ]
        for step in range(steps)
    ]
    optimizer.build(weights)

    @tf.function(jit_compile=jit_compile)
    def apply(grads):
        optimizer.apply(grads, weights)

    for grads in gradients:
        apply(grads)
    return [w.numpy() for w in weights], optimizer


@pytest.mark.parametrize("jit_compile", [False, True])
def test_same_weights_and_moments_as_keras_adam_with_a_schedule(jit_compile):
    schedule = tfxfer.warmup_cosine(1e-2, total_steps=5, warmup_steps=2)
    fused, fused_optimizer = _train(FusedAdam(learning_rate=schedule, epsilon=1e-6), jit_compile=jit_compile)
    plain, plain_optimizer = _train(keras.optimizers.Adam(learning_rate=schedule, epsilon=1e-6))
    for got, want in zip(fused, plain):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    for got, want in zip(fused_optimizer.variables, plain_optimizer.variables):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-4, atol=1e-8)  # float32 rounding


def test_a_sparse_gradient_is_summed_per_row_first_as_adam_defines():
    # An embedding's gradient: row 1 looked up twice in the batch.
    table = keras.Variable(np.ones((5, 3), "float32"))
    rows = tf.IndexedSlices(tf.constant([[1.0] * 3, [2.0] * 3, [0.5] * 3]), tf.constant([1, 1, 3]), tf.constant([5, 3]))

    def updated(optimizer, gradient):
        table.assign(np.ones((5, 3), "float32"))
        for _ in range(3):
            optimizer.apply([gradient], [table])
        return table.numpy()

    fused = updated(FusedAdam(0.1), rows)
    np.testing.assert_allclose(fused, updated(keras.optimizers.Adam(0.1), tf.convert_to_tensor(rows)), rtol=1e-5)
    # Keras 3's own Adam squares each slice before summing duplicates (1² + 2², not 3²): not Adam's update.
    assert not np.allclose(fused, updated(keras.optimizers.Adam(0.1), rows))
    np.testing.assert_allclose(
        updated(FusedAdam(0.1, amsgrad=True), rows), updated(keras.optimizers.Adam(0.1, amsgrad=True), rows)
    )


def test_adam_by_name_and_auto_compile_are_fused_and_it_round_trips():
    assert optimizer_class("adam") is FusedAdam and optimizer_class("Adam") is FusedAdam
    assert optimizer_class("sgd") is keras.optimizers.SGD
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(FusedAdam(3e-4, beta_2=0.98)))
    assert isinstance(restored, FusedAdam) and restored.get_config()["beta_2"] == 0.98


def test_a_model_trained_with_it_saves_and_loads_with_plain_keras(tmp_path):
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    model.compile(optimizer=FusedAdam(1e-2), loss="mse")
    x, y = np.ones((8, 3), "float32"), np.zeros((8, 2), "float32")
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=3, verbose=0)
    assert model.evaluate(x, y, verbose=0) < before
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert isinstance(loaded.optimizer, FusedAdam)
    np.testing.assert_allclose(loaded.optimizer.variables[1].numpy(), model.optimizer.variables[1].numpy())
