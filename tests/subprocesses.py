"""Real subprocesses for fault-injection tests: bounded in time, always reaped."""

import contextlib
import io
import os
import signal
import subprocess
import sys
import warnings

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


def run_in_process(*arguments):
    """`tfxfer ARGUMENTS` run by `tfxfer.cli.main.main` in this process, without a new process's start-up.

    For commands whose process is not the point (refusals, a resume after a
    kill): returns a CompletedProcess of the exit code and what it printed.
    The real entry point's own behaviour (native log lines, signals, exit by
    SIGKILL) needs `run(tfxfer_command(...))`.
    """
    from tfxfer.cli.main import main

    stdout, stderr = io.StringIO(), io.StringIO()
    handler, show = signal.getsignal(signal.SIGTERM), warnings.showwarning
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                code = main([str(argument) for argument in arguments])
            except SystemExit as exit:  # argparse's own refusals
                code = exit.code if isinstance(exit.code, int) else int(exit.code is not None)
    finally:  # main() sets these for a process of its own
        signal.signal(signal.SIGTERM, handler)
        warnings.showwarning = show
    return subprocess.CompletedProcess(["tfxfer", *map(str, arguments)], code, stdout.getvalue(), stderr.getvalue())


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


def script_report(script, *arguments, timeout=300):
    """Runs a test's helper script (`python SCRIPT ARGUMENTS`, from the repository root) that prints a JSON
    report as its last line; returns the report, or fails the test with the script's stderr."""
    result = subprocess.run(
        [sys.executable, str(script), *map(str, arguments)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    import json

    return json.loads(result.stdout.strip().splitlines()[-1])
