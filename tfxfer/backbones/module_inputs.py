"""Inputs given to a TF Hub module, checked against its input signature and cast to its dtypes.

A mismatch is a `ValueError` that shows what the module takes, e.g.
"input has shape (224, 224, 3), but the module expects (None, 224, 224, 3)
(None = any size). It looks like the batch dimension is missing."

Example:

>>> import tensorflow as tf
>>> spec = tf.TensorSpec([None, 4], tf.float32)
>>> conformed_inputs(tf.ones([2, 4], tf.float64), spec, "module 'm'").dtype.name
'float32'
>>> describe_value({"ids": tf.TensorSpec([None, 8], tf.int32)})
'{ids: int32(None, 8)}'
"""

import tensorflow as tf


def conformed_inputs(inputs, expected, description, by_signature=False):
    """`inputs` fitted to `expected` (a `tf.TensorSpec` or a dict of them): keys and shapes checked, dtypes cast.

    Args:
        inputs: a tensor (or array) or a dict of them.
        expected: the module's input structure.
        description: how messages name the module (`"HubBackbone 'x' (module '...')"`).
        by_signature: a signature called by keyword: a single tensor feeds its only input.
    """
    if isinstance(expected, dict) and not isinstance(inputs, dict):
        if by_signature and len(expected) == 1:
            (name,) = expected
            return {name: _conformed_tensor(inputs, expected[name], description)}
        raise ValueError(
            f"{description} expects a dict of inputs with keys {sorted(expected)}, got {describe_value(inputs)}."
        )
    if isinstance(expected, dict):
        missing = sorted(set(expected) - set(inputs))
        if missing:
            raise ValueError(
                f"{description} is missing inputs {missing}: it expects keys {sorted(expected)}, got {sorted(inputs)}."
            )
        return {key: _conformed_tensor(inputs[key], expected[key], description, key) for key in expected}
    if isinstance(inputs, dict):
        raise ValueError(
            f"{description} expects a single tensor {describe_value(expected)}, got a dict with keys {sorted(inputs)}."
        )
    return _conformed_tensor(inputs, expected, description)


def _conformed_tensor(value, spec, description, key=None):
    if not isinstance(spec, tf.TensorSpec):
        return value
    value = tf.convert_to_tensor(value) if not tf.is_tensor(value) else value
    where = f"input '{key}'" if key else "input"
    if value.dtype != spec.dtype:
        if not _castable(value.dtype, spec.dtype):
            raise ValueError(
                f"{description}: {where} has dtype {value.dtype.name}, but the module expects {spec.dtype.name}."
            )
        value = tf.cast(value, spec.dtype)
    if not value.shape.is_compatible_with(spec.shape):
        raise ValueError(
            f"{description}: {where} has shape {_shape(value.shape)}, but the module expects "
            f"{_shape(spec.shape)} (None = any size)." + _shape_hint(value.shape, spec.shape)
        )
    return value


def describe_value(value):
    """A tensor, spec or dict of them as messages show it: `float32(None, 224, 224, 3)`."""
    if isinstance(value, dict):
        inner = ", ".join(f"{key}: {describe_value(item)}" for key, item in sorted(value.items()))
        return "{" + inner + "}"
    if isinstance(value, tf.TensorSpec) or tf.is_tensor(value) or hasattr(value, "dtype"):
        dtype = tf.as_dtype(value.dtype).name
        return f"{dtype}{_shape(tf.TensorShape(value.shape))}"
    return type(value).__name__


def _castable(source, target):
    return (source.is_floating and target.is_floating) or (source.is_integer and target.is_integer)


def _shape(shape):
    return "unknown" if shape.rank is None else str(tuple(shape.as_list()))


def _shape_hint(received, expected):
    if received.rank is None or expected.rank is None:
        return ""
    if received.rank == expected.rank - 1:
        return " It looks like the batch dimension is missing."
    if received.rank != expected.rank:
        return f" The ranks differ ({received.rank} vs {expected.rank})."
    return ""
