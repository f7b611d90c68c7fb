"""Co-Tuning's category relationship p(y_s | y_t), measured by the model that keeps it (a `TransferModel` mixin).

The relationship is the model's `source_classifier`'s softmax averaged per
target class over the training examples, with the backbone in inference
mode (TLlib's "direct" relationship). It is measured once: by
`compute_relationship` on data the caller chooses (the training split
without augmentation), or by `fit` on its own training data when it was not.
"""

import logging

import keras
import numpy as np
import tensorflow as tf

from tfxfer.models.input_assertions import readable_errors
from tfxfer.models.source_classifier import class_ids
from tfxfer.utils.array_batches import is_array_like, split_last

logger = logging.getLogger("tfxfer")


class CategoryRelationship:
    """`compute_relationship` and the measuring `fit` does (needs `source_classifier`, `_raw_data`, `preprocessor`)."""

    def compute_relationship(self, x, y=None, batch_size=None):
        """Co-Tuning's category relationship p(y_s | y_t), measured on raw training data and kept with the model.

        `fit` measures it once, on its own training data, when it has not
        been measured; call this first to measure it on the training split
        without augmentation (as the CLI does). Returns the relationship,
        `[num_classes, num_source_classes]`.

        >>> relationship = model.compute_relationship(unaugmented_train_ds)
        """
        if self.source_classifier is None:
            raise ValueError(
                "compute_relationship is Co-Tuning's: build the model with regularizer=CoTuning(...) and "
                "source_classifier=..."
            )
        x, y, _ = self._raw_data("fit", x, y)
        with readable_errors():
            return self._measure_relationship(x, y, batch_size)

    def _measure_relationship(self, x, y, batch_size):
        """The relationship from prepared raw data (`_raw_data`'s): batched, preprocessed, measured."""
        data = (
            x if isinstance(x, tf.data.Dataset) else tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size or 32)
        )
        if self.preprocessor is not None:
            data = data.map(self.preprocess_samples, num_parallel_calls=tf.data.AUTOTUNE)
        return measure_relationship(self, data)

    def _measure_relationship_for_fit(self, x, y, batch_size, validation_split, validation_data):
        """Before a `fit` (prepared raw data), on the examples it trains on: Keras holds out the last ones."""
        logger.info(
            "Co-Tuning: measuring the category relationship on fit's training data (call "
            "model.compute_relationship(data) first to measure it on data without augmentation)."
        )
        if validation_split and validation_data is None and is_array_like(x):
            (x, y, _), _ = split_last(validation_split, x, y, None)
        self._measure_relationship(x, y, batch_size)


def measure_relationship(model, dataset, verbose=True):
    """Co-Tuning's relationship from `dataset` (batches of preprocessed `(inputs, labels)`), stored in the model.

    Row t is the source classifier's softmax averaged over the examples of
    target class t, with the backbone in inference mode. A class with no
    example gets the average over all examples (and a warning).
    """
    source = model.source_classifier
    sums = np.zeros((source.num_classes, source.num_source_classes), np.float64)
    counts = np.zeros(source.num_classes, np.int64)
    for data in dataset:
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        probabilities = tf.nn.softmax(source(model.backbone_features(x, training=False))).numpy()
        ids = class_ids(y).numpy()
        np.add.at(sums, ids, probabilities)
        counts += np.bincount(ids, minlength=source.num_classes)
    if not counts.sum():
        raise ValueError("Co-Tuning needs training examples to relate the target classes to the source classes.")
    overall = sums.sum(axis=0) / counts.sum()
    empty = [index for index, count in enumerate(counts) if not count]
    if empty:
        names = model.class_names or list(range(source.num_classes))
        logger.warning(
            "Co-Tuning: no training example of class %s; its relationship row is the average over all classes.",
            ", ".join(str(names[index]) for index in empty),
        )
    rows = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], overall[None, :])
    source.set_relationship(rows)
    if verbose:
        logger.info("Co-Tuning: category relationship measured on %d training examples.", int(counts.sum()))
    return rows
