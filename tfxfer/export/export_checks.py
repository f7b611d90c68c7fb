"""Using and checking an export without a server: `predict_from_export`, `verify_export`."""

import json
import os
import pathlib
import subprocess
import sys
import tempfile

import numpy as np
import tensorflow as tf

from tfxfer.export.serving_export import export_version_path, read_export_metadata

_LOADED = {}

# Runs in a fresh Python: plain TensorFlow (and TF Text for text models), no tfxfer.
_FRESH_PROCESS = """
import json, sys
import numpy as np
import tensorflow as tf
try:
    import tensorflow_text  # noqa: F401  (text exports tokenize with TF Text ops)
except ImportError:
    pass
path, inputs_file, outputs_file = sys.argv[1:4]
with open(inputs_file) as f:
    spec = json.load(f)
values = [bytes.fromhex(v) for v in spec["values"]]
serving = tf.saved_model.load(path).signatures["serving_default"]
(name,) = serving.structured_input_signature[1]
outputs = {k: v.numpy() for k, v in serving(**{name: tf.constant(values)}).items()}
np.savez(outputs_file, **outputs, _input_name=np.array(name))
"""


def predict_from_export(path, inputs):
    """Runs an export's `serving_default` on raw inputs (image bytes or texts).

    For users without a server. `path` is a version folder
    (`saved_models/sst2/1`) or the model's folder (its newest version);
    `inputs` a list of texts or of encoded image files' bytes (one of either
    is a batch of one). Returns a dict of numpy arrays.

    Example:

    >>> predict_from_export("saved_models/sst2/1", ["a gripping film"])["class_ids"]
    array([1])
    """
    version = export_version_path(pathlib.Path(path).expanduser())
    if version is None:
        raise FileNotFoundError(f"No export at {path}: pass saved_models/<name> or one of its version folders.")
    key = str(version)
    if key not in _LOADED:
        _register_text_ops()
        _LOADED[key] = tf.saved_model.load(key).signatures["serving_default"]
    serving = _LOADED[key]
    (name,) = serving.structured_input_signature[1]
    batch = _serving_batch(inputs, name)
    try:
        outputs = serving(**{name: tf.constant(batch)})
    except tf.errors.InvalidArgumentError:
        if name != "image_bytes":
            raise
        raise ValueError(
            f"inputs[{_undecodable(batch)}] is not an image file TensorFlow decodes (JPEG, PNG, GIF, BMP, "
            "WebP): pass the bytes of the file (open(path, 'rb').read())."
        ) from None
    return {key: value.numpy() for key, value in outputs.items()}


def _undecodable(encoded):
    """The index of the first input `tf.io.decode_image` cannot decode."""
    for index, value in enumerate(encoded):
        try:
            tf.io.decode_image(value, channels=3, expand_animations=False)
        except tf.errors.InvalidArgumentError:
            return index
    return "?"


def _serving_batch(inputs, name):
    """`inputs` as the list of strings `serving_default` takes, or a `ValueError` saying what it takes."""
    what = "encoded image files' bytes (open(path, 'rb').read())" if name == "image_bytes" else "texts"
    if tf.is_tensor(inputs):
        inputs = inputs.numpy()
    if isinstance(inputs, np.ndarray) and inputs.dtype.kind not in "SUO":
        raise ValueError(
            f"predict_from_export takes {what}, got an array of {inputs.dtype} values"
            + (" (pixels: encode them first, e.g. tf.io.encode_png(image).numpy())" if name == "image_bytes" else "")
            + "."
        )
    if isinstance(inputs, (str, bytes)):
        inputs = [inputs]
    elif isinstance(inputs, np.ndarray):
        inputs = inputs.reshape(-1).tolist()
    elif (
        isinstance(inputs, (list, tuple))
        and inputs
        and all(isinstance(value, (list, tuple)) and len(value) == 1 for value in inputs)
    ):
        inputs = [value[0] for value in inputs]  # one column, [[text], [text]]
    elif not isinstance(inputs, (list, tuple)):
        raise ValueError(f"predict_from_export takes a list of {what}, got {type(inputs).__name__}.")
    inputs = list(inputs)
    if not inputs:
        raise ValueError(f"predict_from_export got no inputs: pass a list of {what}.")
    for index, value in enumerate(inputs):
        if isinstance(value, np.ndarray) and name == "image_bytes":
            raise ValueError(
                f"inputs[{index}] is an array of pixels; this export takes {what}: encode it first "
                "(tf.io.encode_png(image).numpy())."
            )
        if not isinstance(value, (str, bytes)):
            raise ValueError(f"inputs[{index}] is {type(value).__name__}, not one of the {what} this export takes.")
        if name == "image_bytes" and isinstance(value, str):
            raise ValueError(
                f"inputs[{index}] is a str ({value[:60]!r}); this export takes {what}: read the file first."
            )
    return inputs


