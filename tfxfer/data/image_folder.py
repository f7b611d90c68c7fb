"""`from_image_folder`: `root/class_name/*.jpg` to fast `tf.data` pipelines."""

import concurrent.futures
import os
import pathlib
import re

import tensorflow as tf

from tfxfer.data.data_report import DataError, DataReport
from tfxfer.data.image_pipeline import image_datasets, image_preprocessor_for
from tfxfer.data.splitting import stratified_split

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp")
TRAIN_FOLDERS = ("train",)
VALIDATION_FOLDERS = ("val", "validation", "valid")


def from_image_folder(
    path,
    *,
    image_size=(224, 224),
    preprocessor=None,
    batch_size=32,
    validation_split=None,
    seed=0,
    augment=None,
    on_bad_data="error",
    verify=True,
    cache=True,
    drop_remainder=False,
    min_classes=2,
):
    """Loads labelled images from class folders.

    Layouts: `root/<class>/*.jpg` (split with `validation_split`, per class
    and seeded), or `root/train/<class>/...` with `root/val/<class>/...`
    (also `validation/`, `valid/`), whose split is kept. Images are decoded
    in parallel (JPEG, PNG, GIF's first frame, BMP, whatever the extension
    says) and resized to `image_size` by the model's own image preprocessing
    (`ImagePreprocessor.decode`), cached as uint8 pixels, shuffled every
    epoch, batched and prefetched. The batches hold pixel values in
    [0, 255]: the model's preprocessor scales them to its range in `fit`,
    `evaluate` and `predict`, exactly as its export does with image bytes.

    Bad data: with `on_bad_data="error"` (default) an unreadable, truncated
    or empty image file, a file that is not an image, or an empty class
    folder raises a `DataError` naming the file; with `"skip"` it is left
    out and listed in `report`. Fewer than two classes, and a validation
    class folder with no training folder of the same name, are always
    errors.

    Args:
        path: the root folder.
        image_size: `(height, width)` fed to the model.
        preprocessor: the model's `ImagePreprocessor` (or the model): its
            image size and resizing are used instead of `image_size`.
        batch_size: examples per batch.
        validation_split: fraction held out when there is no val/ folder.
        seed: for the split and the shuffling.
        augment: None, `"default"` (flip, small rotation and zoom),
            `"randaugment"`, or Keras preprocessing layers; training split only.
        on_bad_data: `"error"` or `"skip"`.
        verify: decode every file once up front, so bad files are found
            before training (a few ms per image, in parallel).
        cache: keep decoded, resized images in memory (uint8).
        drop_remainder: fixed training batch shapes (TPU); the validation
            split keeps its last partial batch so every example is measured.
        min_classes: classes needed (1 for evaluating on a subset of a
            model's classes).

    Returns:
        A `LoadedData`.

    Example:

    >>> data = from_image_folder("../shared/data/images/hymenoptera", augment="default")
    >>> data.class_names
    ['ants', 'bees']
    """
    root = pathlib.Path(path).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"Image folder not found: {root} (absolute: {root.resolve()}).")
    if not root.is_dir():
        raise DataError(f"{root} is a file; pass the folder whose subfolders are the classes.")
    preprocessor = image_preprocessor_for(image_size, preprocessor)
    report = DataReport(on_bad_data)
    train_root, validation_root = _split_folders(root)
    class_names = _class_names(train_root, min_classes)
    if validation_root is not None:
        _check_validation_classes(validation_root, train_root, class_names)
    train_files = _list_images(train_root, class_names, report)
    validation_files = _list_images(validation_root, class_names, report) if validation_root else []
    if verify:
        train_files = _verified(train_files, report)
        validation_files = _verified(validation_files, report)
    class_names, train_files, validation_files = _drop_empty_classes(
        class_names, train_files, validation_files, report, train_root, min_classes
    )
    if validation_root is None and validation_split:
        train_files, validation_files = stratified_split(train_files, validation_split, seed, class_names)
    report.kept = len(train_files) + len(validation_files)
    train, validation = image_datasets(
        train_files,
        validation_files,
        preprocessor=preprocessor,
        batch_size=batch_size,
        seed=seed,
        augment=augment,
        cache=cache,
        drop_remainder=drop_remainder,
    )
    from tfxfer.data.loaded_data import LoadedData

    return LoadedData(
        train=train,
        validation=validation,
        class_names=class_names,
        report=report,
        train_size=len(train_files),
        validation_size=len(validation_files),
        image_size=tuple(preprocessor.image_size),
        train_examples=[(str(path), label) for path, label in train_files],
        validation_examples=[(str(path), label) for path, label in validation_files],
        plain_train=None
        if augment is None
        else image_datasets(
            train_files,
            [],
            preprocessor=preprocessor,
            batch_size=batch_size,
            seed=seed,
            augment=None,
            cache=False,
            drop_remainder=False,
        )[0],
    )


