"""`worker_role`: which worker of a multi-worker job this process is, from `TF_CONFIG`."""

import dataclasses
import json
import os


@dataclasses.dataclass(frozen=True)
class WorkerRole:
    """This process's place in the cluster `TF_CONFIG` describes.

    Attributes:
        task_type: `"chief"` or `"worker"`.
        index: the task's index within its type.
        workers: how many processes train (chief and workers).
        is_chief: whether this process writes the run's results: the
            `"chief"` task, or worker 0 when the cluster has no chief.
    """

    task_type: str
    index: int
    workers: int
    is_chief: bool

    def describe(self):
        return f"{self.task_type} {self.index} of {self.workers} workers"


def worker_role(tf_config=None):
    """Reads `TF_CONFIG` (or the JSON text given); a single process is the chief of one.

    Example:

    >>> config = '{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}'
    >>> worker_role(config)
    WorkerRole(task_type='worker', index=1, workers=2, is_chief=False)
    """
    text = os.environ.get("TF_CONFIG", "") if tf_config is None else tf_config
    if not text.strip():
        return WorkerRole("chief", 0, 1, True)
    try:
        config = json.loads(text)
        cluster = config.get("cluster", {})
        task = config.get("task", {})
        task_type, index = task.get("type", "worker"), int(task.get("index", 0))
        workers = len(cluster.get("chief", [])) + len(cluster.get("worker", []))
    except (json.JSONDecodeError, AttributeError, TypeError, ValueError) as error:
        raise ValueError(f"TF_CONFIG is not a valid cluster description ({error}); fix or unset it.") from None
    is_chief = task_type == "chief" or (task_type == "worker" and index == 0 and not cluster.get("chief"))
    return WorkerRole(task_type, index, max(workers, 1), is_chief)
