"""The `tf.data` pipeline for image files: decode and resize (the model's way), cache, augment."""

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
        return keras.Sequential([keras.layers.RandAugment(value_range=(0, 255), seed=seed)], name="augmentation")
    raise ValueError(f"augment must be None, 'default', 'randaugment' or Keras preprocessing layers; got {augment!r}.")


def augmented(dataset, augmentation):
    """`dataset`'s `(pixels, label)` batches through `augmentation` (None: unchanged), as floats in [0, 255]."""
    if augmentation is None:
        return dataset

    def augment(pixels, labels):
        # Interpolation (rotation, zoom) lands a 255 on 255.00002 now and then,
        # and custom layers may brighten past 255: clipped, they are pixels again.
        return tf.clip_by_value(augmentation(tf.cast(pixels, tf.float32), training=True), 0.0, 255.0), labels

    return dataset.map(augment, num_parallel_calls=AUTOTUNE)


def image_preprocessor_for(image_size, preprocessor):
    """The preprocessor whose `decode` the loaders use: the model's own, or one of `image_size`."""
    from tfxfer.preprocessing import ImagePreprocessor

    if preprocessor is None:
        return ImagePreprocessor(image_size)
    preprocessor = getattr(preprocessor, "preprocessor", preprocessor)  # a model
    if not isinstance(preprocessor, ImagePreprocessor):
        raise TypeError(
            "preprocessor must be an image model's ImagePreprocessor (model.preprocessor), "
            f"got {type(preprocessor).__name__}."
        )
    return preprocessor


def image_datasets(
    train_files,
    validation_files,
    *,
    preprocessor,
    batch_size,
    seed,
    augment,
    cache,
    drop_remainder,
):
    """Batched `(pixels, label)` datasets for the training and validation files.

    Each file is decoded and resized by `preprocessor.decode` (the model's
    own image preprocessing) and cached as uint8; augmentation works on the
    pixels as floats in [0, 255]. The model's preprocessor scales them in
    `fit`/`evaluate`/`predict`, as it does for raw images everywhere else.
    """
    check_batches(len(train_files), batch_size, drop_remainder)
    augmentation = augmentation_layers(augment, seed)

    def decode(path, label):
        return preprocessor.decode(tf.io.read_file(path)), label

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
        if training:
            dataset = augmented(dataset, augmentation)
        return dataset.prefetch(AUTOTUNE)

    return build(train_files, True), build(validation_files, False)
