"""Whole training runs: configuration, training, evaluation, export, report.

Names load on first use, so the CLI can read `TrainConfig`'s options for
`--help` without importing TensorFlow.
"""

import importlib

_PUBLIC_NAMES = {
    "TrainConfig": "tfxfer.runs.train_config",
    "load_config": "tfxfer.runs.config_files",
    "evaluate_run": "tfxfer.runs.run_evaluation",
    "train_run": "tfxfer.runs.training_run",
    "resume_run": "tfxfer.runs.training_run",
}

__all__ = sorted(_PUBLIC_NAMES)


def __getattr__(name):
    module_name = _PUBLIC_NAMES.get(name)
    if module_name is None:
        raise AttributeError(f"module 'tfxfer.runs' has no attribute '{name}'")
    return getattr(importlib.import_module(module_name), name)
