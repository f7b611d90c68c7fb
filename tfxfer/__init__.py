"""tfxfer: Keras 3 native transfer learning on TensorFlow.

The public API lives here. Names load on first use, so `import tfxfer` stays
light (TensorFlow and Keras are imported only when a name needs them).

Example:

>>> import tfxfer
>>> model = tfxfer.TransferModel.from_hub(
...     "../shared/models/tfhub/efficientnet_lite0_feature_vector",
...     num_classes=2, input_shape=(224, 224, 3))
"""

import importlib

from tfxfer.registration import register_when_keras_is_imported
from tfxfer.version import __version__

register_when_keras_is_imported()

_PUBLIC_NAMES = {
    "HubBackbone": "tfxfer.backbones.hub_backbone",
    "ImagePreprocessor": "tfxfer.preprocessing.image_preprocessor",
    "load_model": "tfxfer.models.model_loading",
    "relocated_hub_modules": "tfxfer.backbones.hub_module",
    "TransferModel": "tfxfer.models.transfer_model",
    "ClassificationHead": "tfxfer.models.classification_head",
    "SourceClassifier": "tfxfer.models.source_classifier",
    "LayerGroup": "tfxfer.freezing.layer_groups",
    "layer_groups": "tfxfer.freezing.layer_groups",
    "register_layer_groups": "tfxfer.freezing.group_declarations",
    "load_hub_module": "tfxfer.backbones.hub_module",
    "resolve_handle": "tfxfer.backbones.hub_module",
    "load_preset": "tfxfer.backbones.preset_loading",
    "discriminative_optimizer": "tfxfer.optimizers.discriminative",
    "warmup_cosine": "tfxfer.optimizers.schedules",
    "wise_ft": "tfxfer.recipes.wise_ft",
    "export_for_serving": "tfxfer.export.serving_export",
    "predict_from_export": "tfxfer.export.export_checks",
    "verify_export": "tfxfer.export.export_checks",
    "TrainConfig": "tfxfer.runs.train_config",
    "train_run": "tfxfer.runs.training_run",
    "resume_run": "tfxfer.runs.training_run",
    "evaluate_run": "tfxfer.runs.run_evaluation",
    "tune": "tfxfer.tuning.search",
}

_SUBMODULES = ("callbacks", "data", "optimizers", "preprocessing", "recipes", "regularizers", "runs")

__all__ = ["__version__", *_PUBLIC_NAMES, *_SUBMODULES]


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"tfxfer.{name}")
    module_name = _PUBLIC_NAMES.get(name)
    if module_name is None:
        raise AttributeError(f"module 'tfxfer' has no attribute '{name}'")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
