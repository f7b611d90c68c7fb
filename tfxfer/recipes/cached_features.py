"""Cached backbone features: a frozen backbone runs once per example, not once per epoch.

While the backbone is frozen (a linear probe, the head phase of `two_phase`)
it runs in inference mode, so each example's pooled features are the same in
every epoch. `CachedFeatures` computes them once, in memory or, past a memory
budget, on disk, and the head trains on them as a model of its own
(`TransferModel.head_on_features`): the same head, the same callbacks and
checkpoints (of the whole model), the same history, without running the
backbone again.
"""

import os
import shutil
import tempfile
import time
import weakref

import keras
import numpy as np
import tensorflow as tf

from tfxfer.data.dataset_inspection import fixed_batch_size, pipeline_ops
from tfxfer.data.length_bucketing import grouped_by_length, padding_mask_of, token_lengths
from tfxfer.distribute.strategy_selection import is_distributed
from tfxfer.models.length_grouping import groups_by_length, token_lengths_of
from tfxfer.utils.process_liveness import remove_folders_of_dead_processes

MEMORY_BUDGET_BYTES = 1 << 30
DISK_SHUFFLE_EXAMPLES = 10_000
_POSITION_STRIDE = 1 << 24  # more rows than any batch has
_EXTRACTION_POOL_BATCHES = 64


def cache_blockers(model, x, validation_data=None, callbacks=()):
    """Why the head cannot train on cached features here (empty when it can).

    Example:

    >>> cache_blockers(model, train_ds)
    []
    """
    reasons = []
    if model.backbone.trainable_weights:
        reasons.append("the backbone is not frozen")
    for name, data in (("x", x), ("validation_data", validation_data)):
        if data is None and name == "validation_data":
            continue
        if not isinstance(data, tf.data.Dataset) or not isinstance(data.element_spec, tuple):
            reasons.append(f"{name} is not a tf.data.Dataset of (inputs, labels) batches")
            continue
        if int(data.cardinality()) == tf.data.INFINITE_CARDINALITY:
            reasons.append(f"{name} repeats forever")
            continue
        ops = pipeline_ops(data)
        if ops is None:
            reasons.append(f"the input pipeline of {name} cannot be inspected")
        elif any("Random" in op for op in ops):
            reasons.append(f"the input pipeline of {name} is random (augmentation)")
        elif _drops_remainder(data) and any("Shuffle" in op for op in ops):
            # Each epoch drops other examples; a cache would drop the same ones forever.
            reasons.append(f"{name} is shuffled and drops a remainder (drop_remainder)")
    # The features are computed outside the strategy's replica context.
    if is_distributed(model.distribute_strategy):
        reasons.append(f"training is distributed ({type(model.distribute_strategy).__name__})")
    if any(hasattr(callback, "prepare") for callback in callbacks or ()):
        reasons.append("a callback changes what is trainable during fit")
    return reasons


def reshuffles(dataset):
    """Whether `dataset` shuffles its examples (so the cache should too)."""
    ops = pipeline_ops(dataset) or ()
    return any("Shuffle" in op for op in ops)


_FOLDER_PREFIX = "tfxfer-features-"


def _drops_remainder(dataset):
    return fixed_batch_size(dataset.element_spec[0])


