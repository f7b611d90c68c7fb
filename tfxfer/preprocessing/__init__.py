"""How raw inputs become model inputs: the preprocessors a model owns."""

from tfxfer.preprocessing.image_preprocessor import ImagePreprocessor
from tfxfer.preprocessing.modality import IMAGE, TEXT, preprocessor_modality

__all__ = ["IMAGE", "TEXT", "ImagePreprocessor", "preprocessor_modality"]
