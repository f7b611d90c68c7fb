"""Computes Keras' projection einsums as one 2-D matmul, so their weight gradients are one matmul too.

Workaround for the einsum counterpart of
https://github.com/keras-team/keras/issues/22823 ("Dense layer ... due to
BatchMatMulV2 gradient materialization", fixed for `Dense` only). On the
TensorFlow backend, `keras.ops.einsum` computes the projections of
`EinsumDense` (every attention layer of KerasHub: `abc,cde->abde` for the
query, key and value, `abcd,cde->abe` for the output) as `tf.matmul` of a
rank-3 input by a rank-2 kernel. That is a broadcasting `BatchMatMulV2`,
and its kernel gradient is a batch of small per-example matmuls followed
by a `Sum` over the batch. Measured on MiniLM's training step (2-core
CPU, batch 32 × 16 tokens), the attention layers' backward took a quarter
of the step, and the fix makes the step 18% (bfloat16) to 26% (float32)
faster at 16 tokens (`benchmarks/roofline.py`).

The fix reshapes the input to `(examples × positions, features)` first, so
forward and backward are each one plain matmul, as `tf.tensordot` and
Keras' `Dense` do. The values are the same contraction (summed in another
order); any other equation, dtype mix or shape goes to Keras' own einsum.

This is the only module that patches Keras' einsum; `tfxfer` installs it
when Keras is imported (`tfxfer.registration`).
`tests/utils/test_einsum_gradient_fix.py` shows that Keras' own einsum
still computes the kernel gradient with a batched matmul and a `Sum`, and
fails once it no longer does: then delete this module.

Example:

>>> from tfxfer.utils import einsum_gradient_fix
>>> einsum_gradient_fix.install()  # idempotent
>>> einsum_gradient_fix.installed()
True
"""

import contextlib

UPSTREAM_ISSUE = "https://github.com/keras-team/keras/issues/22823"

# Normalized equation -> number of the kernel's contracted (leading) axes.
_PROJECTIONS = {
    "abc,cd->abd": 1,
    "abc,cde->abde": 1,
    "abcd,cde->abe": 2,
}


def normalized(subscripts):
    """`subscripts` with its letters renamed a, b, c... in order of first use (as Keras matches them)."""
    names = {}
    out = []
    for char in subscripts.replace(" ", ""):
        if char.isalpha():
            out.append(names.setdefault(char, chr(ord("a") + len(names))))
        else:
            out.append(char)
    return "".join(out)


def projection_einsum(subscripts, x, kernel):
    """`einsum(subscripts, x, kernel)` as one 2-D matmul, or `None` where this equation/dtype is not one it covers."""
    import tensorflow as tf

    contracted = _PROJECTIONS.get(normalized(subscripts))
    if contracted is None or not isinstance(x, tf.Tensor) or not isinstance(kernel, tf.Tensor):
        return None
    if x.dtype != kernel.dtype or not x.dtype.is_floating or not kernel.shape.is_fully_defined():
        return None
    if x.shape.rank != len(subscripts.split(",")[0].strip()):
        return None
    kernel_shape = kernel.shape.as_list()
    inner = 1
    for size in kernel_shape[:contracted]:
        inner *= size
    if any(size is not None and size != expected for size, expected in zip(x.shape[-contracted:], kernel_shape)):
        return None
    outer = kernel_shape[contracted:]
    kept = tf.shape(x)[: x.shape.rank - contracted]
    rows = tf.reshape(x, [-1, inner])
    product = tf.matmul(rows, tf.reshape(kernel, [inner, -1]))
    result = tf.reshape(product, tf.concat([kept, outer], axis=0))
    result.set_shape(x.shape[: x.shape.rank - contracted].concatenate(outer))
    return result


_keras_einsum = None


def install():
    """Routes Keras' TensorFlow-backend einsum through `projection_einsum` first (idempotent)."""
    global _keras_einsum
    if _keras_einsum is not None:
        return
    import keras
    import tensorflow as tf
    from keras.src.backend.tensorflow import numpy as tf_numpy

    keras_einsum = tf_numpy.einsum

    def einsum(subscripts, *operands, **kwargs):
        if len(operands) == 2 and not kwargs and all(isinstance(o, (tf.Tensor, keras.Variable)) for o in operands):
            # A Keras variable converts to its value in the layer's autocast dtype (bfloat16 under mixed_bfloat16).
            x, kernel = (tf.convert_to_tensor(operand) for operand in operands)
            result = projection_einsum(subscripts, x, kernel)
            if result is not None:
                return result
        return keras_einsum(subscripts, *operands, **kwargs)

    einsum.keras_einsum = keras_einsum
    tf_numpy.einsum = einsum
    _keras_einsum = keras_einsum


def installed():
    """Whether `install` has replaced Keras' einsum."""
    return _keras_einsum is not None


def keras_einsum():
    """Keras' own einsum (before `install`), for comparisons."""
    from keras.src.backend.tensorflow import numpy as tf_numpy

    return _keras_einsum or tf_numpy.einsum


@contextlib.contextmanager
def keras_einsum_in_use():
    """Keras' own einsum for the block: what a model traced inside it computes with (benchmarks of stock Keras)."""
    from keras.src.backend.tensorflow import numpy as tf_numpy

    in_use = tf_numpy.einsum
    tf_numpy.einsum = keras_einsum()
    try:
        yield
    finally:
        tf_numpy.einsum = in_use
