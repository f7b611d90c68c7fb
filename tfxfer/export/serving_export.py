"""`export_for_serving`: versioned, atomic SavedModels for TF Serving."""

import json
import os
import pathlib
import shutil
import uuid

import tensorflow as tf
from keras import tree

from tfxfer.export.warmup_requests import write_warmup_requests


class _ServingModule(tf.Module):
    """What the export holds: the inference network and its signatures.

    Only the backbone, head and preprocessor are tracked, so training state
    (the regularizer's w⁰, optimizer slots) stays out.
    """

    def __init__(self, model, class_names, image_size, value_range):
        super().__init__(name="serving")
        self.backbone = model.backbone
        self.head = model.head
        self.preprocessor = model.preprocessor
        self._model = _Untracked(model)
        self._class_names = None if class_names is None else tf.constant(list(class_names))
        self._image_size = image_size
        self._value_range = tuple(float(v) for v in value_range)
        self.raw_input_name = None  # "image_bytes" or "text" once signatures exist

    def outputs(self, probabilities):
        result = {
            "probabilities": probabilities,
            "class_ids": tf.argmax(probabilities, axis=-1, output_type=tf.int64),
        }
        if self._class_names is not None:
            result["class_names"] = tf.gather(self._class_names, result["class_ids"])
        return result

    def run(self, inputs):
        return self.outputs(self._model.value(inputs, training=False))

    def decode_images(self, image_bytes):
        height, width = self._image_size
        low, high = self._value_range

        def decode(encoded):
            image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
            image = tf.image.resize(image, (height, width))
            # Rounded to 8 bits as `tfxfer.data` caches training images, so
            # the server sees exactly what evaluation saw.
            image = tf.clip_by_value(tf.round(image), 0.0, 255.0)
            return low + image * ((high - low) / 255.0)

        return tf.map_fn(
            decode, image_bytes,
            fn_output_signature=tf.TensorSpec((height, width, 3), tf.float32),
        )


class _Untracked:
    """Holds the Keras model without making it a SavedModel dependency."""

    def __init__(self, value):
        self.value = value


def export_version_path(target):
    """The version folder to use for `target`: itself when it is one, else its newest version.

    Returns None when `target` is not an export.

    Example:

    >>> export_version_path("saved_models/ants_bees")
    'saved_models/ants_bees/2'
    """
    target = pathlib.Path(target)
    if (target / "saved_model.pb").exists():
        return str(target)
    if not target.is_dir():
        return None
    versions = [c for c in target.iterdir() if c.name.isdigit() and (c / "saved_model.pb").exists()]
    return str(max(versions, key=lambda c: int(c.name))) if versions else None


def _next_version(base):
    if not base.exists():
        return 1
    versions = [int(child.name) for child in base.iterdir() if child.name.isdigit()]
    return max(versions, default=0) + 1


def export_for_serving(
    model,
    directory,
    *,
    version=None,
    class_names=None,
    image_size=None,
    value_range=(0.0, 1.0),
    overwrite=False,
    warmup_inputs=None,
    save_options=None,
):
    """Writes `directory/<version>/`, the layout TF Serving polls.

    The version folder is written under a temporary name and renamed into
    place, so a server never sees a half-written version. An existing
    version is refused unless `overwrite=True`.

    Signatures (stable names, check with `saved_model_cli show --all`):
    - `serving_default`: raw inputs. Image models take `image_bytes`
      (encoded JPEG/PNG/GIF/BMP strings, decoded and resized in the graph;
      the `_bytes` suffix lets TF Serving's REST API take base64). Text
      models take `text` (UTF-8 strings) and tokenize in the graph.
    - `predict_preprocessed`: the model's own input tensors.
    Outputs: `probabilities`, `class_ids` and, with `class_names`,
    `class_names`.

    Args:
        model: a `TransferModel`.
        directory: e.g. `"saved_models/ants_bees"`.
        version: an integer; default the next free one.
        class_names: names for `class_names` outputs.
        image_size: `(height, width)` for image bytes; default the model's.
        value_range: `(low, high)` the decoded pixels are scaled to; use the
            same range as training (`LoadedData.value_range`).
        overwrite: replace an existing version.
        warmup_inputs: raw inputs (image bytes or texts) for the warmup
            records in `assets.extra/`; default a small generated batch.
        save_options: a `tf.saved_model.SaveOptions`. By default, a model
            built under a `TPUStrategy` is saved through the host
            (`experimental_io_device="/job:localhost"`), so the TPU workers
            need no access to the destination.

    Returns:
        The path of the written version.

    Example:

    >>> path = export_for_serving(model, "saved_models/ants_bees", class_names=["ants", "bees"])
    """
    base = pathlib.Path(directory)
    version = _next_version(base) if version is None else int(version)
    if version < 1:
        raise ValueError(f"version must be a positive integer, got {version}.")
    target = base / str(version)
    if target.exists() and not overwrite:
        raise FileExistsError(
            f"{target} already exists; TF Serving may be serving it. Pass another "
            "version, version=None for the next one, or overwrite=True."
        )
    if class_names is not None and len(class_names) != model.num_classes:
        raise ValueError(
            f"class_names has {len(class_names)} names but the model has {model.num_classes} classes."
        )
    if value_range is None:  # e.g. LoadedData.value_range of a text dataset
        value_range = (0.0, 1.0)
    if len(value_range) != 2 or not value_range[0] < value_range[1]:
        raise ValueError(f"value_range must be (low, high) with low < high, got {value_range}.")
    module = _ServingModule(model, class_names, None, value_range)
    signatures = _signatures(module, model, image_size)
    base.mkdir(parents=True, exist_ok=True)
    temporary = base / f".tmp-{version}-{uuid.uuid4().hex[:8]}"
    try:
        tf.saved_model.save(
            module, str(temporary), signatures=signatures,
            options=save_options or _default_save_options(model),
        )
        input_name = module.raw_input_name
        if input_name is not None:
            write_warmup_requests(
                str(temporary), base.name, input_name,
                _warmup_batches(input_name, warmup_inputs, module),
            )
        _write_metadata(temporary, module, class_names)
        if target.exists():
            shutil.rmtree(target)
        os.replace(temporary, target)
    finally:
        if temporary.exists():
            shutil.rmtree(temporary)
    return str(target)


