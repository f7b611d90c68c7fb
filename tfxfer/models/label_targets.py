"""Labels as the model's loss takes them: names mapped, exact one-hot made ids, bad labels refused.

For the losses `compile(loss="auto")` picks (sparse categorical or binary
cross-entropy, as loss objects): names become class ids through
`class_names`, exact one-hot rows become class ids (softmax heads),
whole-number floats become ids, and ids that are not whole numbers or are
out of range are refused; multi-label (multi-hot) and single-sigmoid heads
take values in [0, 1]. With other losses only names are mapped. Eager
labels are checked at once, a dataset's in its pipeline
(`tfxfer.models.input_assertions`).

Example:

>>> LabelTargets(model).array(["ants", "bees"], "y")
array([0, 1], dtype=int32)
"""

import keras
import numpy as np
import tensorflow as tf

from tfxfer.models.input_assertions import required, shown_shape


class LabelTargets:
    """What `model`'s loss takes as labels, and the labels given made so."""

    def __init__(self, model):
        self.class_names = model.class_names
        self.num_classes = model.head.num_classes
        self.kind = None  # another loss: only names are mapped
        if isinstance(model.loss, keras.losses.SparseCategoricalCrossentropy):
            self.kind = "class_ids"
        elif isinstance(model.loss, keras.losses.BinaryCrossentropy):
            self.kind = "binary" if self.num_classes == 1 else "multi_hot"

    def class_weight(self, class_weight):
        """`fit`'s `class_weight` keyed by class ids: names mapped through `class_names`; unknown classes refused.

        Classes it leaves out weigh 1 (Keras would fail on their labels).
        """
        if class_weight is None:
            return None
        if not isinstance(class_weight, dict):
            raise ValueError(
                f"class_weight must be a dict of class (id or name) to weight, got {type(class_weight).__name__}."
            )
        names = self.class_names or []
        weights = {}
        for key, weight in class_weight.items():
            if isinstance(key, (str, bytes)):
                name = key.decode() if isinstance(key, bytes) else key
                if name not in names:
                    known = f"class_names are {names}" if names else "this model has no class_names: key by class id"
                    raise ValueError(f"class_weight names class {name!r}, which is not a class; {known}.")
                key = names.index(name)
            elif isinstance(key, (int, np.integer)) and not isinstance(key, bool) and 0 <= key < self.num_classes:
                key = int(key)
            else:
                raise ValueError(
                    f"class_weight has the key {key!r}; keys are class ids 0..{self.num_classes - 1} or class names."
                )
            if key in weights:
                raise ValueError(f"class_weight gives class {key} two weights (by its id and by its name); give one.")
            weights[key] = weight
        return {class_id: weights.get(class_id, 1.0) for class_id in range(max(self.num_classes, 2))}

    def adapts(self, spec):
        """Whether labels of `spec` (a `tf.TensorSpec`) are mapped or checked at all."""
        return isinstance(spec, tf.TensorSpec) and (spec.dtype == tf.string or self.kind is not None)

    def array(self, y, name):
        """Labels given as an array, tensor or list, as the loss takes them (raises on bad labels)."""
        if isinstance(y, (list, tuple)) or not tf.is_tensor(y):
            y = np.asarray(y)
        labels = tf.convert_to_tensor(y)
        if labels.dtype != tf.string and self.kind is None:
            return y
        return self.targets(labels, name, "").numpy()

    def targets(self, y, name, scope):
        """`y` as the loss takes it (eagerly: raises on bad labels, else checks in the graph)."""
        if y.dtype == tf.string:
            y = self._ids_of_names(y, name, scope)
        if self.kind is None or y.shape.rank is None:
            return y
        width = 2 if self.kind == "binary" else self.num_classes
        rows = y.shape.rank >= 2 and y.shape[-1] not in (1, None)
        if rows and (y.shape.rank != 2 or y.shape[-1] != width):
            takes = {
                "class_ids": f"class ids [batch] or one-hot rows [batch, {width}]",
                "binary": "labels 0/1 [batch] (or one-hot rows [batch, 2])",
                "multi_hot": f"multi-hot rows [batch, {width}] (or class ids [batch], one label each)",
            }[self.kind]
            raise ValueError(f"{name} has shape {shown_shape(y.shape)}; this model's head takes {takes}.")
        if y.dtype == tf.bool:
            y = tf.cast(y, tf.int32)
        if y.shape.rank == 2 and y.shape[-1] == 1:
            # [batch, 1] and [batch] are the same labels; one shape, or a later
            # fit retraces with labels of unknown rank, which the loss refuses.
            y = tf.reshape(y, [-1])
        if self.kind == "multi_hot":
            if rows:
                return self._in_unit_range(y, name, scope)
            ids = self._class_ids(y, name, scope)
            return tf.one_hot(tf.reshape(ids, [-1]), width, dtype=tf.float32)
        if rows:
            y = self._one_hot_ids(y, name, scope)
        if self.kind == "binary":
            return self._in_unit_range(y, name, scope)
        return self._class_ids(y, name, scope)

    def _ids_of_names(self, y, name, scope):
        if self.class_names is None:
            raise ValueError(
                f"{name} holds strings, but this model has no class_names to map them to class ids; build "
                "the model with class_names=[...] (in output order) or pass class ids."
            )
        matches = tf.equal(y[..., None], tf.constant(self.class_names))
        known = tf.reduce_any(matches, axis=-1)
        ids = tf.argmax(tf.cast(matches, tf.int32), axis=-1, output_type=tf.int32)
        return required(
            ids,
            tf.reduce_all(known),
            f"{name} holds labels that are not in class_names {self.class_names}{scope}",
            tf.unique(tf.reshape(tf.boolean_mask(y, ~known), [-1]))[0],
        )

    def _one_hot_ids(self, y, name, scope):
        values = tf.cast(y, tf.float32)
        exact = tf.reduce_all((values == 0.0) | (values == 1.0), axis=-1) & (tf.reduce_sum(values, axis=-1) == 1.0)
        ids = tf.argmax(values, axis=-1, output_type=tf.int32)
        return required(
            ids,
            tf.reduce_all(exact),
            f"{name} has rows of {y.shape[-1]} values but they are not exact one-hot (a single 1, the rest 0)"
            f"{scope}; pass class ids 0..{y.shape[-1] - 1} or exact one-hot rows. A row",
            tf.boolean_mask(values, ~exact)[:1],
        )

    def _class_ids(self, y, name, scope):
        if y.dtype.is_floating:
            whole = tf.equal(y, tf.round(y))
            y = required(
                y,
                tf.reduce_all(whole),
                f"{name} holds class ids that are not whole numbers{scope}; labels are class ids 0..{self.num_classes - 1}",
                tf.boolean_mask(y, ~whole),
            )
        ids = tf.cast(y, tf.int32) if y.dtype.is_floating else y
        inside = (ids >= 0) & (ids < self.num_classes)
        return required(
            tf.cast(ids, tf.int32),
            tf.reduce_all(inside),
            f"{name} holds class ids outside 0..{self.num_classes - 1} ({self.num_classes} classes){scope}",
            tf.boolean_mask(y, ~inside),
            f"; class_names are {self.class_names}" if self.class_names else "",
        )

    def _in_unit_range(self, y, name, scope):
        values = tf.cast(y, tf.float32)
        inside = (values >= 0.0) & (values <= 1.0)
        meaning = (
            f"0 is {self.class_names[0]!r}, 1 is {self.class_names[1]!r}"
            if self.kind == "binary" and self.class_names
            else "one sigmoid output per class"
            if self.kind == "multi_hot"
            else "0 and 1 for the negative and the positive class"
        )
        return required(
            y,
            tf.reduce_all(inside),
            f"{name} holds labels outside [0, 1] ({meaning}){scope}",
            tf.boolean_mask(y, ~inside),
        )
