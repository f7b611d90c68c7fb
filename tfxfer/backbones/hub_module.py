"""Resolving and loading TF Hub modules (TF2 SavedModels) with clear errors.

A TF Hub "handle" is a tfhub.dev or Kaggle URL, a `gs://` path or a local
directory. `tensorflow_hub.resolve` turns it into a local directory (honouring
`TFHUB_CACHE_DIR`, so a pre-filled cache works offline), and
`tf.saved_model.load` restores it. Everything that can go wrong on the way is
turned into an error that names the handle, the problem and the fix.
"""

import os
import re

import tensorflow as tf

_REMOTE_PREFIXES = ("http://", "https://", "gs://", "s3://", "hdfs://")
_TF1_HUB_MARKER = "tfhub_module.pb"
_SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
_UNREGISTERED_OP = re.compile(r"Op type not registered '([^']+)'")


def is_remote_handle(handle):
    """Whether `handle` names a remote module rather than a local directory."""
    return str(handle).startswith(_REMOTE_PREFIXES)


def resolve_handle(handle):
    """Returns the local SavedModel directory for a TF Hub `handle`.

    Local directories are checked here (they must exist and hold a TF2
    SavedModel); URLs and `gs://` paths go through `tensorflow_hub.resolve`,
    which downloads them into `TFHUB_CACHE_DIR` or finds them there.

    Example:

    >>> resolve_handle("../shared/models/tfhub/efficientnet_lite0_feature_vector")
    '../shared/models/tfhub/efficientnet_lite0_feature_vector'
    """
    if not isinstance(handle, (str, os.PathLike)) or not str(handle):
        raise TypeError(
            "A TF Hub handle must be a non-empty string or path: a "
            "tfhub.dev/Kaggle URL, a gs:// path or a local SavedModel "
            f"directory. Received: {handle!r}"
        )
    handle = os.fspath(handle)
    if is_remote_handle(handle):
        path = _resolve_remote(handle)
    else:
        path = os.path.expanduser(handle)
        if not os.path.exists(path):
            raise FileNotFoundError(
                f"TF Hub module not found: '{handle}' does not exist "
                f"(looked in {os.path.abspath(path)}). Pass the directory "
                "that holds saved_model.pb, or a tfhub.dev/Kaggle URL."
            )
        if not os.path.isdir(path):
            raise ValueError(
                f"TF Hub handle '{handle}' is a file, not a SavedModel "
                "directory. Pass the folder that holds saved_model.pb and "
                "variables/ (unpack .tar.gz archives first)."
            )
    _check_saved_model_dir(handle, path)
    return path


def _resolve_remote(handle):
    import tensorflow_hub as hub

    try:
        return hub.resolve(handle)
    except Exception as error:  # Network, HTTP and cache errors all land here.
        raise OSError(
            f"Could not fetch TF Hub module '{handle}': "
            f"{type(error).__name__}: {error}. Without network access, "
            "download the module elsewhere and pass its local directory, or "
            "set TFHUB_CACHE_DIR to a cache that already holds it."
        ) from error


def _check_saved_model_dir(handle, path):
    if tf.io.gfile.exists(os.path.join(path, _TF1_HUB_MARKER)):
        raise ValueError(
            f"'{handle}' is a legacy TF1 Hub module (hub.Module format, it "
            f"has {_TF1_HUB_MARKER}), which TF2 and Keras 3 cannot load. Use "
            "the TF2 SavedModel version of this model (on tfhub.dev/Kaggle: "
            "the 'TF2' format variation)."
        )
    if not any(tf.io.gfile.exists(os.path.join(path, name)) for name in _SAVED_MODEL_FILES):
        listing = sorted(tf.io.gfile.listdir(path))[:8]
        raise ValueError(
            f"'{handle}' is not a SavedModel directory: it has no "
            f"saved_model.pb (it contains {listing}). Pass the folder that "
            "holds saved_model.pb and variables/, e.g. one written by "
            "tf.saved_model.save."
        )


