"""Evaluating a run folder, a `.keras` file or an export on labelled data."""

import json
import pathlib

import numpy as np

from tfxfer.runs.class_matching import label_mapping
from tfxfer.runs.progress import speaker
from tfxfer.runs.run_data import data_modality, load_run_data
from tfxfer.runs.run_folder import RunFolder
from tfxfer.runs.run_model import load_model_file
from tfxfer.runs.train_config import TrainConfig

EXPORT_BATCH = 32


def evaluate_model(model, dataset, class_names, data_source="the data"):
    """Cross-entropy and classification metrics of `model` on a batched `(x, y)` dataset.

    `class_names` names the dataset's labels; they are matched to the
    model's class names (when it has them). Inputs go through the model's
    preprocessor and outputs through its head's decoding, in one pass, so
    labels and predictions stay paired even when the dataset reshuffles.

    Example:

    >>> evaluate_model(model, data.validation, data.class_names)["accuracy"]
    0.93
    """
    from tfxfer.reports import classification_metrics

    if model.head.kind == "multi_label":
        raise ValueError("Evaluation here is for single-label heads; use model.evaluate for multi-label ones.")
    model_names = model.class_names
    if model_names is None:  # A model built in Python without names: the data's own order.
        if len(class_names) != model.head.num_names:
            raise ValueError(
                f"The data has {len(class_names)} classes and the model {model.head.num_names}; "
                "build the model with class_names=[...] so labels are matched by name."
            )
        model_names = list(class_names)
    mapping = label_mapping(class_names, model_names, data_source)
    labels, probabilities, predictions = [], [], []
    for x, y in dataset:
        outputs = model.predict_on_batch(x)  # runs the model's preprocessor, as predict does
        labels.append(mapping[np.asarray(y).reshape(-1).astype(np.int64)])
        probabilities.append(np.asarray(model.head.probabilities(outputs), dtype=np.float64))
        predictions.append(np.asarray(model.head.decode(outputs)["class_ids"]))
    if not labels:
        raise ValueError("The evaluation data is empty.")
    labels, probabilities = np.concatenate(labels), np.concatenate(probabilities)
    metrics = classification_metrics(labels, np.concatenate(predictions), model_names)
    if model.head.kind == "binary":
        positive = probabilities[:, 0]
        chosen = np.where(labels == 1, positive, 1.0 - positive)
    else:
        chosen = probabilities[np.arange(len(labels)), labels]
    metrics["loss"] = float(-np.log(np.clip(chosen, 1e-7, 1.0)).mean())
    return metrics


