"""The pretrained model's own classifier and Co-Tuning's category relationship (kept with the model).

Co-Tuning (`tfxfer.regularizers.CoTuning`) trains the source task's
classifier beside the new head, on the shared backbone features, toward soft
source labels: for target class t, the row p(y_s | y_t) of the relationship,
the source classifier's softmax averaged over the training examples of class
t (TLlib's "direct" relationship). `SourceClassifier` holds both: its kernel
and bias (trainable, initialised from the pretrained classifier) and the
relationship (measured once, before fine-tuning, and saved: a resumed run
uses the original one). It is training state: exports leave it out.
"""

import os
import pathlib

import keras
import numpy as np
import tensorflow as tf

from tfxfer.backbones.hub_backbone import HubBackbone
from tfxfer.option_errors import OptionValueError
from tfxfer.regularizers.source_regularizer import CompositeRegularizer

# What the source classifier can come from, said once for every refusal (in Python's and the CLI's words).
_SOURCES = (
    "a TF Hub classification module of the same network as the backbone (e.g. efficientnet_lite0_classification "
    "beside efficientnet_lite0_feature_vector), or the Dense top of a Keras model whose body is the backbone (a "
    "KerasHub ImageClassifier's output_dense)",
    "a TF Hub classification module of the same network as --backbone (e.g. efficientnet_lite0_classification "
    "beside efficientnet_lite0_feature_vector)",
)
_SPELLING = {"source_classifier": ("source_classifier", "--source-classifier"), "sources": _SOURCES}


@keras.saving.register_keras_serializable(package="tfxfer")
class SourceClassifier(keras.layers.Layer):
    """The pretrained classifier over the backbone's pooled features, and Co-Tuning's relationship.

    Build one with `from_hub` (the extra dense layer of a TF Hub
    classification module) or `from_dense` (a Keras model's top), and pass
    it, or just the module's handle, as `TransferModel(...,
    source_classifier=...)` with `regularizer=tfxfer.regularizers.CoTuning()`.

    Args:
        num_source_classes: the source task's class count (ImageNet: 1000).
        num_classes: the target task's class count (2 for a single sigmoid
            output); set by the model.
        class_names: the source classes' names in output order (a list,
            the path of a file with one name a line, or `"imagenet"`: the
            WordNet IDs of ImageNet-2012 in the standard order), or None.
        pretrained: the weights to start from (`from_hub` and `from_dense`
            give them); not part of the config.

    Example:

    >>> source = tfxfer.SourceClassifier.from_hub(
    ...     "../shared/models/tfhub/efficientnet_lite0_classification", class_names="imagenet")
    """

    def __init__(self, num_source_classes, num_classes=2, class_names=None, pretrained=None, **kwargs):
        kwargs.setdefault("dtype", "float32")  # logits and relationship stay float32 under mixed precision
        super().__init__(**kwargs)
        self.num_source_classes = int(num_source_classes)
        self.num_classes = int(num_classes)
        self.class_names = source_class_names(class_names, self.num_source_classes)
        # The weights to start from, until `attach` sets them: {"kernel", "bias"}, or a classification
        # module's {"handle", "variables"} to check against the backbone. Not config: a saved model has its own.
        self._initial = pretrained

    @classmethod
    def from_hub(cls, handle, class_names=None):
        """The classifier of a TF Hub classification module: its variables beyond those of a feature module.

        The module must be the backbone's network plus one dense layer
        (checked when the model is built: same variable names and values).
        """
        from tfxfer.backbones.hub_module import load_hub_module

        module = load_hub_module(handle)
        variables = {variable.name.rsplit(":", 1)[0]: variable.numpy() for variable in module.variables}
        kernel, _ = _dense_among(variables, handle)
        return cls(
            kernel.shape[-1], class_names=class_names, pretrained={"handle": str(handle), "variables": variables}
        )

    @classmethod
    def from_dense(cls, dense, class_names=None):
        """The classifier of a Keras model's top: a built `keras.layers.Dense` (its logits; activation left out)."""
        if not isinstance(dense, keras.layers.Dense) or not dense.built:
            raise OptionValueError(
                f"{{source_classifier}} must be {{sources}}; got {type(dense).__name__}.", **_SPELLING
            )
        kernel = keras.ops.convert_to_numpy(dense.kernel)
        bias = keras.ops.convert_to_numpy(dense.bias) if dense.use_bias else np.zeros(kernel.shape[-1], np.float32)
        return cls(kernel.shape[-1], class_names=class_names, pretrained={"kernel": kernel, "bias": bias})

    def build(self, feature_size):
        self.kernel = self.add_weight(
            shape=(int(feature_size), self.num_source_classes), initializer="zeros", name="kernel"
        )
        self.bias = self.add_weight(shape=(self.num_source_classes,), initializer="zeros", name="bias")
        self.relationship = self.add_weight(
            shape=(self.num_classes, self.num_source_classes),
            initializer=keras.initializers.Constant(1.0 / self.num_source_classes),
            trainable=False,
            name="relationship",
        )
        self.measured = self.add_weight(shape=(), initializer="zeros", trainable=False, name="measured")
        self.built = True

    def attach(self, backbone, feature_size, num_classes):
        """Sized for the model's features and classes, with the pretrained weights (checked against `backbone`)."""
        self.num_classes = int(num_classes)
        initial, self._initial = self._initial, None
        if initial is not None and "variables" in initial:
            kernel, bias = _hub_classifier_on(backbone, initial["variables"], initial["handle"])
        elif initial is not None:
            kernel, bias = initial["kernel"], initial["bias"]
        elif self.built:
            kernel = bias = None  # from a config: the weights come from the saved file
        else:
            raise OptionValueError(
                "This SourceClassifier holds no pretrained weights: build it with SourceClassifier.from_hub(handle) "
                "or SourceClassifier.from_dense(layer), or pass the handle or the Dense layer as {source_classifier}.",
                **_SPELLING,
            )
        if kernel is not None and kernel.shape[0] != feature_size:
            raise OptionValueError(
                f"The source classifier reads {kernel.shape[0]} features but the head reads {feature_size}: "
                f"{{source_classifier}} must be {{sources}}.",
                **_SPELLING,
            )
        if not self.built:  # a layer from a config is built by Keras already
            self.build(feature_size)
        if kernel is not None:
            self.kernel.assign(kernel.astype(np.float32))
            self.bias.assign(bias.astype(np.float32))
        return self

    def call(self, features):
        return tf.matmul(tf.cast(features, tf.float32), self.kernel) + self.bias

    @property
    def is_measured(self):
        return bool(self.measured.numpy() > 0)

    def soft_targets(self, class_ids):
        """Each example's relationship row p(y_s | its target class)."""
        return tf.gather(self.relationship, class_ids)

    def set_relationship(self, relationship):
        self.relationship.assign(np.asarray(relationship, np.float32))
        self.measured.assign(1.0)

    def top_source_classes(self, k=3):
        """Per target class, the k source classes it is most related to: `[(index, name or None, p), ...]`."""
        relationship = self.relationship.numpy()
        tops = []
        for row in relationship:
            order = np.argsort(-row, kind="stable")[:k]
            tops.append([(int(i), self.class_names[i] if self.class_names else None, float(row[i])) for i in order])
        return tops

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_source_classes": self.num_source_classes,
                "num_classes": self.num_classes,
                "class_names": self.class_names,
            }
        )
        return config


