"""OrthogonalSP: ‖Wᵀ W⁰‖²_F per pretrained kernel."""

import keras
from keras import ops

from tfxfer.regularizers.source_regularizer import KERNEL, SourceRegularizer


@keras.saving.register_keras_serializable(package="tfxfer")
class OrthogonalSP(SourceRegularizer):
    """alpha·Σ‖Wᵀ W⁰‖²_F over pretrained kernels + beta/2·Σ‖w‖² on the head.

    Each kernel is viewed as a matrix `[fan_in, units]` (all leading axes
    flattened); the penalty grows with the overlap between the new and the
    source filters, pushing the fine-tuned filters toward directions the
    source weights did not use. Only kernels (rank ≥ 2) take part.

    Example:

    >>> regularizer = tfxfer.regularizers.OrthogonalSP(alpha=1e-4)
    """

    def selects(self, kind):
        return kind == KERNEL

    def penalty(self, pretrained, head, features):
        total = self.head_penalty(head)
        if self.alpha and pretrained:
            terms = []
            for w, w0, _ in pretrained:
                if len(w.shape) < 2:
                    continue
                units = w.shape[-1]
                w = ops.reshape(ops.cast(w, "float32"), (-1, units))
                w0 = ops.reshape(ops.cast(w0, "float32"), (-1, units))
                terms.append(ops.sum(ops.square(ops.matmul(ops.transpose(w), w0))))
            if terms:
                total = total + self.alpha * sum(terms)
        return total
