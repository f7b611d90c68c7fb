"""The base of the source-parameter regularizers and how they compose."""

import keras
import tensorflow as tf
from keras import ops

KERNEL, BIAS, NORMALIZATION = "kernel", "bias", "normalization"
_NORMALIZATION_NAMES = ("gamma", "beta", "scale", "offset")


def weight_kind(path):
    """Classifies a weight by its path: kernel, bias or normalization.

    Kernels are convolution and dense kernels and embedding tables;
    normalization weights are BatchNorm/LayerNorm scales and offsets.

    Example:

    >>> weight_kind("b0_bn1/gamma"), weight_kind("dense/bias")
    ('normalization', 'bias')
    """
    name = path.rsplit("/", 1)[-1].split(":")[0]
    if name in _NORMALIZATION_NAMES:
        return NORMALIZATION
    if name == "bias" or name.endswith("_bias"):
        return BIAS
    return KERNEL


class SourceRegularizer:
    """Base class: a penalty computed from the weights inside `train_step`.

    A regularizer sees three things each training step:
    - `pretrained`: `(weight, source_weight, kind)` triples for the
      trainable pretrained weights it selects (`source_weight` is w⁰, the
      value captured when the model was built; None when the regularizer
      does not need it);
    - `head`: `(weight, kind)` pairs for the trainable weights of the new
      head;
    - `features`: the pooled backbone features of the batch (only for
      regularizers with `needs_features`).

    It returns a float32 scalar. Subclasses implement `penalty`; they
    compose with `+` and serialize through `get_config`.

    Args:
        alpha: strength on the pretrained weights.
        beta: strength of beta/2·‖w‖² on the new head.
        include_bias: also penalise biases (kernels only by default, as the
            L2-SP authors' code does).
        include_batchnorm: also penalise normalization scales and offsets
            (BatchNorm and LayerNorm γ, β).
    """

    needs_source_weights = True
    needs_features = False
    needs_feature_maps = False
    # Co-Tuning: the source classifier's logits and each example's soft source labels.
    needs_source_predictions = False

    def __init__(self, alpha=0.0, beta=0.0, include_bias=False, include_batchnorm=False):
        for name, value in (("alpha", alpha), ("beta", beta)):
            if not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{type(self).__name__}: {name} must be a number >= 0, got {value!r}.")
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.include_bias = bool(include_bias)
        self.include_batchnorm = bool(include_batchnorm)

    @property
    def feature_map_regularizer(self):
        """The part of this regularizer that reads feature maps (DELTA), or None."""
        return self if self.needs_feature_maps else None

    @property
    def co_tuning_component(self):
        """The part of this regularizer that trains the source classifier (Co-Tuning), or None."""
        return self if self.needs_source_predictions else None

    def selects(self, kind):
        """Whether weights of this kind are penalised."""
        return (
            kind == KERNEL or (kind == BIAS and self.include_bias) or (kind == NORMALIZATION and self.include_batchnorm)
        )

    def __call__(self, pretrained, head, features=None, feature_maps=None, source_predictions=None):
        pretrained = [(weight, source, kind) for weight, source, kind in pretrained if self.selects(kind)]
        head = [(weight, kind) for weight, kind in head if self.selects(kind)]
        if self.needs_feature_maps:
            return ops.cast(self.penalty(pretrained, head, features, feature_maps=feature_maps), "float32")
        if self.needs_source_predictions:
            return ops.cast(self.penalty(pretrained, head, features, source_predictions=source_predictions), "float32")
        return ops.cast(self.penalty(pretrained, head, features), "float32")

    def penalty(self, pretrained, head, features):
        raise NotImplementedError

    def head_penalty(self, head):
        """beta/2·Σ‖w‖² over the head's selected weights."""
        if not self.beta or not head:
            return ops.zeros((), "float32")
        total = tf.add_n([tf.nn.l2_loss(_float32(weight)) for weight, _ in head])
        return self.beta * total

    def __add__(self, other):
        if not isinstance(other, SourceRegularizer):
            return NotImplemented
        return CompositeRegularizer([self, other])

    def get_config(self):
        return {
            "alpha": self.alpha,
            "beta": self.beta,
            "include_bias": self.include_bias,
            "include_batchnorm": self.include_batchnorm,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        arguments = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({arguments})"


@keras.saving.register_keras_serializable(package="tfxfer")
class CompositeRegularizer(SourceRegularizer):
    """The sum of several regularizers, e.g. `L2SP(...) + BSS(...)`.

    Each component selects its own weights; w⁰ is kept for the union.
    """

    def __init__(self, components):
        flat = []
        for component in components:
            if isinstance(component, dict):
                component = keras.saving.deserialize_keras_object(component)
            if isinstance(component, CompositeRegularizer):
                flat.extend(component.components)
            else:
                flat.append(component)
        self.components = flat

    @property
    def needs_source_weights(self):
        return any(c.needs_source_weights for c in self.components)

    @property
    def needs_features(self):
        return any(c.needs_features for c in self.components)

    @property
    def needs_feature_maps(self):
        return any(c.needs_feature_maps for c in self.components)

    @property
    def needs_source_predictions(self):
        return any(c.needs_source_predictions for c in self.components)

    @property
    def feature_map_regularizer(self):
        return next((c for c in self.components if c.needs_feature_maps), None)

    @property
    def co_tuning_component(self):
        return next((c for c in self.components if c.needs_source_predictions), None)

    def selects(self, kind):
        return any(c.selects(kind) for c in self.components)

    def __call__(self, pretrained, head, features=None, feature_maps=None, source_predictions=None):
        return sum(
            component(pretrained, head, features, feature_maps, source_predictions) for component in self.components
        )

    def get_config(self):
        return {"components": [keras.saving.serialize_keras_object(c) for c in self.components]}

    def __repr__(self):
        return " + ".join(repr(c) for c in self.components)


def _float32(tensor):
    return ops.cast(tensor, "float32")
