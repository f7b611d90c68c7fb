"""A run folder's status: `running`, `interrupted`, `failed` or `completed`, kept in `status.json`.

The file is written atomically at every change. A run killed with
`kill -9` cannot write `interrupted`; its status still says `running`, with
a process that is gone, and `read_status` reports it as `interrupted`.
"""

import datetime
import json
import os
import socket

from tfxfer.utils.atomic_files import write_text_atomically
from tfxfer.utils.owner_lock import lock_is_free
from tfxfer.utils.process_liveness import process_is_alive

STATES = ("running", "interrupted", "failed", "completed")


def write_status(folder, state, error=None, **details):
    if state not in STATES:
        raise ValueError(f"state must be one of {STATES}, got {state!r}.")
    status = {
        "state": state,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "updated": datetime.datetime.now().isoformat(timespec="seconds"),
        **details,
    }
    if error is not None:
        status["error"] = error
    write_text_atomically(folder.status_file, json.dumps(status, indent=2))
    return status


def read_status(folder, check_liveness=True):
    """The run's status dict; a `running` status whose process is gone reads as `interrupted`.

    `check_liveness=False` reads the file alone, without briefly taking
    `run.lock` (which could make a process starting that instant find the
    run busy).

    Folders written before status files existed read as `completed` when they
    have `metrics.json`, else `interrupted`.
    """
    if not folder.status_file.exists():
        finished = folder.metrics_file.exists()
        return {"state": "completed" if finished else "interrupted", "note": "no status.json"}
    status = json.loads(folder.status_file.read_text())
    if check_liveness and status["state"] == "running" and not _still_running(folder, status):
        status = dict(status, state="interrupted", note=f"process {status['pid']} is gone; killed?")
    return status


def _still_running(folder, status):
    # A training process holds run.lock for as long as it lives (the kernel lets go when it dies).
    try:
        return not lock_is_free(folder.lock_file)
    except OSError:  # a read-only run folder: judge by the recorded process
        return status.get("host") != socket.gethostname() or process_is_alive(int(status["pid"]))


def describe_status(status):
    """One line: `interrupted (process 123 is gone (killed?)) after 2 of 4 epochs`."""
    text = status["state"]
    if status.get("note"):
        text += f" ({status['note']})"
    if status.get("epochs_completed") is not None and status.get("epochs_total"):
        text += f" after {status['epochs_completed']} of {status['epochs_total']} epochs"
    if status.get("error"):
        text += f": {status['error']}"
    return text
