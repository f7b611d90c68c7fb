"""What each `tfxfer` sub-command does; `main.py` parses, these run."""

import json
import pathlib

from tfxfer.cli.demo_config import demo_config


def _verbosity(args):
    import sys

    if args.quiet:
        return 0
    # Progress bars redraw in place; into a file or pipe, one line per epoch reads better (Keras' "auto").
    return args.verbose if sys.stdout.isatty() else 2


def run_train(args):
    from tfxfer.runs import load_config, resume_run, train_run

    overrides = {
        key: value
        for key, value in vars(args).items()
        if key not in ("command", "config", "quiet", "verbose", "resume")
    }
    if args.resume:
        from tfxfer.runs.moved_data import MOVABLE_DATA

        moved = {key: overrides.pop(key) for key in MOVABLE_DATA if key in overrides}
        given = ["--config"] * bool(args.config) + ["--" + key.replace("_", "-") for key in overrides]
        if given:
            raise ValueError(
                f"--resume continues a run with the options it recorded (its config.yaml); drop {', '.join(given)}, "
                "or start a new run without --resume (only --data and --validation-data may be given, for data "
                "that moved)."
            )
        resume_run(args.resume, verbose=_verbosity(args), moved_data=moved)
        return
    config = load_config(args.config, **overrides)
    train_run(config, verbose=_verbosity(args))


def run_lr_find(args):
    from tfxfer.runs import load_config
    from tfxfer.runs.learning_rate_search import lr_find_run

    overrides = {
        key: value
        for key, value in vars(args).items()
        if key not in ("command", "config", "quiet", "verbose", "steps", "output")
    }
    config = load_config(args.config, **overrides)
    lr_find_run(config, output_dir=args.output, steps=args.steps, verbose=0 if args.quiet else 1)


def run_tune(args):
    from tfxfer.runs import load_config
    from tfxfer.tuning import tune

    searched = ("trials", "time_budget", "train_best", "study_folder", "tune_validation_split")
    overrides = {
        key: value
        for key, value in vars(args).items()
        if key not in ("command", "config", "quiet", "verbose", *searched)
    }
    config = load_config(args.config, **overrides)
    tune(
        config,
        trials=args.trials,
        time_budget=args.time_budget,
        train_best=args.train_best,
        study_folder=args.study_folder,
        validation_fraction=args.tune_validation_split,
        verbose=_verbosity(args),
    )


def run_launch(args):
    from tfxfer.cli.worker_launch import launch_workers

    return launch_workers(args.worker_command, args.workers, log_dir=args.log_dir)


def run_demo(args):
    from tfxfer.runs import train_run

    config = demo_config(args.shared, epochs=args.epochs, runs_dir=args.runs_dir, export_dir=args.export_dir)
    train_run(config, verbose=_verbosity(args))


def run_evaluate(args):
    from tfxfer.runs import evaluate_run
    from tfxfer.runs.train_config import EVALUATION_DATA_OPTIONS

    data_options = {key: getattr(args, key) for key in EVALUATION_DATA_OPTIONS if getattr(args, key) is not None}
    evaluate_run(
        args.target, data=args.data, verbose=_verbosity(args), hub_handles=_hub_handles(args), data_options=data_options
    )


def _hub_handles(args):
    handles = {}
    for pair in getattr(args, "hub_handle", None) or []:
        old, separator, new = pair.partition("=")
        if not separator or not old or not new:
            raise ValueError(
                f"--hub-handle takes OLD=NEW (the handle saved in the model = where it is now), got {pair!r}."
            )
        handles[old] = new
    return handles