def evaluate_run(target, data=None, verbose=1, hub_handles=None, data_options=None):
    """Evaluates a run folder, a `.keras` file or an export on labelled data.

    `target` is a run folder (its best checkpoint and, by default, its own
    validation data), a `.keras` model file, or an export folder
    (`saved_models/<name>[/<version>]`, run through `serving_default` on raw
    inputs, as a server would). The model or export brings its own
    preprocessing and class names: labels are matched to the class names,
    and data of the wrong modality is refused before anything runs. Writes
    `evaluation.json` and `evaluation_confusion_matrix.png` into the run
    folder, beside the `.keras` file, or beside the export's version folders.

    Example:

    >>> evaluate_run("runs/hymenoptera-20261122-101500")["accuracy"]
    0.941
    """
    from tfxfer.export import export_version_path, read_export_metadata
    from tfxfer.reports import plot_confusion_matrix

    say = speaker(verbose)
    target = pathlib.Path(target).expanduser()
    if not target.exists():
        raise FileNotFoundError(f"Nothing to evaluate at {target}: pass a run folder, a .keras file or an export.")
    folder = RunFolder(target) if (target / "config.yaml").exists() else None
    export_path = None if folder is not None else export_version_path(target)
    if folder is None and export_path is None and target.suffix != ".keras":
        raise FileNotFoundError(
            f"{target} is neither a run folder (with config.yaml), a .keras file nor an export "
            "(saved_models/<name> or one of its version folders)."
        )
    if data is None and folder is None:
        raise ValueError(f"{target} is not a run folder, so pass the data to evaluate on (--data).")
    if data is not None and not str(data).startswith("tfds:") and not pathlib.Path(data).expanduser().exists():
        raise FileNotFoundError(f"--data {data} not found.")

    if export_path is not None:
        metadata = read_export_metadata(export_path)
        modality, class_names = metadata.get("modality"), metadata.get("class_names")
        _check_modality(modality, str(data), f"The export {export_path}")
        config = TrainConfig(**_evaluation_values(None, data, data_options))
        dataset = load_run_data(config, evaluation=True, class_names=_text_classes(modality, class_names))
        _check_modality(modality, str(data), f"The export {export_path}", dataset.modality)
        split = "validation" if dataset.validation is not None else "train"
        raw, labels = dataset.raw_inputs(split)
        if not raw:
            raise ValueError(f"No examples to evaluate in {data}.")
        say(f"Evaluating the export {export_path} through serving_default on {len(raw)} examples ...")
        evaluation = _evaluate_export(export_path, raw, labels, dataset.class_names, class_names, f"--data {data}")
        where = pathlib.Path(export_path).parent
        name_prefix = f"evaluation-{pathlib.Path(export_path).name}"
    else:
        model_file = folder.model_file if folder is not None else target
        if folder is not None:
            folder.require_completed()
        say(f"Loading {model_file} ...")
        model = load_model_file(model_file, hub_handles=hub_handles)
        if data is None:
            config = folder.read_config()  # the run's own data and seed give back its validation split
            dataset = load_run_data(config, preprocessor=_image_preprocessor(model))
        else:
            _check_modality(model.modality, str(data), f"The model {model_file}")
            config = TrainConfig(**_evaluation_values(folder, data, data_options))
            dataset = load_run_data(
                config,
                evaluation=True,
                preprocessor=_image_preprocessor(model),
                class_names=_text_classes(model.modality, model.class_names),
            )
            _check_modality(model.modality, str(data), f"The model {model_file}", dataset.modality)
        split = "validation" if dataset.validation is not None else "train"
        say(f"Evaluating {model_file} ...")
        source = f"--data {data}" if data is not None else f"the run's data {config.data}"
        evaluation = evaluate_model(model, getattr(dataset, split), dataset.class_names, source)
        class_names = model.class_names or dataset.class_names
        where = folder.path if folder is not None else target.parent
        if folder is None:
            name_prefix = f"evaluation-{target.stem}"
        else:  # other data does not overwrite the run's own evaluation
            name_prefix = "evaluation" if data is None else f"evaluation-{_data_name(data)}"
    evaluation["split"] = "validation" if split == "validation" else "all"
    evaluation["data"] = config.data
    from tfxfer.utils.atomic_files import write_text_atomically

    write_text_atomically(where / f"{name_prefix}.json", json.dumps(evaluation, indent=2))
    plot_confusion_matrix(evaluation["confusion_matrix"], class_names, where / f"{name_prefix}_confusion_matrix.png")
    say(
        f"Accuracy {evaluation['accuracy']:.3f} (macro F1 {evaluation['macro_f1']:.3f}) on "
        f"{evaluation['examples']} examples; written to {where / (name_prefix + '.json')}"
    )
    return evaluation


def _evaluate_export(export_path, raw, labels, data_names, export_names, data_source):
    from tfxfer.export import predict_from_export
    from tfxfer.reports import classification_metrics

    if export_names is None:
        raise ValueError(
            f"The export {export_path} records no class names, so its outputs cannot be "
            "matched to the data's labels by name. Export a model that has class_names."
        )
    mapping = label_mapping(data_names, export_names, data_source)
    outputs = [predict_from_export(export_path, raw[i : i + EXPORT_BATCH]) for i in range(0, len(raw), EXPORT_BATCH)]
    if "class_ids" not in outputs[0]:
        raise ValueError(f"The export {export_path} is multi-label; evaluation here is for single-label models.")
    predictions = np.concatenate([o["class_ids"] for o in outputs])
    return classification_metrics(mapping[np.asarray(labels, dtype=np.int64)], predictions, export_names)


def _data_name(data):
    return pathlib.Path(str(data).split(":", 1)[-1].rstrip("/")).name.replace(".", "_") or "data"


def _evaluation_values(folder, data, data_options=None):
    values = folder.read_config().to_dict() if folder is not None else {"backbone": "unused"}
    values.update({"data": str(data), "validation_data": None, "validation_split": None, "class_names": None})
    values.update(data_options or {})  # how to read the file: columns, label_base, ...
    return values


def _image_preprocessor(model):
    return model.preprocessor if model.modality == "image" else None


def _text_classes(modality, class_names):
    # Text labels are read against the model's declared classes, so a label
    # outside them is reported with its file and line.
    return class_names if modality == "text" else None


def _check_modality(modality, data, what, data_kind=None):
    data_kind = data_kind or data_modality(data)
    if modality is None or data_kind is None or modality == data_kind:
        return
    raise ValueError(
        f"{what} takes {modality}s but --data {data} holds {data_kind}s; evaluate it on "
        f"{'an image folder' if modality == 'image' else 'a labelled text file'}."
    )
