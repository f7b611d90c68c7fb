"""`LoadedData`: what the `tfxfer.data` loaders return."""

import dataclasses


@dataclasses.dataclass
class LoadedData:
    """Batched `tf.data.Dataset`s of `(inputs, label)` and what they hold.

    Attributes:
        train: the training split (shuffled each epoch, augmented if asked).
        validation: the validation split, or None.
        class_names: label i is `class_names[i]`.
        report: a `DataReport` of kept and skipped examples.
        train_size, validation_size: examples in each split.
        image_size, value_range: how images were prepared (None for text);
            pass them on to `export_for_serving`.
        train_examples, validation_examples: the `(raw input, label)` pairs
            behind each split: image file paths or texts (None from TFDS).

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
    value_range: tuple = None
    train_examples: list = None
    validation_examples: list = None

    @property
    def num_classes(self):
        return len(self.class_names)