def run_export(args):
    from tfxfer.export import export_for_serving
    from tfxfer.runs.run_folder import RunFolder
    from tfxfer.runs.run_model import load_model_file

    target = pathlib.Path(args.target).expanduser()
    folder = RunFolder(target) if (target / "config.yaml").exists() else None
    if folder is not None:
        folder.require_completed()
        config = folder.read_config()
        model_file, name = folder.model_file, args.name or config.run_name
        export_dir = args.export_dir or config.export_dir
    elif target.suffix == ".keras" and target.is_file():
        owner = target.parent.parent  # runs/<run>/checkpoints/best.keras: named after its run
        run_name = RunFolder(owner).read_config().run_name if (owner / "config.yaml").exists() else None
        model_file, name = target, args.name or run_name or target.stem
        export_dir = args.export_dir or "saved_models"
    else:
        raise FileNotFoundError(f"{target} is neither a run folder (with config.yaml) nor a .keras file.")
    from tfxfer.runs.output_folders import check_output_folder, check_plain_name

    check_plain_name(name)
    check_output_folder(export_dir, "export_dir")  # before loading the model
    model = load_model_file(model_file, hub_handles=_hub_handles(args))
    # The model carries its preprocessing and class names: nothing else is needed.
    path = export_for_serving(
        model,
        pathlib.Path(export_dir) / name,
        version=args.version,
        overwrite=args.overwrite,
        class_names=args.class_names,
        threshold=args.threshold,
    )
    message = f"Exported {model_file} to {path}"
    if folder is not None:
        from tfxfer.runs.run_data import load_run_data
        from tfxfer.runs.run_export import verify_on_examples

        preprocessor = model.preprocessor if model.modality == "image" else None
        data = load_run_data(config, evaluation=True, preprocessor=preprocessor)
        check = verify_on_examples(model, path, data)
        if check["max_abs_difference"] is not None:
            message += f" (fresh-process check: max |Δ| {check['max_abs_difference']:.1e})"
    if not args.quiet:
        print(message)
    return 0


def run_predict(args):
    from tfxfer.data.image_folder import IMAGE_EXTENSIONS
    from tfxfer.export import predict_from_export, read_export_metadata
    from tfxfer.export.serving_export import export_version_path

    target = pathlib.Path(args.export).expanduser()
    model = None
    if target.suffix == ".keras" and target.is_file():
        from tfxfer.runs.run_model import load_model_file

        model = load_model_file(target, hub_handles=_hub_handles(args))
        path, modality, class_names = str(target), model.modality, model.class_names
        if modality is None:
            raise ValueError(f"The model {target} has no preprocessor, so it takes no raw images or texts.")
    else:
        path = export_version_path(target) if target.is_dir() else None
        if path is None:
            raise FileNotFoundError(
                f"No export at {target}: pass saved_models/<name>, one of its version folders, or a .keras file."
            )
        metadata = read_export_metadata(path)
        modality, class_names = metadata.get("modality"), metadata.get("class_names")
        if metadata.get("input_name") not in ("image_bytes", "text"):
            raise ValueError(f"The export {path} takes no raw inputs (no image_bytes or text signature).")
    inputs = list(args.inputs)
    for number, value in enumerate(inputs, start=1):
        if not value.strip():
            raise ValueError(
                f"input {number} is empty ({value!r}): pass image files or texts (an unset shell variable "
                "gives an empty argument)."
            )
    listed = _file_inputs(args, class_names, takes_images=modality == "image") if args.file is not None else []
    inputs += listed
    if not inputs:
        raise ValueError("Nothing to predict: pass image files or texts, or --file.")
    takes_images = modality == "image"
    if not takes_images and all(pathlib.Path(v).suffix.lower() in IMAGE_EXTENSIONS for v in inputs):
        raise ValueError(f"{path} is a text model but the inputs are image file names; pass texts.")
    if takes_images:
        inputs = _readable_images(inputs, path, args.on_bad_data, listed=set(listed))
    predict = (lambda raw: predict_from_export(path, raw)) if model is None else _model_predictor(model)
    # In batches: memory stays flat however many inputs there are, and results appear as they come.
    for start in range(0, len(inputs), PREDICT_BATCH_SIZE):
        chunk = inputs[start : start + PREDICT_BATCH_SIZE]
        raw = [pathlib.Path(v).expanduser().read_bytes() for v in chunk] if takes_images else chunk
        outputs = _predict_naming_the_input(predict, raw, chunk)
        for index, value in enumerate(chunk):
            result = _decision(outputs, index, class_names, args.top)
            if args.json:
                print(json.dumps({"input": value, **result}), flush=True)
            else:
                shown = ", ".join(f"{r['class_name']} {r['probability']:.3f}" for r in result["predictions"])
                print(f"{value}\t{result['decision']}\t{shown}", flush=True)
    return 0


PREDICT_BATCH_SIZE = 32


