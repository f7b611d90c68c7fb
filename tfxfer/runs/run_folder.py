"""`RunFolder`: where one training run keeps its config, metrics, plots and checkpoint."""

import datetime
import json
import pathlib

from tfxfer.utils.atomic_files import write_text_atomically


class RunFolder:
    """The files of one run, under `runs/<name>-<YYYYmmdd-HHMMSS>/`.

    Example:

    >>> folder = RunFolder.create("runs", "hymenoptera")
    >>> folder.best_checkpoint
    PosixPath('runs/hymenoptera-20261122-101500/checkpoints/best.keras')
    """

    def __init__(self, path):
        self.path = pathlib.Path(path)

    @classmethod
    def create(cls, runs_dir, name):
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        path = pathlib.Path(runs_dir) / f"{name}-{stamp}"
        suffix = 1
        while path.exists():  # two runs started in the same second
            suffix += 1
            path = pathlib.Path(runs_dir) / f"{name}-{stamp}-{suffix}"
        (path / "checkpoints").mkdir(parents=True)
        return cls(path)

    config_file = property(lambda self: self.path / "config.yaml")
    metrics_file = property(lambda self: self.path / "metrics.json")
    training_curves = property(lambda self: self.path / "training_curves.png")
    confusion_matrix = property(lambda self: self.path / "confusion_matrix.png")
    best_checkpoint = property(lambda self: self.path / "checkpoints" / "best.keras")
    report = property(lambda self: self.path / "report.md")

    def write_config(self, values):
        import yaml

        write_text_atomically(self.config_file, yaml.safe_dump(values, sort_keys=False))

    def read_config(self):
        from tfxfer.runs.train_config import load_config

        return load_config(self.config_file)

    def write_metrics(self, metrics):
        write_text_atomically(self.metrics_file, json.dumps(metrics, indent=2))

    def read_metrics(self):
        if not self.metrics_file.exists():
            raise FileNotFoundError(
                f"The run {self.path} did not finish (it has no metrics.json): it was "
                "interrupted or failed. Train again, or use its checkpoint "
                f"{self.best_checkpoint} directly."
            )
        return json.loads(self.metrics_file.read_text())

    def check_finished_checkpoint(self):
        """Raises a clear error when the run has no best checkpoint to use."""
        if not self.best_checkpoint.exists():
            raise FileNotFoundError(
                f"The run {self.path} has no checkpoints/best.keras: it stopped before "
                "finishing an epoch. Train again."
            )

    def write_text(self, name, text):
        write_text_atomically(self.path / name, text)
