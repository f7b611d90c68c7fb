"""`ClassificationHead`: the new task head put on a pretrained backbone."""

import keras
from keras import ops

from tfxfer.option_errors import OptionValueError

POOLINGS = ("auto", "avg", "max", "first", "masked_avg", "none")
ACTIVATIONS = ("softmax", "sigmoid", None)


def check_num_classes(num_classes):
    """Raises a clear error unless `num_classes` is a positive integer."""
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ValueError(
            f"num_classes must be a positive integer, got {num_classes!r}. "
            "Use num_classes=1 for a single sigmoid output (binary), or the "
            "number of classes."
        )


@keras.saving.register_keras_serializable(package="tfxfer")
class ClassificationHead(keras.layers.Layer):
    """Pools backbone features, applies dropout and a dense classifier.

    Args:
        num_classes: number of output units (1 for binary with sigmoid).
        activation: `"softmax"`, `"sigmoid"` or `None` for logits. The
            activation is computed in float32 under mixed precision.
        dropout: dropout rate before the dense layer.
        pooling: how features become one vector per example: `"avg"` or
            `"max"` over all but the batch and channel axes, `"first"` takes
            the first token (`[CLS]`) of a sequence, `"masked_avg"` averages
            a sequence over its real tokens (pass `padding_mask` when
            calling; sentence-embedding models such as all-MiniLM are
            trained for it), `"none"` requires `[batch, features]` already.
            `"auto"` averages image feature maps and takes the first token
            of sequences.
        feature_key: which entry to use when the backbone returns a dict.
            Defaults to `"sequence_output"` for `"masked_avg"`, else to
            `"pooled_output"` when present.
        multi_label: the outputs are independent per-class decisions.
        threshold: the probability above which a sigmoid output means yes
            (binary and multi-label heads).

    The head also owns how its outputs become decisions (`decode`):
    softmax → the most probable class; one sigmoid output → class 1 above
    `threshold`, else class 0; multi-label → a 0/1 flag per class.

    Example:

    >>> head = ClassificationHead(num_classes=3, dropout=0.1)
    >>> head(np.zeros((2, 7, 7, 32), "float32")).shape
    TensorShape([2, 3])
    """

    def __init__(
        self,
        num_classes,
        activation="softmax",
        dropout=0.0,
        pooling="auto",
        feature_key=None,
        multi_label=False,
        threshold=0.5,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_num_classes(num_classes)
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}.")
        if activation == "softmax" and num_classes == 1:
            raise ValueError(
                "A softmax over num_classes=1 is always 1.0. Use "
                "activation='sigmoid' for a single binary output, or "
                "num_classes=2 with softmax."
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}.")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}.")
        if not 0.0 < float(threshold) < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {threshold!r}.")
        if multi_label and activation == "softmax":
            raise ValueError(
                "multi_label=True needs independent outputs: use activation='sigmoid' "
                "(or None for logits), not softmax."
            )
        self.num_classes = num_classes
        self.multi_label = bool(multi_label)
        self.threshold = float(threshold)
        self.activation = activation
        self.dropout = dropout
        self.pooling = pooling
        self.feature_key = feature_key
        self.dropout_layer = keras.layers.Dropout(dropout, dtype=self.dtype_policy, name="dropout")
        self.dense = keras.layers.Dense(num_classes, dtype=self.dtype_policy, name="logits")

    def selected_features(self, inputs):
        """The backbone output the head reads: `inputs` itself, or its `feature_key` entry of a dict."""
        if not isinstance(inputs, dict):
            return inputs
        key = self.feature_key
        default = "sequence_output" if self.pooling == "masked_avg" else "pooled_output"
        if key is None and default in inputs:
            key = default
        if key is None or key not in inputs:
            raise OptionValueError(
                "The backbone returns a dict with keys "
                f"{sorted(inputs)}; choose the features for the head with "
                "{feature_key} (e.g. pooled_output or sequence_output).",
                feature_key=("feature_key=...", "--feature-key"),
            )
        return inputs[key]

    def _pool(self, features, padding_mask):
        rank = len(features.shape)
        pooling = self.pooling
        if pooling == "masked_avg":
            if padding_mask is None or rank != 3:
                raise ValueError(
                    "pooling='masked_avg' needs [batch, sequence, features] "
                    f"features (got shape {tuple(features.shape)}) and the "
                    "padding mask passed as padding_mask=..."
                )
            mask = ops.expand_dims(ops.cast(padding_mask, features.dtype), -1)
            total = ops.sum(features * mask, axis=1)
            return total / ops.maximum(ops.sum(mask, axis=1), 1.0)
        if pooling == "auto":
            pooling = {2: "none", 3: "first"}.get(rank, "avg")
        if rank == 2 or pooling == "none":
            if rank != 2:
                raise ValueError(
                    f"pooling='none' needs [batch, features], got a rank-"
                    f"{rank} tensor of shape {tuple(features.shape)}. Use "
                    "pooling='avg', 'max' or 'first'."
                )
            return features
        if rank < 2:
            raise ValueError(
                f"Backbone features of shape {tuple(features.shape)} have no "
                "feature axis; a classification head needs [batch, ...]."
            )
        if pooling == "first":
            return features[:, 0]
        axes = list(range(1, rank - 1))
        if pooling == "max":
            return ops.max(features, axis=axes)
        return ops.mean(features, axis=axes)

    def call(self, inputs, padding_mask=None, training=None):
        return self.classify(self.pool(inputs, padding_mask), training=training)

    def pool(self, inputs, padding_mask=None):
        """Backbone outputs to one feature vector per example."""
        return self._pool(self.selected_features(inputs), padding_mask)

    def classify(self, features, training=None):
        """Pooled features to class probabilities (or logits)."""
        features = self.dropout_layer(features, training=training)
        logits = ops.cast(self.dense(features), "float32")
        if self.activation == "softmax":
            return ops.softmax(logits, axis=-1)
        if self.activation == "sigmoid":
            return ops.sigmoid(logits)
        return logits

    @property
    def kind(self):
        """`"multi_label"`, `"binary"` (one sigmoid output) or `"multiclass"`."""
        if self.multi_label:
            return "multi_label"
        return "binary" if self.num_classes == 1 else "multiclass"

    @property
    def num_names(self):
        """How many class names the outputs decode to (2 for one sigmoid output)."""
        return 2 if self.kind == "binary" else self.num_classes

    def probabilities(self, outputs):
        """The head's outputs as probabilities (applies the activation to logits)."""
        outputs = ops.cast(outputs, "float32")
        if self.activation is not None:
            return outputs
        if self.kind == "multiclass":
            return ops.softmax(outputs, axis=-1)
        return ops.sigmoid(outputs)

    def decode(self, outputs, threshold=None):
        """Outputs to decisions: `{"class_ids": [batch]}` or, multi-label, `{"multi_hot": [batch, classes]}`.

        Example:

        >>> head = ClassificationHead(num_classes=1, activation="sigmoid")
        >>> head.decode(np.array([[0.2], [0.9]], "float32"))["class_ids"].numpy().tolist()
        [0, 1]
        """
        threshold = self.threshold if threshold is None else float(threshold)
        probabilities = self.probabilities(outputs)
        if self.kind == "multiclass":
            return {"class_ids": ops.cast(ops.argmax(probabilities, axis=-1), "int64")}
        above = ops.cast(probabilities > threshold, "int64")
        if self.kind == "binary":
            return {"class_ids": above[:, 0]}
        return {"multi_hot": above}

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "multi_label": self.multi_label,
                "threshold": self.threshold,
                "num_classes": self.num_classes,
                "activation": self.activation,
                "dropout": self.dropout,
                "pooling": self.pooling,
                "feature_key": self.feature_key,
            }
        )
        return config
