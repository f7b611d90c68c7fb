"""CosineSP: keeps each pretrained tensor pointing where it pointed."""

import keras
from keras import ops

from tfxfer.regularizers.source_regularizer import SourceRegularizer

_EPSILON = 1e-12


@keras.saving.register_keras_serializable(package="tfxfer")
class CosineSP(SourceRegularizer):
    """alpha·Σ(1 − cos(w, w⁰)) per pretrained tensor + beta/2·Σ‖w‖² on the head.

    Unlike L2-SP it ignores changes of scale and penalises only changes of
    direction of each tensor (flattened).

    Example:

    >>> regularizer = tfxfer.regularizers.CosineSP(alpha=0.1)
    """

    def penalty(self, pretrained, head, features):
        total = self.head_penalty(head)
        if self.alpha and pretrained:
            terms = []
            for w, w0, _ in pretrained:
                w = ops.reshape(ops.cast(w, "float32"), (-1,))
                w0 = ops.reshape(ops.cast(w0, "float32"), (-1,))
                cosine = ops.sum(w * w0) / (ops.sqrt(ops.sum(w * w)) * ops.sqrt(ops.sum(w0 * w0)) + _EPSILON)
                terms.append(1.0 - cosine)
            total = total + self.alpha * sum(terms)
        return total
