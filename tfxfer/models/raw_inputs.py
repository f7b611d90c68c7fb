"""Raw inputs and labels given to `fit`/`evaluate`/`predict`: checked up front, or adapted exactly.

A `TransferModel` takes raw inputs (pixel values in [0, 255], or strings)
and labels as Keras users write them. What cannot be right is refused with a
message that names the argument (`x`, `y`, `validation_data`); what has one
exact meaning is adapted:

- images: a list of differently sized images is resized by the model's
  preprocessor; one image `[h, w, c]` is a batch of one for `predict`;
  grayscale and RGBA images become RGB in the preprocessor. Float images all
  in [0, 1] (scaled already: the preprocessor would scale them a second
  time), values outside [0, 255] and 16-bit images are refused.
- labels, for the model's loss (those `compile(loss="auto")` picks, sparse
  categorical or binary cross-entropy, as loss objects): names are
  mapped to class ids through `class_names`; exact one-hot rows become class
  ids (softmax heads); whole-number floats become ids, and ids that are not
  whole numbers or are out of range are refused. Multi-label (multi-hot)
  and single-sigmoid heads take values in [0, 1]. With other losses, only
  names are mapped.

Arrays, tensors and lists are checked here, eagerly, before anything runs. A
`tf.data.Dataset` is never read ahead (a peek would cost a pass through
its shuffle buffer): its pipeline gets the same checks, in the graph, on
the labels of every batch and on the images of each pass's first batch; a
failed check stops `fit`/`evaluate`/`predict` with the same `ValueError`
(`readable_errors`).
"""

import codecs
import contextlib
import re

import keras
import numpy as np
import tensorflow as tf

from tfxfer.preprocessing.image_preprocessor import CHANNELS
from tfxfer.preprocessing.modality import IMAGE, TEXT, data_modality
from tfxfer.utils.array_batches import is_array_like

# Interpolation in resizing and augmentation (rotation, zoom) lands a pixel
# of 255 on 255.00002 now and then: raw pixels within one 8-bit level of the
# range are raw pixels still.
PIXEL_ROUNDING = 1.0

_MARK = "<<tfxfer-input>>"
_MARKED = re.compile(re.escape(_MARK) + "(.*?)" + re.escape(_MARK), re.DOTALL)
_EXAMPLES = 5


def prepared_data(model, method, x, y=None, validation_data=None):
    """`(x, y, validation_data)` checked and adapted for `model.<method>`; see the module docstring."""
    contract = _Contract(model, method)
    check_modality(model, x, method)
    if method != "predict":
        check_labels_given(method, x, y)
    x, y = contract.prepared(x, y, "x", "y", labelled=method != "predict")
    if validation_data is not None:
        if isinstance(validation_data, keras.utils.PyDataset) or hasattr(validation_data, "__next__"):
            contract.prepared(validation_data, None, "validation_data", "validation_data's labels")  # refused
        if isinstance(validation_data, tf.data.Dataset):
            validation_data = contract.dataset(validation_data, "validation_data", "validation_data's labels")
        elif isinstance(validation_data, (tuple, list)) and validation_data:
            vx, vy = contract.prepared(
                validation_data[0],
                validation_data[1] if len(validation_data) > 1 else None,
                "validation_data",
                "validation_data's labels",
            )
            validation_data = (vx, vy, *validation_data[2:]) if len(validation_data) > 1 else (vx,)
    return x, y, validation_data


@contextlib.contextmanager
def readable_errors():
    """Turns a failed input check of a dataset's pipeline into the `ValueError` it stands for."""
    try:
        yield
    except tf.errors.InvalidArgumentError as error:
        found = _MARKED.search(str(error))
        if found is None:
            raise
        raise ValueError(_unescaped(found.group(1))) from None


def check_labels_given(method, x, y):
    """`fit`/`evaluate` need labels: `y` beside arrays, or `(inputs, labels)` elements in a dataset."""
    if isinstance(x, tf.data.Dataset):
        spec = x.element_spec
        if not (isinstance(spec, tuple) and len(spec) > 1):
            raise ValueError(
                f"{method} got a dataset of inputs only; it needs (inputs, labels) pairs, e.g. "
                "tf.data.Dataset.from_tensor_slices((x, y)).batch(32)."
            )
    elif y is None and x is not None and is_array_like(x) and not isinstance(x, dict):
        raise ValueError(f"{method} needs labels: pass y (class ids or names, one per example) beside x.")


