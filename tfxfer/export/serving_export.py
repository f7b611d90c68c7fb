"""`export_for_serving`: versioned, atomic SavedModels for TF Serving."""

import json
import os
import pathlib

import tensorflow as tf
from keras import tree

from tfxfer.distribute.strategy_selection import runs_on_tpu
from tfxfer.export.version_slots import numeric_versions, place_version, reserved_version
from tfxfer.export.warmup_requests import write_warmup_requests
from tfxfer.faults import fault_point
from tfxfer.models.lora_adapters import merged_lora
from tfxfer.option_errors import OptionValueError


class _ServingModule(tf.Module):
    """What the export holds: the inference network and its signatures.

    Only the backbone, head and preprocessor are tracked, so training state
    (the regularizer's w⁰, optimizer slots) stays out. Inputs are prepared
    by the model's own preprocessor and outputs decoded by its own head.
    """

    def __init__(self, model, class_names, threshold):
        super().__init__(name="serving")
        self.backbone = model.backbone
        self.head = model.head
        self.preprocessor = model.preprocessor
        self._model = _Untracked(model)
        self._class_names = None if class_names is None else tf.constant(list(class_names))
        self._threshold = threshold
        self.raw_input_name = None  # "image_bytes" or "text" once signatures exist

    def outputs(self, model_outputs):
        result = {"probabilities": self.head.probabilities(model_outputs)}
        result.update(self.head.decode(model_outputs, self._threshold))
        if self._class_names is not None:
            if "class_ids" in result:
                result["class_names"] = tf.gather(self._class_names, result["class_ids"])
            else:  # multi-label: the name where the flag is 1, else ""
                names = tf.broadcast_to(self._class_names, tf.shape(result["multi_hot"]))
                result["class_names"] = tf.where(result["multi_hot"] > 0, names, "")
        return result

    def run(self, inputs):
        return self.outputs(self._model.value(inputs, training=False))

    def decode_images(self, image_bytes):
        height, width = self.preprocessor.image_size
        pixels = tf.map_fn(
            self.preprocessor.decode,
            image_bytes,
            fn_output_signature=tf.TensorSpec((height, width, 3), tf.uint8),
        )
        return self.preprocessor(pixels)


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
    versions = numeric_versions(target)
    return str(target / str(versions[-1])) if versions else None


def export_for_serving(
    model,
    directory,
    *,
    version=None,
    class_names=None,
    threshold=None,
    overwrite=False,
    warmup_inputs=None,
    save_options=None,
):
    """Writes `directory/<version>/`, the layout TF Serving polls.

    A numeric folder is only ever a complete SavedModel: the version is
    written under a temporary name, synced, and renamed into place. Several
    exporters may share `directory`: each reserves its version number with
    an exclusive lock file, so they get distinct versions (or, for the same
    explicit version, the second gets a clear error). An existing version is
    refused unless `overwrite=True`, which renames the old one aside, the
    new one in, then deletes the old. What killed exporters left behind is
    cleaned by the next export (`tfxfer.export.version_slots`).

    The export is self-describing: raw inputs go through the model's own
    preprocessor (image size, value range, resizing, 8-bit rounding; or the
    tokenizer) and outputs through its head's decoding, with the model's
    class names.

    Signatures (stable names, check with `saved_model_cli show --all`):
    - `serving_default`: raw inputs. Image models take `image_bytes`
      (encoded JPEG/PNG/GIF/BMP strings of any size, decoded and resized in
      the graph; the `_bytes` suffix lets TF Serving's REST API take
      base64). Text models take `text` (UTF-8 strings).
    - `predict_preprocessed`: the model's own input tensors.
    Outputs: `probabilities`; `class_ids` (softmax: the most probable class;
    one sigmoid output: 1 above the threshold) or, for multi-label heads,
    `multi_hot` (a 0/1 flag per class); and `class_names` when the model
    has them (multi-label: the name where the flag is 1, else "").

    Args:
        model: a `TransferModel`.
        directory: e.g. `"saved_models/ants_bees"`.
        version: an integer; default the next free one.
        class_names: names for models built without `class_names`; they
            must agree with the model's own when it has them.
        threshold: the probability above which sigmoid outputs decide 1
            (default: the head's, 0.5).
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

    >>> path = export_for_serving(model, "saved_models/ants_bees")
    """
    base = pathlib.Path(directory)
    if version is not None and (isinstance(version, bool) or int(version) != version or int(version) < 1):
        raise OptionValueError(f"{{version}} must be a positive whole number, got {version!r}.", version=_VERSION)
    class_names = _export_class_names(model, class_names)
    if threshold is not None and not 0.0 < float(threshold) < 1.0:
        raise OptionValueError(f"{{threshold}} must be in (0, 1), got {threshold!r}.", threshold=_THRESHOLD)
    if threshold is not None and model.head.kind == "multiclass":
        raise OptionValueError(
            "{threshold} applies to sigmoid heads; this softmax head decides by the most probable class.",
            threshold=_THRESHOLD,
        )
    threshold = model.head.threshold if threshold is None else float(threshold)
    # LoRA adapters are merged into their kernels while the functions are
    # traced and the variables written: the served graph has no adapter ops.
    with merged_lora(model.backbone), reserved_version(base, version, overwrite) as (version, temporary):
        module = _ServingModule(model, class_names, threshold)
        signatures = _signatures(module, model)
        tf.saved_model.save(
            module,
            str(temporary),
            signatures=signatures,
            options=save_options or _default_save_options(model),
        )
        input_name = module.raw_input_name
        if input_name is not None:
            write_warmup_requests(
                str(temporary),
                base.name,
                input_name,
                _warmup_batches(input_name, warmup_inputs, model),
            )
        _write_metadata(temporary, model, module, class_names, threshold)
        _sync_tree(temporary)
        fault_point("export:before-placing")
        target = place_version(base, version, temporary)
    return str(target)


