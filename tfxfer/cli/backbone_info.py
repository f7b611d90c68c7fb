"""`describe`: what a TF Hub handle, a KerasHub preset, a model, a run or an export contains."""

import pathlib


def describe(target):
    """A readable summary of `target`: an export folder, a TF Hub handle or path, or a preset.

    Example:

    >>> print(describe("../shared/models/tfhub/efficientnet_lite0_feature_vector"))
    """
    path = pathlib.Path(target).expanduser()
    if path.is_file():
        if path.suffix == ".keras":
            return _describe_model_file(path)
        raise ValueError(
            f"{path} is a file, but info describes a .keras model, a run folder, an export folder, "
            "a TF Hub handle or SavedModel folder, or a KerasHub preset."
        )
    if (path / "config.yaml").is_file():
        return _describe_run(path)
    if path.is_dir():
        from tfxfer.export.serving_export import export_version_path

        export = export_version_path(path)
        if export is not None and (pathlib.Path(export) / "assets.extra").exists():
            return _describe_export(export)
        if (path / "saved_model.pb").exists() or (path / "saved_model.pbtxt").exists():
            return _describe_hub(str(path))
        if not (path / "config.json").exists():
            raise ValueError(
                f"{path} is a folder, but not a run (config.yaml), an export, a TF Hub SavedModel "
                "(saved_model.pb) or a KerasHub/Hugging Face preset (config.json)."
            )
        return _describe_preset(str(path))
    if "/" in target and "://" not in target:
        raise FileNotFoundError(
            f"{path} not found (info takes a file or folder path, a TF Hub handle or a preset name)."
        )
    if "://" in target and not target.startswith(("kaggle://", "hf://")):
        return _describe_hub(target)
    return _describe_preset(target)


def _describe_model_file(path, header=None):
    from tfxfer.runs.run_model import load_model_file

    model = load_model_file(path)
    backbone = model.backbone
    source = getattr(backbone, "handle", None) or type(backbone).__name__
    lines = [
        header or f"Model: {path}",
        f"  backbone: {source}",
        f"  modality: {model.modality or 'preprocessed tensors'}",
        f"  head: {model.head.kind}, {model.head.num_names} classes",
        f"  class names: {', '.join(model.class_names) if model.class_names else 'none'}",
        # The network only: w⁰ and DELTA's source copy are references, not parameters.
        "  parameters: {total:,} ({trainable:,} trainable)".format(**model.parameter_counts()),
    ]
    if model.lora:
        lines.append(f"  LoRA: rank {model.lora['rank']}, targets {model.lora['targets'] or 'default'}")
    if model.modality == "image":
        preprocessor = model.preprocessor
        lines.append(f"  image size: {tuple(preprocessor.image_size)}, value range: {preprocessor.value_range}")
    return "\n".join(lines)


def _describe_run(path):
    from tfxfer.runs.run_folder import RunFolder
    from tfxfer.runs.run_status import describe_status

    folder = RunFolder(path)
    lines = [f"Run: {path}", f"  status: {describe_status(folder.status())}"]
    if folder.metrics_file.exists():
        import json

        metrics = json.loads(folder.metrics_file.read_text())
        evaluation = metrics.get("evaluation") or {}
        if "accuracy" in evaluation:
            lines.append(f"  accuracy: {evaluation['accuracy']:.3f} on {evaluation.get('split', 'validation')}")
        if metrics.get("export"):
            lines.append(f"  export: {metrics['export']['path']}")
    model_file = folder.model_file
    if model_file.exists():
        what = "WiSE-FT model" if model_file == folder.wise_ft_checkpoint else "best checkpoint"
        lines.append(_describe_model_file(model_file, header=f"  {what}: {model_file}"))
    return "\n".join(lines)


def _describe_hub(handle):
    import numpy as np

    from tfxfer import HubBackbone, layer_groups
    from tfxfer.backbones.hub_module import load_hub_module
    from tfxfer.utils.keras_internals import trainable_capable_weights

    module = load_hub_module(handle)
    if not callable(module) and getattr(module, "signatures", None):
        return _describe_saved_model(handle, module)
    backbone = HubBackbone(handle)
    weights = [w for _, w in backbone.module_weights]
    trainable_capable = {id(w) for w in trainable_capable_weights(backbone)}
    parameters = sum(int(np.prod(w.shape)) for w in weights)
    groups = layer_groups(backbone)
    lines = [
        f"TF Hub module: {handle}",
        f"  variables: {len(weights)} ({len(trainable_capable)} trainable), {parameters:,} parameters",
        f"  BatchNorm: {'yes' if backbone.has_batchnorm else 'no'}",
        f"  inputs: {_spec(backbone.input_structure)}",
        f"  outputs: {_spec(backbone.output_structure)}",
        f"  signatures: {', '.join(sorted(getattr(module, 'signatures', {}) or [])) or 'none'}",
        _groups_line(backbone, groups),
    ]
    return "\n".join(lines)


