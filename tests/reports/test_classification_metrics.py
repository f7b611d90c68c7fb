import numpy as np
import pytest

from tfxfer.reports import classification_metrics, confusion_matrix


def test_confusion_matrix_counts_true_rows_and_predicted_columns():
    matrix = confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 2, 0], 3)
    np.testing.assert_array_equal(matrix, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])


def test_confusion_matrix_rejects_out_of_range_and_mismatched_inputs():
    with pytest.raises(ValueError, match="A label is outside 0..1: got 0..2"):
        confusion_matrix([0, 2], [0, 1], 2)
    with pytest.raises(ValueError, match="3 labels but 2 predictions"):
        confusion_matrix([0, 1, 1], [0, 1], 2)


def test_per_class_precision_recall_f1():
    metrics = classification_metrics([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 2, 0], ["a", "b", "c"])
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    a, b, c = (metrics["per_class"][name] for name in "abc")
    assert (a["precision"], a["recall"], a["support"]) == (0.5, 0.5, 2)
    assert (b["precision"], b["recall"]) == (0.5, 1.0)
    assert c["precision"] == 1.0 and c["recall"] == pytest.approx(2 / 3)
    assert c["f1"] == pytest.approx(0.8)
    assert metrics["macro_f1"] == pytest.approx(np.mean([0.5, 2 / 3, 0.8]))


def test_a_class_never_predicted_scores_zero_not_nan():
    metrics = classification_metrics([0, 1], [0, 0], ["a", "b"])
    assert metrics["per_class"]["b"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}


def test_empty_evaluation_is_an_error():
    with pytest.raises(ValueError, match="evaluation data is empty"):
        classification_metrics([], [], ["a", "b"])
