"""`write_run_report`: a short markdown report tying a run's files together."""


def write_run_report(folder, config, metrics):
    """Writes `report.md` in the run folder and returns its path.

    Example:

    >>> write_run_report(folder, config.to_dict(), metrics)
    """
    evaluation = metrics["evaluation"]
    data = metrics["data"]
    source = config.get("backbone") or config.get("preset")
    lines = [
        f"# Run {metrics['name']}",
        "",
        f"{config['recipe'].replace('_', '-')} training of `{source}` on `{data['source']}` "
        f"({data['train_examples']} training / {data['validation_examples']} validation examples, "
        f"{len(data['class_names'])} classes), regularizer `{config['regularizer']}`"
        + (f" (alpha {config['alpha']}, beta {config['beta']})" if config["regularizer"] != "none" else "")
        + f"; {metrics['strategy']}, {_precision(metrics)}; {metrics['seconds']:.0f} s.",
        "",
        "## Result",
        "",
        f"Accuracy on the {evaluation['split']} split: **{evaluation['accuracy']:.3f}** "
        f"(macro F1 {evaluation['macro_f1']:.3f}, loss {evaluation.get('loss', float('nan')):.3f}, "
        f"{evaluation['examples']} examples), from the best epoch"
        + (f" ({metrics['best_epoch']})" if metrics.get("best_epoch") else "")
        + " (`checkpoints/best.keras`).",
        "",
        "| class | precision | recall | F1 | support |",
        "|---|---|---|---|---|",
    ]
    for name, row in evaluation["per_class"].items():
        lines.append(f"| {name} | {row['precision']:.3f} | {row['recall']:.3f} | {row['f1']:.3f} | {row['support']} |")
    lines += ["", "![confusion matrix](confusion_matrix.png)", "", "## Training", ""]
    history = metrics["history"]
    hidden = ("learning_rate", "val_regularization_loss", "val_task_loss")  # evaluation has no penalty
    columns = [k for k in history if k not in hidden]
    lines.append("| epoch | " + " | ".join(c.replace("_", " ") for c in columns) + " |")
    lines.append("|---|" + "---|" * len(columns))
    epochs = max(len(v) for v in history.values()) if history else 0
    for epoch in range(epochs):
        cells = [f"{history[c][epoch]:.4f}" if epoch < len(history[c]) else "" for c in columns]
        marker = " (head only)" if metrics["phase_boundaries"] and epoch < metrics["phase_boundaries"][0] else ""
        lines.append(f"| {epoch + 1}{marker} | " + " | ".join(cells) + " |")
    cache = metrics.get("cached_features")
    if cache:
        lines += [
            "",
            f"The head-only epochs trained on cached features: the frozen backbone ran once over the "
            f"{cache['examples']} training"
            + (f" and {cache['validation_examples']} validation" if cache.get("validation_examples") else "")
            + f" examples ({cache['seconds']:.0f} s, kept in {cache['storage']}), not once per epoch.",
        ]
    network = metrics.get("parameters", {}).get("network")
    if network:
        lora = metrics.get("lora")
        share = 100 * network["trainable"] / max(network["total"], 1)
        lines += [
            "",
            f"Parameters: {network['trainable']:,} of {network['total']:,} ({share:.2f}%) trained in the last phase"
            + (
                f", through LoRA adapters of rank {lora['rank']}"
                + (
                    f" at a peak learning rate of {metrics['learning_rate']['value']:g}"
                    if (metrics.get("learning_rate") or {}).get("value") is not None
                    else ""
                )
                + " (the export merges them into the kernels)."
                if lora
                else "."
            ),
        ]
    rate = metrics.get("learning_rate")
    if rate and rate.get("found"):
        lines += [
            "",
            f"Learning rate {rate['value']:.2e}, the learning-rate finder's suggestion:",
            "",
            "![learning-rate finder](lr_find.png)",
        ]
    wise_ft = metrics.get("wise_ft")
    if wise_ft:
        lines += [
            "",
            f"WiSE-FT: the evaluated and exported backbone is (1 − {wise_ft['mix']:g})·w⁰ + "
            f"{wise_ft['mix']:g}·w (pretrained and fine-tuned weights; the head is the fine-tuned one)"
            + (", the mix chosen on the validation split:" if wise_ft.get("curve") else "."),
        ]
        if wise_ft.get("curve"):
            lines += ["", "![WiSE-FT](wise_ft.png)"]
    co_tuning = metrics.get("co_tuning")
    if co_tuning:
        lines += [
            "",
            f"Co-Tuning (trade-off {co_tuning['trade_off']:g}): the source classifier ({co_tuning['source_classes']} "
            "classes) trained beside the head toward each class's relationship row, measured on the training "
            "split before fine-tuning (the source classes most related to each class):",
            "",
            "| class | source classes, p(y_s given the class) |",
            "|---|---|",
        ]
        for name, top in co_tuning["top_source_classes"].items():
            shown = ", ".join(
                f"{entry['index']}" + (f" ({entry['name']})" if entry["name"] else "") + f": {entry['probability']:.3f}"
                for entry in top
            )
            lines.append(f"| {name} | {shown} |")
    if metrics.get("compiled_with", {}).get("length_bucketing"):
        lines += ["", "Text batches were padded to the smallest of a few lengths that fits them (length bucketing)."]
    lines += ["", "![training curves](training_curves.png)", ""]
    export = metrics.get("export")
    lines += ["## Export", ""]
    if export:
        name = metrics["name"]
        check = (
            f"reloaded in a fresh process with plain TensorFlow: max |Δ| "
            f"{export['max_abs_difference']:.1e} on {export['verified_examples']} examples"
            if export.get("max_abs_difference") is not None
            else "not checked (no raw examples)"
        )
        lines += [
            f"`{export['path']}` ({check}). Serve it with",
            "",
            "```bash",
            f"docker run -p 8501:8501 --mount type=bind,source=$(realpath {export['path'].rsplit('/', 1)[0]}),"
            f"target=/models/{name} -e MODEL_NAME={name} -t tensorflow/serving",
            "```",
            "",
            f"or without a server: `tfxfer predict {export['path']} INPUT ...`.",
        ]
    else:
        lines.append("Not exported (`export: false`); run `tfxfer export` on this folder.")
    lines += [
        "",
        "## Files",
        "",
        "- `config.yaml`: every option of this run (`tfxfer train --config config.yaml` repeats it)",
        "- `metrics.json`: history, evaluation, export, timings",
        "- `data_report.txt`: kept and skipped examples",
        "- `checkpoints/best.keras`: the best epoch's model",
    ]
    if wise_ft:
        lines.append("- `checkpoints/wise_ft.keras`: the best epoch mixed by WiSE-FT, the model exported and evaluated")
    lines.append("")
    folder.write_text(folder.report.name, "\n".join(lines))
    return str(folder.report)


def _precision(metrics):
    """The dtype policy, and why it was chosen (runs before issue 26 recorded no reason)."""
    reason = metrics.get("dtype_policy_reason")
    return f"{metrics['dtype_policy']} ({reason})" if reason else metrics["dtype_policy"]
