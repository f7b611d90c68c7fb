"""`LocalCluster`: N worker processes on this machine, wired together by `TF_CONFIG`.

What a cluster manager (Kubernetes, Vertex AI, a Slurm script) does for a
multi-worker job, done locally: every worker runs the same command, with a
`TF_CONFIG` naming all workers on free loopback ports and its own index.
Worker 0 is the chief; its output is the job's output, the others' goes to
`worker-<i>.log`. When one worker fails, the others are stopped (they would
otherwise wait on their collectives until they time out) and the failure's
exit code is the job's.
"""

import contextlib
import json
import os
import pathlib
import signal
import socket
import subprocess
import time

STOP_GRACE_SECONDS = 10


def free_ports(count):
    """`count` distinct loopback ports that were free a moment ago."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def worker_tf_config(ports, index):
    """The `TF_CONFIG` of worker `index` in a cluster of loopback `ports`.

    Example:

    >>> json.loads(worker_tf_config([2222, 2223], 1))["task"]
    {'type': 'worker', 'index': 1}
    """
    return json.dumps(
        {
            "cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]},
            "task": {"type": "worker", "index": index},
        }
    )


class LocalCluster:
    """Runs `command` as `workers` processes of one multi-worker job.

    Args:
        command: the argument list every worker runs.
        workers: how many workers (at least 1).
        log_dir: where the non-chief workers' output goes.
        env: the environment (default: this process's); `TF_CONFIG` is set
            per worker.
        cwd: the workers' working directory.
        chief_output: a file path for the chief's output, or None to let
            it write to this process's stdout and stderr.

    Example:

    >>> with LocalCluster(["tfxfer", "train", "--data", "photos/"], 2, log_dir="logs") as job:
    ...     exit_code = job.wait()
    """

    def __init__(self, command, workers, *, log_dir, env=None, cwd=None, chief_output=None):
        if not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be a positive integer, got {workers!r}.")
        self.command = list(command)
        self.workers = workers
        self.log_dir = pathlib.Path(log_dir)
        self.env = dict(os.environ if env is None else env)
        self.cwd = cwd
        self.chief_output = chief_output
        self.ports = []
        self.processes = []
        self.failed_worker = None
        self._files = []

    def worker_log(self, index):
        """The file holding worker `index`'s output (None for the chief writing to this terminal)."""
        if index == 0 and self.chief_output is None:
            return None
        return pathlib.Path(self.chief_output) if index == 0 else self.log_dir / f"worker-{index}.log"

    def start(self):
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.ports = free_ports(self.workers)
        for index in range(self.workers):
            env = dict(self.env, TF_CONFIG=worker_tf_config(self.ports, index))
            log = self.worker_log(index)
            output = None
            if log is not None:
                output = open(log, "w")  # noqa: SIM115 - closed in stop()
                self._files.append(output)
            self.processes.append(
                subprocess.Popen(
                    self.command,
                    env=env,
                    cwd=self.cwd,
                    stdout=output,
                    stderr=subprocess.STDOUT if output else None,
                    start_new_session=True,  # stop() signals each worker's whole process group
                )
            )
        return self

    def wait(self, timeout=None):
        """Waits for every worker; returns the job's exit code.

        0 when all workers exit 0. When one fails, the others are stopped
        and its exit code is returned (`failed_worker` says which);
        `timeout` seconds without an end stops all and returns 124.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            codes = [process.poll() for process in self.processes]
            for index, code in enumerate(codes):
                if code not in (None, 0):
                    self.failed_worker = index
                    self.stop()
                    return code
            if all(code == 0 for code in codes):
                return 0
            if deadline is not None and time.monotonic() > deadline:
                self.stop()
                return 124
            time.sleep(0.2)

    def stop(self):
        """SIGTERM to every running worker, SIGKILL after a grace period; reaps them all."""
        running = [process for process in self.processes if process.poll() is None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for process in running:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        for file in self._files:
            file.close()
        self._files = []

    def tail(self, index, lines=20):
        """The last `lines` lines of worker `index`'s log."""
        log = self.worker_log(index)
        if log is None or not log.exists():
            return ""
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()
