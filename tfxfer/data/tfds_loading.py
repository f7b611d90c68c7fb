"""`from_tfds`: TensorFlow Datasets to batched `tf.data` pipelines."""

import tensorflow as tf

from tfxfer.data.data_report import DataReport
from tfxfer.data.image_pipeline import augmentation_layers, augmented, image_preprocessor_for

AUTOTUNE = tf.data.AUTOTUNE


def from_tfds(
    name,
    *,
    split="train",
    validation_split="test",
    data_dir=None,
    download=True,
    image_size=(224, 224),
    preprocessor=None,
    augment=None,
    batch_size=32,
    seed=0,
    shuffle_buffer=10_000,
    drop_remainder=False,
):
    """Loads a TensorFlow Datasets dataset with `tensorflow_datasets.load`.

    Image datasets are resized to `image_size` by the model's own image
    preprocessing and rounded to 8 bits exactly as `from_image_folder` does
    (pixels in [0, 255]; the model's preprocessor scales them), and
    optionally augmented (training split only); text datasets stay raw
    strings. Offline, pass the `data_dir` of an already prepared copy
    (`download=False` then never touches the network).

    Args:
        name: the TFDS name, e.g. `"tf_flowers"` or `"imdb_reviews"`.
        split, validation_split: TFDS split specs (`"train[:80%]"` works);
            `validation_split=None` for none.
        data_dir: where prepared datasets live (default: TFDS' own).
        download: let TFDS download and prepare it when missing.
        image_size, preprocessor, augment: image preprocessing, as in
            `from_image_folder`.
        batch_size, seed, shuffle_buffer, drop_remainder: pipeline options.

    Returns:
        A `LoadedData`; class names come from the dataset's `label` feature.

    Example:

    >>> data = from_tfds("tf_flowers", split="train[:80%]", validation_split="train[80%:]")
    """
    import tensorflow_datasets as tfds

    splits = [split] + ([validation_split] if validation_split else [])
    try:
        datasets, info = tfds.load(
            name,
            split=splits,
            data_dir=data_dir,
            as_supervised=True,
            with_info=True,
            download=download,
            try_gcs=False,
        )
    except Exception as error:  # DatasetNotFoundError, network errors, bad splits
        raise _load_error(name, data_dir, download, error) from error
    label = info.supervised_keys[1] if info.supervised_keys else "label"
    label_feature = info.features[label]
    class_names = list(getattr(label_feature, "names", []) or [])
    if len(class_names) < 2:
        raise ValueError(
            f"TFDS dataset '{name}' has no class label with names (feature '{label}'); "
            "tfxfer classifiers need a ClassLabel feature."
        )
    inputs = info.supervised_keys[0]
    is_image = isinstance(info.features[inputs], tfds.features.Image)
    augmentation = augmentation_layers(augment, seed) if is_image else None
    preprocessor = image_preprocessor_for(image_size, preprocessor) if is_image else None

    def build(dataset, training):
        if is_image:
            dataset = dataset.map(lambda x, y: (preprocessor.resized_uint8(x), y), num_parallel_calls=AUTOTUNE)
        if training:
            dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
        dataset = dataset.batch(batch_size, drop_remainder=drop_remainder and training)
        if training:
            dataset = augmented(dataset, augmentation)
        return dataset.prefetch(AUTOTUNE)

    sizes = [info.splits[s].num_examples if s in info.splits else _count(d) for s, d in zip(splits, datasets)]
    report = DataReport()
    report.kept = sum(sizes)
    from tfxfer.data.loaded_data import LoadedData

    return LoadedData(
        train=build(datasets[0], True),
        validation=build(datasets[1], False) if validation_split else None,
        class_names=class_names,
        report=report,
        train_size=sizes[0],
        validation_size=sizes[1] if validation_split else 0,
        image_size=tuple(preprocessor.image_size) if is_image else None,
        raw_train=datasets[0],
        raw_validation=datasets[1] if validation_split else None,
        plain_train=build(datasets[0], False) if augmentation is not None else None,
    )


def _count(dataset):
    cardinality = int(dataset.cardinality())
    return cardinality if cardinality >= 0 else -1


def _load_error(name, data_dir, download, error):
    text = f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"
    where = f" in data_dir={data_dir!r}" if data_dir else ""
    if not download:
        return OSError(
            f"TFDS dataset '{name}' is not prepared{where} ({text}). Prepare it "
            "where there is network access (tfds.builder(name).download_and_prepare()) "
            "and pass that data_dir, or allow download=True."
        )
    return OSError(
        f"Could not load TFDS dataset '{name}'{where} ({text}). Without network "
        "access, pass the data_dir of an already prepared copy and download=False."
    )
