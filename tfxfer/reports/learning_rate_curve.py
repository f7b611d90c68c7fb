"""`plot_learning_rate_curve`: the learning-rate finder's loss against the rate."""

from tfxfer.reports.figure_files import save_figure_atomically


def plot_learning_rate_curve(curve, path, title=None):
    """Writes a PNG of the loss (raw and smoothed) along the rates, the suggestion marked.

    Args:
        curve: a `tfxfer.recipes.LearningRateCurve` (or its `as_dict()`).
        path: the PNG to write (atomically: a reader never sees half a file).
        title: the figure title.

    Example:

    >>> plot_learning_rate_curve(model.lr_find(train_ds), "lr_find.png")
    'lr_find.png'
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = curve if isinstance(curve, dict) else curve.as_dict()
    figure, axis = plt.subplots(figsize=(6, 4))
    axis.plot(values["learning_rates"], values["losses"], alpha=0.35, label="loss per step")
    axis.plot(values["learning_rates"], values["smoothed_losses"], label="smoothed")
    axis.axvline(values["suggestion"], color="red", linestyle="--", label=f"suggestion {values['suggestion']:.2g}")
    axis.set_xscale("log")
    axis.set_xlabel("learning rate")
    axis.set_ylabel("training loss")
    axis.grid(alpha=0.3)
    axis.legend()
    axis.set_title(title or "learning-rate finder")
    return save_figure_atomically(figure, path)
