"""Applying gradients when the optimizer was built over more weights than train now."""

import keras
import tensorflow as tf


def apply_gradients(optimizer, gradients, trainable_weights, optimizer_variables=None):
    """`optimizer.apply_gradients`, padding a `MultiOptimizer`'s missing gradients.

    A `keras.optimizers.MultiOptimizer` takes a gradient for exactly each
    weight it was built with. Weights the loss does not reach (a pooler the
    head does not use) and frozen ones (gradual unfreezing builds the
    optimizer over every weight once) get zeros: their Adam/SGD state stays
    0, so they do not move.

    Args:
        optimizer: the model's optimizer (possibly a `LossScaleOptimizer`).
        gradients: one per trainable weight, None where the loss does not reach.
        trainable_weights: the weights being trained now.
        optimizer_variables: the weights the optimizer was built over, when
            that is a larger set (default: `trainable_weights`).
    """
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    if not isinstance(inner, keras.optimizers.MultiOptimizer):
        optimizer.apply_gradients(zip(gradients, trainable_weights))
        return
    by_weight = {id(w): g for g, w in zip(gradients, trainable_weights) if g is not None}
    variables = optimizer_variables or trainable_weights
    padded = [by_weight[id(v)] if id(v) in by_weight else tf.zeros_like(v) for v in variables]
    optimizer.apply_gradients(zip(padded, variables))
