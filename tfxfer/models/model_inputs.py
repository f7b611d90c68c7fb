"""What a `TransferModel` is built from: its inputs, and the checks that its parts fit.

Example:

>>> activation_for("auto", num_classes=1, multi_label=False)
'sigmoid'
"""

import difflib
import inspect

import keras

from tfxfer.backbones.hub_backbone import HubBackbone
from tfxfer.data.length_bucketing import PADDING_MASK_KEYS, padding_mask_of
from tfxfer.models.classification_head import check_num_classes
from tfxfer.preprocessing.image_preprocessor import DEFAULT_IMAGE_SIZE, ImagePreprocessor
from tfxfer.regularizers.source_regularizer import SourceRegularizer


def activation_for(activation, num_classes, multi_label):
    """The head's activation: `"auto"` is softmax, or sigmoid for one output or several labels."""
    check_num_classes(num_classes)
    if activation != "auto":
        return activation
    if multi_label or num_classes == 1:
        return "sigmoid"
    return "softmax"


def regularizer_from(regularizer):
    """A `tfxfer.regularizers` penalty from itself or its config (None stays None)."""
    if regularizer is None or isinstance(regularizer, SourceRegularizer):
        return regularizer
    if isinstance(regularizer, dict):
        return keras.saving.deserialize_keras_object(regularizer)
    named = (
        " (tfxfer.regularizers.regularizer_from_name turns a CLI name into one)" if isinstance(regularizer, str) else ""
    )
    raise TypeError(
        "regularizer must be one of tfxfer.regularizers (L2SP, L2, CosineSP, OrthogonalSP, BSS, DELTA, "
        f"CoTuning or a sum of them); got {type(regularizer).__name__}{named}. "
        "For Keras weight regularizers, set them on the head's layers."
    )


def model_inputs(backbone, input_shape):
    """The Functional model's inputs: a TF Hub module's (of `input_shape`) or a Keras backbone's own."""
    if isinstance(backbone, HubBackbone):
        return backbone.model_inputs(input_shape)
    if not isinstance(backbone, keras.Model) or not hasattr(backbone, "input"):
        raise ValueError(
            "The backbone must be a HubBackbone or a Functional Keras "
            f"model (such as a KerasHub Backbone); got {type(backbone).__name__}."
        )
    if input_shape is not None:
        raise ValueError(
            "input_shape applies to TF Hub modules only; a Keras "
            "backbone brings its own inputs (e.g. set image_shape when "
            "building a KerasHub image backbone)."
        )
    return backbone.input


def check_preprocessor_fits_inputs(preprocessor, inputs):
    """An `ImagePreprocessor` must make images of the size the backbone takes."""
    if not isinstance(preprocessor, ImagePreprocessor):
        return
    if isinstance(inputs, dict) or len(inputs.shape) != 4:
        raise ValueError(
            "An ImagePreprocessor makes [batch, height, width, 3] images, but the "
            f"backbone takes {inputs}; use a text preprocessor or an image backbone."
        )
    fixed = tuple(inputs.shape[1:3])
    if None not in fixed and fixed != tuple(preprocessor.image_size):
        raise ValueError(
            f"The preprocessor makes {tuple(preprocessor.image_size)} images but the "
            f"backbone takes {fixed}; give them the same image_size."
        )


def checked_class_names(names, head):
    """`names` as a list of distinct strings, one per class the head decodes to (None stays None)."""
    if names is None:
        return None
    if isinstance(names, str) or not isinstance(names, (list, tuple)):
        raise TypeError(f"class_names must be a list of names, got {names!r}.")
    names = [str(name) for name in names]
    if len(names) != head.num_names:
        hint = " (one sigmoid output: the negative class, then the positive one)" if head.kind == "binary" else ""
        raise ValueError(
            f"class_names has {len(names)} names {names} but the head decodes to {head.num_names} classes{hint}."
        )
    if len(set(names)) != len(names):
        raise ValueError(f"class_names must be distinct, got {names}.")
    return names


def pooling_mask(inputs):
    """The padding mask `pooling="masked_avg"` averages under."""
    mask = padding_mask_of(inputs)
    if mask is not None:
        return mask
    names = sorted(inputs) if isinstance(inputs, dict) else "a single tensor"
    raise ValueError(
        "pooling='masked_avg' needs a padding mask among the model inputs "
        f"(one of {PADDING_MASK_KEYS}); the inputs are {names}."
    )


def preprocessor_and_input_shape(backbone, preprocessor, input_shape):
    """The preprocessor (a TF Hub image module gets an `ImagePreprocessor`) and the input shape it implies."""
    if isinstance(preprocessor, dict):
        preprocessor = keras.saving.deserialize_keras_object(preprocessor)
    if preprocessor is None and isinstance(backbone, HubBackbone) and backbone.takes_images:
        size = DEFAULT_IMAGE_SIZE if input_shape is None else tuple(input_shape)[:2]
        preprocessor = ImagePreprocessor(image_size=size, name="preprocessor")
    if isinstance(preprocessor, ImagePreprocessor) and input_shape is None:
        input_shape = (*preprocessor.image_size, 3) if isinstance(backbone, HubBackbone) else None
    return preprocessor, input_shape


# What Keras' Model takes beside a TransferModel's own arguments (it ignores anything else silently).
_KERAS_MODEL_ARGUMENTS = ("name", "trainable", "dtype")


def check_known_arguments(kwargs, constructor):
    """Refuses keyword arguments `constructor` (`TransferModel.__init__`) does not take, naming a likely typo.

    Keras' Model would swallow them: `dropuot=0.5` would train without dropout.
    """
    unknown = sorted(set(kwargs) - set(_KERAS_MODEL_ARGUMENTS))
    if not unknown:
        return
    own = [name for name in inspect.signature(constructor).parameters if name not in ("self", "kwargs")]
    known = own + list(_KERAS_MODEL_ARGUMENTS)
    hints = [
        f"{name!r} (did you mean {close[0]!r}?)" if close else repr(name)
        for name in unknown
        for close in [difflib.get_close_matches(name, known, n=1)]
    ]
    raise TypeError(
        f"TransferModel got unexpected keyword argument(s) {', '.join(hints)} (from_hub and from_preset pass "
        f"theirs on to it). It takes: {', '.join(known)}."
    )
