"""`plot_wise_ft_curve`: validation score against the WiSE-FT mix."""

from tfxfer.reports.figure_files import save_figure_atomically


def plot_wise_ft_curve(curve, path, title=None):
    """Writes a PNG of the validation metric at each mix, the chosen one marked.

    Args:
        curve: a `tfxfer.recipes.WiseFTCurve` (or its `as_dict()`).
        path: the PNG to write (atomically).
        title: the figure title.

    Example:

    >>> plot_wise_ft_curve(choose_wise_ft_mix(model, val_ds), "wise_ft.png")
    'wise_ft.png'
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = curve if isinstance(curve, dict) else curve.as_dict()
    figure, axis = plt.subplots(figsize=(6, 4))
    axis.plot(values["mixes"], values["scores"], marker="o")
    axis.axvline(values["best_mix"], color="red", linestyle="--", label=f"chosen mix {values['best_mix']:g}")
    axis.set_xlabel("mix (0: pretrained backbone, 1: fine-tuned)")
    axis.set_ylabel(f"validation {values['metric']}")
    axis.grid(alpha=0.3)
    axis.legend()
    axis.set_title(title or "WiSE-FT")
    return save_figure_atomically(figure, path)
