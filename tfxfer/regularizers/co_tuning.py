"""Co-Tuning: the pretrained model's own classifier trained toward soft source labels."""

import math

import keras
from keras import ops

from tfxfer.regularizers.source_regularizer import SourceRegularizer


@keras.saving.register_keras_serializable(package="tfxfer")
class CoTuning(SourceRegularizer):
    """Co-Tuning (You et al., NeurIPS 2020): the source classifier keeps learning the source task's view.

    The model keeps the pretrained model's own classifier (its
    `source_classifier`, `tfxfer.SourceClassifier`) on the shared backbone
    features. Before fine-tuning, the category relationship p(y_s | y_t) is
    measured once on the training split: the source classifier's softmax
    averaged per target class (TLlib's "direct" relationship). Each step
    then adds

        trade_off · mean over the batch of CE(p(y_s | y), softmax(source logits))

    (plus beta/2·‖w_head‖²), so the backbone is fine-tuned for the target
    classes and for their soft source labels at once. Only the target head
    is exported. On cached features (a frozen backbone) the source
    classifier cannot change the target head, and the term is left out.
    Examples are weighted equally in this term (`sample_weight` and
    `class_weight` weigh the task loss).

    Args:
        trade_off: weight of the source term (TLlib's default: 2.3).
        beta: strength of beta/2·‖w‖² on the new head.

    Example:

    >>> model = tfxfer.TransferModel.from_hub(
    ...     "../shared/models/tfhub/efficientnet_lite0_feature_vector", num_classes=2,
    ...     regularizer=tfxfer.regularizers.CoTuning(trade_off=2.3),
    ...     source_classifier="../shared/models/tfhub/efficientnet_lite0_classification")
    """

    needs_source_weights = False
    needs_features = True
    needs_source_predictions = True

    def __init__(self, trade_off=2.3, beta=0.0):
        if (
            not isinstance(trade_off, (int, float))
            or isinstance(trade_off, bool)
            or not math.isfinite(trade_off)
            or trade_off < 0
        ):
            raise ValueError(f"CoTuning: trade_off must be a finite number >= 0, got {trade_off!r}.")
        super().__init__(alpha=0.0, beta=beta)
        self.trade_off = float(trade_off)

    def penalty(self, pretrained, head, features, source_predictions=None):
        total = self.head_penalty(head)
        if source_predictions is None or not self.trade_off:
            return total
        logits, soft_targets = source_predictions
        log_probabilities = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
        cross_entropy = -ops.sum(ops.cast(soft_targets, "float32") * log_probabilities, axis=-1)
        return total + self.trade_off * ops.mean(cross_entropy)

    def get_config(self):
        return {"trade_off": self.trade_off, "beta": self.beta}
