"""`classification_metrics`: accuracy and per-class precision, recall, F1."""

import numpy as np

from tfxfer.reports.confusion_matrix import confusion_matrix


def classification_metrics(labels, predictions, class_names):
    """Metrics from true and predicted class ids, as a JSON-ready dict.

    Example:

    >>> classification_metrics([0, 1, 1], [0, 0, 1], ["ants", "bees"])["accuracy"]
    0.6666666666666666
    """
    matrix = confusion_matrix(labels, predictions, len(class_names))
    total = int(matrix.sum())
    if total == 0:
        raise ValueError("No examples to compute metrics on: the evaluation data is empty.")
    per_class = {}
    for index, name in enumerate(class_names):
        true_positive = int(matrix[index, index])
        predicted, actual = int(matrix[:, index].sum()), int(matrix[index].sum())
        precision = true_positive / predicted if predicted else 0.0
        recall = true_positive / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[str(name)] = {
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "support": actual,
        }
    return {
        "accuracy": float(np.trace(matrix)) / total,
        "macro_f1": float(np.mean([m["f1"] for m in per_class.values()])),
        "examples": total,
        "per_class": per_class,
        "confusion_matrix": matrix.tolist(),
    }
