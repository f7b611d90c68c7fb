"""`train_run`: data → model → training → evaluation → export → report, in one call."""

import json
import pathlib
import time
import warnings

import numpy as np

from tfxfer.runs.run_folder import RunFolder
from tfxfer.runs.train_config import TrainConfig

VERIFY_EXAMPLES = 8


def train_run(config, verbose=1):
    """Runs a whole training job and writes its run folder.

    The run folder (`config.runs_dir/<name>-<time>/`) holds `config.yaml`,
    `metrics.json`, `training_curves.png`, `confusion_matrix.png`,
    `checkpoints/best.keras`, `data_report.txt` and `report.md`; the export
    goes to `config.export_dir/<name>/<version>/`.

    Args:
        config: a `TrainConfig`.
        verbose: 0 silent, 1 progress bars and stage messages, 2 one line
            per epoch.

    Returns:
        The run's metrics dict (also written to `metrics.json`).

    Example:

    >>> metrics = train_run(TrainConfig(
    ...     backbone="../shared/models/tfhub/efficientnet_lite0_feature_vector",
    ...     data="../shared/data/images/hymenoptera", epochs=1))
    """
    import keras

    from tfxfer.distribute import select_strategy

    if not isinstance(config, TrainConfig):
        raise TypeError(f"train_run takes a TrainConfig, got {type(config).__name__}.")
    say = _speaker(verbose)
    started = time.time()
    keras.utils.set_random_seed(config.seed)
    choice = select_strategy(config.strategy)
    policy = _mixed_precision_policy(config.mixed_precision, choice)
    say(f"Strategy: {choice.describe()}; dtype policy: {policy or 'float32'}")
    previous_policy = keras.mixed_precision.global_policy()
    try:
        if policy:
            keras.mixed_precision.set_global_policy(policy)
        return _run(config, choice, policy, started, verbose, say)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)


def _run(config, choice, policy, started, verbose, say):
    say(f"Loading data from {config.data} ...")
    drop_remainder = config.drop_remainder if config.drop_remainder is not None else choice.name == "tpu"
    data = load_run_data(config, drop_remainder=drop_remainder)
    say(f"  {data.train_size} training and {data.validation_size} validation examples, "
        f"{data.num_classes} classes: {', '.join(map(str, data.class_names[:10]))}"
        + (" ..." if data.num_classes > 10 else ""))

    with choice.strategy.scope():
        say(f"Building the model on {config.backbone or config.preset} ...")
        model = build_run_model(config, data)
        # The folder appears once data and model are sound, so mistakes leave none behind.
        folder = RunFolder.create(config.runs_dir, config.run_name)
        folder.write_config(config.to_dict(absolute_paths=True))
        folder.write_text("data_report.txt", "\n".join(
            [data.report.summary()] + [f"skipped {where}: {why}" for where, why in data.report.skipped]
        ) + "\n")
        say(f"Run folder: {folder.path}")
        recipe = _train(model, config, data, choice, folder, verbose, say)
    if folder.best_checkpoint.exists():
        with warnings.catch_warnings():
            # The best epoch may predate a recompile; only the model's weights matter here.
            warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
            model.load_weights(str(folder.best_checkpoint))

    say("Evaluating the best checkpoint ...")
    evaluation_data = data.validation if data.validation is not None else data.train
    evaluation = evaluate_model(model, evaluation_data, data.class_names)
    evaluation["split"] = "validation" if data.validation is not None else "training (no validation split)"

    from tfxfer.reports import plot_confusion_matrix, plot_training_curves

    plot_training_curves(recipe["history"], folder.training_curves, title=config.run_name,
                         phase_boundaries=recipe["phase_boundaries"])
    plot_confusion_matrix(evaluation["confusion_matrix"], data.class_names, folder.confusion_matrix,
                          title=f"{config.run_name}: {evaluation['split'].split(' ')[0]}")

    export = None
    if config.export:
        say(f"Exporting for TF Serving to {config.export_dir}/{config.run_name}/ ...")
        export = export_run_model(model, config, data)
        if export["max_abs_difference"] is not None:
            say(f"  {export['path']} (fresh-process check: max |Δ| {export['max_abs_difference']:.1e})")

    metrics = {
        "name": config.run_name,
        "run_folder": str(folder.path),
        "strategy": choice.describe(),
        "dtype_policy": policy or "float32",
        "data": {
            "source": config.data, "class_names": list(map(str, data.class_names)),
            "train_examples": data.train_size, "validation_examples": data.validation_size,
            "skipped": len(data.report.skipped),
        },
        "history": {key: [float(v) for v in values] for key, values in recipe["history"].items()},
        "phase_boundaries": recipe["phase_boundaries"],
        "best_epoch": recipe["best_epoch"],
        "evaluation": evaluation,
        "export": export,
        "parameters": {
            "total": int(model.count_params()),
            "trainable_at_end": int(sum(np.prod(w.shape) for w in model.trainable_weights)),
        },
        "seconds": round(time.time() - started, 1),
    }
    folder.write_metrics(metrics)

    from tfxfer.reports import write_run_report

    write_run_report(folder, config.to_dict(), metrics)
    say(f"Accuracy on {evaluation['split']}: {evaluation['accuracy']:.3f} "
        f"(macro F1 {evaluation['macro_f1']:.3f}); report: {folder.report}")
    return metrics


