import pathlib

import keras
import numpy as np
import pytest

from tests.conftest import random_images
from tests.subprocesses import script_report
from tfxfer import TransferModel
from tfxfer.regularizers import BSS, L2, L2SP, CosineSP

ALPHA, BETA, LEARNING_RATE, DELTA = 5.0, 1.0, 0.1, 0.1


def _data():
    x = random_images(8, seed=3)
    return x, np.array([0, 1] * 4)


def _model(image_module, regularizer, perturb=True, **kwargs):
    keras.utils.set_random_seed(0)
    kwargs.setdefault("input_shape", (10, 10, 3))  # the size of the test images
    model = TransferModel.from_hub(
        image_module, num_classes=2, trainable_backbone=True, regularizer=regularizer, **kwargs
    )
    if perturb:
        for _, weight in model.backbone.module_weights:
            if weight.trainable:
                weight.assign(weight + DELTA)
    return model


def _one_sgd_step(model, jit_compile=False, optimizer=None):
    optimizer = optimizer or keras.optimizers.SGD(LEARNING_RATE)
    model.compile(optimizer=optimizer, jit_compile=jit_compile)
    x, y = _data()
    return model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)


def _by_path(model):
    return {weight.path: weight.numpy() for weight in model.weights}


def test_train_step_adds_exactly_the_l2sp_gradient(image_module):
    regularized = _model(image_module, L2SP(ALPHA, BETA))
    plain = _model(image_module, None)
    kernels = {
        weight.path: weight.numpy() for name, weight in regularized.backbone.module_weights if name.endswith("kernel")
    }
    head_kernel = regularized.head.dense.kernel.numpy()
    _one_sgd_step(regularized)
    _one_sgd_step(plain)
    after, baseline = _by_path(regularized), _by_path(plain)
    for path, value in baseline.items():
        if path in kernels:
            # SGD: the extra step is lr·alpha·(w − w0), and w − w0 = DELTA.
            np.testing.assert_allclose(after[path] - value, -LEARNING_RATE * ALPHA * DELTA, atol=1e-5)
        elif path == regularized.head.dense.kernel.path:
            np.testing.assert_allclose(after[path] - value, -LEARNING_RATE * BETA * head_kernel, atol=1e-5)
        else:  # biases, BN gamma/beta and statistics: no penalty
            np.testing.assert_allclose(after[path], value, atol=1e-6)


def test_history_has_task_loss_and_penalty_separately(image_module):
    model = _model(image_module, L2SP(ALPHA, BETA))
    model.compile(optimizer=keras.optimizers.SGD(0.0))  # weights stay put
    x, y = _data()
    penalty = float(model.regularization_penalty())
    history = model.fit(x, y, validation_data=(x, y), batch_size=8, epochs=1, verbose=0).history
    assert history["regularization_loss"][0] == pytest.approx(penalty, rel=1e-5)
    assert history["loss"][0] == pytest.approx(history["task_loss"][0] + penalty, rel=1e-5)
    # Evaluation is unaffected: no penalty in val_loss.
    assert history["val_loss"][0] == pytest.approx(history["val_task_loss"][0], rel=1e-6)
    assert "val_regularization_loss" not in history  # a penalty evaluation never has
    plain = _model(image_module, None)
    plain.compile(optimizer=keras.optimizers.SGD(0.0))
    assert model.evaluate(x, y, verbose=0)[0] == pytest.approx(plain.evaluate(x, y, verbose=0)[0], rel=1e-6)
    np.testing.assert_allclose(model.predict(x, verbose=0), plain.predict(x, verbose=0), rtol=1e-6)


def test_frozen_weights_are_skipped(image_module):
    model = _model(image_module, L2SP(ALPHA, 0.0))
    assert float(model.regularization_penalty()) > 0
    model.freeze_backbone()
    assert float(model.regularization_penalty()) == 0.0
    model.unfreeze(top=1)  # only b1's kernel counts now
    kernel_count = 4  # b1_conv is 1x1x5x4
    expected = ALPHA / 2 * DELTA**2 * (5 * kernel_count)
    assert float(model.regularization_penalty()) == pytest.approx(expected, rel=1e-4)


