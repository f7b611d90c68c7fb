import keras
import numpy as np
import pytest
import tensorflow as tf

from tfxfer.regularizers import (
    BSS,
    L2,
    L2SP,
    CompositeRegularizer,
    CosineSP,
    OrthogonalSP,
    weight_kind,
)

RNG = np.random.default_rng(0)


def _variable(shape, scale=1.0):
    return tf.Variable(RNG.normal(size=shape).astype("float32") * scale)


def _setup():
    """Pretrained triples (w, w0, kind) with w != w0, and head pairs."""
    kernel, kernel0 = _variable((3, 4)), _variable((3, 4))
    bias, bias0 = _variable((4,)), _variable((4,))
    gamma, gamma0 = _variable((4,)), _variable((4,))
    head_kernel, head_bias = _variable((4, 2)), _variable((2,))
    pretrained = [
        (kernel, tf.constant(kernel0), "kernel"),
        (bias, tf.constant(bias0), "bias"),
        (gamma, tf.constant(gamma0), "normalization"),
    ]
    head = [(head_kernel, "kernel"), (head_bias, "bias")]
    return pretrained, head


def _gradients(regularizer, pretrained, head, features=None):
    variables = [w for w, _, _ in pretrained] + [w for w, _ in head]
    with tf.GradientTape() as tape:
        penalty = regularizer(pretrained, head, features)
    return penalty, tape.gradient(penalty, variables)


@pytest.mark.parametrize(
    "path, kind",
    [
        ("b0_bn1/gamma", "normalization"),
        ("embeddings_layer_norm/beta", "normalization"),
        ("stem_conv/kernel", "kernel"),
        ("b0_dw/depthwise_kernel", "kernel"),
        ("token_embedding/embeddings", "kernel"),
        ("dense/bias", "bias"),
        ("attention/query_bias", "bias"),
    ],
)
def test_weight_kind(path, kind):
    assert weight_kind(path) == kind


def test_l2sp_gradient_is_alpha_times_distance_and_beta_times_head():
    pretrained, head = _setup()
    alpha, beta = 0.3, 0.7
    penalty, grads = _gradients(L2SP(alpha, beta), pretrained, head)
    (kernel, kernel0, _), (bias, _, _), (gamma, _, _) = pretrained
    np.testing.assert_allclose(grads[0], alpha * (kernel.numpy() - kernel0.numpy()), rtol=1e-6)
    assert grads[1] is None and grads[2] is None  # kernels only by default
    np.testing.assert_allclose(grads[3], beta * head[0][0].numpy(), rtol=1e-6)
    assert grads[4] is None
    expected = alpha / 2 * np.sum((kernel.numpy() - kernel0.numpy()) ** 2) + beta / 2 * np.sum(head[0][0].numpy() ** 2)
    assert float(penalty) == pytest.approx(expected, rel=1e-6)
    assert penalty.dtype == tf.float32


def test_l2sp_optionally_covers_biases_and_batchnorm():
    pretrained, head = _setup()
    _, grads = _gradients(L2SP(1.0, 1.0, include_bias=True, include_batchnorm=True), pretrained, head)
    (_, _, _), (bias, bias0, _), (gamma, gamma0, _) = pretrained
    np.testing.assert_allclose(grads[1], bias.numpy() - bias0.numpy(), rtol=1e-6)
    np.testing.assert_allclose(grads[2], gamma.numpy() - gamma0.numpy(), rtol=1e-6)
    np.testing.assert_allclose(grads[4], head[1][0].numpy(), rtol=1e-6)


def test_l2_decays_toward_zero_without_source_weights():
    pretrained, head = _setup()
    regularizer = L2(alpha=0.5, beta=0.25)
    assert not regularizer.needs_source_weights
    _, grads = _gradients(regularizer, [(w, None, k) for w, _, k in pretrained], head)
    np.testing.assert_allclose(grads[0], 0.5 * pretrained[0][0].numpy(), rtol=1e-6)
    np.testing.assert_allclose(grads[3], 0.25 * head[0][0].numpy(), rtol=1e-6)


def test_cosine_sp_penalises_direction_not_scale():
    kernel0 = _variable((5, 3))
    source = tf.constant(kernel0)
    regularizer = CosineSP(alpha=2.0)
    for scale in (1.0, 3.0):
        same_direction = tf.Variable(kernel0 * scale)
        assert float(regularizer([(same_direction, source, "kernel")], [])) == pytest.approx(0.0, abs=1e-6)
    w = _variable((5, 3))
    penalty, (grad,) = _gradients(regularizer, [(w, source, "kernel")], [])
    a, b = w.numpy().ravel(), kernel0.numpy().ravel()
    norm_a, norm_b = np.linalg.norm(a), np.linalg.norm(b)
    cosine = a @ b / (norm_a * norm_b)
    assert float(penalty) == pytest.approx(2.0 * (1 - cosine), rel=1e-5)
    analytic = -2.0 * (b / (norm_a * norm_b) - cosine * a / norm_a**2)
    np.testing.assert_allclose(grad.numpy().ravel(), analytic, rtol=1e-4, atol=1e-6)


def test_orthogonal_sp_is_the_frobenius_norm_of_the_overlap():
    w, w0 = _variable((3, 3, 2, 4)), _variable((3, 3, 2, 4))
    bias = _variable((4,))
    penalty = OrthogonalSP(alpha=0.1)([(w, tf.constant(w0), "kernel"), (bias, tf.constant(bias), "bias")], [])
    matrix, matrix0 = w.numpy().reshape(-1, 4), w0.numpy().reshape(-1, 4)
    assert float(penalty) == pytest.approx(0.1 * np.sum((matrix.T @ matrix0) ** 2), rel=1e-5)


def test_bss_shrinks_the_smallest_singular_values():
    features = RNG.normal(size=(16, 6)).astype("float32")
    singular_values = np.linalg.svd(features, compute_uv=False)
    penalty = BSS(k=2, weight=0.01)([], [], tf.constant(features))
    assert float(penalty) == pytest.approx(0.01 * np.sum(singular_values[-2:] ** 2), rel=1e-4)
    with pytest.raises(ValueError, match="BSS needs the pooled backbone features"):
        BSS()([], [], None)


def test_regularizers_compose_and_serialize():
    pretrained, head = _setup()
    features = tf.constant(RNG.normal(size=(8, 4)).astype("float32"))
    parts = [L2SP(0.1, 0.2), BSS(k=1, weight=0.5), CosineSP(0.3)]
    composite = parts[0] + parts[1] + parts[2]
    assert isinstance(composite, CompositeRegularizer) and len(composite.components) == 3
    assert composite.needs_features and composite.needs_source_weights
    expected = sum(float(part(pretrained, head, features)) for part in parts)
    assert float(composite(pretrained, head, features)) == pytest.approx(expected, rel=1e-6)

    config = keras.saving.serialize_keras_object(composite)
    restored = keras.saving.deserialize_keras_object(config)
    assert repr(restored) == repr(composite)
    assert float(restored(pretrained, head, features)) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: L2SP(alpha=-1), "alpha must be a number >= 0"),
        (lambda: L2(beta="0.1"), "beta must be a number >= 0"),
        (lambda: BSS(k=0), "k must be a positive integer"),
        (lambda: BSS(weight=-0.1), "weight must be a number >= 0"),
    ],
)
def test_invalid_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()