_VERSION = ("version", "--version")
_THRESHOLD = ("threshold", "--threshold")


def _sync_tree(folder):
    # The rename must not become visible before the files' contents are on disk.
    for path in sorted(pathlib.Path(folder).rglob("*"), reverse=True):
        if path.is_file():
            with open(path, "rb") as file:
                os.fsync(file.fileno())


def _export_class_names(model, class_names):
    own = model.class_names
    if class_names is None:
        return own
    class_names = [str(name) for name in class_names]
    if own is not None and class_names != own:
        shown = f"{class_names} differ from the model's own {own}".replace("{", "{{").replace("}", "}}")
        raise OptionValueError(
            f"{{class_names}} {shown}; the model's names are exported (leave {{class_names}} out).",
            class_names=("class_names", "--class-names"),
        )
    if len(class_names) != model.head.num_names:
        raise ValueError(
            f"class_names has {len(class_names)} names but the model's head decodes to {model.head.num_names} classes."
        )
    return class_names


METADATA_FILE = os.path.join("assets.extra", "tfxfer_export.json")


def read_export_metadata(path):
    """What `export_for_serving` recorded beside the SavedModel, or `{}`.

    Keys: `input_name` (`image_bytes`, `text` or None), `modality`,
    `class_names`, `decoding` (`multiclass`, `binary` or `multi_label`),
    `threshold`, `image_size`, `tensorflow_text_ops` (the TF Text ops the
    graph runs, which need `import tensorflow_text` before loading).
    """
    metadata = pathlib.Path(path) / METADATA_FILE
    return json.loads(metadata.read_text()) if metadata.exists() else {}


def _write_metadata(export_dir, model, module, class_names, threshold):
    # TF Serving ignores unknown files in assets.extra; tfxfer's own tools
    # read this to know the export's modality and classes before running it.
    preprocessor = model.preprocessor
    metadata = {
        "input_name": module.raw_input_name,
        "modality": model.modality,
        "class_names": class_names,
        "decoding": model.head.kind,
        "threshold": threshold,
        "image_size": list(preprocessor.image_size) if model.modality == "image" else None,
        "tensorflow_text_ops": tensorflow_text_ops(export_dir),
    }
    (export_dir / "assets.extra").mkdir(exist_ok=True)
    (export_dir / METADATA_FILE).write_text(json.dumps(metadata, indent=2))
    (export_dir / NOTE_FILE).write_text(_loading_note(metadata))


NOTE_FILE = os.path.join("assets.extra", "README.txt")


