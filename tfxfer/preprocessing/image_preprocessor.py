"""`ImagePreprocessor`: how raw images become a model's input, owned by the model."""

import keras
import keras_hub
import tensorflow as tf

DEFAULT_IMAGE_SIZE = (224, 224)
DEFAULT_VALUE_RANGE = (0.0, 1.0)
CHANNELS = {1: "grayscale", 3: "RGB", 4: "RGBA"}
"""The channel counts raw images may have; the preprocessor makes RGB of them."""


@keras.saving.register_keras_serializable(package="tfxfer")
class ImagePreprocessor(keras_hub.layers.ImageConverter):
    """Raw pixels in, model-ready images out: resize, round to 8 bits, scale.

    A KerasHub `ImageConverter` (same `image_size`, `scale`, `offset`,
    `crop_to_aspect_ratio`, `interpolation`, `antialias`) that also rounds
    the resized pixels to 8 bits, so that images cached as uint8 by the
    `tfxfer.data` loaders and images decoded from bytes by an export become
    exactly the same model inputs. It is the one implementation of image
    preprocessing in tfxfer: the loaders (`decode`, `pixels`), `fit`,
    `evaluate` and `predict` (mapped over the input pipeline, as KerasHub
    tasks do), `export_for_serving` and `verify_export` all call it, and it
    is saved in the model's config.

    Inputs are raw pixel values in [0, 255] (uint8 or float), any height
    and width, batched or not, RGB, grayscale or RGBA: grayscale is
    repeated to three channels and alpha dropped, as
    `tf.io.decode_image(..., channels=3)` (the `decode` step) does.

    Args:
        image_size: `(height, width)` the model takes.
        value_range: `(low, high)` that pixel values 0 and 255 map to;
            `(0, 1)` is the TF Hub image convention. Or give `mean` and
            `std` (per channel, in [0, 1] units, e.g. ImageNet's) or the
            converter's own `scale` and `offset`.
        crop_to_aspect_ratio: crop to the target aspect ratio before
            resizing instead of stretching.
        interpolation, antialias: how to resize.
        round_pixels: round resized pixels to whole 8-bit values (what the
            uint8 cache of the loaders does).

    Example:

    >>> import numpy as np
    >>> preprocessor = ImagePreprocessor(image_size=(4, 4), value_range=(-1, 1))
    >>> images = np.full((2, 8, 8, 3), 255, "uint8")
    >>> [float(v) for v in preprocessor(images).numpy().reshape(-1)[:2]]
    [1.0, 1.0]
    >>> preprocessor.value_range
    (-1.0, 1.0)
    """

    def __init__(
        self,
        image_size=DEFAULT_IMAGE_SIZE,
        value_range=None,
        *,
        mean=None,
        std=None,
        scale=None,
        offset=None,
        crop_to_aspect_ratio=False,
        interpolation="bilinear",
        antialias=False,
        round_pixels=True,
        **kwargs,
    ):
        image_size = _checked_image_size(image_size)
        scale, offset = _scale_and_offset(value_range, mean, std, scale, offset)
        kwargs.setdefault("dtype", "float32")
        super().__init__(
            image_size=image_size,
            scale=scale,
            offset=offset,
            crop_to_aspect_ratio=crop_to_aspect_ratio,
            interpolation=interpolation,
            antialias=antialias,
            **kwargs,
        )
        self.round_pixels = bool(round_pixels)

    @classmethod
    def from_converter(cls, converter, image_size=None):
        """The tfxfer twin of a KerasHub preset's `ImageConverter`."""
        size = image_size or converter.image_size
        if size is None:
            size = DEFAULT_IMAGE_SIZE
        return cls(
            image_size=size,
            scale=converter.scale,
            offset=converter.offset,
            crop_to_aspect_ratio=converter.crop_to_aspect_ratio,
            interpolation=converter.interpolation,
            antialias=converter.antialias,
            name="preprocessor",
        )

    @property
    def value_range(self):
        """`(low, high)` for a scalar scale and offset, else None (per channel)."""
        if isinstance(self.scale, (list, tuple)) or isinstance(self.offset, (list, tuple)):
            return None
        scale = 1.0 if self.scale is None else float(self.scale)
        offset = 0.0 if self.offset is None else float(self.offset)
        return (offset, offset + 255.0 * scale)

    def pixels(self, images):
        """Raw images to float32 RGB pixels of `image_size`, rounded to 8 bits."""
        images = rgb(tf.convert_to_tensor(images))
        height, width = self.image_size
        same_size = tuple(images.shape[-3:-1]) == (height, width)
        images = tf.cast(images, tf.float32)
        if not same_size:
            images = tf.cast(self.resizing(images), tf.float32)
        if self.round_pixels:
            images = tf.clip_by_value(tf.round(images), 0.0, 255.0)
        return images

    def decode(self, encoded):
        """One encoded image (JPEG, PNG, GIF's first frame, BMP) to uint8 `[h, w, 3]`.

        What the image loaders cache and what an export's `image_bytes`
        signature feeds to the preprocessor.
        """
        return self.resized_uint8(tf.io.decode_image(encoded, channels=3, expand_animations=False))

    def resized_uint8(self, image):
        """One decoded image (RGB or grayscale, any size) to uint8 `[h, w, 3]` pixels."""
        pixels = tf.cast(self.pixels(image), tf.uint8)
        pixels.set_shape((*self.image_size, 3))
        return pixels

    def call(self, inputs):
        images = self.pixels(inputs)
        scale, offset = self.scale, self.offset
        if scale is not None:
            images = images * tf.constant(scale, tf.float32)
        if offset is not None:
            images = images + tf.constant(offset, tf.float32)
        return images

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-3], *self.image_size, 3)

    def get_config(self):
        config = super().get_config()
        config["round_pixels"] = self.round_pixels
        for key in ("bounding_box_format", "pad_to_aspect_ratio", "data_format"):
            config.pop(key, None)
        return config


