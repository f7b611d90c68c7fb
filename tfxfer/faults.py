"""Named points where fault-injection tests kill the process, as `kill -9` would.

`TFXFER_KILL_AT=<point>` (or `<point>@<n>` for its n-th time) makes the
process SIGKILL itself when it reaches that point: no `finally`, no
`atexit`, exactly what a preempted machine does. Unset (always, outside
tests), a point costs one dictionary lookup.

`TFXFER_PAUSE_AT=<point>` instead sleeps there for a minute, so a test can
send a signal (SIGTERM, Ctrl-C) at a known moment.

In a multi-worker job every worker gets the same environment;
`TFXFER_FAULT_WORKER=<index>` limits the fault to the worker whose
`TF_CONFIG` task has that index.

Points: `export:before-placing`, `export:old-version-aside`, `checkpoint:before-rename`,
`backup:before-rename`, `checkpoint:wise-ft-before-rename`, `train:batch-end`, `train:epoch-end`, `run:before-evaluation`.

Example:

>>> fault_point("export:before-placing")  # nothing happens unless TFXFER_KILL_AT names it
"""

import os
import signal
import time

_SEEN = {}


def armed():
    """Whether a fault is asked for (callers skip per-batch hooks otherwise)."""
    return bool(os.environ.get("TFXFER_KILL_AT") or os.environ.get("TFXFER_PAUSE_AT"))


def fault_point(name):
    if "TFXFER_FAULT_WORKER" in os.environ and not _this_worker(os.environ["TFXFER_FAULT_WORKER"]):
        return
    if os.environ.get("TFXFER_PAUSE_AT") == name:
        time.sleep(60)
    wanted = os.environ.get("TFXFER_KILL_AT")
    if not wanted:
        return
    point, _, count = wanted.partition("@")
    if point != name:
        return
    _SEEN[name] = _SEEN.get(name, 0) + 1
    if _SEEN[name] >= int(count or 1):
        os.kill(os.getpid(), signal.SIGKILL)


def _this_worker(index):
    from tfxfer.distribute.worker_role import worker_role

    return worker_role().index == int(index)
