"""What a search leaves behind: the trials as a table, JSON and a plot, and the best options as a config."""

import json

from tfxfer.tuning.search_space import described
from tfxfer.utils.atomic_files import write_text_atomically


def trial_rows(study):
    """One dict per trial: number, state, options, objective (validation accuracy), seconds."""
    rows = []
    for trial in study.get_trials(deepcopy=False):
        seconds = None
        if trial.datetime_start and trial.datetime_complete:
            seconds = round((trial.datetime_complete - trial.datetime_start).total_seconds(), 1)
        last = max(trial.intermediate_values) if trial.intermediate_values else None
        rows.append(
            {
                "number": trial.number,
                "state": trial.state.name.lower(),
                "options": dict(trial.params),
                "validation_accuracy": trial.value,
                "last_epoch_accuracy": None if last is None else trial.intermediate_values[last],
                "epochs": None if last is None else last + 1,
                "seconds": seconds,
            }
        )
    return rows


def write_tuning_report(folder, rows, best, facts, final=None):
    """`tuning.json`, `tuning_trials.png` and `tuning_report.md` in the study folder (each written atomically)."""
    write_text_atomically(
        folder / "tuning.json",
        json.dumps({"trials": rows, "best": best, "validation": facts, "final_run": final}, indent=2),
    )
    _plot(rows, best, folder / "tuning_trials.png")
    lines = [
        f"# Search: {len(rows)} trials",
        "",
        f"Objective: accuracy on a validation split of {facts['validation']} examples carved from the training "
        f"data ({facts['fraction']:.0%} of each class); the trials trained on the other {facts['train']}. "
        "Poor trials stopped early at epoch ends (pruned: below the median of earlier trials at that epoch).",
        "",
        "| trial | state | options | validation accuracy | epochs | seconds |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        value = "" if row["validation_accuracy"] is None else f"{row['validation_accuracy']:.4f}"
        if row["state"] == "pruned" and row["last_epoch_accuracy"] is not None:
            value = f"({row['last_epoch_accuracy']:.4f} when pruned)"
        options = described(row["options"]) if "recipe" in row["options"] else ""
        mark = " **best**" if best and row["number"] == best["number"] else ""
        lines.append(
            f"| {row['number']}{mark} | {row['state']} | {options} | {value} | {row['epochs'] or ''} | "
            f"{row['seconds'] or ''} |"
        )
    lines += ["", "![trials](tuning_trials.png)", ""]
    if best:
        lines += [
            f"Best: trial {best['number']}, validation accuracy {best['validation_accuracy']:.4f}: "
            f"{described(best['options'])}. Its options, on the whole training data: `best_config.yaml` "
            "(`tfxfer train --config best_config.yaml`).",
            "",
        ]
    if final:
        lines += [
            f"Trained on the whole training data: run {final['run_folder']}, accuracy "
            f"{final['accuracy']:.4f} on {final['split']}"
            + (f"; exported to {final['export']}." if final.get("export") else "."),
            "",
        ]
    write_text_atomically(folder / "tuning_report.md", "\n".join(lines))


def _plot(rows, best, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    from tfxfer.reports.figure_files import save_figure_atomically

    figure, axes = plt.subplots(figsize=(7, 4))
    complete = [(row["number"], row["validation_accuracy"]) for row in rows if row["state"] == "complete"]
    pruned = [(row["number"], row["last_epoch_accuracy"]) for row in rows if row["state"] == "pruned"]
    pruned = [(number, value) for number, value in pruned if value is not None]
    if complete:
        axes.scatter(*zip(*complete), color="tab:blue", label="complete", zorder=3)
        best_so_far, so_far = [], -1.0
        for number, value in sorted(complete):
            so_far = max(so_far, value)
            best_so_far.append((number, so_far))
        axes.step(*zip(*best_so_far), where="post", color="tab:orange", label="best so far")
        if best:
            axes.scatter(
                [best["number"]], [best["validation_accuracy"]], marker="*", s=220, color="tab:red", label="best",
                zorder=4,
            )  # fmt: skip
    if pruned:
        axes.scatter(*zip(*pruned), color="tab:gray", marker="x", label="pruned (last epoch)", zorder=3)
    failed = [row["number"] for row in rows if row["state"] == "fail"]
    if failed:
        for number in failed:
            axes.axvline(number, color="tab:red", alpha=0.2)
        axes.plot([], [], color="tab:red", alpha=0.4, label="failed or cut off")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("trial")
    axes.set_ylabel("validation accuracy (carved split)")
    axes.set_title("tfxfer tune: the objective per trial")
    axes.grid(alpha=0.3)
    if complete or pruned:
        axes.legend(loc="lower right")
    save_figure_atomically(figure, path)
    plt.close(figure)
