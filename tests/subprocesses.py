"""Real subprocesses for fault-injection tests: bounded in time, always reaped."""

import contextlib
import os
import signal
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def environment(kill_at=None, **extra):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO, **extra)
    env.pop("TFXFER_KILL_AT", None)
    if kill_at:
        env["TFXFER_KILL_AT"] = kill_at
    return env


def python_command(*arguments):
    return [sys.executable, *map(str, arguments)]


def tfxfer_command(*arguments):
    return [sys.executable, "-m", "tfxfer.cli.main", *map(str, arguments)]


def run(command, timeout=240, kill_at=None, cwd=None, **extra_env):
    """Runs `command` to the end (or to its SIGKILL); returns the CompletedProcess."""
    with started(command, kill_at=kill_at, cwd=cwd, **extra_env) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
            raise AssertionError(f"{command} ran past {timeout} s:\n{stderr[-3000:]}") from None
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


@contextlib.contextmanager
def started(command, kill_at=None, cwd=None, **extra_env):
    """A running process, killed and reaped when the block ends however it ends."""
    process = subprocess.Popen(
        command,
        env=environment(kill_at, **extra_env),
        cwd=cwd or REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        process.communicate()


def killed(result):
    return result.returncode == -signal.SIGKILL
