"""Whole training runs: configuration, training, evaluation, export, report."""

from tfxfer.runs.train_config import TrainConfig, load_config
from tfxfer.runs.training_run import evaluate_run, train_run

__all__ = ["TrainConfig", "evaluate_run", "load_config", "train_run"]
