"""Canary and parity for `tfxfer.utils.einsum_gradient_fix` (keras#22823's einsum counterpart)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfxfer.utils import einsum_gradient_fix

CASES = [
    ("abc,cde->abde", (3, 5, 8), (8, 2, 4)),
    ("abcd,cde->abe", (3, 5, 2, 4), (2, 4, 8)),
    ("abc,cd->abd", (3, 5, 8), (8, 6)),
    ("btd,dnh->btnh", (3, 5, 8), (8, 2, 4)),  # KerasHub's letters: normalized to the first
]


def _op_types(function, *args):
    return {op.type for op in function.get_concrete_function(*args).graph.get_operations()}


def test_keras_own_einsum_still_reduces_a_batched_matmul_for_the_kernel_gradient():
    keras_einsum = einsum_gradient_fix.keras_einsum()
    x = tf.random.normal((4, 6, 8))
    kernel = tf.Variable(tf.random.normal((8, 2, 3)))

    @tf.function
    def kernel_gradient(x):
        with tf.GradientTape() as tape:
            y = keras_einsum("abc,cde->abde", x, kernel)
        return tape.gradient(y, kernel)

    ops = _op_types(kernel_gradient, x)
    assert "BatchMatMulV2" in ops and "Sum" in ops, (
        f"Keras' einsum no longer computes the kernel gradient as a batched matmul and a Sum ({sorted(ops)}): "
        f"{einsum_gradient_fix.UPSTREAM_ISSUE} is fixed for einsum; delete tfxfer/utils/einsum_gradient_fix.py."
    )


def test_the_fix_computes_the_kernel_gradient_with_plain_matmuls():
    x = tf.random.normal((4, 6, 8))
    kernel = tf.Variable(tf.random.normal((8, 2, 3)))

    @tf.function
    def kernel_gradient(x):
        with tf.GradientTape() as tape:
            y = einsum_gradient_fix.projection_einsum("abc,cde->abde", x, tf.convert_to_tensor(kernel))
        return tape.gradient(y, kernel)

    ops = _op_types(kernel_gradient, x)
    assert "BatchMatMulV2" not in ops and "Sum" not in ops


@pytest.mark.parametrize("equation, x_shape, kernel_shape", CASES)
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_values_and_gradients_equal_tf_einsum(equation, x_shape, kernel_shape, dtype):
    x = tf.cast(tf.random.normal(x_shape, seed=1), dtype)
    kernel = tf.cast(tf.random.normal(kernel_shape, seed=2), dtype)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x, kernel])
        fixed = einsum_gradient_fix.projection_einsum(equation, x, kernel)
        expected = tf.einsum(equation, x, kernel)
    assert fixed is not None and fixed.dtype == expected.dtype and fixed.shape == expected.shape
    tolerance = 1e-5 if dtype == "float32" else 5e-2
    for got, want in ((fixed, expected), *zip(tape.gradient(fixed, [x, kernel]), tape.gradient(expected, [x, kernel]))):
        np.testing.assert_allclose(
            tf.cast(got, "float32").numpy(), tf.cast(want, "float32").numpy(), rtol=tolerance, atol=tolerance
        )


def test_unknown_batch_and_sequence_lengths_keep_their_static_shape():
    kernel = tf.random.normal((8, 2, 4))

    @tf.function(input_signature=[tf.TensorSpec((None, None, 8))])
    def project(x):
        result = einsum_gradient_fix.projection_einsum("abc,cde->abde", x, kernel)
        assert result.shape.as_list() == [None, None, 2, 4]
        return result

    x = tf.random.normal((3, 7, 8))
    np.testing.assert_allclose(project(x).numpy(), tf.einsum("abc,cde->abde", x, kernel).numpy(), atol=1e-5)


def test_other_equations_dtypes_and_shapes_go_to_keras():
    x = tf.random.normal((3, 5, 8))
    assert einsum_gradient_fix.projection_einsum("abc,abd->acd", x, tf.random.normal((3, 5, 2))) is None
    assert einsum_gradient_fix.projection_einsum("abc,cd->abd", x, tf.ones((8, 2), "float16")) is None
    assert (
        einsum_gradient_fix.projection_einsum("abc,cd->abd", tf.ones((3, 5, 8), "int32"), tf.ones((8, 2), "int32"))
        is None
    )
    assert einsum_gradient_fix.projection_einsum("abc,cd->abd", x, tf.ones((7, 2))) is None


def test_import_tfxfer_installs_it_and_einsum_dense_uses_it_under_mixed_bfloat16():
    import tfxfer  # noqa: F401  (registration installs the fix)

    assert einsum_gradient_fix.installed()
    layer = keras.layers.EinsumDense("abc,cde->abde", output_shape=(None, 2, 4), dtype="mixed_bfloat16")
    x = tf.random.normal((3, 5, 8))
    y = layer(x)
    assert y.dtype == tf.bfloat16
    expected = tf.einsum("abc,cde->abde", tf.cast(x, "bfloat16"), tf.cast(layer.kernel.value, "bfloat16"))
    np.testing.assert_allclose(tf.cast(y, "float32").numpy(), tf.cast(expected, "float32").numpy(), atol=5e-2)

    @tf.function
    def gradient(x):
        with tf.GradientTape() as tape:
            out = layer(x)
        return tape.gradient(out, layer.kernel.value)

    assert "BatchMatMulV2" not in _op_types(gradient, x)


def test_keras_einsum_in_use_restores_the_fix_after_the_block():
    from keras.src.backend.tensorflow import numpy as tf_numpy

    import tfxfer  # noqa: F401

    fixed = tf_numpy.einsum
    with einsum_gradient_fix.keras_einsum_in_use():
        assert tf_numpy.einsum is einsum_gradient_fix.keras_einsum() is not fixed
    assert tf_numpy.einsum is fixed