def _describe_saved_model(path, module):
    """A SavedModel with signatures but no `__call__`: a Keras `model.export()`, say, not a tfxfer export."""
    lines = [
        f"SavedModel: {path} (not a tfxfer export: no assets.extra/tfxfer_export.json; not a TF Hub "
        "reusable module: no __call__)"
    ]
    for name, function in sorted(module.signatures.items()):
        inputs = function.structured_input_signature[1]
        lines.append(f"  signature {name}: inputs {_spec(inputs)} -> outputs {_spec(function.structured_outputs)}")
    first = "serving_default" if "serving_default" in module.signatures else sorted(module.signatures)[0]
    lines += [
        "  tfxfer predict and tfxfer evaluate take a .keras model or a tfxfer export: make one with "
        "tfxfer export RUN_FOLDER_OR_MODEL.keras",
        f"  as a backbone to train on: tfxfer train --backbone {path} --signature {first}",
    ]
    return "\n".join(lines)


def _describe_preset(preset):
    from tfxfer import layer_groups
    from tfxfer.backbones.preset_loading import load_preset

    backbone, preprocessor = load_preset(preset)
    groups = layer_groups(backbone)
    lines = [
        f"KerasHub preset: {preset}",
        f"  backbone: {type(backbone).__name__}, {backbone.count_params():,} parameters",
        f"  inputs: {_spec({k: v for k, v in _inputs(backbone).items()})}",
    ]
    if preprocessor is not None:
        tokenizer = getattr(preprocessor, "tokenizer", None)
        detail = f", vocabulary {tokenizer.vocabulary_size():,}" if tokenizer is not None else ""
        length = getattr(preprocessor, "sequence_length", None)
        lines.append(
            f"  preprocessor: {type(preprocessor).__name__}"
            + (f", sequence length {length}" if length else "")
            + detail
        )
    lines.append(_groups_line(backbone, groups))
    return "\n".join(lines)


def _describe_export(path):
    import tensorflow as tf

    from tfxfer.export import read_export_metadata, read_warmup_requests
    from tfxfer.export.serving_export import tensorflow_text_ops

    metadata = read_export_metadata(path)
    text_ops = metadata.get("tensorflow_text_ops")
    if text_ops is None:  # exported before tfxfer recorded them
        text_ops = tensorflow_text_ops(path)
    if text_ops:
        try:
            import tensorflow_text  # noqa: F401  (registers the ops, so the export loads here)
        except ImportError:
            raise RuntimeError(
                f"The export {path} tokenizes with TF Text ops ({', '.join(text_ops)}); install tensorflow-text "
                "(the version matching TensorFlow) to load it."
            ) from None
    loaded = tf.saved_model.load(path)
    lines = [f"Export for TF Serving: {path}"]
    for name, function in sorted(loaded.signatures.items()):
        inputs = function.structured_input_signature[1]
        outputs = function.structured_outputs
        lines.append(f"  signature {name}: inputs {_spec(inputs)} -> outputs {_spec(outputs)}")
    if metadata.get("class_names"):
        lines.append(f"  class names: {', '.join(metadata['class_names'])}")
    if metadata.get("image_size"):
        lines.append(
            f"  images: any encoded image, resized to {metadata['image_size'][0]}x"
            f"{metadata['image_size'][1]} by the model's own preprocessor"
        )
    if metadata.get("decoding"):
        threshold = f" above {metadata['threshold']}" if metadata["decoding"] != "multiclass" else ""
        lines.append(f"  decisions: {metadata['decoding']}{threshold}")
    try:
        lines.append(f"  warmup requests: {len(read_warmup_requests(path))}")
    except (OSError, tf.errors.OpError):
        lines.append("  warmup requests: none")
    if text_ops:
        lines.append(
            f'  loading: `import tensorflow_text` before tf.saved_model.load (else "Op type not registered"); '
            f"it tokenizes with TF Text ops: {', '.join(text_ops)}"
        )
    return "\n".join(lines)


def _inputs(backbone):
    inputs = backbone.input
    return inputs if isinstance(inputs, dict) else {"inputs": inputs}


def _spec(structure):
    if isinstance(structure, dict):
        return "{" + ", ".join(f"{k}: {_spec(v)}" for k, v in sorted(structure.items())) + "}"
    shape = [
        d if d is not None else "?"
        for d in (structure.shape.as_list() if hasattr(structure.shape, "as_list") else list(structure.shape))
    ]
    dtype = getattr(structure.dtype, "name", structure.dtype)
    return f"{dtype}[{', '.join(map(str, shape))}]"


def _groups_line(backbone, groups):
    """The layer groups, and whether a declaration or inference made them (so a surprise has a cause)."""
    from tfxfer.freezing.layer_groups import group_declaration_for

    declaration = group_declaration_for(backbone)
    if declaration is None:
        origin = "inferred from variable paths"
    else:
        origin = f"from {declaration.source}"
        inferred = [group.name for group in groups if not group.declared]
        if inferred:
            origin += f"; inferred for weights it leaves out: {', '.join(inferred)}"
    return f"  layer groups ({len(groups)}, input to output, {origin}): {_names(groups)}"


def _names(groups):
    names = [group.name for group in groups]
    return ", ".join(names) if len(names) <= 12 else ", ".join(names[:5]) + ", ..., " + ", ".join(names[-4:])