def evaluate_run(target, data=None, verbose=1):
    """Evaluates a run folder, a `.keras` file or an export on labelled data.

    `target` is a run folder (its best checkpoint and, by default, its own
    validation data), a `.keras` model file, or an export folder
    (`saved_models/<name>[/<version>]`, run through `serving_default` on raw
    inputs, as a server would). Writes `evaluation.json` and
    `evaluation_confusion_matrix.png` into the run folder or beside the file.

    Example:

    >>> evaluate_run("runs/hymenoptera-20261122-101500")["accuracy"]
    0.941
    """
    from tfxfer.reports import plot_confusion_matrix

    say = _speaker(verbose)
    target = pathlib.Path(target).expanduser()
    if not target.exists():
        raise FileNotFoundError(f"Nothing to evaluate at {target}: pass a run folder, a .keras file or an export.")
    folder = RunFolder(target) if (target / "config.yaml").exists() else None
    if data is None and folder is None:
        raise ValueError(f"{target} is not a run folder, so pass the data to evaluate on (--data).")
    if data is None:
        # The run's own data and seed give back its validation split.
        config = folder.read_config()
        dataset = load_run_data(config)
    else:
        values = folder.read_config().to_dict() if folder is not None else {"backbone": "unused"}
        values.update({"data": str(data), "validation_data": None, "validation_split": None})
        if folder is None:
            values.update(_preprocessing_of(target))
        config = TrainConfig(**values)
        dataset = load_run_data(config, evaluation=True)
    if dataset.validation is None:
        evaluation_examples, evaluation_data, split = dataset.train_examples, dataset.train, "all"
    else:
        evaluation_examples, evaluation_data, split = (
            dataset.validation_examples, dataset.validation, "validation"
        )
    from tfxfer.export import export_version_path

    export_path = export_version_path(target)
    if export_path is not None:
        from tfxfer.export import predict_from_export

        say(f"Evaluating the export {export_path} through serving_default ...")
        if evaluation_examples is None:
            raise ValueError("Evaluating an export needs file-based data (an image folder or a text file).")
        raw = _raw_inputs(evaluation_examples, images=dataset.image_size is not None)
        labels = [label for _, label in evaluation_examples]
        predictions = np.concatenate([
            predict_from_export(export_path, raw[i:i + 64])["class_ids"] for i in range(0, len(raw), 64)
        ])
        from tfxfer.reports import classification_metrics

        evaluation = classification_metrics(labels, predictions, dataset.class_names)
        where = pathlib.Path(export_path)
    else:
        model_file = folder.best_checkpoint if folder is not None else target
        say(f"Evaluating {model_file} ...")
        model = load_model_file(model_file)
        evaluation = evaluate_model(model, evaluation_data, dataset.class_names)
        where = folder.path if folder is not None else target.parent
    evaluation["split"] = split
    evaluation["data"] = config.data
    (where / "evaluation.json").write_text(json.dumps(evaluation, indent=2))
    plot_confusion_matrix(evaluation["confusion_matrix"], dataset.class_names,
                          where / "evaluation_confusion_matrix.png")
    say(f"Accuracy {evaluation['accuracy']:.3f} (macro F1 {evaluation['macro_f1']:.3f}) on "
        f"{evaluation['examples']} examples; written to {where / 'evaluation.json'}")
    return evaluation


def _preprocessing_of(target):
    """Image size and value range of an export or a `.keras` model, for reading its data."""
    from tfxfer.export import export_version_path, read_export_metadata

    export = export_version_path(target)
    if export is not None:
        metadata = read_export_metadata(export)
        return {key: metadata[key] for key in ("image_size", "value_range") if metadata.get(key)}
    shape = load_model_file(target).input.shape if target.suffix == ".keras" else ()
    if len(shape) == 4 and None not in shape[1:3]:
        return {"image_size": tuple(shape[1:3])}
    return {}


