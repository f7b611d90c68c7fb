"""`tfxfer launch --workers N -- train ...`: a multi-worker job on this machine."""

import os
import pathlib
import shutil
import signal
import sys
import tempfile

from tfxfer.option_errors import OptionValueError

LAUNCHABLE = ("train", "demo")
MULTI_WORKER_STRATEGIES = ("auto", "multi_worker")
AGAIN = (
    "To continue, run the same command again: with --run-folder (or train --resume RUN_FOLDER) "
    "the job goes on from its last completed epoch."
)


def launch_workers(command, workers, log_dir=None):
    """Runs `tfxfer COMMAND...` as `workers` local workers; returns the job's exit code.

    Example:

    >>> launch_workers(["train", "--data", "photos/", "--backbone", "module/"], 2)
    0
    """
    command = list(command)
    if command[:1] == ["--"]:
        command = command[1:]
    _check(command, workers, log_dir)
    from tfxfer.distribute.local_cluster import LocalCluster

    kept = log_dir is not None
    log_dir = pathlib.Path(log_dir) if kept else pathlib.Path(tempfile.mkdtemp(prefix="tfxfer-launch-"))
    cluster = LocalCluster([sys.executable, "-m", "tfxfer", *command], workers, log_dir=log_dir)
    print(
        f"tfxfer launch: {workers} worker{'s' if workers != 1 else ''} of `tfxfer {' '.join(command)}`; "
        f"worker 0 (the chief) writes the results, the others log to {log_dir}/",
        file=sys.stderr,
        flush=True,
    )
    try:
        with cluster:
            code = cluster.wait()
    except KeyboardInterrupt:
        print(f"tfxfer launch: interrupted; every worker was stopped. {AGAIN}", file=sys.stderr)
        return 130
    if code != 0 and cluster.failed_worker is not None:
        failed = cluster.failed_worker
        how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
        tail = cluster.tail(failed) if failed else ""
        print(
            f"tfxfer launch: worker {failed} {how}; the other workers were stopped. {AGAIN}"
            + (f"\nWorker {failed}'s last lines ({cluster.worker_log(failed)}):\n{tail}" if tail else ""),
            file=sys.stderr,
        )
        return 128 - code if code < 0 else code  # the shell's convention: 137 for SIGKILL
    if code == 0 and not kept:
        shutil.rmtree(log_dir, ignore_errors=True)
    return code


def _check(command, workers, log_dir):
    if not isinstance(workers, int) or workers < 1:
        raise OptionValueError(f"{{workers}} must be 1 or more, got {workers!r}.", workers=("workers", "--workers"))
    if log_dir is not None and pathlib.Path(log_dir).exists() and not pathlib.Path(log_dir).is_dir():
        raise ValueError(f"--log-dir {log_dir} is a file; give a folder.")
    if not command:
        raise ValueError(
            "Give the command every worker runs after --, e.g. "
            "tfxfer launch --workers 2 -- train --data photos/ --backbone MODULE"
        )
    if command[0] not in LAUNCHABLE:
        raise ValueError(f"tfxfer launch runs {' or '.join(LAUNCHABLE)} on several workers, not {command[0]!r}.")
    if os.environ.get("TF_CONFIG", "").strip():
        raise ValueError(
            "TF_CONFIG is already set: this machine is part of a cluster. Run `tfxfer "
            f"{command[0]} ...` directly on every machine instead of tfxfer launch."
        )
    for index, word in enumerate(command):
        value = None
        if word == "--strategy":
            value = command[index + 1] if index + 1 < len(command) else None
        elif word.startswith("--strategy="):
            value = word.partition("=")[2]
        if value is not None and value not in MULTI_WORKER_STRATEGIES:
            raise ValueError(
                f"--strategy {value} trains on one machine; under tfxfer launch use "
                "--strategy multi_worker (or leave it at auto)."
            )
