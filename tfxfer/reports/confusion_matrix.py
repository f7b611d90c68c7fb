"""`confusion_matrix` and its plot."""

import textwrap

import numpy as np

from tfxfer.reports.figure_files import drawable_labels, save_figure_atomically


def confusion_matrix(labels, predictions, num_classes):
    """Counts: row = true class, column = predicted class.

    Example:

    >>> confusion_matrix([0, 1, 1], [0, 0, 1], 2)
    array([[1, 0],
           [1, 1]])
    """
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    predictions = np.asarray(predictions, dtype=np.int64).reshape(-1)
    if labels.shape != predictions.shape:
        raise ValueError(f"{labels.size} labels but {predictions.size} predictions.")
    for name, values in (("label", labels), ("prediction", predictions)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(f"A {name} is outside 0..{num_classes - 1}: got {values.min()}..{values.max()}.")
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


def plot_confusion_matrix(matrix, class_names, path, title="Confusion matrix"):
    """Writes the matrix as a PNG heat map with counts and row-normalised colour.

    Example:

    >>> plot_confusion_matrix(matrix, ["ants", "bees"], "runs/demo/confusion_matrix.png")
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.asarray(matrix)
    size = len(class_names)
    rows = matrix.sum(axis=1, keepdims=True)
    normalised = np.divide(matrix, rows, out=np.zeros(matrix.shape, dtype=float), where=rows > 0)
    side = max(3.5, 0.6 * size + 2)
    figure, axis = plt.subplots(figsize=(side + 1, side))
    image = axis.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(image, ax=axis, fraction=0.046, label="fraction of the true class")
    labels, note = drawable_labels(class_names)
    axis.set_xticks(range(size), labels=labels, rotation=45, ha="right")
    axis.set_yticks(range(size), labels=labels)
    axis.set_xlabel("predicted" + (f"\n\n{textwrap.fill(note, 70)}" if note else ""))
    axis.set_ylabel("true")
    for row in range(size):
        for column in range(size):
            axis.text(
                column,
                row,
                str(matrix[row, column]),
                ha="center",
                va="center",
                color="white" if normalised[row, column] > 0.5 else "black",
            )
    axis.set_title(title)
    return save_figure_atomically(figure, path)