METADATA_FILE = os.path.join("assets.extra", "tfxfer_export.json")


def read_export_metadata(path):
    """What `export_for_serving` recorded beside the SavedModel, or `{}`.

    Keys: `input_name`, `class_names`, `image_size`, `value_range`.
    """
    metadata = pathlib.Path(path) / METADATA_FILE
    return json.loads(metadata.read_text()) if metadata.exists() else {}


def _write_metadata(export_dir, module, class_names):
    # TF Serving ignores unknown files in assets.extra; tfxfer's own tools
    # read this to preprocess exactly as the export does.
    metadata = {
        "input_name": module.raw_input_name,
        "class_names": None if class_names is None else [str(n) for n in class_names],
        "image_size": None if module._image_size is None else list(module._image_size),
        "value_range": list(module._value_range),
    }
    (export_dir / "assets.extra").mkdir(exist_ok=True)
    (export_dir / METADATA_FILE).write_text(json.dumps(metadata, indent=2))


def _default_save_options(model):
    strategy = model.distribute_strategy
    if isinstance(strategy, (tf.distribute.TPUStrategy, tf.distribute.experimental.TPUStrategy)):
        return tf.saved_model.SaveOptions(experimental_io_device="/job:localhost")
    return None


def _warmup_batches(input_name, warmup_inputs, module):
    if warmup_inputs is not None:
        return [list(warmup_inputs)]
    if input_name == "text":
        return [["a warmup request"], ["two warmup", "requests"]]
    height, width = module._image_size
    gray = tf.fill((height, width, 3), tf.constant(128, tf.uint8))
    encoded = tf.io.encode_jpeg(gray).numpy()
    return [[encoded], [encoded, encoded]]


def _signatures(module, model, image_size):
    specs = tree.map_structure(
        lambda t: tf.TensorSpec(t.shape, t.dtype, name=t.name), model._inputs_struct
    )
    if isinstance(specs, dict):
        specs = {key: tf.TensorSpec(spec.shape, spec.dtype, name=key) for key, spec in specs.items()}
    # A tf.function with an input_signature, not a concrete function: only
    # that can be saved from a model built under a distribution strategy.
    preprocessed = tf.function(module.run, input_signature=[specs])
    signatures = {"predict_preprocessed": preprocessed}
    if model.preprocessor is not None:
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def serve_text(text):
            return module.run(module.preprocessor(text))

        signatures["serving_default"] = serve_text
        module.raw_input_name = "text"
    elif not isinstance(specs, dict) and specs.shape.rank == 4 and specs.dtype.is_floating:
        size = image_size or tuple(specs.shape[1:3])
        if None in size:
            size = (224, 224)
        module._image_size = tuple(int(s) for s in size)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
        def serve_images(image_bytes):
            return module.run(module.decode_images(image_bytes))

        signatures["serving_default"] = serve_images
        module.raw_input_name = "image_bytes"
    else:
        signatures["serving_default"] = preprocessed
    return signatures
