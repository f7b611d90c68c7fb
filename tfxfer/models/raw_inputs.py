"""Raw inputs and labels given to `fit`/`evaluate`/`predict`: checked up front, or adapted exactly.

A `TransferModel` takes raw inputs (pixel values in [0, 255], or strings)
and labels as Keras users write them. What cannot be right is refused with a
message that names the argument (`x`, `y`, `validation_data`); what has one
exact meaning is adapted:

- images: a list of differently sized images is resized by the model's
  preprocessor; one image `[h, w, c]` is a batch of one for `predict`;
  grayscale and RGBA images become RGB in the preprocessor. Float images all
  in [0, 1] or [-1, 1] (scaled already: the preprocessor would scale them a
  second time), values outside [0, 255] and 16-bit images are refused.
- labels, for the model's loss: names mapped to class ids, exact one-hot
  rows made ids, out-of-range or fractional ids refused
  (`tfxfer.models.label_targets`).

Arrays, tensors and lists are checked here, eagerly, before anything runs. A
`tf.data.Dataset` is never read ahead (a peek would cost a pass through
its shuffle buffer): its pipeline gets the same checks, in the graph, on
the labels of every batch and on the images of each pass's first batch; a
failed check stops `fit`/`evaluate`/`predict` with the same `ValueError`
(`tfxfer.models.input_assertions`).
"""

import keras
import numpy as np
import tensorflow as tf

from tfxfer.models.input_assertions import required, shown_shape
from tfxfer.models.label_targets import LabelTargets
from tfxfer.preprocessing.image_preprocessor import CHANNELS
from tfxfer.preprocessing.modality import IMAGE, TEXT, data_modality
from tfxfer.utils.array_batches import is_array_like

# Interpolation in resizing and augmentation (rotation, zoom) lands a pixel
# of 255 on 255.00002 now and then: values within half an 8-bit level of the
# range round to raw pixels still. (Not more: [-1, 1] is a scaling.)
PIXEL_ROUNDING = 0.5


def prepared_class_weight(model, class_weight):
    """`fit`'s `class_weight` with class names mapped to ids (`LabelTargets.class_weight`)."""
    return LabelTargets(model).class_weight(class_weight)


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
        self.labels = LabelTargets(model)

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
            y = self.labels.array(y, y_name)
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
            raise ValueError(
                f"{name} has shape {shown_shape(x.shape)}; texts are a list or an array [batch] of strings."
            )
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
        check_labels = labelled and len(parts) > 1 and self.labels.adapts(parts[1])
        if not (check_images or check_labels):
            return dataset

        def checked(*element):
            element = list(element)
            if check_images:
                element[0] = self._check_images(element[0], x_name, " (in a batch of the dataset)")
            if check_labels:
                element[1] = self.labels.targets(element[1], y_name, " (in a batch of the dataset)")
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
                f"{name} has shape {shown_shape(shape)}; images are batches [batch, height, width, channels]"
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
        if images.dtype.is_floating:
            # First, so that images scaled to [-1, 1] are named as scaled, not as out of range.
            images = self._check_not_scaled(images, values, name, scope, positions)
        low, high = tf.reduce_min(values), tf.reduce_max(values)
        return required(
            images,
            tf.reduce_all(tf.math.is_finite(values)) & (low >= -PIXEL_ROUNDING) & (high <= 255.0 + PIXEL_ROUNDING),
            f"{name} has pixel values outside [0, 255]{scope}; the model takes raw pixel values in [0, 255] "
            "(uint8 or float). Lowest and highest",
            tf.stack([low, high]),
        )

    def _check_not_scaled(self, images, values, name, scope, positions):
        """Refuses float images all in [0, 1] or [-1, 1]: the preprocessor would scale them a second time."""
        value_range = getattr(self.preprocessor, "value_range", None)
        # Image by image, so that one scaled image among raw ones is seen; an
        # all-black image reads the same either way.
        per_image = tf.reshape(values, [tf.shape(values)[0], -1])
        image_high = tf.reduce_max(per_image, axis=1)
        scaled = (tf.reduce_min(per_image, axis=1) >= -1.0) & (image_high <= 1.0) & (image_high > 0.0)
        return required(
            images,
            ~tf.reduce_any(scaled),
            f"{self.method} takes raw pixel values in [0, 255] (uint8 or float); images in {name}{scope} "
            "are all in [0, 1] or [-1, 1] (scaled already). The model's preprocessor scales pixels itself"
            + (f" (to {value_range})" if value_range else "")
            + ". Pass the raw pixels (e.g. the images times 255, or (x + 1) * 127.5), or call the model directly "
            "on preprocessed inputs: model(images)" + (". Positions of such images" if positions else ""),
            tf.where(scaled)[:, 0] if positions else None,
        )


def _length(data):
    """The number of examples in an array, tensor or list."""
    return len(data) if isinstance(data, (list, tuple)) else int(data.shape[0]) if data.shape else 1