class CachedFeatures:
    """The pooled backbone features of a dataset's examples, with their labels.

    Args:
        model: a `TransferModel` with a frozen backbone.
        dataset: `(inputs, labels[, sample_weights])` batches of raw inputs,
            as `fit` takes them.
        memory_budget: bytes of features kept in memory; beyond it the
            features go to files in `directory` (a temporary folder by
            default), removed by `close()`.
        directory: where features over the budget go.
        verbose: 0 silent, 1 a progress bar while computing, 2 one plain
            line when done (for logs: no bar redrawn with escape codes).

    Example:

    >>> cache = CachedFeatures(model, train_ds)
    >>> cache.examples, cache.storage
    (245, 'memory')
    """

    def __init__(self, model, dataset, *, memory_budget=MEMORY_BUDGET_BYTES, directory=None, verbose=1):
        started = time.time()
        spec = dataset.element_spec
        self.has_sample_weights = len(spec) > 2
        self.drop_remainder = _drops_remainder(dataset)
        self.batch_size = None
        self.shuffles = reshuffles(dataset)
        self._directory = None
        self._chunks = []
        self.examples = 0
        # fit groups a text training set by length: the cache replays that grouping.
        self.grouped = groups_by_length(model, dataset)
        # Grouped extraction is put back in source order in memory only; features
        # bound for disk are extracted in source order so their chunks keep it.
        fits_in_memory = _estimated_bytes(model, dataset, self.has_sample_weights) <= memory_budget
        pipeline = _in_length_order(model, dataset, self.grouped and fits_in_memory)
        extract = _extractor(model, keras.utils.unpack_x_y_sample_weight(pipeline.element_spec[0])[0])
        batches = int(dataset.cardinality())
        progress = keras.utils.Progbar(batches if batches >= 0 else None, verbose=verbose, unit_name="batch")
        if verbose:
            print("Computing the frozen backbone's features once (cached for the head's epochs)")
        self.input_batch = None
        try:
            self._extract(pipeline, extract, progress, memory_budget, directory)
        except BaseException:
            self.close()  # an interrupted or failed extraction leaves no files behind
            raise
        self.storage = "disk" if self._chunks else "memory"
        self.seconds = time.time() - started

    def _extract(self, pipeline, extract, progress, memory_budget, directory):
        memory, memory_bytes, positions = [], 0, []
        for data, positions_batch in pipeline:
            x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
            if self.input_batch is None:
                self.input_batch = data
            arrays = [extract(x).numpy(), np.asarray(y)]
            if self.has_sample_weights:
                arrays.append(np.asarray(sample_weight))
            if self.grouped:
                arrays.append(token_lengths(padding_mask_of(x)).numpy())
            self.examples += len(arrays[0])
            self.batch_size = max(self.batch_size or 0, len(arrays[0]))
            positions.append(positions_batch.numpy())
            memory.append(arrays)
            memory_bytes += sum(a.nbytes for a in arrays)
            if memory_bytes > memory_budget:
                self._spill(memory, positions, directory)
                memory, memory_bytes, positions = [], 0, []
            progress.add(1)
        if self.examples == 0:
            raise ValueError("The dataset holds no examples: there is nothing to train the head on.")
        if self._chunks and memory:
            self._spill(memory, positions, directory)
            memory = []
        self._arrays = _in_source_order(memory, positions) if memory else None

    def _spill(self, memory, positions, directory):
        if self._directory is None:
            remove_folders_of_dead_processes(_FOLDER_PREFIX, directory)
            self._directory = tempfile.mkdtemp(prefix=f"{_FOLDER_PREFIX}{os.getpid()}-", dir=directory)
        path = f"{self._directory}/chunk-{len(self._chunks)}"
        tf.data.Dataset.from_tensor_slices(tuple(_in_source_order(memory, positions))).save(path)
        self._chunks.append(path)

    def dataset(self, seed=None):
        """Batches of `(features, labels[, sample_weights])` as the source was batched.

        Shuffled each epoch when the source shuffles; else in the source's
        order, so training sees the same batches as without the cache.
        """
        if self._arrays is not None:
            data = tf.data.Dataset.from_tensor_slices(tuple(self._arrays))
            buffer = self.examples
        else:
            data = tf.data.Dataset.load(self._chunks[0])
            for chunk in self._chunks[1:]:
                data = data.concatenate(tf.data.Dataset.load(chunk))
            buffer = min(self.examples, DISK_SHUFFLE_EXAMPLES)
        if self.shuffles:
            data = data.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
        data = data.batch(self.batch_size, drop_remainder=self.drop_remainder)
        if self.grouped:
            data = data.map(lambda features, *rest: ((features, rest[-1]), *rest[:-1]))
            data = grouped_by_length(data, lambda x: x[1])
            data = data.map(lambda x, *rest: (x[0], *rest))
        return data.prefetch(tf.data.AUTOTUNE)

    @property
    def directory(self):
        """The folder of the features kept on disk (None: all in memory, or closed)."""
        return self._directory

    def close(self):
        """Removes the files of features kept on disk."""
        if self._directory:
            shutil.rmtree(self._directory, ignore_errors=True)
        self._directory = None

    def describe(self):
        """A dict for reports: examples, storage, seconds."""
        return {"examples": self.examples, "storage": self.storage, "seconds": round(self.seconds, 1)}


_ROWS_GUESS = 64  # rows of a batch whose size is not in its spec


def _estimated_bytes(model, dataset, has_sample_weights):
    """About how many bytes the features of `dataset` take (infinite when its size is unknown)."""
    batches = int(dataset.cardinality())
    batch = tf.nest.flatten(dataset.element_spec[0])[0].shape
    if batches < 0:
        return float("inf")
    rows = batches * (batch[0] if batch.rank and batch[0] is not None else _ROWS_GUESS)
    features = int(model.head.dense.kernel.shape[0])
    return rows * (4 * features + 8 + (4 if has_sample_weights else 0) + 4)


def _in_length_order(model, dataset, grouped):
    """`(preprocessed batch, positions)`, text grouped by length when `grouped`.

    A position orders the examples as the dataset gives them, so the
    features can be put back in that order; grouping only changes how much
    padding the backbone runs on.
    """

    def with_positions(index, batch):
        rows = tf.shape(tf.nest.flatten(batch[0])[0], out_type=tf.int64)[0]
        return (batch[0], index * _POSITION_STRIDE + tf.range(rows, dtype=tf.int64), *batch[1:])

    indexed = dataset.enumerate().map(with_positions)
    if grouped:
        indexed = grouped_by_length(indexed, token_lengths_of(model), pool_batches=_EXTRACTION_POOL_BATCHES)

    def preprocessed(x, positions, *labels):
        return model.preprocess_samples(x, *labels), positions

    return indexed.map(preprocessed, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


_EXTRACTORS = weakref.WeakKeyDictionary()


def _extractor(model, input_spec):
    """One traced feature function per model and input spec (text lengths vary: one trace)."""
    functions = _EXTRACTORS.setdefault(model, {})
    key = repr(input_spec)
    if key not in functions:
        functions[key] = tf.function(
            lambda x: tf.cast(model.backbone_features(x, training=False), tf.float32), input_signature=[input_spec]
        )
    return functions[key]


def _in_source_order(memory, positions):
    order = np.argsort(np.concatenate(positions), kind="stable")
    columns = zip(*memory)
    return [np.concatenate(column)[order] for column in columns]
