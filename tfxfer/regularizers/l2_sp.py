"""L2-SP: weight decay toward the pretrained (source) weights."""

import keras
import tensorflow as tf

from tfxfer.regularizers.source_regularizer import SourceRegularizer


@keras.saving.register_keras_serializable(package="tfxfer")
class L2SP(SourceRegularizer):
    """L2-SP (Li, Grandvalet & Davoine, ICML 2018).

    penalty = alpha/2·Σ‖w − w⁰‖² over the trainable pretrained weights
    (kernels by default) + beta/2·Σ‖w‖² over the new head. Its gradient on
    a pretrained weight is alpha·(w − w⁰); on the head, beta·w.

    w⁰ is captured when the model is built and costs one copy of the
    penalised backbone weights (kernels by default), kept as non-trainable
    state of the model so checkpoints carry it.

    Example:

    >>> model = tfxfer.TransferModel.from_hub(
    ...     handle, num_classes=5,
    ...     regularizer=tfxfer.regularizers.L2SP(alpha=0.01, beta=0.01))
    """

    def penalty(self, pretrained, head, features):
        total = self.head_penalty(head)
        if self.alpha and pretrained:
            # l2_loss is one fused op, sum(x²)/2, whose gradient is x itself.
            distance = tf.add_n(
                [tf.nn.l2_loss(tf.cast(w, tf.float32) - tf.cast(w0, tf.float32)) for w, w0, _ in pretrained]
            )
            total = total + self.alpha * distance
        return total
