"""Whole training runs: configuration, training, evaluation, export, report."""

from tfxfer.runs.train_config import TrainConfig, load_config
from tfxfer.runs.run_evaluation import evaluate_run
from tfxfer.runs.training_run import train_run

__all__ = ["TrainConfig", "evaluate_run", "load_config", "train_run"]
