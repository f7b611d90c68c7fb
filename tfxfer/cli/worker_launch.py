"""`tfxfer launch --workers N -- train ...`: a multi-worker job on this machine."""

import os
import pathlib
import shutil
import sys
import tempfile

from tfxfer.option_errors import OptionValueError

LAUNCHABLE = ("train", "demo")
SINGLE_MACHINE_STRATEGIES = ("default", "mirrored", "tpu")


def launch_workers(command, workers, log_dir=None):
    """Runs `tfxfer COMMAND...` as `workers` local workers; returns the job's exit code.

    Example:

    >>> launch_workers(["train", "--data", "photos/", "--backbone", "module/"], 2)
    0
    """
    command = list(command)
    if command[:1] == ["--"]:
        command = command[1:]
    _check(command, workers)
    from tfxfer.distribute.local_cluster import LocalCluster

    kept = log_dir is not None
    log_dir = pathlib.Path(log_dir) if kept else pathlib.Path(tempfile.mkdtemp(prefix="tfxfer-launch-"))
    cluster = LocalCluster([sys.executable, "-m", "tfxfer", *command], workers, log_dir=log_dir)
    print(
        f"tfxfer launch: {workers} workers of `tfxfer {' '.join(command)}`; worker 0 (the chief) "
        f"writes the results, the others log to {log_dir}/",
        file=sys.stderr,
        flush=True,
    )
    try:
        with cluster:
            code = cluster.wait()
    except KeyboardInterrupt:
        print("tfxfer launch: interrupted; stopped every worker.", file=sys.stderr)
        return 130
    if code != 0 and cluster.failed_worker is not None:
        failed = cluster.failed_worker
        tail = cluster.tail(failed) if failed else ""
        print(
            f"tfxfer launch: worker {failed} exited with code {code}; the other workers were stopped."
            + (f" Its last lines ({cluster.worker_log(failed)}):\n{tail}" if tail else ""),
            file=sys.stderr,
        )
    elif code == 0 and not kept:
        shutil.rmtree(log_dir, ignore_errors=True)
    return code


def _check(command, workers):
    if not isinstance(workers, int) or workers < 1:
        raise OptionValueError(f"{{workers}} must be 1 or more, got {workers!r}.", workers=("workers", "--workers"))
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
    for flag in ("--strategy",):
        if flag in command:
            index = command.index(flag)
            value = command[index + 1] if index + 1 < len(command) else None
            if value in SINGLE_MACHINE_STRATEGIES:
                raise ValueError(
                    f"--strategy {value} trains on one machine; under tfxfer launch use "
                    "--strategy multi_worker (or leave it at auto)."
                )