# How far a served probability may be from the model's, by the model's compute dtype:
# the export runs without XLA, so a low-precision model rounds in other places.
TOLERANCES = {"float32": 1e-5, "float16": 1e-3, "bfloat16": 1e-2}


def export_tolerance(model):
    """The `verify_export` tolerance for `model`'s compute dtype (1e-5 in float32, 1e-2 in bfloat16)."""
    return TOLERANCES.get(model.dtype_policy.compute_dtype, 1e-5)


def verify_export(path, sample_inputs, model=None, tolerance=None):
    """Reloads an export in a fresh process and compares it with the model.

    The fresh process imports only TensorFlow (and TF Text), loads the
    export with `tf.saved_model.load`, and runs `serving_default` on
    `sample_inputs` (raw image bytes or texts). Its probabilities are
    compared with `model` in memory on the same raw inputs.

    Returns:
        `{"max_abs_difference": ..., "examples": ...}`; raises `AssertionError`
        when the difference exceeds `tolerance` (default: `export_tolerance(model)`).

    Example:

    >>> verify_export("saved_models/ants_bees/1", [open("ant.jpg", "rb").read()], model)
    """
    values = [v if isinstance(v, bytes) else str(v).encode("utf-8") for v in sample_inputs]
    with tempfile.TemporaryDirectory() as work:
        inputs_file = os.path.join(work, "inputs.json")
        outputs_file = os.path.join(work, "outputs.npz")
        with open(inputs_file, "w") as f:
            json.dump({"values": [v.hex() for v in values]}, f)
        result = subprocess.run(
            [sys.executable, "-c", _FRESH_PROCESS, str(path), inputs_file, outputs_file],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"The export at {path} failed to load or run in a fresh process:\n{result.stderr[-2000:]}"
            )
        served = dict(np.load(outputs_file, allow_pickle=True))
    # The fresh process reads the serving input's name: loading the export here too would cost seconds.
    name = str(served.pop("_input_name"))
    report = {"examples": len(values)}
    if model is not None:
        expected = _model_outputs(model, name, values)
        probabilities = np.asarray(model.head.probabilities(expected))
        difference = float(np.abs(served["probabilities"] - probabilities).max())
        report["max_abs_difference"] = difference
        tolerance = tolerance if tolerance is not None else export_tolerance(model)
        if difference > tolerance:
            raise AssertionError(
                f"The export at {path} differs from the model by {difference:.2e} (tolerance {tolerance:.0e})."
            )
        threshold = read_export_metadata(path).get("threshold")
        decisions = model.head.decode(expected, threshold)
        for key, value in decisions.items():
            if not np.array_equal(served[key], np.asarray(value)):
                raise AssertionError(f"The export at {path} decides differently from the model ({key}).")
    return report


def _model_outputs(model, name, values):
    if name == "text":
        return model.predict([v.decode("utf-8") for v in values], verbose=0)
    if name == "image_bytes":
        # Decoded here, in this process, by the model's own preprocessor.
        pixels = np.stack([model.preprocessor.decode(v).numpy() for v in values])
        return model.predict(pixels, verbose=0)
    raise ValueError(f"verify_export needs raw inputs; this export takes '{name}'.")


def _register_text_ops():
    try:
        import tensorflow_text  # noqa: F401
    except ImportError:
        pass
