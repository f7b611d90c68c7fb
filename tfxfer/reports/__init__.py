"""Plots and reports people can look at: curves, confusion matrices, run reports."""

from tfxfer.reports.classification_metrics import classification_metrics
from tfxfer.reports.confusion_matrix import confusion_matrix, plot_confusion_matrix
from tfxfer.reports.run_report import write_run_report
from tfxfer.reports.training_curves import plot_training_curves

__all__ = [
    "classification_metrics",
    "confusion_matrix",
    "plot_confusion_matrix",
    "plot_training_curves",
    "write_run_report",
]
