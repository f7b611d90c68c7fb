"""Plain L2 weight decay toward zero: the baseline L2-SP is compared with."""

import keras
import tensorflow as tf

from tfxfer.regularizers.source_regularizer import SourceRegularizer


@keras.saving.register_keras_serializable(package="tfxfer")
class L2(SourceRegularizer):
    """alpha/2·Σ‖w‖² on the pretrained weights + beta/2·Σ‖w‖² on the head.

    The same weight groups as `L2SP`, decayed toward zero instead of toward
    the pretrained values; needs no copy of the source weights.

    Example:

    >>> regularizer = tfxfer.regularizers.L2(alpha=0.01, beta=0.01)
    """

    needs_source_weights = False

    def penalty(self, pretrained, head, features):
        total = self.head_penalty(head)
        if self.alpha and pretrained:
            norm = tf.add_n([tf.nn.l2_loss(tf.cast(w, tf.float32)) for w, _, _ in pretrained])
            total = total + self.alpha * norm
        return total
