"""LoRA adapters on a Keras-native backbone, through Keras' own `enable_lora`.

Keras gives Dense, EinsumDense, Embedding and convolution layers low-rank
adapters: the layer's kernel W is frozen and two small trainable factors A
(inputs × rank) and B (rank × outputs) add `(lora_alpha / rank)·A·B` to it.
This module picks the layers, reads the merged kernel W + (alpha/r)·A·B for
the source regularizers, keeps the factors across save/load, and merges
them for serving.
"""

import contextlib
import fnmatch

import keras

from tfxfer.backbones.hub_backbone import HubBackbone
from tfxfer.option_errors import OptionValueError
from tfxfer.utils.keras_internals import nested_layers

_CONVOLUTIONS = tuple(
    getattr(keras.layers, name)
    for name in ("Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose")
)
ADAPTABLE_LAYERS = (keras.layers.Dense, keras.layers.EinsumDense, keras.layers.Embedding, *_CONVOLUTIONS)
_KERNEL_FACTORS = ("lora_kernel_a", "lora_kernel_b", "_kernel")
_EMBEDDING_FACTORS = ("lora_embeddings_a", "lora_embeddings_b", "_embeddings")


def check_lora_backbone(backbone):
    """Raises a clear error for backbones whose layers cannot take adapters."""
    if isinstance(backbone, HubBackbone):
        raise ValueError(
            "LoRA needs a Keras-native backbone: a KerasHub preset "
            "(TransferModel.from_preset) or a Keras model passed as the backbone. "
            f"This backbone is the TF Hub module '{backbone.handle}', a fixed graph "
            "whose layers cannot take adapters; fine-tune it with a regularizer "
            "(e.g. tfxfer.regularizers.L2SP) instead."
        )


def lora_target_layers(backbone, targets=None):
    """The backbone's layers that `enable_lora` adapts.

    Args:
        backbone: a KerasHub backbone or a Keras model.
        targets: None for the default (a KerasHub backbone's own
            `default_lora_layer_names()`, the attention query and value
            projections; for other models every Dense, EinsumDense and
            convolution layer), or a list of layer names or shell-style
            patterns (`"*_dense"`) matched against layer names.

    Returns:
        The layers, in the backbone's layer order.

    Example:

    >>> [layer.name for layer in lora_target_layers(backbone, ["query*"])][:1]
    ['query']
    """
    check_lora_backbone(backbone)
    layers = [layer for layer in nested_layers(backbone) if isinstance(layer, ADAPTABLE_LAYERS) and layer.weights]
    if targets is None:
        if hasattr(backbone, "default_lora_layer_names"):
            targets = list(backbone.default_lora_layer_names())
        else:
            return [layer for layer in layers if not isinstance(layer, keras.layers.Embedding)]
    targets = normalized_targets(targets)
    chosen = [layer for layer in layers if any(fnmatch.fnmatchcase(layer.name, t) for t in targets)]
    if not chosen:
        names = sorted({layer.name for layer in layers})
        shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
        raise OptionValueError(
            "No Dense, EinsumDense, Embedding or convolution layer of the backbone matches "
            f"{{targets}} {' '.join(targets)}. Its adaptable layers are named: {shown}.",
            targets=("targets", "--lora-targets"),
        )
    return chosen


def normalized_targets(targets):
    """`targets` as a list of names or patterns: one string is one pattern."""
    if isinstance(targets, str):
        targets = [targets]
    if not isinstance(targets, (list, tuple)) or not targets or not all(isinstance(t, str) and t for t in targets):
        raise OptionValueError(
            f"{{targets}} must be a layer name or pattern, or a non-empty list of them, got {targets!r}.",
            targets=("targets", "--lora-targets"),
        )
    return list(targets)


def layers_the_output_never_reads(backbone, layers, output):
    """The `layers` whose results do not reach `output`, a symbolic output of a Functional backbone.

    Adapters there get no gradient and never train (e.g. the pooler's dense
    layer when the head pools the sequence output). Returns [] when the
    backbone is not Functional, where the graph cannot be read.
    """
    if not hasattr(output, "_keras_history"):
        return []
    feeding, seen, pending = set(), set(), [output]
    while pending:
        tensor = pending.pop()
        if id(tensor) in seen or not hasattr(tensor, "_keras_history"):
            continue
        seen.add(id(tensor))
        operation, node_index, _ = tensor._keras_history
        feeding.add(id(operation))
        pending.extend(operation._inbound_nodes[node_index].input_tensors)
    owners = {id(inner): top for top in backbone.layers for inner in nested_layers(top, include_self=True)}
    return [layer for layer in layers if id(owners.get(id(layer), layer)) not in feeding]


def enable_lora(backbone, rank, targets=None, alpha=None):
    """Adds LoRA adapters of `rank` to the target layers (see `lora_target_layers`).

    Layers that already have adapters of the same rank (e.g. restored from a
    saved config) are left as they are.

    Returns:
        The number of adapted layers.
    """
    if not isinstance(rank, int) or isinstance(rank, bool) or rank < 1:
        raise OptionValueError(f"{{rank}} must be a positive integer, got {rank!r}.", rank=("rank", "--lora-rank"))
    if alpha is not None and (not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or alpha <= 0):
        raise ValueError(f"alpha must be a positive number or None (= rank), got {alpha!r}.")
    layers = lora_target_layers(backbone, targets)
    for layer in layers:
        if layer.lora_enabled:
            if layer.lora_rank != rank:
                raise ValueError(
                    f"Layer '{layer.name}' already has LoRA adapters of rank {layer.lora_rank}; got rank={rank}."
                )
            continue
        layer.enable_lora(rank, lora_alpha=alpha)
    return len(layers)


