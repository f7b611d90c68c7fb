"""The data a run or an evaluation names: an image folder, a text file or `tfds:NAME`."""

import pathlib

from tfxfer.option_errors import OptionValueError, option


def load_run_data(config, *, evaluation=False, drop_remainder=False, preprocessor=None, class_names=None):
    """The `LoadedData` a `TrainConfig` names.

    For training, data without a validation split gets a 20% one. With
    `evaluation=True` nothing is split off or augmented: a folder with a
    `val/` subfolder is evaluated on it, anything else on every example.

    Args:
        config: a `TrainConfig`.
        evaluation: load for evaluation (no split, no augmentation).
        drop_remainder: fixed training batch shapes.
        preprocessor: the model's `ImagePreprocessor`: images are resized
            the model's way (default: `config.image_size`).
        class_names: the declared classes of a text file (default:
            `config.class_names`, else the training labels).

    Example:

    >>> data = load_run_data(TrainConfig(backbone="...", data="../shared/data/images/hymenoptera"))
    """
    import tfxfer.data

    default_split = None if evaluation else 0.2
    augment = None if evaluation else _augment(config.augment)
    source = config.data
    if source.startswith("tfds:"):
        return tfxfer.data.from_tfds(
            source[len("tfds:") :],
            image_size=config.image_size,
            preprocessor=preprocessor,
            augment=augment,
            batch_size=config.batch_size,
            seed=config.seed,
            drop_remainder=drop_remainder,
        )
    path = pathlib.Path(source).expanduser()
    if not path.exists():
        raise FileNotFoundError(
            f"Data not found: {path}. Pass an image folder (<class>/ or train/ + val/ subfolders), "
            "a labelled text file, or tfds:NAME."
        )
    if path.is_dir():
        if config.validation_data:
            raise ValueError(
                "--validation-data is for text files; an image folder holds its own split "
                "(train/ and val/ subfolders) or uses --validation-split."
            )
        return tfxfer.data.from_image_folder(
            path,
            image_size=config.image_size,
            preprocessor=preprocessor,
            batch_size=config.batch_size,
            validation_split=config.validation_split if config.validation_split is not None else default_split,
            seed=config.seed,
            augment=augment,
            on_bad_data=config.on_bad_data,
            drop_remainder=drop_remainder,
            min_classes=1 if evaluation else 2,
        )
    validation_split = config.validation_split
    if validation_split is None and not config.validation_data:
        validation_split = default_split
    return tfxfer.data.from_text_file(
        path,
        format=config.data_format,
        text_column=column_option(config.text_column),
        label_column=column_option(config.label_column),
        label_base=config.label_base,
        class_names=class_names or config.class_names,
        validation_split=validation_split,
        validation_path=config.validation_data,
        seed=config.seed,
        batch_size=config.batch_size,
        on_bad_data=config.on_bad_data,
        encoding_errors=config.encoding_errors,
        drop_remainder=drop_remainder,
        min_classes=1 if evaluation and (class_names or config.class_names) else 2,
    )


def data_modality(source):
    """`"image"` or `"text"` for a data source, from its form alone (nothing is read).

    Example:

    >>> data_modality("../shared/data/images/hymenoptera")
    'image'
    """
    if source.startswith("tfds:"):
        return None  # Known only once TFDS describes it.
    return "image" if pathlib.Path(source).expanduser().is_dir() else "text"


def _augment(value):
    return None if value in (None, "none", "None", False) else value


def column_option(value):
    """A `--text-column`/`--label-column` value as `from_text_file` takes it.

    Digits are a 0-based index, other words a header name, and several,
    comma-separated (`title,description`) or a list, are joined columns.

    Example:

    >>> column_option("1"), column_option("review"), column_option("title,description")
    (1, 'review', ['title', 'description'])
    """
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        parts = [str(part).strip() for part in value]
    else:
        parts = [part.strip() for part in str(value).split(",")] if "," in str(value) else [str(value)]
    columns = [int(part) if part.isdigit() else part for part in parts]
    return columns if len(columns) > 1 else columns[0]


def sharded_for_workers(data, choice, config, drop_remainder):
    """Each worker trains on its share of every epoch's examples."""
    if choice.workers > 1:
        from tfxfer.distribute.dataset_sharding import batch_size_for_replicas, leaves_a_replica_empty

        counts = [data.validation_size] + ([] if drop_remainder else [data.train_size])
        if any(count and leaves_a_replica_empty(count, config.batch_size, choice.replicas) for count in counts):
            better = batch_size_for_replicas(counts, config.batch_size, choice.replicas)
            raise OptionValueError(
                f"With {{batch_size}} {config.batch_size} on {choice.replicas} replicas, a batch of the "
                f"{data.train_size} training or {data.validation_size} validation examples leaves a replica "
                "with no examples, which TensorFlow cannot run a backbone on. "
                + (f"Use {{batch_size}} {better}" if better else "Use another {batch_size}")
                + " (or another number of workers).",
                batch_size=option("batch_size"),
            )
        from tfxfer.distribute.dataset_sharding import sharded_by_examples

        # Every worker relates Co-Tuning's classes on the whole split, so all hold the same relationship.
        data.plain_train = data.train_without_augmentation
        data.train = sharded_by_examples(data.train)
        if data.validation is not None:
            data.validation = sharded_by_examples(data.validation)
    return data