def source_classifier_for(source, backbone, regularizer, head):
    """The model's `SourceClassifier` for `source` (a handle, a Dense, a `SourceClassifier` or its config), or None.

    Co-Tuning needs one and nothing else takes one: each without the other
    is refused.
    """
    co_tuning = None if regularizer is None else regularizer.co_tuning_component
    if co_tuning is None:
        if source is not None:
            raise OptionValueError(
                "{source_classifier} is read by Co-Tuning only; add {co_tuning} or leave it out.",
                co_tuning=("regularizer=CoTuning()", "--regularizer co_tuning"),
                **_SPELLING,
            )
        return None
    if source is None:
        raise OptionValueError(
            "Co-Tuning trains the pretrained model's own classifier beside the new head, and this backbone "
            "has none: give {source_classifier}, {sources}; or choose another {regularizer}.",
            regularizer=("regularizer", "--regularizer"),
            **_SPELLING,
        )
    if (
        isinstance(regularizer, CompositeRegularizer)
        and sum(c.co_tuning_component is not None for c in regularizer.components) > 1
    ):
        raise OptionValueError(
            "The regularizer holds Co-Tuning more than once; give one CoTuning (its trade_off sets the weight).",
        )
    if head.multi_label:
        raise OptionValueError(
            "Co-Tuning relates each example's one class to the source classes; it does not apply to "
            "multi-label heads. Choose another {regularizer}.",
            regularizer=("regularizer", "--regularizer"),
        )
    if isinstance(source, dict):
        source = keras.saving.deserialize_keras_object(source)
    elif isinstance(source, (str, os.PathLike)):
        source = SourceClassifier.from_hub(os.fspath(source))
    elif isinstance(source, keras.layers.Dense):
        source = SourceClassifier.from_dense(source)
    elif not isinstance(source, SourceClassifier):
        raise OptionValueError(f"{{source_classifier}} must be {{sources}}; got {type(source).__name__}.", **_SPELLING)
    num_classes = max(2, head.num_classes)  # one sigmoid output: classes 0 and 1
    return source.attach(backbone, int(head.dense.kernel.shape[0]), num_classes)