def test_source_weights_cost_one_copy_of_the_penalised_kernels(image_module):
    model = _model(image_module, L2SP(ALPHA, BETA), perturb=False)
    kernels = [w for name, w in model.backbone.module_weights if name.endswith("kernel")]
    assert [tuple(w.shape) for w in model.source_weights.weights] == [tuple(w.shape) for w in kernels]
    assert _model(image_module, L2(ALPHA, BETA)).source_weights is None
    assert model.source_weights not in model.layers


@pytest.mark.parametrize("regularizer", [L2SP(ALPHA, BETA), L2SP(ALPHA, BETA) + BSS(k=1, weight=0.05), CosineSP(1.0)])
def test_xla_step_matches(image_module, regularizer):
    eager_graph = _model(image_module, regularizer)
    xla = _model(image_module, regularizer)
    _one_sgd_step(eager_graph, jit_compile=False)
    history = _one_sgd_step(xla, jit_compile=True)
    assert xla.jit_compile
    assert np.isfinite(history.history["regularization_loss"][0])
    for path, value in _by_path(eager_graph).items():
        np.testing.assert_allclose(_by_path(xla)[path], value, atol=1e-5)


@pytest.fixture
def mixed_precision():
    def set_policy(name):
        keras.mixed_precision.set_global_policy(name)

    yield set_policy
    keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_penalty_is_float32_and_exact(image_module, mixed_precision, policy):
    mixed_precision(policy)
    regularized = _model(image_module, L2SP(ALPHA, BETA))
    plain = _model(image_module, None)
    assert regularized.head.dense.compute_dtype != "float32"
    penalty = regularized.regularization_penalty()
    assert penalty.dtype == "float32"
    if policy == "mixed_float16":
        regularized.compile()  # "auto" compile adds dynamic loss scaling
        assert isinstance(regularized.optimizer, keras.optimizers.LossScaleOptimizer)

    def optimizer():
        if policy != "mixed_float16":
            return keras.optimizers.SGD(LEARNING_RATE)
        # A small initial scale so the very first step is not skipped as an
        # overflow; the penalty is scaled and unscaled with the task loss.
        return keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(LEARNING_RATE), initial_scale=16.0)

    history = _one_sgd_step(regularized, optimizer=optimizer())
    _one_sgd_step(plain, optimizer=optimizer())
    assert np.isfinite(history.history["loss"][0])
    kernel = next(w for name, w in regularized.backbone.module_weights if name == "b1_conv/kernel")
    plain_kernel = next(w for name, w in plain.backbone.module_weights if name == "b1_conv/kernel")
    # Same task gradients in both; the penalty's step is exact in float32.
    np.testing.assert_allclose(kernel.numpy() - plain_kernel.numpy(), -LEARNING_RATE * ALPHA * DELTA, atol=1e-5)


def test_mirrored_strategy_counts_the_penalty_once(image_module):
    report = script_report(pathlib.Path(__file__).with_name("distributed_step.py"), image_module)
    assert report["replicas"] == 2
    assert report["mirrored"] < 1e-5
    # The bug this guards against is visible at this scale.
    assert report["naive"] > 1e-2
    # Discriminative learning rates (a MultiOptimizer) distribute the same way.
    assert report["discriminative"] < 1e-5
    assert report["discriminative_vs_plain"] > 1e-3  # and they did change the step


def _trained(image_module, tmp_path, regularizer):
    model = _model(image_module, regularizer, perturb=False)
    pretrained = [w.numpy().copy() for w in model.source_weights.weights]
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    x, y = _data()
    model.fit(x, y, epochs=3, batch_size=4, verbose=0)
    return model, pretrained


def test_keras_round_trip_keeps_the_original_source_weights(image_module, tmp_path):
    model, pretrained = _trained(image_module, tmp_path, L2SP(ALPHA, BETA))
    penalty = float(model.regularization_penalty())
    assert penalty > 0  # the weights moved away from w0
    model.save(tmp_path / "model.keras")
    restored = keras.models.load_model(tmp_path / "model.keras")
    assert repr(restored.regularizer) == repr(model.regularizer)
    for value, copy in zip(pretrained, restored.source_weights.weights):
        np.testing.assert_array_equal(copy.numpy(), value)
    assert float(restored.regularization_penalty()) == pytest.approx(penalty, rel=1e-6)


