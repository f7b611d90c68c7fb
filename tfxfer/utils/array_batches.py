"""Turning in-memory arrays (and lists of strings) into shuffled batches."""

import numpy as np
import tensorflow as tf
from keras import tree


def is_array_like(data):
    """True for arrays, tensors, lists and dicts of them (not datasets)."""
    if data is None:
        return False
    if isinstance(data, tf.data.Dataset) or hasattr(data, "__next__"):
        return False
    if isinstance(data, dict):
        return all(is_array_like(value) for value in data.values())
    return isinstance(data, (list, tuple, np.ndarray)) or tf.is_tensor(data)


def _as_array(leaf):
    return np.asarray(leaf) if isinstance(leaf, list) else leaf


def _normalize(structure):
    if isinstance(structure, dict):
        return {key: _as_array(value) for key, value in structure.items()}
    return _as_array(structure)


def _length(structure):
    first = tree.flatten(structure)[0]
    return int(first.shape[0])


def split_last(fraction, *structures):
    """Splits off the last `fraction` of every structure (Keras' rule).

    Returns:
        `(train_structures, validation_structures)`, tuples in the order
        given; `None` entries stay `None`.
    """
    structures = [None if s is None else _normalize(s) for s in structures]
    count = _length(next(s for s in structures if s is not None))
    cut = int(count * (1.0 - fraction))
    if cut <= 0 or cut >= count:
        raise ValueError(
            f"validation_split={fraction} leaves an empty training or validation set for {count} examples."
        )

    def part(start, stop):
        return tuple(None if s is None else tree.map_structure(lambda a: a[start:stop], s) for s in structures)

    return part(0, cut), part(cut, count)


def shuffled_batches(x, y=None, sample_weight=None, batch_size=32, seed=None):
    """A `tf.data.Dataset` of `(x, y, sample_weight)` batches, reshuffled
    every epoch, like Keras' own handling of arrays with `shuffle=True`."""
    dataset, count = _examples(x, y, sample_weight)
    return dataset.shuffle(count, seed=seed, reshuffle_each_iteration=True).batch(batch_size)


def ordered_batches(x, y=None, sample_weight=None, batch_size=32):
    """A `tf.data.Dataset` of `(x, y, sample_weight)` batches in the arrays' order."""
    return _examples(x, y, sample_weight)[0].batch(batch_size)


def _examples(x, y, sample_weight):
    elements = tuple(_normalize(part) for part in (x, y, sample_weight) if part is not None)
    count = _length(elements[0])
    if count == 0:
        raise ValueError("fit() received no training examples (empty x).")
    return tf.data.Dataset.from_tensor_slices(elements if len(elements) > 1 else elements[0]), count