def lora_layers(backbone):
    """The backbone's layers that have LoRA adapters."""
    return [
        layer
        for layer in nested_layers(backbone)
        if isinstance(layer, ADAPTABLE_LAYERS) and getattr(layer, "lora_enabled", False)
    ]


def lora_factors(layer):
    """`(A, B, frozen_base)` variables of an adapted layer."""
    names = _EMBEDDING_FACTORS if isinstance(layer, keras.layers.Embedding) else _KERNEL_FACTORS
    return tuple(getattr(layer, name) for name in names)


def merged_kernel(layer):
    """W + (alpha/rank)·A·B, the kernel (or embedding table) the layer computes with."""
    return layer.embeddings if isinstance(layer, keras.layers.Embedding) else layer.kernel


def is_lora_factor(weight):
    """Whether a variable is a LoRA factor (A or B)."""
    return weight.path.rsplit("/", 1)[-1].split(":")[0].startswith("lora_")


@contextlib.contextmanager
def merged_lora(backbone):
    """Within the block, adapted layers compute with one merged kernel.

    The base kernels hold W + (alpha/rank)·A·B and the layers skip the
    adapter branch, so functions traced here (exports) have no LoRA ops;
    afterwards the base kernels and adapters are as they were.
    """
    layers = lora_layers(backbone)
    saved = []
    try:
        for layer in layers:
            _, _, base = lora_factors(layer)
            # A tensor read from a variable can share its buffer: copy to numpy.
            original = keras.ops.convert_to_numpy(base).copy()
            merged = keras.ops.convert_to_numpy(merged_kernel(layer))
            saved.append((layer, base, original))
            base.assign(merged)
            layer.lora_enabled = False
            _hide_factors_from_saving(layer)
        yield layers
    finally:
        for layer, base, original in saved:
            base.assign(original)
            layer.lora_enabled = True
            layer.__dict__.pop("_trackable_children", None)


def _hide_factors_from_saving(layer):
    """A SavedModel written from `layer` leaves out its (merged, unused) factors A and B.

    TensorFlow saves every variable a layer tracks, through its attributes
    and its variable lists; the factors are dropped from both.
    """
    factors = {id(factor) for factor in lora_factors(layer)[:2]}
    children_of = type(layer)._trackable_children

    def children_without_factors(save_type="checkpoint", **kwargs):
        children = children_of(layer, save_type, **kwargs)
        if save_type != "savedmodel":
            return children
        kept = {}
        for name, child in children.items():
            if id(child) in factors:
                continue
            if isinstance(child, list):
                child = [item for item in child if id(item) not in factors]
            kept[name] = child
        return kept

    # An instance attribute, set past Keras' attribute tracking, shadows the method for this layer only.
    object.__setattr__(layer, "_trackable_children", children_without_factors)


@keras.saving.register_keras_serializable(package="tfxfer")
class LoraFactors(keras.layers.Layer):
    """Keeps LoRA factors across `save`/`load_weights`.

    Keras saves an adapted layer's kernel already merged (W + s·A·B) and
    resets A and B to zero on load, after which both factors get zero
    gradients and training cannot continue. A model with adapters keeps
    this layer beside them: it saves A and B, and on load (which Keras
    runs after the adapted layers') puts them back and takes s·A·B out of
    the loaded kernel again, so a resumed run continues exactly.

    Args:
        backbone: the adapted backbone.
    """

    def __init__(self, backbone, **kwargs):
        super().__init__(trainable=False, **kwargs)
        self._adapted = _Untracked(lora_layers(backbone))
        self.built = True

    def save_own_variables(self, store):
        for index, layer in enumerate(self._adapted.value):
            a, b, _ = lora_factors(layer)
            store[f"{index}_a"] = keras.ops.convert_to_numpy(a)
            store[f"{index}_b"] = keras.ops.convert_to_numpy(b)

    def load_own_variables(self, store):
        for index, layer in enumerate(self._adapted.value):
            if f"{index}_a" not in store:
                continue  # saved before adapters were enabled: nothing to restore
            a, b, base = lora_factors(layer)
            a.assign(store[f"{index}_a"])
            b.assign(store[f"{index}_b"])
            scale = layer.lora_alpha / layer.lora_rank
            base.assign(base - scale * keras.ops.matmul(a, b))

    def call(self, *args, **kwargs):
        raise TypeError("LoraFactors holds state for saving; it is not called.")


class _Untracked:
    """Hides layers from Keras' tracking (they belong to the backbone)."""

    def __init__(self, value):
        self.value = value


def check_targets_reach_the_head(model, layers):
    """Refuses adapters on `layers` that the head's input never depends on (they would never train)."""
    try:  # only a Functional backbone has a graph to read
        output = model.backbone.output
        features = model.head.selected_features(output)
    except (AttributeError, ValueError):
        return
    unread = layers_the_output_never_reads(model.backbone, layers, features)
    if unread:
        read = next((key for key, value in output.items() if value is features), "output")
        raise OptionValueError(
            f"LoRA: the head reads the backbone's {read!r} ({{pooling}}), which layers "
            f"{sorted({layer.name for layer in unread})} never reach, so adapters there would never "
            "train; "
            "leave them out of {targets}, or choose a pooling that reads them.",
            targets=("targets", "--lora-targets"),
            pooling=(f"pooling={model.pooling!r}", f"--pooling {model.pooling}"),
        )
