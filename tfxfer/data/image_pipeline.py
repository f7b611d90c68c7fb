"""The `tf.data` pipeline for image files: decode, resize, cache, augment."""

import keras
import tensorflow as tf

from tfxfer.data.splitting import check_batches

AUTOTUNE = tf.data.AUTOTUNE


def augmentation_layers(augment, seed=0):
    """Keras preprocessing layers for `augment` (None, a name or layers).

    Example:

    >>> augmentation_layers("default")
    <Sequential name=augmentation, built=False>
    """
    if augment is None:
        return None
    if isinstance(augment, keras.layers.Layer):
        return augment
    if isinstance(augment, (list, tuple)):
        return keras.Sequential(list(augment), name="augmentation")
    if augment == "default":
        return keras.Sequential(
            [
                keras.layers.RandomFlip("horizontal", seed=seed),
                keras.layers.RandomRotation(0.05, seed=seed),
                keras.layers.RandomZoom(0.1, seed=seed),
            ],
            name="augmentation",
        )
    if augment == "randaugment":
        return keras.Sequential(
            [keras.layers.RandAugment(value_range=(0, 255), seed=seed)], name="augmentation"
        )
    raise ValueError(
        "augment must be None, 'default', 'randaugment' or Keras preprocessing "
        f"layers; got {augment!r}."
    )


def _decoder(image_size):
    height, width = image_size

    def decode(path, label):
        image = tf.io.decode_image(
            tf.io.read_file(path), channels=3, expand_animations=False
        )
        image = tf.image.resize(image, (height, width))
        # uint8 keeps the cache four times smaller than float32.
        image = tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)
        image.set_shape((height, width, 3))
        return image, label

    return decode


def _scaler(value_range):
    low, high = value_range

    def scale(images, labels):
        images = tf.cast(images, tf.float32) * ((high - low) / 255.0) + low
        return images, labels

    return scale


def image_datasets(
    train_files,
    validation_files,
    *,
    image_size,
    batch_size,
    seed,
    value_range,
    augment,
    cache,
    drop_remainder,
):
    """Batched `(image, label)` datasets for the training and validation files."""
    check_batches(len(train_files), batch_size, drop_remainder)
    decode, scale = _decoder(image_size), _scaler(value_range)
    augmentation = augmentation_layers(augment, seed)

    def build(files, training):
        if not files:
            return None
        paths = [path for path, _ in files]
        labels = [label for _, label in files]
        dataset = tf.data.Dataset.from_tensor_slices((paths, labels))
        dataset = dataset.map(decode, num_parallel_calls=AUTOTUNE)
        if cache:
            dataset = dataset.cache()
        if training:
            dataset = dataset.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
        # Only training drops its last partial batch: validation metrics
        # must see every example.
        dataset = dataset.batch(batch_size, drop_remainder=drop_remainder and training)
        if training and augmentation is not None:
            dataset = dataset.map(
                lambda x, y: (augmentation(tf.cast(x, tf.float32), training=True), y),
                num_parallel_calls=AUTOTUNE,
            )
        dataset = dataset.map(scale, num_parallel_calls=AUTOTUNE)
        return dataset.prefetch(AUTOTUNE)

    return build(train_files, True), build(validation_files, False)
