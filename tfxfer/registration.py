"""Registers tfxfer's Keras classes with Keras' serialization, without importing Keras early.

`import tfxfer` must make a plain `keras.models.load_model("model.keras")`
find `TransferModel`, `HubBackbone`, `ImagePreprocessor`, the regularizers
and schedules; but `import tfxfer` (and so `tfxfer --help`) must not pay
for importing TensorFlow and Keras (about 4 s). So when Keras is already
imported the classes are registered at once; otherwise they are
registered right after TensorFlow and Keras finish importing, whichever
the program imports first (TensorFlow imports Keras half-way through its
own import, and KerasHub imports both, so registration waits until none of
them is still executing). The same moment installs tfxfer's one Keras
workaround that applies to every model (`tfxfer.utils.einsum_gradient_fix`).
"""

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings

# keras_hub too: registering imports it, so it must not be half-imported then.
_WATCHED = ("keras", "tensorflow", "keras_hub")
_REGISTERING_MODULES = (
    "tfxfer.models.transfer_model",
    "tfxfer.preprocessing.image_preprocessor",
    "tfxfer.optimizers",
    "tfxfer.regularizers",
)
_executing = set()
_registered = False


def register_keras_objects():
    """Imports the modules whose classes are registered with Keras, and installs the einsum fix (idempotent)."""
    global _registered
    if _registered:
        return
    for name in _REGISTERING_MODULES:
        importlib.import_module(name)
    importlib.import_module("tfxfer.utils.einsum_gradient_fix").install()
    _registered = True


def register_when_keras_is_imported():
    """Registers now if Keras is loaded, else as soon as it (and TensorFlow) finish loading."""
    if "keras" in sys.modules and not _executing:
        register_keras_objects()
        return
    if not any(isinstance(finder, _AfterImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport())


class _AfterImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name not in _WATCHED:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _RegisteringLoader(spec.loader, name)
        return spec


class _RegisteringLoader(importlib.abc.Loader):
    def __init__(self, loader, name):
        self._loader = loader
        self._name = name

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        _executing.add(self._name)
        try:
            self._loader.exec_module(module)
        finally:
            _executing.discard(self._name)
        if _executing or "keras" not in sys.modules or "tensorflow" not in sys.modules:
            return
        try:
            register_keras_objects()
            sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _AfterImport)]
        except Exception as error:  # Never break the user's own import.
            warnings.warn(
                f"tfxfer could not register its Keras classes ({error}); "
                "`import tfxfer.models` before loading a .keras file.",
                stacklevel=2,
            )

    def __getattr__(self, name):
        return getattr(self._loader, name)
