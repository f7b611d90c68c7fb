"""Plots and reports people can look at: curves, confusion matrices, run reports."""

from tfxfer.reports.classification_metrics import classification_metrics
from tfxfer.reports.confusion_matrix import confusion_matrix, plot_confusion_matrix
from tfxfer.reports.learning_rate_curve import plot_learning_rate_curve
from tfxfer.reports.run_report import write_run_report
from tfxfer.reports.training_curves import plot_training_curves
from tfxfer.reports.wise_ft_curve import plot_wise_ft_curve

__all__ = [
    "classification_metrics",
    "confusion_matrix",
    "plot_confusion_matrix",
    "plot_learning_rate_curve",
    "plot_training_curves",
    "plot_wise_ft_curve",
    "write_run_report",
]