def load_hub_module(handle):
    """Resolves `handle` and restores it with `tf.saved_model.load`.

    TF Text ops used by text preprocessors are registered on demand, so
    BERT-style preprocessing modules load without an explicit
    `import tensorflow_text`.

    Returns:
        The restored object (its `__call__`, `signatures` and `variables`).
    """
    path = resolve_handle(handle)
    try:
        return tf.saved_model.load(path)
    except Exception as error:  # Parse, version and op errors alike.
        op_name = _unregistered_op(error)
        if op_name is None:
            raise _load_error(handle, error) from error
    _register_text_ops(handle, op_name)
    try:
        return tf.saved_model.load(path)
    except Exception as error:
        raise _load_error(handle, error) from error


def _unregistered_op(error):
    match = _UNREGISTERED_OP.search(str(error))
    return match.group(1) if match else None


def _register_text_ops(handle, op_name):
    try:
        import tensorflow_text  # noqa: F401  (registers the TF Text ops)
    except ImportError as error:
        raise ImportError(
            f"TF Hub module '{handle}' uses the op '{op_name}' from TF Text. "
            "Install the tensorflow-text release that matches your "
            "TensorFlow version (pip install 'tensorflow-text==2.21.*')."
        ) from error


def _load_error(handle, error):
    op_name = _unregistered_op(error)
    if op_name is not None:
        return RuntimeError(
            f"TF Hub module '{handle}' uses the op '{op_name}', which no "
            "installed library registers. Install the package that provides "
            "it (for text modules: tensorflow-text) and import it first."
        )
    return ValueError(
        f"Could not load TF Hub module '{handle}' as a TF2 SavedModel: "
        f"{type(error).__name__}: {str(error).splitlines()[0]}"
    )


# Where modules a saved model names have moved: {saved handle: new handle}.
_RELOCATED = {}


class relocated_hub_modules:
    """Within this context, saved models find their TF Hub modules elsewhere.

    A `.keras` file records its modules' handles. When a local module has
    moved, map the recorded handle to the new one while loading (or use
    `tfxfer.load_model(path, hub_handles=...)`, or the CLI's
    `--hub-handle OLD=NEW`).

    Example:

    >>> with relocated_hub_modules({"/old/place/encoder": "/new/place/encoder"}):
    ...     model = keras.models.load_model("model.keras")
    """

    def __init__(self, handles):
        if handles is not None and not isinstance(handles, dict):
            raise TypeError(
                f"hub_handles must be a dict {{handle saved in the model: where the module is now}}, got {handles!r}."
            )
        self.handles = {str(old): str(new) for old, new in (handles or {}).items()}
        self._previous = None

    def __enter__(self):
        self._previous = dict(_RELOCATED)
        _RELOCATED.update(self.handles)
        return self

    def __exit__(self, *exc_info):
        _RELOCATED.clear()
        _RELOCATED.update(self._previous)


def relocated_handle(handle, layer_name=None):
    """The handle to load for a saved `handle`, with a clear error if it is gone."""
    saved = str(handle)
    handle = _RELOCATED.get(saved, handle)
    if is_remote_handle(handle) or os.path.isdir(os.path.expanduser(str(handle))):
        return handle
    if saved in _RELOCATED:
        raise FileNotFoundError(
            f"The TF Hub module '{saved}' of layer '{layer_name}' was mapped to '{handle}', "
            "which is not a directory. Give the folder that now holds its saved_model.pb."
        )
    raise FileNotFoundError(
        f"The TF Hub module of layer '{layer_name}' is not at '{handle}' any more "
        "(it was moved or deleted since the model was saved). Put it back, or say "
        "where it is now: tfxfer.load_model(path, hub_handles={"
        f"'{handle}': 'NEW/PATH'}}) in Python, --hub-handle '{handle}=NEW/PATH' "
        "on the command line."
    )
