"""`plot_training_curves`: loss and metrics per epoch, training beside validation."""

from tfxfer.reports.figure_files import save_figure_atomically


def plot_training_curves(history, path, title=None, phase_boundaries=()):
    """Writes a PNG with one panel per metric (loss, accuracy, ...).

    Args:
        history: a `keras.callbacks.History` or its `.history` dict.
        path: the PNG to write.
        title: the figure title.
        phase_boundaries: epochs after which a new training phase began
            (e.g. the head phase of `fine_tune`), drawn as dashed lines.

    Example:

    >>> plot_training_curves(model.fit(...), "runs/demo/training_curves.png")
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    logs = getattr(history, "history", history)
    # Evaluation has no penalty: these repeat val_loss or are zero.
    logs = {k: v for k, v in logs.items() if k not in ("val_regularization_loss", "val_task_loss")}
    names = [k for k in logs if not k.startswith("val_") and k != "learning_rate"]
    if not names:
        raise ValueError("The history holds no metrics to plot; did training run any epoch?")
    figure, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.4), squeeze=False)
    for axis, name in zip(axes[0], names):
        epochs = range(1, len(logs[name]) + 1)
        axis.plot(epochs, logs[name], marker="o", label="training")
        if f"val_{name}" in logs:
            axis.plot(range(1, len(logs[f"val_{name}"]) + 1), logs[f"val_{name}"], marker="o", label="validation")
        for boundary in phase_boundaries:
            axis.axvline(boundary + 0.5, color="gray", linestyle="--", linewidth=1)
        axis.set_title(name.replace("_", " "))
        axis.set_xlabel("epoch")
        axis.xaxis.get_major_locator().set_params(integer=True)
        axis.grid(alpha=0.3)
        axis.legend()
    if title:
        figure.suptitle(title)
    return save_figure_atomically(figure, path)
