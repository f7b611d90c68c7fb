"""Saving report figures: written atomically, so a reader never sees half a PNG."""

from tfxfer.utils.atomic_files import replaced_atomically


def save_figure_atomically(figure, path):
    """Lays out `figure`, writes it to `path` as a PNG (temporary name, then rename) and closes it.

    Example:

    >>> figure, axis = plt.subplots()
    >>> save_figure_atomically(figure, "curve.png")
    'curve.png'
    """
    import matplotlib.pyplot as plt

    figure.tight_layout()
    with replaced_atomically(path) as temporary:
        figure.savefig(temporary, dpi=110, format="png")
    plt.close(figure)
    return str(path)
