"""The train and test steps of a `TransferModel`: the task loss plus the source regularizer's penalty.

`RegularizedStep` holds the steps, for `TransferModel` (with
`SourceRegularized`'s penalty and forward pass) and for its head alone
(`HeadOnFeatures`, the cached-features phase). The penalty is computed in
float32 from the trainable weights only, and divided by the replica count in
one place (`_per_replica`), as Keras divides each replica's task loss, so
that under `tf.distribute` it counts once, not once per replica. Feature
regularizers (BSS) get the pooled backbone features of the batch; DELTA the
feature maps of the backbone and of its frozen source copy
(`tfxfer.models.feature_maps`).
"""

import keras
import tensorflow as tf
from keras import tree

from tfxfer.freezing.layer_groups import named_backbone_variables, named_backbone_weights
from tfxfer.models.feature_maps import forward_with_feature_maps
from tfxfer.models.lora_adapters import is_lora_factor, lora_factors, lora_layers, merged_kernel
from tfxfer.models.model_inputs import pooling_mask
from tfxfer.models.source_classifier import class_ids
from tfxfer.optimizers.gradient_application import apply_gradients
from tfxfer.regularizers.source_regularizer import weight_kind
from tfxfer.regularizers.source_weights import SourceWeights
from tfxfer.utils.keras_internals import loss_tracker


class RegularizedStep:
    """`train_step`/`test_step`: the task loss plus a regularizer's penalty (a Keras model mixin).

    The model provides `regularizer` (None: no penalty), its
    `regularization_penalty(features, feature_maps)`, `_forward_for_training`
    and, with a regularizer, `task_loss_tracker` and
    `regularization_loss_tracker`. `SourceRegularized` provides them for a
    `TransferModel`, `HeadOnFeatures` for its head alone.
    """

    def _optimizer_variables(self):
        """The weights the optimizer was built over, when more than those training now (else None)."""
        return None

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        batch_size = batch_rows(x)
        with tf.GradientTape() as tape:
            y_pred, features, feature_maps = self._forward_for_training(x)
            # Keras already divides each replica's loss by the replica count
            # before the replicas' gradients are summed.
            task_loss = self.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)
            loss = task_loss
            if self.regularizer is not None:
                penalty = self.regularization_penalty(features, feature_maps, labels=y)
                # The penalty needs the same division, or under tf.distribute
                # it would count once per replica.
                loss = task_loss + _per_replica(penalty)
                self.task_loss_tracker.update_state(_global(task_loss), sample_weight=batch_size)
                self.regularization_loss_tracker.update_state(penalty)
            loss_tracker(self).update_state(_global(loss), sample_weight=batch_size)
            loss = self.optimizer.scale_loss(loss)
        trainable_weights = self.trainable_weights
        if trainable_weights:
            gradients = tape.gradient(loss, trainable_weights)
            apply_gradients(self.optimizer, gradients, trainable_weights, self._optimizer_variables())
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    def test_step(self, data):
        if self.regularizer is None:
            return super().test_step(data)
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        batch_size = batch_rows(x)
        y_pred = self(x, training=False)
        # Evaluation has no penalty: its task loss is its loss (`evaluate`
        # leaves regularization_loss out of what it returns; the step's logs
        # keep it, or Keras would take them for a custom step's and return the
        # last batch's logs instead of the metrics' results).
        loss = self.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=False)
        loss_tracker(self).update_state(_global(loss), sample_weight=batch_size)
        self.task_loss_tracker.update_state(_global(loss), sample_weight=batch_size)
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    def results_without_penalty(self, results):
        """`evaluate`'s results without `regularization_loss` (evaluation has no penalty)."""
        if isinstance(results, dict) and self.regularizer is not None:
            results.pop(self.regularization_loss_tracker.name, None)
        return results


class SourceRegularized(RegularizedStep):
    """A `TransferModel`'s penalty and training forward pass: the source regularizer on backbone and head."""

    def regularization_penalty(self, features=None, feature_maps=None, labels=None):
        """The regularizer's penalty for the current weights (float32).

        Only trainable weights take part: frozen ones cost nothing.
        `features` (pooled backbone features of a batch) is needed by
        feature regularizers such as `BSS`; `feature_maps` (`(current,
        source, attention, padding_mask)` per map) by `DELTA`; `features`
        and the batch's `labels` by `CoTuning` (its source classifier's
        logits and the labels' relationship rows).

        Example:

        >>> float(model.regularization_penalty())
        0.0
        """
        if self.regularizer is None:
            return tf.zeros((), tf.float32)
        sources = self.source_weights.by_path() if self.source_weights else {}
        pretrained = []
        adapted = {id(lora_factors(layer)[2]): layer for layer in lora_layers(self.backbone)}
        for path, weight in named_backbone_weights(self.backbone):
            layer = adapted.get(id(weight))
            if layer is not None:
                # An adapted kernel counts as its merged value W + s·A·B.
                if any(factor.trainable for factor in lora_factors(layer)[:2]):
                    pretrained.append((merged_kernel(layer), sources.get(path), weight_kind(path)))
            elif weight.trainable and not is_lora_factor(weight):
                pretrained.append((weight, sources.get(path), weight_kind(path)))
        head = [(weight, weight_kind(weight.path)) for weight in self.head.trainable_weights]
        source_predictions = None
        if self.source_classifier is not None and features is not None and labels is not None:
            soft_targets = self.source_classifier.soft_targets(class_ids(labels))
            source_predictions = (self.source_classifier(features), soft_targets)
        return self.regularizer(pretrained, head, features, feature_maps, source_predictions)

    def backbone_features(self, x, training=False):
        """The pooled backbone features the head's classifier reads, for preprocessed `x`."""
        outputs = self.backbone(x, training=training)
        padding_mask = pooling_mask(x) if self.pooling == "masked_avg" else None
        return self.head.pool(outputs, padding_mask)

    def _forward_for_training(self, x):
        """`(predictions, pooled features or None, feature maps for DELTA or None)`."""
        frozen = not self.backbone.trainable_weights
        if not frozen and self.feature_attention is not None:
            return forward_with_feature_maps(self, x, training=True)
        if not frozen and (self.regularizer is None or not self.regularizer.needs_features):
            return self(x, training=True), None, None
        # A frozen backbone runs in inference mode (its dropout too), as
        # for cached features, so the two train the same head.
        features = self.backbone_features(x, training=not frozen)
        return self.head.classify(features, training=True), features, None

    def _optimizer_variables(self):
        return self.compile_state.optimizer_variables


def batch_rows(x):
    """The number of examples in a batch of (possibly nested) inputs."""
    return tf.shape(next(t for t in tree.flatten(x) if t is not None))[0]


def _replicas():
    return tf.distribute.get_strategy().num_replicas_in_sync


def _per_replica(value):
    return value / tf.cast(_replicas(), value.dtype)


def _global(value):
    return value * tf.cast(_replicas(), value.dtype)


def source_weights_for(backbone, regularizer, keep_all=False):
    """The `SourceWeights` (w⁰) a model keeps: every backbone variable, those `regularizer` reads, or None."""
    if keep_all:
        return SourceWeights(named_backbone_variables(backbone), name="source_weights")
    if regularizer is None or not regularizer.needs_source_weights:
        return None
    selected = [
        (path, weight) for path, weight in named_backbone_weights(backbone) if regularizer.selects(weight_kind(path))
    ]
    return SourceWeights(selected, name="source_weights")