def test_backup_and_restore_resumes_against_the_pretrained_weights(image_module, tmp_path):
    x, y = _data()

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt("simulated preemption")

    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"), delete_checkpoint=False)
    model = _model(image_module, L2SP(ALPHA, BETA), perturb=False)
    pretrained = [w.numpy().copy() for w in model.source_weights.weights]
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, epochs=4, batch_size=4, verbose=0, callbacks=[backup, Interrupt()])
    interrupted = _by_path(model)

    resumed = _model(image_module, L2SP(ALPHA, BETA), perturb=False)
    resumed.compile(optimizer=keras.optimizers.SGD(0.5))
    history = resumed.fit(x, y, epochs=4, batch_size=4, verbose=0, callbacks=[backup])
    assert len(history.epoch) == 2  # epochs 3 and 4 only: it resumed
    for copy, value in zip(resumed.source_weights.weights, pretrained):
        np.testing.assert_array_equal(copy.numpy(), value)
    # And training went on from the interrupted weights, not from scratch.
    moved = [p for p, v in interrupted.items() if "kernel" in p and not np.allclose(_by_path(resumed)[p], v)]
    assert moved


def test_model_checkpoint_weights_carry_the_source_weights(image_module, tmp_path):
    x, y = _data()
    model = _model(image_module, L2SP(ALPHA, BETA), perturb=False)
    pretrained = [w.numpy().copy() for w in model.source_weights.weights]
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    path = tmp_path / "best.weights.h5"
    model.fit(
        x,
        y,
        epochs=2,
        batch_size=4,
        verbose=0,
        callbacks=[keras.callbacks.ModelCheckpoint(str(path), save_weights_only=True)],
    )
    resumed = _model(image_module, L2SP(ALPHA, BETA), perturb=True)  # deliberately different w
    resumed.load_weights(path)
    for copy, value in zip(resumed.source_weights.weights, pretrained):
        np.testing.assert_array_equal(copy.numpy(), value)
    assert float(resumed.regularization_penalty()) == pytest.approx(float(model.regularization_penalty()), rel=1e-6)


def test_regularizer_of_the_wrong_type(image_module):
    with pytest.raises(TypeError, match="regularizer must be one of tfxfer.regularizers"):
        TransferModel.from_hub(image_module, num_classes=2, regularizer=keras.regularizers.L2(0.1))


def test_text_model_with_regularizer_and_bss(dict_module, text_preprocessor_module):
    model = TransferModel.from_hub(
        dict_module,
        num_classes=2,
        preprocessor=text_preprocessor_module,
        pooling="masked_avg",
        trainable_backbone=True,
        regularizer=L2SP(0.01, 0.01) + BSS(k=1),
    )
    history = model.fit(["good film", "bad plot"] * 4, np.array([1, 0] * 4), epochs=1, batch_size=4, verbose=0)
    assert history.history["regularization_loss"][0] > 0


def test_export_leaves_out_the_source_weights(image_module, tmp_path):
    import tensorflow as tf

    model = _model(image_module, L2SP(ALPHA, BETA))
    x = random_images(3, seed=9)
    model.export(str(tmp_path / "export"), verbose=False)
    reloaded = tf.saved_model.load(str(tmp_path / "export"))
    # model.export() serves the network on preprocessed inputs, as Keras does.
    np.testing.assert_allclose(
        reloaded.serve(model.preprocessor(x)).numpy(), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6
    )
    serving = len(model.backbone.weights) + len(model.head.weights)
    assert len(reloaded.variables) == serving
    stored = [
        name
        for name, _ in tf.train.list_variables(str(tmp_path / "export" / "variables" / "variables"))
        if name.endswith("VARIABLE_VALUE")
    ]
    # Keras' ExportArchive lists each variable under two keys; per list, only
    # the serving weights: no w0 copies, no optimizer slots.
    for prefix in ("variables/", "_all_variables/"):
        assert len([name for name in stored if name.startswith(prefix)]) == serving
    assert len(stored) == 2 * serving
