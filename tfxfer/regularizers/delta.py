"""DELTA: keeping the backbone's feature maps near the source model's."""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from tfxfer.regularizers.source_regularizer import SourceRegularizer


@keras.saving.register_keras_serializable(package="tfxfer")
class DELTA(SourceRegularizer):
    """DELTA (Li et al., ICLR 2019): feature maps regularized toward the source model's.

    penalty = alpha/2 · mean over the batch of Σ_layers C · Σ_c a_c ·
    ‖FM_c(x; w) − FM_c(x; w⁰)‖² / P + beta/2·‖w_head‖², where FM_c is
    channel c of a chosen layer's output (P positions: pixels, or the
    unpadded tokens of a text), C the channel count and a the layer's
    channel attention (summing to 1), as TLlib's
    `AttentionBehavioralRegularization` computes it (TLlib sums over the
    batch; here it is averaged, so alpha does not depend on the batch
    size). FM(x; w⁰) comes from a frozen copy of the pretrained backbone run
    on the same batch inside the train step: one extra forward pass.

    The attention says which channels matter for the task: the loss
    increase when the channel is zeroed, standardized over the layer's
    channels and passed through softmax(·/`temperature`), as in TLlib. It is
    measured once, at the start of the first `fit` that trains the backbone,
    on `attention_batches` training batches with the model as it is then (so
    after a head phase, as `two_phase` runs it: TLlib trains a head on the
    frozen backbone first too). TLlib zeroes each channel in turn, one
    forward pass per channel; here the increase is its first-order estimate
    −Σ FM_c·∂loss/∂FM_c, one backward pass in all. Channels whose output
    does not reach the loss (a TF Hub output the head does not read) get
    equal weights. `attention=False` gives every channel the weight 1/C
    (TLlib's plain `BehavioralRegularization`, up to that factor).

    The model keeps the source copy and the attention as state, so a
    resumed run penalises the distance to the original model.

    Args:
        alpha: strength of the feature-map term (TLlib's
            `trade_off_backbone`).
        beta: strength of beta/2·‖w‖² on the new head.
        layers: the backbone layers whose outputs are regularized: names of
            layers of a Keras-native backbone (e.g. KerasHub's
            `"transformer_layer_3"`), or, for a TF Hub module, keys of the
            outputs it exposes (e.g. `"sequence_output"`). None: the
            backbone's output (the features the head reads).
        attention: weight channels by their measured importance (True) or
            equally (False).
        attention_batches: training batches used to measure the attention.
        temperature: softmax temperature of the attention (TLlib: 5).

    Example:

    >>> regularizer = tfxfer.regularizers.DELTA(
    ...     alpha=0.01, beta=0.01, layers=["transformer_layer_3", "transformer_layer_5"])
    """

    needs_source_weights = False
    needs_feature_maps = True

    def __init__(self, alpha=0.01, beta=0.01, layers=None, attention=True, attention_batches=8, temperature=5.0):
        super().__init__(alpha=alpha, beta=beta)
        if layers is not None:
            if isinstance(layers, str) or not isinstance(layers, (list, tuple)) or not layers:
                raise ValueError(f"DELTA: layers must be a non-empty list of layer or output names, got {layers!r}.")
            layers = [str(name) for name in layers]
        if not isinstance(attention_batches, int) or isinstance(attention_batches, bool) or attention_batches < 1:
            raise ValueError(f"DELTA: attention_batches must be a positive integer, got {attention_batches!r}.")
        if not isinstance(temperature, (int, float)) or temperature <= 0:
            raise ValueError(f"DELTA: temperature must be a positive number, got {temperature!r}.")
        self.layers = layers
        self.attention = bool(attention)
        self.attention_batches = attention_batches
        self.temperature = float(temperature)

    def penalty(self, pretrained, head, features, feature_maps=None):
        total = self.head_penalty(head)
        if not self.alpha or not feature_maps:
            return total
        distance = tf.add_n([_weighted_distance(*maps) for maps in feature_maps])
        return total + self.alpha * 0.5 * distance

    def get_config(self):
        return {
            "alpha": self.alpha,
            "beta": self.beta,
            "layers": self.layers,
            "attention": self.attention,
            "attention_batches": self.attention_batches,
            "temperature": self.temperature,
        }


def _weighted_distance(current, source, attention, padding_mask=None):
    """Mean over the batch of C·Σ_c a_c·‖current_c − source_c‖²/P."""
    current = ops.cast(current, "float32")
    source = ops.stop_gradient(ops.cast(source, "float32"))
    squared = ops.square(current - source)
    rank = len(current.shape)
    channels = ops.cast(ops.shape(current)[-1], "float32")
    if rank == 2:
        per_channel = squared
    else:
        spatial = list(range(1, rank - 1))
        if padding_mask is not None and rank == 3:
            mask = ops.cast(padding_mask, "float32")[:, :, None]
            per_channel = ops.sum(squared * mask, axis=1) / ops.maximum(ops.sum(mask, axis=1), 1.0)
        else:
            per_channel = ops.mean(squared, axis=spatial)
    return ops.mean(channels * ops.sum(per_channel * ops.cast(attention, "float32")[None, :], axis=-1))


def attention_from_importance(importance, temperature=5.0):
    """TLlib's channel attention: softmax(standardized importance / temperature).

    Importances that do not vary (e.g. all zero) give equal weights.

    Example:

    >>> attention_from_importance(np.array([0.0, 1.0, 2.0])).round(3)
    array([0.256, 0.327, 0.417], dtype=float32)
    """
    importance = np.asarray(importance, np.float64)
    spread = importance.std()
    if not np.isfinite(spread) or spread < 1e-12:
        return np.full(importance.shape, 1.0 / importance.size, np.float32)
    scaled = (importance - importance.mean()) / spread / temperature
    weights = np.exp(scaled - scaled.max())
    return (weights / weights.sum()).astype(np.float32)
