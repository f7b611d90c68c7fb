"""Intermediate feature maps of a backbone and of its frozen pretrained copy (for DELTA)."""

import logging
import weakref

import keras
import numpy as np
import tensorflow as tf

from tfxfer.backbones.hub_backbone import HubBackbone
from tfxfer.data.length_bucketing import padding_mask_of
from tfxfer.models.model_inputs import pooling_mask
from tfxfer.option_errors import OptionValueError

logger = logging.getLogger("tfxfer")

# Per model, the taps on its backbone and on its source copy: helper models
# that share their layers, kept out of Keras' tracking of the model.
_TAPS = weakref.WeakKeyDictionary()


def forward_with_feature_maps(model, x, training):
    """`(predictions, pooled features, DELTA's (current, source, attention, mask) per map)` for preprocessed `x`."""
    layers = model.regularizer.feature_map_regularizer.layers
    mask = pooling_mask(x) if model.pooling == "masked_avg" else None
    if layers is None:
        outputs = model.backbone(x, training=training)
        features = model.head.pool(outputs, mask)
        maps = [features]
        source_maps = [model.head.pool(model.source_backbone(x, training=False), mask)]
    else:
        if model not in _TAPS:
            _TAPS[model] = (FeatureMapTap(model.backbone, layers), FeatureMapTap(model.source_backbone, layers))
        tap, source_tap = _TAPS[model]
        outputs, maps = tap(x, training=training)
        _, source_maps = source_tap(x, training=False)
        features = model.head.pool(outputs, mask)
    token_mask = padding_mask_of(x) if model.modality == "text" else None
    attention = model.feature_attention.weights_per_map
    triples = [
        (current, source, weights, token_mask if len(current.shape) == 3 else None)
        for current, source, weights in zip(maps, source_maps, attention)
    ]
    return model.head.classify(features, training=training), features, triples


def needs_feature_attention(model):
    """Whether DELTA's channel attention is still to be measured before this `fit`."""
    return (
        model.feature_attention is not None
        and model.regularizer.feature_map_regularizer.attention
        and not model.feature_attention.is_measured
        and bool(model.backbone.trainable_weights)
    )


def measure_feature_attention(model, x, y=None, batch_size=None):
    """DELTA's channel attention, once, from the model as it is at the first backbone-training fit.

    `x` is `fit`'s dataset of `(inputs, labels)`, or arrays with labels `y`.
    """
    from tfxfer.regularizers.delta import attention_from_importance

    delta = model.regularizer.feature_map_regularizer
    data = x if isinstance(x, tf.data.Dataset) else tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size or 32)
    if isinstance(data, tf.data.Dataset) and model.preprocessor is not None:
        data = data.map(model.preprocess_samples, num_parallel_calls=tf.data.AUTOTUNE)
    importance = channel_importance(model, data, delta.attention_batches)
    model.feature_attention.set_attention([attention_from_importance(i, delta.temperature) for i in importance])
    logger.info("DELTA: channel attention measured on %d training batches.", delta.attention_batches)


def source_copy(backbone):
    """A frozen copy of `backbone` with its current (pretrained) weights.

    A TF Hub module is loaded again from its handle; a Keras backbone is
    rebuilt from its config and given the weights.
    """
    if isinstance(backbone, HubBackbone):
        copy = HubBackbone(
            backbone.handle,
            trainable=False,
            output_key=backbone.output_key,
            signature=backbone.signature,
            arguments=backbone.arguments,
            name="source_backbone",
        )
    else:
        config = keras.saving.serialize_keras_object(backbone)
        config["config"] = {**config["config"], "name": "source_backbone"}
        copy = keras.saving.deserialize_keras_object(config)
        copy.set_weights(backbone.get_weights())
    copy.trainable = False
    return copy


def check_feature_map_layers(backbone, layers):
    """Raises a clear error unless each of `layers` names a feature map of the backbone.

    A feature map is an output of a TF Hub module's dict, or the output of a
    top-level layer of a Keras backbone that is not an input and has a
    known channel count.
    """
    if layers is None:
        return
    spelling = {"layers": ("layers", "--delta-layers")}
    if isinstance(backbone, HubBackbone) and not isinstance(backbone.output_structure, dict):
        raise OptionValueError(
            "DELTA: this TF Hub module has a single output, the features the head reads, so it has no "
            "intermediate feature maps to choose from; leave out {layers} and DELTA regularizes that output.",
            **spelling,
        )
    available = _available_names(backbone)
    inputs = [name for name in layers if name in _input_names(backbone)]
    if inputs:
        raise OptionValueError(
            f"DELTA: {inputs} {'is an input' if len(inputs) == 1 else 'are inputs'} of the backbone, not "
            f"feature maps; give {{layers}} among: {_listed(available)}.",
            **spelling,
        )
    missing = [name for name in layers if _base_name(name) not in available]
    if missing:
        kind = "outputs" if isinstance(backbone, HubBackbone) else "top-level layers"
        raise OptionValueError(
            f"DELTA: the backbone has no {kind} named {missing} for {{layers}}. Its {kind} are: {_listed(available)}.",
            **spelling,
        )
    if not isinstance(backbone, HubBackbone):
        for name in layers:
            channels = _layer_channels(backbone, name)
            if channels is None:
                raise OptionValueError(
                    f"DELTA: the output of layer {name!r} has no fixed channel count (last axis) to weigh, "
                    f"so it cannot be a feature map; give {{layers}} among: {_listed(available)}.",
                    **spelling,
                )


def feature_map_channels(backbone, layers):
    """The channel count (last axis) of each feature map `layers` select."""
    if isinstance(backbone, HubBackbone):
        structure = backbone.output_structure
        return [int(spec.shape[-1]) for spec in _hub_maps(structure, layers)]
    return [int(backbone.get_layer(name).output.shape[-1]) for name in layers]


