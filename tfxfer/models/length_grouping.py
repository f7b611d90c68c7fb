"""Where a `TransferModel`'s text batches may vary in length, and how its training set is grouped by length.

`tfxfer.data.length_bucketing` holds the mechanics (buckets, trimming,
grouping); this module decides, for one model and its data, whether they
apply. A batch may be cut to its length bucket only where nothing needs
fixed batch shapes (see `TransferModel`'s `length_bucketing`).

Example:

>>> batches_may_vary_in_length(model, tf.TensorSpec([None], tf.string))
True
"""

import keras
import tensorflow as tf
from keras import tree

from tfxfer.data.dataset_inspection import fixed_batch_size
from tfxfer.data.length_bucketing import padding_mask_of, token_lengths
from tfxfer.distribute import multi_worker_fix
from tfxfer.distribute.strategy_selection import runs_on_tpu


def batches_may_vary_in_length(model, raw_inputs):
    """Whether batches of `raw_inputs` (tensors or specs) may be cut to their length bucket."""
    if not model.length_bucketing or model.modality != "text":
        return False
    if model.pooling in ("avg", "max"):
        return False  # these pool over padded positions too: trimming would change them
    if any(len(t.shape) > 1 and t.shape[1] is not None for t in tree.flatten(model.inputs)):
        return False  # the backbone takes one fixed length
    if fixed_batch_size(raw_inputs):
        return False  # drop_remainder: the caller wants fixed shapes
    if int(getattr(model, "steps_per_execution", 1) or 1) > 1:
        return False
    strategy = model.distribute_strategy
    return not (runs_on_tpu(strategy) or multi_worker_fix.spans_workers(strategy))


def groups_by_length(model, dataset):
    """Whether `fit` groups the examples of `dataset` (raw texts with labels) into batches of similar length."""
    if not isinstance(dataset, tf.data.Dataset) or not isinstance(dataset.element_spec, tuple):
        return False
    raw = dataset.element_spec[0]
    specs = tree.flatten(raw)
    if not specs or any(spec.dtype != tf.string for spec in specs):
        return False
    return batches_may_vary_in_length(model, raw) and int(dataset.cardinality()) != tf.data.INFINITE_CARDINALITY


def token_lengths_of(model):
    """A function from a batch of raw texts to their token lengths under `model.preprocessor`."""

    def lengths(raw_inputs):
        inputs = keras.utils.unpack_x_y_sample_weight(model.preprocessor(raw_inputs))[0]
        return token_lengths(padding_mask_of(inputs))

    return lengths
