"""Layer-group declarations: a backbone says how its weights form groups.

`tfxfer.layer_groups` infers groups from variable paths, which works for
most networks but not all (a BERT pooler that `masked_avg` pooling never
uses would count as the top group, so gradual unfreezing's first step would
train a dead layer). A backbone can therefore *declare* its groups, like
timm's `group_matcher`: an ordered list of `(group name, regex)` rules over
the backbone's variable paths.

- A path belongs to the first rule whose regex matches its start
  (`re.match`). The name may use the regex's groups: `("layer_\\1",
  r"encoder/layer_(\\d+)/")` makes one group per layer.
- Rules that give the same name merge their weights into one group.
- Groups keep the backbone's own order (input to output): a group sits where
  its first weight is, so rules name and merge groups but do not reorder them.
- Weights no rule matches go to the next declaration in the order below,
  and those none matches keep their inferred group (`group_name`), so a
  declaration may cover only one part.
- A rule that matches no weight is a ValueError naming the backbone and
  where the declaration came from: a regex with a typo must not pass silently.

Where declarations come from, in order (the first that matches a weight names its group):

1. the backbone's own `layer_groups` attribute (`HubBackbone(layer_groups=...)`,
   saved in its config; any Keras layer may set one);
2. `register_layer_groups(class or class name, ...)`, looked up along the
   backbone's class hierarchy; tfxfer registers KerasHub's BERT-style
   backbones this way (keras-hub classes are not modified);
3. for TF Hub modules, a known module layout the module's variables fit
   exactly: EfficientNet-Lite from tfhub.dev, a BERT encoder exported from
   KerasHub (same groups as `BertBackbone`);
4. none: inference.

Example:

>>> register_layer_groups("MyEncoder", [("embeddings", r"embed"), ("block_\\1", r"block_(\\d+)/")])
"""

import dataclasses
import re


@dataclasses.dataclass(frozen=True)
class GroupDeclaration:
    """Rules naming a backbone's layer groups, and who declared them.

    Attributes:
        rules: `((group name, regex), ...)`, checked in order.
        source: who declared them, for messages, e.g.
            `"tfxfer's declaration for BertBackbone"`.
    """

    rules: tuple
    source: str

    def group_names(self, named_weights, backbone_description):
        """`{path: group name}` for the paths a rule matches.

        Raises:
            ValueError: a rule (or the whole declaration) matches no weight.
        """
        compiled = [(name, re.compile(pattern)) for name, pattern in self.rules]
        names, used = {}, set()
        for path, _ in named_weights:
            for index, (name, pattern) in enumerate(compiled):
                match = pattern.match(path)
                if match:
                    names[path] = _expand(match, name, self.source)
                    used.add(index)
                    break
        if not names:
            raise ValueError(
                f"{backbone_description}: no weight matches {self.source}: none of its patterns "
                f"{[pattern for _, pattern in self.rules]} matches the start of a variable path such as "
                f"{_some_paths(named_weights)}."
            )
        unused = [self.rules[index] for index in range(len(self.rules)) if index not in used]
        if unused:
            raise ValueError(
                f"{backbone_description}: {self.source} has rules that match no weight: {unused}. "
                f"Variable paths look like {_some_paths(named_weights)}; patterns match their start."
            )
        return names


def checked_rules(rules, argument="layer_groups"):
    """`rules` as a tuple of `(name, regex)` string pairs, or None; a clear error when malformed.

    Accepts what a config round trip gives back (lists instead of tuples).

    Example:

    >>> checked_rules([["stem", "stem_"], ["head", "head_"]])
    (('stem', 'stem_'), ('head', 'head_'))
    """
    if rules is None:
        return None
    if isinstance(rules, (str, bytes, dict)) or not hasattr(rules, "__iter__"):
        raise TypeError(
            f"{argument} must be a list of (group name, regex) pairs, e.g. "
            f'[("embeddings", r"embeddings"), ("layer_\\\\1", r"layer_(\\d+)/")]. Received: {rules!r}'
        )
    checked = []
    for rule in rules:
        if isinstance(rule, (str, bytes)) or len(tuple(rule)) != 2 or not all(isinstance(x, str) for x in rule):
            raise TypeError(f"{argument}: each rule must be a (group name, regex) pair of strings; got {rule!r}.")
        name, pattern = rule
        try:
            re.compile(pattern)
        except re.error as error:
            raise ValueError(f"{argument}: {pattern!r} (group {name!r}) is not a valid regex: {error}.") from None
        checked.append((name, pattern))
    if not checked:
        raise ValueError(f"{argument} is empty; leave it out (None) to infer the groups.")
    return tuple(checked)


# --- Where declarations come from -------------------------------------------

# Class name -> rules or `backbone -> rules` (None: infer, overriding a built-in).
_REGISTRY = {}


def register_layer_groups(backbone_class, rules):
    """Declares the layer groups of every backbone of a class (and its subclasses).

    Args:
        backbone_class: a class or its name (e.g. `"BertBackbone"`); matched
            against the names along a backbone's class hierarchy.
        rules: `(group name, regex)` pairs (see the module docstring), a
            callable `backbone -> rules` for rules that depend on the
            configuration (the number of layers, say), or None to use
            inference for this class (also overrides tfxfer's own
            declaration).

    Example:

    >>> register_layer_groups("BertBackbone", None)  # back to inferred groups
    """
    if not isinstance(backbone_class, (str, type)):
        raise TypeError(
            f"register_layer_groups takes a backbone class or its name, got {type(backbone_class).__name__} "
            f"{backbone_class!r}."
        )
    name = backbone_class if isinstance(backbone_class, str) else backbone_class.__name__
    _REGISTRY[name] = rules if rules is None or callable(rules) else checked_rules(rules)


