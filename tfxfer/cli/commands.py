"""What each `tfxfer` sub-command does; `main.py` parses, these run."""

import json
import pathlib

from tfxfer.cli.demo_config import demo_config


def _verbosity(args):
    return 0 if args.quiet else args.verbose


def run_train(args):
    from tfxfer.runs import load_config, train_run

    overrides = {
        key: value for key, value in vars(args).items()
        if key not in ("command", "config", "quiet", "verbose")
    }
    config = load_config(args.config, **overrides)
    train_run(config, verbose=_verbosity(args))


def run_demo(args):
    from tfxfer.runs import train_run

    config = demo_config(args.shared, epochs=args.epochs, runs_dir=args.runs_dir, export_dir=args.export_dir)
    train_run(config, verbose=_verbosity(args))


def run_evaluate(args):
    from tfxfer.runs import evaluate_run

    evaluate_run(args.target, data=args.data, verbose=_verbosity(args))


def run_export(args):
    from tfxfer.export import export_for_serving
    from tfxfer.runs.run_folder import RunFolder
    from tfxfer.runs.training_run import load_model_file

    target = pathlib.Path(args.target).expanduser()
    if (target / "config.yaml").exists():
        folder = RunFolder(target)
        config, metrics = folder.read_config(), folder.read_metrics()
        model_file, name = folder.best_checkpoint, args.name or config.run_name
        export_dir = args.export_dir or config.export_dir
        class_names = args.class_names or metrics["data"]["class_names"]
        image_size, value_range = config.image_size, config.value_range
    elif target.suffix == ".keras" and target.is_file():
        model_file, name = target, args.name or target.stem
        export_dir, class_names = args.export_dir or "saved_models", args.class_names
        image_size, value_range = None, (0.0, 1.0)
    else:
        raise FileNotFoundError(f"{target} is neither a run folder (with config.yaml) nor a .keras file.")
    model = load_model_file(model_file)
    is_images = model.preprocessor is None and len(model.input.shape) == 4
    path = export_for_serving(
        model, pathlib.Path(export_dir) / name, version=args.version, overwrite=args.overwrite,
        class_names=class_names, image_size=image_size if is_images else None, value_range=value_range,
    )
    message = f"Exported {model_file} to {path}"
    if (target / "config.yaml").exists():
        from tfxfer.runs.training_run import load_run_data, verify_on_examples

        data = load_run_data(config)
        check = verify_on_examples(model, path, data)
        if check["max_abs_difference"] is not None:
            message += f" (fresh-process check: max |Δ| {check['max_abs_difference']:.1e})"
    if not args.quiet:
        print(message)
    return 0


def run_predict(args):
    from tfxfer.export import predict_from_export, read_export_metadata
    from tfxfer.export.serving_export import export_version_path

    target = pathlib.Path(args.export).expanduser()
    path = export_version_path(target) if target.is_dir() else None
    if path is None:
        raise FileNotFoundError(
            f"No export at {target}: pass saved_models/<name> or one of its version folders."
        )
    metadata = read_export_metadata(path)
    inputs = list(args.inputs)
    if args.file:
        file = pathlib.Path(args.file).expanduser()
        if not file.is_file():
            raise FileNotFoundError(f"--file {file} not found.")
        inputs += [line for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not inputs:
        raise ValueError("Nothing to predict: pass image files or texts, or --file.")
    takes_images = metadata.get("input_name") == "image_bytes"
    raw = []
    for value in inputs:
        if takes_images:
            file = pathlib.Path(value).expanduser()
            if not file.is_file():
                raise FileNotFoundError(f"Image file not found: {file} (this export takes images).")
            raw.append(file.read_bytes())
        else:
            raw.append(value)
    outputs = predict_from_export(path, raw)
    names = metadata.get("class_names")
    for value, probabilities in zip(inputs, outputs["probabilities"]):
        order = probabilities.argsort()[::-1][: max(1, args.top)]
        ranked = [
            {"class_id": int(i), "class_name": names[i] if names else str(i),
             "probability": float(probabilities[i])}
            for i in order
        ]
        if args.json:
            print(json.dumps({"input": value, "predictions": ranked}))
        else:
            shown = ", ".join(f"{r['class_name']} {r['probability']:.3f}" for r in ranked)
            print(f"{value}\t{shown}")
    return 0


def run_info(args):
    from tfxfer.cli.backbone_info import describe

    print(describe(args.target))
    return 0
