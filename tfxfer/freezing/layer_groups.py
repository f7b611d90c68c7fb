"""Splitting a backbone into ordered layer groups (blocks).

One function decides what a "layer group" is for every kind of backbone, so
`TransferModel.unfreeze(top=k)`, gradual unfreezing, discriminative
learning rates and `tfxfer info` all count the same units: the backbone's
declaration where it has one (`tfxfer.freezing.group_declarations`), else
groups inferred from variable paths.
"""

import dataclasses
import re

from tfxfer.freezing.group_declarations import group_declarations, module_layout_declaration
from tfxfer.utils.keras_internals import nested_layers, trainable_capable_weights

# A block name is the leading part of a variable path up to its first
# numbered component: "b3_bn1/gamma" -> "b3", "block6a_expand_conv/kernel"
# -> "block6a", "transformer_layer_0/..." -> "transformer_layer_0".
_NUMBERED_BLOCK = re.compile(r"^(\D*?\d+[a-z]?)(?=[_/]|$)")
# ...but "conv2d_3" is a layer named after its dimensionality, not block 2.
_DIMENSIONAL_LAYER = re.compile(r"(conv|pooling|sampling|padding|cropping|dropout)\d+d$")


@dataclasses.dataclass
class LayerGroup:
    """A named, ordered group of backbone weights (a block or a layer).

    `declared` says whether a declaration named the group (False: inferred
    from variable paths).
    """

    name: str
    weights: list
    declared: bool = False

    @property
    def trainable_weights(self):
        return [weight for weight in self.weights if weight.trainable]


def group_name(variable_path):
    """The layer group a variable belongs to, from its path.

    Example:

    >>> group_name("b3_bn1/gamma")
    'b3'
    >>> group_name("transformer_layer_0/self_attention_layer/query/kernel")
    'transformer_layer_0'
    >>> group_name("stem_conv/kernel")
    'stem_conv'
    """
    first = variable_path.split("/", 1)[0]
    match = _NUMBERED_BLOCK.match(first)
    if match and not _DIMENSIONAL_LAYER.search(match.group(1)):
        return match.group(1)
    # No numbered block: the layer itself is the group.
    return _layer_name(variable_path)


def layer_groups(backbone):
    """Splits a backbone's trainable-capable weights into ordered groups.

    Groups run from the input to the output, in the order their weights
    first appear (module order for `HubBackbone`, layer order for Keras
    models such as KerasHub backbones). Only weights that can be trained
    are grouped (BatchNorm moving statistics are not), whatever the current
    `trainable` flags say.

    The backbone's declaration (`group_declaration_for`) names the groups
    where it has one; weights it leaves out, and backbones without one, get
    the group `group_name` infers from their path.

    Example:

    >>> [group.name for group in layer_groups(model.backbone)][-3:]
    ['b14', 'b15', 'head']

    Raises:
        ValueError: the declaration, or one of its rules, matches no weight.
    """
    named = named_backbone_weights(backbone)
    declarations = declarations_for(backbone, named)
    if not declarations:
        groups = _group_by(named, group_name)
        if len(groups) < 2:
            # Everything fell into one numbered prefix (e.g. a wrapping model's
            # name): fall back to one group per layer.
            groups = _group_by(named, _layer_name)
        return [LayerGroup(name, weights) for name, weights in groups.items()]
    declared = {}
    for declaration in declarations:  # a weight the first leaves out goes to the next
        for path, name in declaration.group_names(named, _describe(backbone)).items():
            declared.setdefault(path, name)
    groups = _group_by(named, lambda path: declared[path] if path in declared else group_name(path))
    declared_names = set(declared.values())
    return [LayerGroup(name, weights, declared=name in declared_names) for name, weights in groups.items()]


def declarations_for(backbone, named_weights=None):
    """The `GroupDeclaration`s naming `backbone`'s groups, first wins: its own, a registered one, a module layout.

    Each names the weights those before it leave out; weights none names
    are inferred. Empty where every group is inferred.

    Example:

    >>> [declaration.source for declaration in declarations_for(model.backbone)]
    ["tfxfer's layer groups for the EfficientNet-Lite feature vector module layout"]
    """
    declarations = group_declarations(backbone)
    if getattr(backbone, "module_weights", None) is not None:
        layout = module_layout_declaration(named_weights or named_backbone_weights(backbone))
        if layout is not None:
            declarations.append(layout)
    return declarations


def group_declaration_for(backbone, named_weights=None):
    """The first `GroupDeclaration` naming `backbone`'s groups (see `declarations_for`), or None where inferred."""
    declarations = declarations_for(backbone, named_weights)
    return declarations[0] if declarations else None


def _describe(backbone):
    handle = getattr(backbone, "handle", None)
    return f"{type(backbone).__name__} '{backbone.name}'" + (f" (module '{handle}')" if handle else "")


def _group_by(named_weights, key):
    groups = {}
    for path, weight in named_weights:
        groups.setdefault(key(path), []).append(weight)
    return groups


def _layer_name(variable_path):
    parts = variable_path.split("/")
    return "/".join(parts[:-1]) if len(parts) > 1 else parts[0]


def named_backbone_weights(backbone):
    module_weights = getattr(backbone, "module_weights", None)
    if module_weights is not None:
        capable = {id(weight) for weight in trainable_capable_weights(backbone)}
        return [(name, weight) for name, weight in module_weights if id(weight) in capable]
    capable = set()
    for layer in nested_layers(backbone, include_self=True):
        capable.update(id(weight) for weight in trainable_capable_weights(layer))
    prefix = f"{backbone.name}/"
    named = []
    for weight in backbone.weights:
        if id(weight) not in capable:
            continue
        path = weight.path
        named.append((path[len(prefix) :] if path.startswith(prefix) else path, weight))
    return named


def named_backbone_variables(backbone):
    """`(path, variable)` for every float variable of the backbone, trainable or not.

    Paths are as in `named_backbone_weights` (relative to the backbone);
    BatchNorm statistics are included. LoRA factors are left out: they are
    not part of the pretrained network.

    Example:

    >>> [path for path, _ in named_backbone_variables(model.backbone)][:1]
    ['conv1/kernel']
    """
    module_weights = getattr(backbone, "module_weights", None)
    if module_weights is not None:
        pairs = list(module_weights)
    else:
        prefix = f"{backbone.name}/"
        pairs = [(w.path[len(prefix) :] if w.path.startswith(prefix) else w.path, w) for w in backbone.weights]
    return [
        (path, weight)
        for path, weight in pairs
        if "float" in str(weight.dtype) and not path.rsplit("/", 1)[-1].startswith("lora_")
    ]