def rgb(images):
    """Grayscale, RGB or RGBA images (batched or not) as RGB, as `tf.io.decode_image(..., channels=3)` makes them.

    Grayscale is repeated to three channels and alpha dropped; an unknown
    channel count passes through unchanged.

    Example:

    >>> rgb(np.zeros((2, 4, 4, 4), "uint8")).shape
    TensorShape([2, 4, 4, 3])
    """
    channels = images.shape[-1]
    if channels is None or channels == 3:
        return images
    if channels not in CHANNELS:
        raise ValueError(
            f"The preprocessor got images with {channels} channels; it takes "
            f"{', '.join(f'{name} ({count})' for count, name in CHANNELS.items())} images."
        )
    if channels == 1:
        return tf.image.grayscale_to_rgb(images)
    return images[..., :3]


def _checked_image_size(image_size):
    try:
        if isinstance(image_size, (str, bytes)):
            raise TypeError(image_size)  # "64" would otherwise read as 6 and 4
        height, width = (int(v) for v in image_size)
        valid = height >= 1 and width >= 1
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(f"image_size must be (height, width) with two positive integers, got {image_size!r}.")
    return (height, width)


def _scale_and_offset(value_range, mean, std, scale, offset):
    given = [
        name
        for name, value in (
            ("value_range", value_range),
            ("mean/std", mean if mean is not None else std),
            ("scale/offset", scale if scale is not None else offset),
        )
        if value is not None
    ]
    if len(given) > 1:
        raise ValueError(f"Give one of value_range, mean and std, or scale and offset; got {given}.")
    if (mean is None) != (std is None):
        raise ValueError("mean and std go together: give both (per channel, in [0, 1] units).")
    if mean is not None:
        mean, std = _channels(mean, "mean"), _channels(std, "std")
        if any(s <= 0 for s in std):
            raise ValueError(f"std must be positive, got {std}.")
        return (
            [1.0 / (255.0 * s) for s in std],
            [-m / s for m, s in zip(mean, std)],
        )
    if scale is not None or offset is not None:
        return scale, offset
    low, high = DEFAULT_VALUE_RANGE if value_range is None else _value_range(value_range)
    return (high - low) / 255.0, low


def _value_range(value_range):
    try:
        low, high = (float(v) for v in value_range)
    except (TypeError, ValueError):
        raise ValueError(f"value_range must be (low, high), got {value_range!r}.") from None
    if not low < high:
        raise ValueError(f"value_range must be (low, high) with low < high, got {value_range!r}.")
    return low, high


def _channels(values, name):
    values = [float(v) for v in (values if isinstance(values, (list, tuple)) else [values] * 3)]
    if len(values) != 3:
        raise ValueError(f"{name} needs one value per RGB channel, got {values}.")
    return values
