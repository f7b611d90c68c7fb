"""`RunFolder`: where one training run keeps its config, metrics, plots and checkpoint."""

import datetime
import json
import pathlib

from tfxfer.option_errors import OptionValueError
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
        path = new_stamped_folder(runs_dir, name)
        (path / "checkpoints").mkdir()
        return cls(path)

    @classmethod
    def create_at(cls, path):
        """A run folder at a fixed `path` (`TrainConfig.run_folder`), created if needed."""
        path = pathlib.Path(path)
        cls.check_can_create_at(path)
        (path / "checkpoints").mkdir(parents=True, exist_ok=True)
        return cls(path)

    @staticmethod
    def check_can_create_at(path):
        """Refuses a `run_folder` that is a file, or a folder holding something other than a run."""
        path = pathlib.Path(path)
        spelling = {"run_folder": ("run_folder", "--run-folder")}
        if path.exists() and not path.is_dir():
            raise OptionValueError(f"{{run_folder}} {path} is a file; give a folder (new or empty).", **spelling)
        # A start killed before config.yaml was written leaves an empty checkpoints/ and the lock.
        leftovers = [p for p in path.iterdir() if p.name not in ("checkpoints", "run.lock")] if path.exists() else []
        if leftovers and not (path / "config.yaml").exists():
            raise OptionValueError(
                f"{{run_folder}} {path} exists and is not a run folder (it has no config.yaml); "
                "give an empty or new folder.",
                **spelling,
            )

    config_file = property(lambda self: self.path / "config.yaml")
    metrics_file = property(lambda self: self.path / "metrics.json")
    training_curves = property(lambda self: self.path / "training_curves.png")
    confusion_matrix = property(lambda self: self.path / "confusion_matrix.png")
    best_checkpoint = property(lambda self: self.path / "checkpoints" / "best.keras")
    wise_ft_checkpoint = property(lambda self: self.path / "checkpoints" / "wise_ft.keras")
    report = property(lambda self: self.path / "report.md")
    status_file = property(lambda self: self.path / "status.json")
    backup_dir = property(lambda self: self.path / "backup")
    logs_dir = property(lambda self: self.path / "logs")
    lock_file = property(lambda self: self.path / "run.lock")
    data_file = property(lambda self: self.path / "data.json")
    precision_file = property(lambda self: self.path / "precision.json")

    @property
    def model_file(self):
        """The run's model: `checkpoints/wise_ft.keras` for a `--wise-ft` run, else `best.keras`.

        A WiSE-FT run mixes its best checkpoint with the pretrained backbone
        after training; export and evaluate use the mixed model.
        """
        if self.config_file.exists() and self.read_config().wise_ft is not None:
            return self.wise_ft_checkpoint
        return self.best_checkpoint

    def status(self, check_liveness=True):
        """`{"state": running|interrupted|failed|completed, ...}` (`tfxfer.runs.run_status`)."""
        from tfxfer.runs.run_status import read_status

        return read_status(self, check_liveness)

    def write_config(self, values):
        import yaml

        write_text_atomically(self.config_file, yaml.safe_dump(values, sort_keys=False))

    def read_config(self):
        from tfxfer.runs.config_files import load_config

        return load_config(self.config_file)

    def write_data_facts(self, facts):
        """What the run's data held when it started (`data.json`): a resume checks moved data against it."""
        write_text_atomically(self.data_file, json.dumps(facts, indent=2))

    def read_data_facts(self):
        """`data.json`'s facts, or None for a run started before tfxfer recorded them."""
        return json.loads(self.data_file.read_text()) if self.data_file.exists() else None

    def write_precision(self, choice):
        """The dtype policy the run started with, and why (`precision.json`): a resume keeps it."""
        write_text_atomically(self.precision_file, json.dumps({"policy": choice.policy, "reason": choice.reason}))

    def read_precision(self):
        """`precision.json` as a `PrecisionChoice`, or None for a run started before tfxfer recorded it."""
        from tfxfer.distribute.native_precision import PrecisionChoice

        if not self.precision_file.exists():
            return None
        recorded = json.loads(self.precision_file.read_text())
        return PrecisionChoice(recorded["policy"], recorded["reason"])

    def write_metrics(self, metrics):
        write_text_atomically(self.metrics_file, json.dumps(metrics, indent=2))

    def read_metrics(self):
        self.require_completed()
        return json.loads(self.metrics_file.read_text())

    def require_completed(self):
        """Raises a clear error, naming what to do, unless the run completed."""
        from tfxfer.runs.run_status import describe_status

        status = self.status()
        model_file = self.model_file
        if status["state"] == "completed" and model_file.exists():
            return
        if status["state"] == "completed":
            raise FileNotFoundError(f"The run {self.path} completed but its checkpoints/{model_file.name} is missing.")
        how = "Continue it with {resume}"
        if self.best_checkpoint.exists():
            how += f", or use its best checkpoint so far, {self.best_checkpoint}, explicitly"
        raise OptionValueError(
            f"The run {self.path} did not complete: {describe_status(status)}. {how}.",
            resume=(f"tfxfer.resume_run({str(self.path)!r})", f"tfxfer train --resume {self.path}"),
        )

    def write_text(self, name, text):
        write_text_atomically(self.path / name, text)


def new_stamped_folder(parent, name):
    """Creates and returns a new folder `parent/<name>-<YYYYmmdd-HHMMSS>` (`-2`, `-3`, ... when taken).

    Example:

    >>> new_stamped_folder("runs", "hymenoptera-lr-find")
    PosixPath('runs/hymenoptera-lr-find-20261122-101500')
    """
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    parent = pathlib.Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    suffix = 1
    while True:
        path = parent / (f"{name}-{stamp}" if suffix == 1 else f"{name}-{stamp}-{suffix}")
        try:
            path.mkdir()  # exclusive: two runs started in the same second get two folders
            return path
        except FileExistsError:
            suffix += 1
