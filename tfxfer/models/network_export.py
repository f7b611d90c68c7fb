"""`TransferModel.export`'s SavedModel: the inference network only (backbone and head).

`tfxfer.export.export_for_serving` builds the served signatures on top of it.

Example:

>>> export_network(model, "/tmp/network")
"""

import keras
import tensorflow as tf
from keras import tree

from tfxfer.models.lora_adapters import merged_lora


def export_network(model, filepath, verbose=None, input_signature=None):
    """Writes a SavedModel whose `serve` endpoint is `model(inputs, training=False)`.

    The regularizer's w⁰, DELTA's source copy and the optimizer's state stay
    out; LoRA adapters are merged into their kernels, so the served graph
    has no adapter ops.
    """
    archive = keras.export.ExportArchive()
    archive.track(model.backbone)
    archive.track(model.head)
    if input_signature is None:
        input_signature = [tree.map_structure(lambda t: tf.TensorSpec(t.shape, t.dtype, name=t.name), model.input)]
    with merged_lora(model.backbone):
        archive.add_endpoint("serve", lambda inputs: model(inputs, training=False), input_signature=input_signature)
        archive.write_out(filepath, verbose=True if verbose is None else verbose)