def group_declarations(backbone):
    """The `GroupDeclaration`s of `backbone` from its own attribute and the registry, first wins.

    Example:

    >>> group_declarations(model.backbone)[0].source
    "tfxfer's layer groups for BertBackbone (replace them with register_layer_groups)"
    """
    declarations = []
    own = getattr(backbone, "layer_groups", None)
    if own is not None and not callable(own):
        declarations.append(GroupDeclaration(checked_rules(own), "the backbone's layer_groups argument"))
    for cls in type(backbone).__mro__:
        if cls.__name__ not in _REGISTRY:
            continue
        rules = _REGISTRY[cls.__name__]
        if rules is None:
            return declarations  # inference below, for this class
        if callable(rules):
            rules = checked_rules(rules(backbone), f"the layer groups registered for {cls.__name__}")
        if _REGISTRY[cls.__name__] is _BUILT_IN.get(cls.__name__):
            source = f"tfxfer's layer groups for {cls.__name__} (replace them with register_layer_groups)"
        else:
            source = f"the layer groups registered for {cls.__name__}"
        declarations.append(GroupDeclaration(rules, source))
        break
    return declarations


def module_layout_declaration(named_weights):
    """The declaration of a known TF Hub module layout that `named_weights` fit exactly, or None."""
    paths = [path for path, _ in named_weights]
    for layout, rules in _HUB_MODULE_LAYOUTS:
        if callable(rules):
            rules = rules(paths)
        patterns = [re.compile(pattern) for _, pattern in rules]
        hits = [[pattern.match(path) is not None for pattern in patterns] for path, _ in named_weights]
        if all(any(row) for row in hits) and all(any(column) for column in zip(*hits)):
            return GroupDeclaration(rules, f"tfxfer's layer groups for the {layout} module layout")
    return None


def _expand(match, name, source):
    try:
        return match.expand(name)
    except (re.error, IndexError) as error:
        raise ValueError(f"{source}: group name {name!r} refers to a group its regex lacks ({error}).") from None


def _some_paths(named_weights, count=3):
    return [path for path, _ in named_weights[:count]]


# --- tfxfer's own declarations ------------------------------------------------

_TRANSFORMER_LAYERS = ("transformer_layer_\\1", r"transformer_layer_(\d+)/")


_BERT_EMBEDDINGS = r"(token|position|segment)_embedding/|embeddings_layer_norm/"


def _bert_style(embeddings, has_pooler):
    """KerasHub BERT-style encoders: embeddings, then one group per transformer layer.

    The pooler (`pooled_dense`, on the [CLS] token) joins the last transformer
    layer: it reads only that layer's output, so unfreezing the top group trains
    the two together when the head uses the pooled output, and when it does not
    (`pooling="masked_avg"`, sequence features) the top group still holds a
    layer that learns, instead of a dead one. Every weight stays in a group, so
    freezing, parameter counts and discriminative rates still cover the pooler.
    """

    def rules(backbone):
        declared = [("embeddings", embeddings), _TRANSFORMER_LAYERS]
        if has_pooler:
            declared.append((f"transformer_layer_{backbone.num_layers - 1}", r"pooled_dense/"))
        return declared

    return rules


_BUILT_IN = {
    "BertBackbone": _bert_style(_BERT_EMBEDDINGS, has_pooler=True),
    "ElectraBackbone": _bert_style(_BERT_EMBEDDINGS, has_pooler=True),
    "DistilBertBackbone": _bert_style(r"token_and_position_embedding/|embeddings_layer_norm/", has_pooler=False),
    # XLMRobertaBackbone subclasses RobertaBackbone.
    "RobertaBackbone": _bert_style(r"embeddings/|embeddings_layer_norm/", has_pooler=False),
}
_REGISTRY.update(_BUILT_IN)

# EfficientNet-Lite as published on tfhub.dev / Kaggle (built with tf_keras):
# stem_conv, stem_bn, blocks b0_... to b15_..., head_conv, head_bn, and in
# the classification module the ImageNet classifier. The stem's and the
# head's conv and BatchNorm form one group each (inference splits them, so
# `top=1` trained only head_bn's scale and shift).
_EFFICIENTNET_LITE = (("stem", r"stem_(conv|bn)/"), ("\\1", r"(b\d+)_"), ("head", r"head_(conv|bn)/"))


def _keras_hub_bert_module(paths):
    """A BERT encoder exported from KerasHub (its variable names): grouped like `BertBackbone`."""
    layers = [int(match.group(1)) for match in map(re.compile(r"transformer_layer_(\d+)/").match, paths) if match]
    last = max(layers, default=0)
    return (("embeddings", _BERT_EMBEDDINGS), _TRANSFORMER_LAYERS, (f"transformer_layer_{last}", r"pooled_dense/"))


_HUB_MODULE_LAYOUTS = (
    ("EfficientNet-Lite feature vector", _EFFICIENTNET_LITE),
    ("EfficientNet-Lite classification", _EFFICIENTNET_LITE + (("classifier", r"classifier/"),)),
    ("KerasHub BERT encoder", _keras_hub_bert_module),
)