def class_ids(y):
    """Class ids `[batch]` int32 from labels as the loss takes them (ids, one-hot rows, or 0/1 for one sigmoid output)."""
    y = tf.convert_to_tensor(y)
    if y.shape.rank == 2 and y.shape[-1] is not None and y.shape[-1] > 1:
        return tf.argmax(y, axis=-1, output_type=tf.int32)
    y = tf.reshape(y, [-1])
    if y.dtype.is_floating:
        y = tf.round(y)
    return tf.cast(y, tf.int32)


def source_class_names(names, count):
    """Source class names as a list of `count` strings, from a list, a file of one name a line, or `"imagenet"`."""
    if names is None:
        return None
    if isinstance(names, str) and names.lower() == "imagenet":
        import tensorflow_datasets

        names = pathlib.Path(tensorflow_datasets.__file__).parent / "datasets" / "imagenet2012" / "labels.txt"
    if isinstance(names, (str, os.PathLike)):
        path = pathlib.Path(names).expanduser()
        if not path.is_file():
            raise OptionValueError(
                f"{{source_class_names}}: no file at {path}; give a file with one class name a line, "
                "a list of names, or imagenet.",
                source_class_names=("class_names", "--source-class-names"),
            )
        names = [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines()]
        names = [name for name in names if name]
    names = [str(name) for name in names]
    if len(names) != count:
        raise OptionValueError(
            f"{{source_class_names}} lists {len(names)} names but the source classifier has {count} classes.",
            source_class_names=("class_names", "--source-class-names"),
        )
    return names


def _dense_among(variables, handle):
    """The one dense kernel `[features, classes]` and its bias among a module's variables."""
    kernels = [name for name, value in variables.items() if value.ndim == 2 and name.endswith("kernel")]
    if not kernels:
        raise OptionValueError(
            f"The TF Hub module at {handle} has no dense layer on top, so it has no classifier to reuse: "
            f"{{source_classifier}} must be {{sources}}.",
            **_SPELLING,
        )
    kernel_name = kernels[-1]
    bias_name = kernel_name[: -len("kernel")] + "bias"
    kernel = variables[kernel_name]
    bias = variables.get(bias_name, np.zeros(kernel.shape[-1], np.float32))
    return kernel, bias


def _hub_classifier_on(backbone, variables, handle):
    """The classification module's own dense layer, once its body is checked to be `backbone`."""
    if not isinstance(backbone, HubBackbone):
        raise OptionValueError(
            f"A TF Hub classification module ({handle}) fits a TF Hub backbone; this backbone is a "
            f"{type(backbone).__name__}. {{source_classifier}} must be {{sources}}.",
            **_SPELLING,
        )
    body = dict(backbone.module_weights)
    missing = [name for name in body if name not in variables]
    extra = sorted(set(variables) - set(body))
    common = [name for name in body if name in variables]
    reshaped = [name for name in common if variables[name].shape != tuple(body[name].shape)]
    differing = [
        name
        for name in common
        if name not in reshaped and not np.allclose(variables[name], keras.ops.convert_to_numpy(body[name]), atol=1e-6)
    ]
    if missing or reshaped or differing or len(extra) not in (1, 2):
        problem = (
            f"lacks {len(missing)} of its variables (e.g. {missing[0]})"
            if missing
            else f"has other shapes in {len(reshaped)} of them (e.g. {reshaped[0]}: "
            f"{tuple(variables[reshaped[0]].shape)} against {tuple(body[reshaped[0]].shape)})"
            if reshaped
            else f"has different values in {len(differing)} of them (e.g. {differing[0]})"
            if differing
            else f"has {len(extra)} variables more, not one dense layer ({extra[:4]})"
        )
        raise OptionValueError(
            f"The classification module at {handle} is not the backbone's network plus a classifier: compared "
            f"with the backbone ({backbone.handle}) it {problem}. {{source_classifier}} must be {{sources}}.",
            **_SPELLING,
        )
    return _dense_among({name: variables[name] for name in extra}, handle)