def check_modality(model, x, method):
    """Inputs of the other modality are errors: strings for an image model, numbers for a text model."""
    given = data_modality(x)
    if model.modality == TEXT and given == IMAGE:
        raise ValueError(
            f"{method} got numbers (images or tensors), but this model takes text: raw "
            "strings (a list, an array of str, or a tf.data.Dataset of strings). For "
            "images, build an image model (e.g. an image TF Hub module)."
        )
    if model.modality == IMAGE and given == TEXT:
        raise ValueError(
            f"{method} got strings, but this model takes images: raw pixel values "
            "[batch, height, width, 3] in [0, 255] (or tfxfer.data.from_image_folder). "
            "For text, build a text model (TransferModel.from_preset or from_hub with a text encoder)."
        )


class _Contract:
    """What `model.<method>` takes as x and y, read off the model's public contract."""

    def __init__(self, model, method):
        self.method = method
        self.images = model.modality == IMAGE
        self.texts = model.modality == TEXT
        self.preprocessor = model.preprocessor
        self.class_names = model.class_names
        self.num_classes = model.head.num_classes
        self.labels = None  # another loss: only names are mapped
        if isinstance(model.loss, keras.losses.SparseCategoricalCrossentropy):
            self.labels = "class_ids"
        elif isinstance(model.loss, keras.losses.BinaryCrossentropy):
            self.labels = "binary" if self.num_classes == 1 else "multi_hot"

    # --- Arrays, tensors, lists -------------------------------------------

    def prepared(self, x, y, x_name, y_name, labelled=True):
        if isinstance(x, keras.utils.PyDataset) or hasattr(x, "__next__"):
            raise ValueError(
                f"{x_name} is a {'keras.utils.PyDataset' if isinstance(x, keras.utils.PyDataset) else 'Python generator'}; "
                "tfxfer takes arrays, lists or a tf.data.Dataset (tf.data.Dataset.from_generator wraps a generator, "
                "with output_signature giving its shapes)."
            )
        if isinstance(x, tf.data.Dataset):
            return self.dataset(x, x_name, "y", labelled=labelled), y
        if self.texts:
            x = self._text_batch(x, x_name)
        if is_array_like(x) and not isinstance(x, dict) and _length(x) == 0:
            raise ValueError(f"{self.method} got no examples: {x_name} is empty.")
        if self.images and is_array_like(x) and not isinstance(x, dict):
            x = self._image_batch(x, x_name)
        if labelled and y is not None and is_array_like(y) and not isinstance(y, dict):
            y = self._label_array(y, y_name)
            if is_array_like(x) and not isinstance(x, dict) and _length(x) != _length(y):
                raise ValueError(
                    f"{x_name} holds {_length(x)} examples but {y_name} holds {_length(y)} labels; "
                    "give one label per example."
                )
        return x, y

    def _text_batch(self, x, name):
        """One text is a batch of one for `predict`, texts `[batch, 1]` a batch; a list must hold texts only."""
        if (isinstance(x, np.ndarray) or tf.is_tensor(x)) and len(x.shape) == 0:
            x = x.item() if isinstance(x, np.ndarray) else x.numpy()
        if isinstance(x, (str, bytes)):
            if self.method != "predict":
                raise ValueError(f"{self.method} got one text as {name}; pass a list of texts (and a list of labels).")
            return [x]
        if (isinstance(x, np.ndarray) or tf.is_tensor(x)) and len(x.shape) == 2 and x.shape[-1] == 1:
            x = x[:, 0]  # one text column, as `df[["text"]].values` gives it
        if (isinstance(x, np.ndarray) or tf.is_tensor(x)) and len(x.shape) > 1:
            raise ValueError(f"{name} has shape {_shape(x.shape)}; texts are a list or an array [batch] of strings.")
        if isinstance(x, tuple):
            x = list(x)
        if isinstance(x, list) or (isinstance(x, np.ndarray) and x.dtype == object):
            for index, value in enumerate(x):
                if not isinstance(value, (str, bytes)):
                    raise ValueError(
                        f"{name}[{index}] is {type(value).__name__} ({str(value)[:40]!r}), not a text; "
                        f"{name} holds strings."
                    )
        return x

    def _image_batch(self, x, name):
        if isinstance(x, np.ndarray) and x.dtype == object:
            x = list(x)
        if isinstance(x, (list, tuple)):
            for index, image in enumerate(x):
                if image is None or isinstance(image, (str, bytes)):
                    raise ValueError(
                        f"{name}[{index}] is {type(image).__name__}, not an image; {name} holds pixel arrays "
                        "(for files: tfxfer.data.from_image_folder, or decode them with tf.io.decode_image)."
                    )
            images = [np.asarray(image) for image in x]
            if not images:
                return x
            if len({image.shape for image in images}) > 1:
                return self._resized(images, name)
            x = np.stack(images)
        shape = tuple(x.shape)
        if len(shape) == 3 and shape[-1] in CHANNELS:
            if self.method != "predict":
                raise ValueError(
                    f"{self.method} got one image {shape} as {name}; pass a batch "
                    "[batch, height, width, channels] (x[None] for one image)."
                )
            x = x[None]
        self._check_images(tf.convert_to_tensor(x), name)
        return x

    def _resized(self, images, name):
        """Differently sized images, each resized by the preprocessor, as one batch."""
        for index, image in enumerate(images):
            if image.ndim != 3:
                raise ValueError(
                    f"{name} is a list of images of different sizes, but one has shape {image.shape}; "
                    "each image is [height, width, channels]."
                )
            self._check_images(tf.convert_to_tensor(image[None]), f"{name}[{index}]", positions=False)
        # Exactly what the preprocessor makes of each image alone: its
        # pixels at image_size, which it then leaves as they are.
        return np.stack([self.preprocessor.pixels(image).numpy() for image in images])

    def _label_array(self, y, name):
        if isinstance(y, (list, tuple)) or not tf.is_tensor(y):
            y = np.asarray(y)
        labels = tf.convert_to_tensor(y)
        if labels.dtype != tf.string and self.labels is None:
            return y
        return self._targets(labels, name, "").numpy()

    # --- Datasets ----------------------------------------------------------

    def dataset(self, dataset, x_name, y_name, labelled=True):
        spec = dataset.element_spec
        parts = list(spec) if isinstance(spec, tuple) else [spec]
        if self.texts and isinstance(parts[0], tf.TensorSpec) and parts[0].shape.rank == 0:
            raise ValueError(
                f"{x_name} is a dataset of single texts, not of batches; call .batch(...) on it (e.g. .batch(32))."
            )
        if self.texts and isinstance(parts[0], tf.TensorSpec) and parts[0].shape.rank == 2 and parts[0].shape[-1] == 1:
            # Batches of one text column [batch, 1]: the texts [batch] they hold.
            dataset = dataset.map(
                lambda *element: (element[0][:, 0], *element[1:]) if len(element) > 1 else element[0][:, 0]
            )
            return self.dataset(dataset, x_name, y_name, labelled)
        check_images = self.images and isinstance(parts[0], tf.TensorSpec) and self._needs_value_check(parts[0], x_name)
        check_labels = (
            labelled
            and len(parts) > 1
            and isinstance(parts[1], tf.TensorSpec)
            and (parts[1].dtype == tf.string or self.labels is not None)
        )
        if not (check_images or check_labels):
            return dataset

        def checked(*element):
            element = list(element)
            if check_images:
                element[0] = self._check_images(element[0], x_name, " (in a batch of the dataset)")
            if check_labels:
                element[1] = self._targets(element[1], y_name, " (in a batch of the dataset)")
            return tuple(element) if isinstance(spec, tuple) else element[0]

        # Every batch, in the pipeline: nothing is read ahead, and a min/max
        # per batch costs little beside decoding and resizing.
        return dataset.map(checked, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    def _needs_value_check(self, spec, name):
        """Refuses what the element spec already shows is wrong; True when values must be read."""
        self._check_image_shape(spec.shape, spec.dtype, name)
        return spec.dtype != tf.uint8

    # --- The rules ---------------------------------------------------------

    def _check_image_shape(self, shape, dtype, name):
        if shape.rank is not None and shape.rank != 4:
            raise ValueError(
                f"{name} has shape {_shape(shape)}; images are batches [batch, height, width, channels]"
                + (" (for a dataset: call .batch())" if shape.rank == 3 else "")
                + "."
            )
        channels = shape[-1] if shape.rank else None
        if channels is not None and channels not in CHANNELS:
            raise ValueError(
                f"{name} has images with {channels} channels; the model takes "
                f"{', '.join(f'{kind} ({count})' for count, kind in CHANNELS.items())} images."
            )
        if dtype == tf.uint16:
            raise ValueError(
                f"{name} holds uint16 images; the model takes 8-bit pixel values in [0, 255] (uint8 or "
                "float): convert them first, e.g. (x // 257).astype('uint8')."
            )
        if not (dtype.is_integer or dtype.is_floating) or dtype in (tf.uint32, tf.uint64):
            raise ValueError(f"{name} holds {dtype.name} values; images are uint8 or float pixel values in [0, 255].")

    def _check_images(self, images, name, scope="", positions=True):
        """`images`, once their values are seen to be raw pixels in [0, 255] (eagerly: raises, else checks in the graph)."""
        self._check_image_shape(images.shape, images.dtype, name)
        if images.dtype == tf.uint8 or (tf.executing_eagerly() and int(tf.size(images)) == 0):
            return images
        values = tf.cast(images, tf.float32)
        low, high = tf.reduce_min(values), tf.reduce_max(values)
        checked = _required(
            images,
            tf.reduce_all(tf.math.is_finite(values)) & (low >= -PIXEL_ROUNDING) & (high <= 255.0 + PIXEL_ROUNDING),
            f"{name} has pixel values outside [0, 255]{scope}; the model takes raw pixel values in [0, 255] "
            "(uint8 or float). Lowest and highest",
            tf.stack([low, high]),
        )
        if not images.dtype.is_floating:
            return checked
        value_range = getattr(self.preprocessor, "value_range", None)
        # Image by image, so that one scaled image among raw ones is seen; an
        # all-black image reads the same either way.
        per_image = tf.reshape(values, [tf.shape(values)[0], -1])
        image_high = tf.reduce_max(per_image, axis=1)
        scaled = (tf.reduce_min(per_image, axis=1) >= 0.0) & (image_high <= 1.0) & (image_high > 0.0)
        return _required(
            checked,
            ~tf.reduce_any(scaled),
            f"{self.method} takes raw pixel values in [0, 255] (uint8 or float); images in {name}{scope} "
            "are all in [0, 1]. The model's preprocessor scales pixels itself"
            + (f" (to {value_range})" if value_range else "")
            + ". Pass the images times 255, or call the model directly on preprocessed inputs: model(images)"
            + (". Positions of such images" if positions else ""),
            tf.where(scaled)[:, 0] if positions else None,
        )

    def _targets(self, y, name, scope):
        """`y` as the loss takes it (eagerly: raises on bad labels, else checks in the graph)."""
        if y.dtype == tf.string:
            y = self._ids_of_names(y, name, scope)
        if self.labels is None or y.shape.rank is None:
            return y
        width = 2 if self.labels == "binary" else self.num_classes
        rows = y.shape.rank >= 2 and y.shape[-1] not in (1, None)
        if rows and (y.shape.rank != 2 or y.shape[-1] != width):
            takes = {
                "class_ids": f"class ids [batch] or one-hot rows [batch, {width}]",
                "binary": "labels 0/1 [batch] (or one-hot rows [batch, 2])",
                "multi_hot": f"multi-hot rows [batch, {width}] (or class ids [batch], one label each)",
            }[self.labels]
            raise ValueError(f"{name} has shape {_shape(y.shape)}; this model's head takes {takes}.")
        if y.dtype == tf.bool:
            y = tf.cast(y, tf.int32)
        if y.shape.rank == 2 and y.shape[-1] == 1:
            # [batch, 1] and [batch] are the same labels; one shape, or a later
            # fit retraces with labels of unknown rank, which the loss refuses.
            y = tf.reshape(y, [-1])
        if self.labels == "multi_hot":
            if rows:
                return self._in_unit_range(y, name, scope)
            ids = self._class_ids(y, name, scope)
            return tf.one_hot(tf.reshape(ids, [-1]), width, dtype=tf.float32)
        if rows:
            y = self._one_hot_ids(y, name, scope)
        if self.labels == "binary":
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
        return _required(
            ids,
            tf.reduce_all(known),
            f"{name} holds labels that are not in class_names {self.class_names}{scope}",
            tf.unique(tf.reshape(tf.boolean_mask(y, ~known), [-1]))[0],
        )

    def _one_hot_ids(self, y, name, scope):
        values = tf.cast(y, tf.float32)
        exact = tf.reduce_all((values == 0.0) | (values == 1.0), axis=-1) & (tf.reduce_sum(values, axis=-1) == 1.0)
        ids = tf.argmax(values, axis=-1, output_type=tf.int32)
        return _required(
            ids,
            tf.reduce_all(exact),
            f"{name} has rows of {y.shape[-1]} values but they are not exact one-hot (a single 1, the rest 0)"
            f"{scope}; pass class ids 0..{y.shape[-1] - 1} or exact one-hot rows. A row",
            tf.boolean_mask(values, ~exact)[:1],
        )

    def _class_ids(self, y, name, scope):
        if y.dtype.is_floating:
            whole = tf.equal(y, tf.round(y))
            y = _required(
                y,
                tf.reduce_all(whole),
                f"{name} holds class ids that are not whole numbers{scope}; labels are class ids 0..{self.num_classes - 1}",
                tf.boolean_mask(y, ~whole),
            )
        ids = tf.cast(y, tf.int32) if y.dtype.is_floating else y
        inside = (ids >= 0) & (ids < self.num_classes)
        return _required(
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
            if self.labels == "binary" and self.class_names
            else "one sigmoid output per class"
            if self.labels == "multi_hot"
            else "0 and 1 for the negative and the positive class"
        )
        return _required(
            y,
            tf.reduce_all(inside),
            f"{name} holds labels outside [0, 1] ({meaning}){scope}",
            tf.boolean_mask(y, ~inside),
        )


def _required(value, ok, message, examples, after=""):
    """`value` when `ok`: eagerly, a `ValueError` otherwise; in a graph, `value` behind an assertion.

    The message is `message`, a few of `examples` (the offending values, or
    None), then `after`.
    """
    if tf.executing_eagerly():
        if not bool(ok):
            shown = "" if examples is None else f": {_examples(examples).numpy().decode()}"
            raise ValueError(f"{message}{shown}{after}.")
        return value
    parts = [_MARK, message]
    if examples is not None:
        parts += [": ", _examples(examples)]
    parts += [after + ".", _MARK]
    assertion = tf.debugging.Assert(ok, [tf.strings.join(parts)])
    with tf.control_dependencies([assertion]):
        return tf.identity(value)


def _examples(values):
    """A few of `values` as one string: `['moths']` or `[0.5, 3]`."""
    values = tf.reshape(values, [-1])[:_EXAMPLES]
    if values.dtype == tf.string:
        text = tf.strings.join(["'", values, "'"])
    elif values.dtype.is_floating:
        text = tf.strings.regex_replace(tf.strings.as_string(values, shortest=True), r"\.0$", "")
    else:
        text = tf.strings.as_string(values)
    return tf.strings.join(["[", tf.strings.reduce_join(text, separator=", "), "]"])


def _unescaped(text):
    """The message as written: TensorFlow C-escapes an assertion's data."""
    try:
        return codecs.escape_decode(text.encode("utf-8"))[0].decode("utf-8", "replace")
    except ValueError:
        return text


def _length(data):
    """The number of examples in an array, tensor or list."""
    return len(data) if isinstance(data, (list, tuple)) else int(data.shape[0]) if data.shape else 1


def _shape(shape):
    return tuple(shape.as_list()) if isinstance(shape, tf.TensorShape) else tuple(shape)
