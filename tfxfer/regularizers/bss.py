"""Batch Spectral Shrinkage on the backbone's features."""

import keras
import tensorflow as tf
from keras import ops

from tfxfer.regularizers.source_regularizer import SourceRegularizer


@keras.saving.register_keras_serializable(package="tfxfer")
class BSS(SourceRegularizer):
    """Batch Spectral Shrinkage (Chen et al., NeurIPS 2019).

    penalty = weight·Σ σᵢ² over the k smallest singular values of the batch's
    feature matrix `[batch, features]` (the pooled backbone features that
    enter the head). It shrinks the feature directions that transfer badly
    and needs no copy of the source weights. Under `tf.distribute` each
    replica penalises its own part of the batch and the replicas' penalties
    are averaged.

    Args:
        k: how many of the smallest singular values to shrink.
        weight: strength of the penalty.

    Example:

    >>> regularizer = tfxfer.regularizers.L2SP(0.01, 0.01) + tfxfer.regularizers.BSS(k=1)
    """

    needs_source_weights = False
    needs_features = True

    def __init__(self, k=1, weight=0.001):
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError(f"BSS: k must be a positive integer, got {k!r}.")
        if not isinstance(weight, (int, float)) or weight < 0:
            raise ValueError(f"BSS: weight must be a number >= 0, got {weight!r}.")
        super().__init__()
        self.k = k
        self.weight = float(weight)

    def selects(self, kind):
        return False

    def penalty(self, pretrained, head, features):
        if features is None:
            raise ValueError(
                "BSS needs the pooled backbone features of a batch: pass "
                "features=... (the train step does this itself)."
            )
        features = ops.cast(features, "float32")
        singular_values = tf.linalg.svd(features, compute_uv=False)  # descending
        smallest = singular_values[-self.k :]
        return self.weight * ops.sum(ops.square(smallest))

    def get_config(self):
        return {"k": self.k, "weight": self.weight}