def load_model_file(path):
    """Loads a `.keras` file saved from a `TransferModel`, with a clear error."""
    import keras

    # Importing these registers tfxfer's classes with Keras' serialization.
    import tfxfer.models.transfer_model  # noqa: F401
    import tfxfer.optimizers  # noqa: F401
    import tfxfer.regularizers  # noqa: F401

    path = pathlib.Path(path)
    if path.suffix != ".keras" or not path.is_file():
        raise FileNotFoundError(f"{path} is not a .keras model file.")
    try:
        return keras.saving.load_model(str(path))
    except (ValueError, OSError, TypeError) as error:
        raise ValueError(f"{path} could not be loaded as a Keras model: {error}") from None


def load_run_data(config, evaluation=False, drop_remainder=False):
    """The `LoadedData` a config names: an image folder, a text file or `tfds:NAME`.

    For training, data without a validation split gets a 20% one. With
    `evaluation=True` nothing is split off or augmented: a folder with a
    `val/` subfolder is evaluated on it, anything else on every example.
    """
    import tfxfer.data

    default_split = None if evaluation else 0.2
    augment = None if evaluation else _augment(config.augment)
    source = config.data
    if source.startswith("tfds:"):
        return tfxfer.data.from_tfds(
            source[len("tfds:"):], image_size=config.image_size, value_range=config.value_range,
            augment=augment, batch_size=config.batch_size, seed=config.seed,
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
                "validation_data is for text files; an image folder holds its own split "
                "(train/ and val/ subfolders) or uses validation_split."
            )
        return tfxfer.data.from_image_folder(
            path, image_size=config.image_size, batch_size=config.batch_size,
            validation_split=config.validation_split if config.validation_split is not None else default_split,
            seed=config.seed, value_range=config.value_range, augment=augment,
            on_bad_data=config.on_bad_data, drop_remainder=drop_remainder,
        )
    validation_split = config.validation_split
    if validation_split is None and not config.validation_data:
        validation_split = default_split
    return tfxfer.data.from_text_file(
        path, format=config.data_format, text_column=_column(config.text_column),
        label_column=_column(config.label_column), label_base=config.label_base,
        validation_split=validation_split, validation_path=config.validation_data,
        seed=config.seed, batch_size=config.batch_size, on_bad_data=config.on_bad_data,
        encoding_errors=config.encoding_errors, drop_remainder=drop_remainder,
    )


def build_run_model(config, data):
    """A `TransferModel` for the config's backbone or preset and the data's classes."""
    from tfxfer import TransferModel

    is_images = data.image_size is not None
    if is_images and config.preprocessor:
        raise ValueError(
            f"The data at {config.data} are images but a text preprocessor was given "
            f"({config.preprocessor}); drop --preprocessor and pass an image backbone."
        )
    regularizer = _regularizer(config)
    common = dict(dropout=config.dropout, pooling=config.pooling, regularizer=regularizer)
    if config.preset:
        model = TransferModel.from_preset(
            config.preset, num_classes=data.num_classes, sequence_length=config.sequence_length, **common
        )
    else:
        model = TransferModel.from_hub(
            config.backbone, num_classes=data.num_classes, preprocessor=config.preprocessor,
            input_shape=(*config.image_size, 3) if is_images else None, **common,
        )
    takes_strings = model.preprocessor is not None
    if is_images and takes_strings:
        raise ValueError(
            f"The data at {config.data} are images but {config.backbone or config.preset} is a text "
            "model; pass an image backbone."
        )
    if not is_images and not takes_strings:
        raise ValueError(
            f"The data at {config.data} are texts but {config.backbone or config.preset} takes no raw "
            "strings; pass a text preset, or a TF Hub text encoder with --preprocessor."
        )
    return model


def evaluate_model(model, dataset, class_names):
    """Cross-entropy and classification metrics of `model` on a batched `(x, y)` dataset.

    One pass, so labels and predictions stay paired even when the dataset
    reshuffles on every iteration.
    """
    from tfxfer.reports import classification_metrics

    labels, probabilities = [], []
    for x, y in dataset:
        labels.append(np.asarray(y).reshape(-1))
        probabilities.append(np.asarray(model.predict_on_batch(x), dtype=np.float64))
    if not labels:
        raise ValueError("The evaluation data is empty.")
    labels, probabilities = np.concatenate(labels), np.concatenate(probabilities)
    if probabilities.shape[-1] == 1:  # sigmoid head
        positive = probabilities[:, 0]
        predictions = (positive > 0.5).astype(np.int64)
        chosen = np.where(labels == 1, positive, 1.0 - positive)
    else:
        predictions = probabilities.argmax(axis=-1)
        chosen = probabilities[np.arange(len(labels)), labels.astype(np.int64)]
    metrics = classification_metrics(labels, predictions, class_names)
    metrics["loss"] = float(-np.log(np.clip(chosen, 1e-7, 1.0)).mean())
    return metrics


