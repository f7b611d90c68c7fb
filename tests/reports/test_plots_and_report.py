import matplotlib.image
import pytest

from tfxfer.reports import plot_confusion_matrix, plot_training_curves, write_run_report
from tfxfer.runs.run_folder import RunFolder

PNG = b"\x89PNG\r\n\x1a\n"


def test_training_curves_have_a_panel_per_metric(tmp_path):
    history = {
        "loss": [0.9, 0.5, 0.3],
        "accuracy": [0.5, 0.7, 0.9],
        "val_loss": [0.8, 0.6, 0.5],
        "val_accuracy": [0.6, 0.7, 0.8],
        "val_regularization_loss": [0, 0, 0],
    }
    path = plot_training_curves(history, tmp_path / "curves.png", title="t", phase_boundaries=[1])
    image = matplotlib.image.imread(path)
    height, width = image.shape[:2]
    assert width > 1.8 * height  # two panels side by side
    with pytest.raises(ValueError, match="holds no metrics"):
        plot_training_curves({}, tmp_path / "empty.png")


def test_confusion_matrix_plot(tmp_path):
    path = plot_confusion_matrix([[3, 1], [0, 4]], ["ants", "bees"], tmp_path / "cm.png")
    assert open(path, "rb").read(8) == PNG


def test_run_report_ties_the_files_together(tmp_path):
    folder = RunFolder.create(tmp_path, "demo")
    config = {"recipe": "two_phase", "backbone": "hub/m", "regularizer": "l2_sp", "alpha": 0.01, "beta": 0.01}
    metrics = {
        "name": "demo",
        "strategy": "default (1 replica)",
        "dtype_policy": "float32",
        "seconds": 12.0,
        "data": {"source": "images", "train_examples": 10, "validation_examples": 4, "class_names": ["a", "b"]},
        "evaluation": {
            "split": "validation",
            "accuracy": 0.75,
            "macro_f1": 0.73,
            "loss": 0.5,
            "examples": 4,
            "per_class": {
                "a": {"precision": 1.0, "recall": 0.5, "f1": 0.667, "support": 2},
                "b": {"precision": 0.667, "recall": 1.0, "f1": 0.8, "support": 2},
            },
        },
        "history": {"loss": [0.7, 0.5], "val_accuracy": [0.5, 0.75], "val_task_loss": [0.6, 0.5]},
        "phase_boundaries": [1],
        "best_epoch": 2,
        "export": {"path": "saved_models/demo/1", "max_abs_difference": 0.0, "verified_examples": 4},
    }
    text = open(write_run_report(folder, config, metrics)).read()
    assert "**0.750**" in text and "from the best epoch (2)" in text
    assert "| a | 1.000 | 0.500 | 0.667 | 2 |" in text
    assert "| 1 (head only) | 0.7000 | 0.5000 |" in text and "val task loss" not in text
    assert "MODEL_NAME=demo" in text and "tfxfer predict saved_models/demo/1" in text
