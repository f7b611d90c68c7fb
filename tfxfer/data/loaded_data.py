"""`LoadedData`: what the `tfxfer.data` loaders return."""

import dataclasses
import pathlib


@dataclasses.dataclass
class LoadedData:
    """Batched `tf.data.Dataset`s of `(inputs, label)` and what they hold.

    Image batches hold pixel values in [0, 255] resized to `image_size`
    (the model's preprocessor scales them); text batches hold raw strings.

    Attributes:
        train: the training split (shuffled each epoch, augmented if asked).
        validation: the validation split, or None.
        class_names: label i is `class_names[i]`.
        report: a `DataReport` of kept and skipped examples.
        train_size, validation_size: examples in each split.
        image_size: the size images were resized to (None for text).
        train_examples, validation_examples: the `(raw input, label)` pairs
            behind each split: image file paths or texts (None from TFDS).
        raw_train, raw_validation: for TFDS, the unbatched `(image, label)`
            datasets before resizing.
        plain_train: the training split's batches without augmentation,
            whole when `train` is a worker's shard (None: `train` itself).

    Example:

    >>> data = tfxfer.data.from_image_folder("../shared/data/images/hymenoptera")
    >>> model.fit(data.train, validation_data=data.validation)
    """

    train: object
    validation: object
    class_names: list
    report: object
    train_size: int
    validation_size: int
    image_size: tuple = None
    train_examples: list = None
    validation_examples: list = None
    raw_train: object = None
    raw_validation: object = None
    plain_train: object = None

    @property
    def train_without_augmentation(self):
        """The training split's batches as they are before augmentation (`train` itself when there is none)."""
        return self.train if self.plain_train is None else self.plain_train

    @property
    def num_classes(self):
        return len(self.class_names)

    @property
    def modality(self):
        """`"image"` or `"text"`."""
        return "text" if self.image_size is None else "image"

    def raw_inputs(self, split="validation", limit=None):
        """`(inputs, labels)` of a split as a server takes them: encoded image bytes or texts.

        Files are read as they are; TFDS images are encoded as PNG
        (lossless), so they decode to exactly the pixels the loader saw.
        """
        if split not in ("train", "validation"):
            raise ValueError(f"split must be 'train' or 'validation', got {split!r}.")
        examples = getattr(self, f"{split}_examples")
        if examples is not None:
            examples = examples[:limit] if limit is not None else examples
            inputs = [pathlib.Path(value).read_bytes() if self.modality == "image" else value for value, _ in examples]
            return inputs, [label for _, label in examples]
        raw = getattr(self, f"raw_{split}")
        if raw is None:
            return [], []
        if limit is not None:
            raw = raw.take(limit)
        import tensorflow as tf

        inputs, labels = [], []
        for value, label in raw:
            if self.modality == "image":
                if value.shape[-1] == 1:
                    value = tf.image.grayscale_to_rgb(value)
                inputs.append(tf.io.encode_png(value).numpy())
            else:
                inputs.append(value.numpy().decode("utf-8"))
            labels.append(int(label))
        return inputs, labels