def _split_folders(root):
    children = {child.name.lower(): child for child in root.iterdir() if child.is_dir()}
    train = next((children[name] for name in TRAIN_FOLDERS if name in children), None)
    if train is None:
        return root, None
    validation = next((children[name] for name in VALIDATION_FOLDERS if name in children), None)
    return train, validation


def _class_names(folder, min_classes=2):
    names = sorted(child.name for child in folder.iterdir() if child.is_dir() and not child.name.startswith("."))
    if len(names) < max(1, min_classes):
        raise DataError(
            f"{folder}: found {len(names)} class folder(s) {names}; a classifier "
            "needs at least two (layout: root/<class>/*.jpg, or root/train/<class>/ "
            "and root/val/<class>/)."
        )
    return names


def _check_validation_classes(validation_root, train_root, class_names):
    names = sorted(
        child.name for child in validation_root.iterdir() if child.is_dir() and not child.name.startswith(".")
    )
    unknown = [name for name in names if name not in class_names]
    if unknown:
        raise DataError(
            f"{validation_root}: class folder(s) {unknown} have no training folder in "
            f"{train_root} (training classes: {class_names}). Add training images for "
            "them, or rename or remove the validation folders; class names must match "
            "exactly (case too)."
        )


def _list_images(folder, class_names, report):
    files = []
    for label, name in enumerate(class_names):
        class_folder = folder / name
        if not class_folder.is_dir():
            report.problem(class_folder, "class folder missing from this split")
            continue
        for file in sorted(class_folder.iterdir()):
            if file.name.startswith(".") or file.is_dir():
                continue
            if file.suffix.lower() not in IMAGE_EXTENSIONS:
                report.problem(file, f"not an image file ({file.suffix or 'no extension'})")
                continue
            files.append((str(file), label))
    return files


def tensorflow_reason(error):
    """The readable part of a TensorFlow error: no `{{function_node ...}}` prefix, no op name, one line.

    Example:

    >>> tensorflow_reason(ValueError("{{function_node __wrapped__DecodeImage}} jpeg::Uncompress failed. "
    ...                              "Invalid JPEG data or crop window. [Op:DecodeImage]"))
    'jpeg::Uncompress failed. Invalid JPEG data or crop window.'
    """
    text = getattr(error, "message", None) or str(error)
    text = re.sub(r"\{\{[^}]*\}\}", "", text).split(" [Op:")[0]
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    text = lines[0] if lines else type(error).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def image_file_problem(path):
    """Why an image file cannot be used (empty, unreadable, no pixels), or None."""
    try:
        if os.path.getsize(path) == 0:
            return "empty file"
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        if image.shape[0] == 0 or image.shape[1] == 0:
            return "image has no pixels"
    except (tf.errors.OpError, OSError) as error:
        return f"unreadable or truncated image ({tensorflow_reason(error)})"
    return None


def _verified(files, report):
    if not files:
        return files
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        errors = list(pool.map(lambda item: image_file_problem(item[0]), files))
    kept = []
    for (path, label), error in zip(files, errors):
        if error is None:
            kept.append((path, label))
        else:
            report.problem(path, error)
    return kept


def _drop_empty_classes(class_names, train_files, validation_files, report, folder, min_classes=2):
    counts = [0] * len(class_names)
    for _, label in train_files:
        counts[label] += 1
    empty = [name for name, count in zip(class_names, counts) if count == 0]
    if not empty:
        return class_names, train_files, validation_files
    for name in empty:
        report.problem(folder / name, "class folder has no usable images")
    keep = [name for name in class_names if name not in empty]
    if len(keep) < max(1, min_classes):
        raise DataError(f"{folder}: only {keep} has usable images; a classifier needs at least two classes.")
    remap = {class_names.index(name): index for index, name in enumerate(keep)}
    train_files = [(path, remap[label]) for path, label in train_files if label in remap]
    validation_files = [(path, remap[label]) for path, label in validation_files if label in remap]
    return keep, train_files, validation_files