def _file_inputs(args, class_names, takes_images):
    """The inputs `--file` holds: for a text model, read as `tfxfer train` reads `--data`."""
    import sys

    from tfxfer.data.text_file import read_texts
    from tfxfer.runs.run_data import column_option

    file = pathlib.Path(args.file).expanduser()
    if file.is_dir():
        raise ValueError(f"--file {file} is a folder; pass a file of inputs, or the inputs themselves.")
    if not file.is_file():
        raise FileNotFoundError(f"--file {file} not found.")
    texts, report = read_texts(
        file,
        format="lines" if takes_images else args.data_format or "auto",  # image files: one a line
        text_column=None if takes_images else column_option(args.text_column),
        label_column=None if takes_images else column_option(args.label_column),
        encoding_errors=args.encoding_errors or "strict",
        on_bad_data=args.on_bad_data,
        class_names=class_names,
    )
    for where, why in report.skipped:
        print(f"skipped {where}: {why}", file=sys.stderr)
    if not texts:
        raise ValueError(f"--file {file} holds no inputs.")
    return [text for _, text in texts]


def _readable_images(inputs, path, on_bad_data, listed=()):
    """The image files to predict on; a bad one stops everything, or with `skip` is reported and left out."""
    import sys

    from tfxfer.data.image_folder import image_file_problem

    kept = []
    for value in inputs:
        file = pathlib.Path(value).expanduser()
        if file.is_dir():
            problem = f"is a folder; pass the image files in it (e.g. {file}/*.jpg)"
        elif not file.exists():
            problem = "not found" + (
                " (an image model's --file lists image files, one a line)" if value in listed else ""
            )
        else:
            problem = image_file_problem(str(file))
        if problem is None:
            kept.append(value)
        elif on_bad_data == "skip":
            print(f"skipped {file}: {problem}", file=sys.stderr)
        else:
            raise ValueError(
                f"{file}: {problem}. {path} takes images (JPEG, PNG, GIF, BMP); pass --on-bad-data skip "
                "to predict on the others."
            )
    if not kept:
        raise ValueError("None of the inputs is a readable image.")
    return kept


def _predict_naming_the_input(predict, raw, names):
    """Runs `predict`; when TensorFlow rejects the batch, finds and names the input it failed on."""
    import tensorflow as tf

    try:
        return predict(raw)
    except tf.errors.OpError as error:
        if len(raw) > 1:
            for value, name in zip(raw, names):
                _predict_naming_the_input(predict, [value], [name])
        reason = (
            (error.message or "").strip().splitlines()[0] if (error.message or "").strip() else type(error).__name__
        )
        raise ValueError(f"{names[0]}: cannot be read by the model ({reason.split(' [Op:')[0]}).") from None


def _model_predictor(model):
    return lambda raw: _predict_with_model(model, raw)


def _predict_with_model(model, raw):
    """What an export would answer, from the Keras model: its preprocessor and its head."""
    import numpy as np

    if model.modality == "image":
        raw = np.stack([model.preprocessor.decode(value).numpy() for value in raw])
    outputs = model.predict(raw, verbose=0)
    decisions = model.head.decode(outputs)
    return {
        "probabilities": np.asarray(model.head.probabilities(outputs)),
        **{key: np.asarray(value) for key, value in decisions.items()},
    }


def _decision(outputs, index, names, top):
    """The export's own decision for one input, and its most probable classes."""
    probabilities = outputs["probabilities"][index]

    def name(i):
        return names[i] if names else str(i)

    if "multi_hot" in outputs:
        chosen = [name(i) for i, flag in enumerate(outputs["multi_hot"][index]) if flag]
        decision = ",".join(chosen) or "(none)"
        ranked = [(i, probabilities[i]) for i in probabilities.argsort()[::-1]]
    elif probabilities.shape[-1] == 1:  # one sigmoid output: P(positive)
        decision = name(int(outputs["class_ids"][index]))
        ranked = sorted([(1, probabilities[0]), (0, 1.0 - probabilities[0])], key=lambda r: -r[1])
    else:
        decision = name(int(outputs["class_ids"][index]))
        ranked = [(i, probabilities[i]) for i in probabilities.argsort()[::-1]]
    predictions = [
        {"class_id": int(i), "class_name": name(i), "probability": float(p)} for i, p in ranked[: max(1, top)]
    ]
    return {"decision": decision, "predictions": predictions}


def run_info(args):
    from tfxfer.cli.backbone_info import describe

    print(describe(args.target))
    return 0