class FeatureMapTap:
    """Runs a backbone once and returns its outputs and the chosen feature maps.

    Args:
        backbone: a `HubBackbone` or a Functional Keras backbone.
        layers: names of top-level layers (Keras) or output keys (TF Hub;
            `"encoder_outputs"` gives each element of a list output,
            `"encoder_outputs/3"` one of them).
    """

    def __init__(self, backbone, layers):
        self.backbone = backbone
        self.layers = list(layers)
        self._tap = None
        if not isinstance(backbone, HubBackbone):
            self._tap = keras.Model(
                backbone.inputs,
                {"outputs": backbone.output, "maps": [backbone.get_layer(name).output for name in self.layers]},
            )

    def __call__(self, x, training=False):
        if self._tap is not None:
            result = self._tap(x, training=training)
            return result["outputs"], list(result["maps"])
        outputs = self.backbone(x, training=training)
        if not isinstance(outputs, dict):
            raise ValueError(
                "DELTA layers need a TF Hub module that returns a dict of outputs; this one returns one "
                "tensor (leave out output_key, or use layers=None for the features the head reads)."
            )
        return outputs, _hub_maps(outputs, self.layers)


class FeatureAttention(keras.layers.Layer):
    """DELTA's channel attention, one weight vector per feature map, kept with the model.

    Starts at equal weights (1/C) and not `measured`; DELTA's attention is
    measured once, at the first `fit` that trains the backbone.
    """

    def __init__(self, channels, **kwargs):
        super().__init__(trainable=False, **kwargs)
        self.channels = [int(count) for count in channels]
        self.weights_per_map = [
            self.add_weight(
                shape=(count,),
                initializer=keras.initializers.Constant(1.0 / count),
                trainable=False,
                name=f"attention_{index}",
            )
            for index, count in enumerate(self.channels)
        ]
        self.measured = self.add_weight(shape=(), initializer="zeros", trainable=False, name="measured")
        self.built = True

    @property
    def is_measured(self):
        return bool(self.measured.numpy() > 0)

    def set_attention(self, attention):
        for variable, values in zip(self.weights_per_map, attention):
            variable.assign(np.asarray(values, np.float32))
        self.measured.assign(1.0)

    def call(self, *args, **kwargs):
        raise TypeError("FeatureAttention holds DELTA's channel weights; it is not called.")


def channel_importance(model, dataset, batches):
    """Per feature map, each channel's first-order loss increase when zeroed, averaged over batches.

    For channel c of map FM the increase of the loss L when FM_c is set to
    zero is about −Σ FM_c·∂L/∂FM_c (summed over positions, averaged over
    examples): one backward pass gives it for every channel at once.
    """
    totals, count = None, 0
    for data in dataset.take(batches):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        increases = _first_order_increase(model, x, y, sample_weight)
        totals = increases if totals is None else [a + b for a, b in zip(totals, increases)]
        count += 1
    if not count:
        raise ValueError("DELTA needs at least one training batch to measure its channel attention.")
    return [total / count for total in totals]


def _first_order_increase(model, x, y, sample_weight):
    with tf.GradientTape() as tape:
        y_pred, _, triples = forward_with_feature_maps(model, x, training=False)
        maps = [current for current, *_ in triples]
        loss = model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=False)
    gradients = tape.gradient(loss, maps)
    increases = []
    for feature_map, gradient in zip(maps, gradients):
        if gradient is None:
            increases.append(np.zeros(feature_map.shape[-1], np.float64))
            continue
        product = -tf.cast(feature_map, tf.float32) * tf.cast(gradient, tf.float32)
        axes = list(range(len(product.shape) - 1))
        # The loss is a batch mean: its gradient is already divided by the batch size.
        increases.append(tf.reduce_sum(product, axis=axes).numpy().astype(np.float64))
    return increases


def _available_names(backbone):
    if isinstance(backbone, HubBackbone):
        structure = backbone.output_structure
        return set(structure) if isinstance(structure, dict) else set()
    inputs = _input_names(backbone)
    return {
        layer.name for layer in backbone.layers if layer.name not in inputs and _layer_channels(backbone, layer.name)
    }


def _input_names(backbone):
    if isinstance(backbone, HubBackbone):
        return set()
    return {layer.name for layer in backbone.layers if isinstance(layer, keras.layers.InputLayer)}


def _layer_channels(backbone, name):
    """The last axis of a layer's single output, or None when it has no fixed one."""
    try:
        output = backbone.get_layer(name).output
    except (AttributeError, ValueError):  # a layer called more than once has no single output
        return None
    if not hasattr(output, "shape") or not output.shape or output.shape[-1] is None:
        return None
    return int(output.shape[-1])


def _listed(names, limit=40):
    names = sorted(names)
    return ", ".join(names[:limit]) + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def _base_name(name):
    return name.split("/", 1)[0]


def _hub_maps(outputs, layers):
    maps = []
    for name in layers:
        key, _, index = name.partition("/")
        value = outputs[key]
        if isinstance(value, (list, tuple)):
            maps.extend([value[int(index)]] if index else list(value))
        else:
            maps.append(value)
    return maps


def delta_state(backbone, regularizer, head):
    """`(source backbone, FeatureAttention)` for a DELTA regularizer, else `(None, None)`."""
    delta = None if regularizer is None else regularizer.feature_map_regularizer
    if delta is None:
        return None, None
    check_feature_map_layers(backbone, delta.layers)
    channels = feature_map_channels(backbone, delta.layers) if delta.layers else [head.dense.kernel.shape[0]]
    return source_copy(backbone), FeatureAttention(channels, name="feature_attention")