def tensorflow_text_ops(path):
    """The ops of the SavedModel at `path` outside core TensorFlow (in tfxfer's exports: TF Text's), sorted.

    Without `import tensorflow_text` first, `tf.saved_model.load` of such an
    export fails with `Op type not registered 'RegexSplitWithOffsets'`.

    Example:

    >>> tensorflow_text_ops("saved_models/sst2/1")
    ['FastWordpieceTokenizeWithOffsets', 'RegexSplitWithOffsets', 'TFText>RoundRobinTrim']
    """
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString((pathlib.Path(path) / "saved_model.pb").read_bytes())
    ops = set()
    for graph in saved_model.meta_graphs:
        ops.update(node.op for node in graph.graph_def.node)
        for function in graph.graph_def.library.function:
            ops.update(node.op for node in function.node_def)
    # Core ops all have a tf.raw_ops wrapper; TF Text's (and the functions' own names) do not.
    functions = {f.signature.name for graph in saved_model.meta_graphs for f in graph.graph_def.library.function}
    return sorted(op for op in ops - functions if not hasattr(tf.raw_ops, op))


def _loading_note(metadata):
    """`assets.extra/README.txt`: how to load and check this export, for whoever finds the folder."""
    name = metadata["input_name"]
    lines = [
        "A TF Serving export written by tfxfer's export_for_serving (TF Serving ignores assets.extra/).",
        "",
        f"serving_default takes {name or 'the model input tensors'}"
        + {"image_bytes": " (encoded JPEG/PNG/GIF/BMP strings)", "text": " (UTF-8 strings)"}.get(name, "")
        + "; predict_preprocessed takes the model's input tensors.",
        "tfxfer_export.json records the input name, modality, class names, decoding and threshold.",
        "",
        "In Python: tf.saved_model.load(PATH).signatures['serving_default'], or tfxfer.predict_from_export(PATH, inputs).",
    ]
    ops = metadata["tensorflow_text_ops"]
    if ops:
        lines += [
            "",
            f"The graph tokenizes with TF Text ops: {', '.join(ops)}.",
            "Run `import tensorflow_text` (pip package tensorflow-text, the version matching TensorFlow) before",
            "tf.saved_model.load, or loading fails with \"Op type not registered '...'\" naming one of them.",
            "The stock tensorflow/serving image does not register them (tensorflow/serving#1490): serve with a",
            "build that links TF Text, or call predict_preprocessed and tokenize in the client.",
        ]
    if metadata["modality"] == "image":
        lines += [
            "",
            "Images are decoded by TensorFlow in the graph. To compare served outputs with your own arrays, decode",
            "with tf.io.decode_image: PIL decodes some JPEGs differently (by up to 18 gray levels).",
        ]
    return "\n".join(lines) + "\n"


def _default_save_options(model):
    if runs_on_tpu(model.distribute_strategy):
        return tf.saved_model.SaveOptions(experimental_io_device="/job:localhost")
    return None


def _warmup_batches(input_name, warmup_inputs, model):
    if warmup_inputs is not None:
        return [list(warmup_inputs)]
    if input_name == "text":
        return [["a warmup request"], ["two warmup", "requests"]]
    height, width = model.preprocessor.image_size
    gray = tf.fill((height, width, 3), tf.constant(128, tf.uint8))
    encoded = tf.io.encode_jpeg(gray).numpy()
    return [[encoded], [encoded, encoded]]


def _signatures(module, model):
    specs = tree.map_structure(lambda t: tf.TensorSpec(t.shape, t.dtype, name=t.name), model.input)
    if isinstance(specs, dict):
        specs = {key: tf.TensorSpec(spec.shape, spec.dtype, name=key) for key, spec in specs.items()}
    # A tf.function with an input_signature, not a concrete function: only
    # that can be saved from a model built under a distribution strategy.
    preprocessed = tf.function(module.run, input_signature=[specs])
    signatures = {"predict_preprocessed": preprocessed}
    if model.modality == "text":

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def serve_text(text):
            return module.run(module.preprocessor(text))

        signatures["serving_default"] = serve_text
        module.raw_input_name = "text"
    elif model.modality == "image":

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
        def serve_images(image_bytes):
            return module.run(module.decode_images(image_bytes))

        signatures["serving_default"] = serve_images
        module.raw_input_name = "image_bytes"
    else:
        signatures["serving_default"] = preprocessed
    return signatures
