"""Data loaders: image folders and text files to `tf.data` pipelines.

Each returns a `LoadedData` (train and validation datasets of batched
`(inputs, label)`, the class names, and a report of skipped examples).

Example:

>>> data = tfxfer.data.from_image_folder("../shared/data/images/hymenoptera")
>>> model = tfxfer.TransferModel.from_hub(handle, num_classes=data.num_classes)
>>> model.fit(data.train, validation_data=data.validation)
"""

from tfxfer.data.data_report import DataError, DataReport
from tfxfer.data.image_folder import from_image_folder
from tfxfer.data.image_pipeline import augmentation_layers
from tfxfer.data.loaded_data import LoadedData
from tfxfer.data.splitting import stratified_split
from tfxfer.data.text_file import from_text_file
from tfxfer.data.tfds_loading import from_tfds

__all__ = [
    "DataError",
    "DataReport",
    "LoadedData",
    "augmentation_layers",
    "from_image_folder",
    "from_text_file",
    "from_tfds",
    "stratified_split",
]