def export_run_model(model, config, data):
    """Exports for TF Serving and checks the export in a fresh process."""
    from tfxfer.export import export_for_serving

    path = export_for_serving(
        model, pathlib.Path(config.export_dir) / config.run_name, class_names=data.class_names,
        image_size=data.image_size, value_range=data.value_range,
    )
    return {"path": path, **verify_on_examples(model, path, data)}


def verify_on_examples(model, path, data):
    """`verify_export` on a few raw validation examples (none from TFDS)."""
    from tfxfer.export import verify_export

    examples = data.validation_examples or data.train_examples
    if not examples:
        return {"max_abs_difference": None, "verified_examples": 0}
    samples = _raw_inputs(examples[:VERIFY_EXAMPLES], images=data.image_size is not None)
    check = verify_export(path, samples, model)
    return {"max_abs_difference": check["max_abs_difference"], "verified_examples": check["examples"]}


def _train(model, config, data, choice, folder, verbose, say):
    import keras

    import tfxfer

    monitor = "val_accuracy" if data.validation is not None else "accuracy"
    checkpoint = keras.callbacks.ModelCheckpoint(
        str(folder.best_checkpoint), monitor=monitor, mode="max", save_best_only=True,
    )
    callbacks = [checkpoint]
    steps_per_execution = config.steps_per_execution or choice.steps_per_execution
    compile_options = {"steps_per_execution": steps_per_execution} if steps_per_execution > 1 else {}
    steps_per_epoch = max(1, -(-data.train_size // config.batch_size))
    fit_options = dict(validation_data=data.validation, verbose=verbose, callbacks=callbacks)
    say(f"Training: {config.recipe}, regularizer {config.regularizer}")
    boundaries = []
    if config.recipe == "two_phase":
        history = model.fine_tune(
            data.train, head_epochs=config.head_epochs, epochs=config.epochs,
            head_learning_rate=config.head_learning_rate, learning_rate=config.learning_rate,
            layer_decay=config.layer_decay, unfreeze_top=config.unfreeze_top, **fit_options,
        )
        boundaries = [config.head_epochs] if config.head_epochs else []
    else:
        if config.recipe == "linear_probe":
            rate = config.head_learning_rate
        else:
            if config.recipe == "fine_tune":
                model.unfreeze(top=config.unfreeze_top)
            else:  # gradual: the callback unfreezes a group per epoch
                model.freeze_backbone()
            rate = tfxfer.warmup_cosine(
                config.learning_rate, total_steps=steps_per_epoch * config.epochs,
                warmup_steps=max(1, steps_per_epoch * config.epochs // 10),
            )
        if config.layer_decay and config.recipe != "linear_probe":
            optimizer = tfxfer.discriminative_optimizer(model, rate, layer_decay=config.layer_decay)
        else:
            optimizer = keras.optimizers.Adam(rate)
        if config.recipe == "gradual":
            callbacks.append(tfxfer.callbacks.GradualUnfreezing())
        model.compile(optimizer=optimizer, **compile_options)
        history = model.fit(data.train, epochs=config.epochs, **fit_options)
    logs = history.history
    best_epoch = int(np.argmax(logs[monitor])) + 1 if logs.get(monitor) else None
    return {"history": logs, "phase_boundaries": boundaries, "best_epoch": best_epoch}


def _regularizer(config):
    from tfxfer import regularizers

    if config.regularizer == "none":
        return None
    builders = {
        "l2": lambda: regularizers.L2(alpha=config.alpha, beta=config.beta),
        "l2_sp": lambda: regularizers.L2SP(alpha=config.alpha, beta=config.beta),
        "cosine_sp": lambda: regularizers.CosineSP(alpha=config.alpha, beta=config.beta),
        "bss": lambda: regularizers.BSS(),
        "l2_sp+bss": lambda: regularizers.L2SP(alpha=config.alpha, beta=config.beta) + regularizers.BSS(),
    }
    return builders[config.regularizer]()


def _mixed_precision_policy(setting, choice):
    if setting == "off":
        return None
    if setting == "auto":
        return choice.mixed_precision
    return setting


def _augment(value):
    return None if value in (None, "none", "None", False) else value


def _column(value):
    if value is None:
        return None
    return int(value) if str(value).isdigit() else value


def _raw_inputs(examples, images):
    """Image file bytes or texts, as `serving_default` takes them."""
    return [pathlib.Path(value).read_bytes() if images else value for value, _ in examples]


def _speaker(verbose):
    def say(message):
        if verbose:
            print(message, flush=True)

    return say
