"""The validation split a search tunes on: carved from the training data, never the evaluation data.

`carve_validation` holds out a stratified fraction of the run's training
split (after the run's own validation split is set aside) and writes both
parts where trials read them: an image folder of links (`train/`, `val/`)
or two CSV files. It is written once per study folder (atomically: a killed
search leaves a complete split or none) and read back by a rerun, so every
trial of a study, before and after a kill, sees the same split.
"""

import collections
import csv
import io
import json
import os
import pathlib
import shutil

from tfxfer.data.data_report import DataError
from tfxfer.data.splitting import stratified_split
from tfxfer.option_errors import OptionValueError, escaped
from tfxfer.utils.atomic_files import write_text_atomically


def carve_validation(data, fraction, seed, folder):
    """`TrainConfig` options that point a trial at the carved split (written under `folder/data` once).

    Args:
        data: the run's `LoadedData` (its `train_examples`: file paths or texts).
        fraction: the share of each class held out for tuning.
        seed: the split's seed.
        folder: the study folder.
    """
    if data.train_examples is None:
        raise ValueError(
            "tfxfer tune carves its validation split from the examples of an image folder or a text file; "
            "a TFDS dataset has none listed. Save the TFDS split as files first (an image folder or a CSV)."
        )
    target = pathlib.Path(folder) / "data"
    record = target / "carved.json"
    if not record.exists():
        try:
            train, validation = stratified_split(data.train_examples, fraction, seed, data.class_names)
        except DataError:
            counts = collections.Counter(data.class_names[label] for _, label in data.train_examples)
            raise OptionValueError(
                "tfxfer tune tunes on {fraction} of each class of the training split, held out; here it holds out "
                "nothing: each class keeps its one training example "
                f"({escaped(', '.join(f'{name}: {count}' for name, count in counts.items()))}). Give each class "
                "two training examples or more.",
                fraction=(f"validation_fraction={fraction}", f"--tune-validation-split {fraction}"),
            ) from None
        staging = pathlib.Path(folder) / "data.partial"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        if data.modality == "image":
            _link_images(staging, "train", train, data.class_names)
            _link_images(staging, "val", validation, data.class_names)
        else:
            _write_csv(staging / "train.csv", train, data.class_names)
            _write_csv(staging / "validation.csv", validation, data.class_names)
        facts = {"modality": data.modality, "train": len(train), "validation": len(validation), "fraction": fraction}
        (staging / "carved.json").write_text(json.dumps(facts))
        shutil.rmtree(target, ignore_errors=True)
        os.replace(staging, target)
    facts = json.loads(record.read_text())
    if facts["modality"] == "image":
        return {"data": str(target), "validation_split": None}, facts
    return {
        "data": str(target / "train.csv"),
        "validation_data": str(target / "validation.csv"),
        "validation_split": None,
        "data_format": "csv",
        "text_column": "text",
        "label_column": "label",
        "class_names": [str(name) for name in data.class_names],
        "label_base": 0,
    }, facts


def _link_images(root, split, examples, class_names):
    for index, (path, label) in enumerate(examples):
        folder = root / split / str(class_names[label])
        folder.mkdir(parents=True, exist_ok=True)
        source = pathlib.Path(path).resolve()
        (folder / f"{index:06d}-{source.name}").symlink_to(source)


def _write_csv(path, examples, class_names):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["text", "label"])
    for text, label in examples:
        writer.writerow([text, class_names[label]])
    write_text_atomically(path, buffer.getvalue())
