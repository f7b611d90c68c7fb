"""Writing files that other commands read: temporary name, fsync, rename.

A temporary file is named `.tmp-<pid>-<token>-<final name>` beside its
final path: it keeps the final name's suffix (Keras checks `.keras` and
`.weights.h5`), and the pid lets `remove_dead_temporaries` clean up after a
killed writer.
"""

import contextlib
import os
import pathlib
import uuid

from tfxfer.faults import fault_point

TEMPORARY_PREFIX = ".tmp-"


@contextlib.contextmanager
def replaced_atomically(path, fault_name=None):
    """Yields a temporary path to write; when the block succeeds it is synced and renamed to `path`.

    A reader of `path` sees the old file or the new one, never half of one,
    whenever the writer is killed. On an error the temporary file is removed
    and `path` is left as it was.

    Example:

    >>> with replaced_atomically("runs/example/best.keras") as temporary:
    ...     model.save(temporary)
    """
    path = pathlib.Path(path)
    temporary = path.with_name(f"{TEMPORARY_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}-{path.name}")
    try:
        yield temporary
        with open(temporary, "rb") as file:
            os.fsync(file.fileno())
        if fault_name:
            fault_point(fault_name)
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


def write_text_atomically(path, text):
    """Writes `text` to `path` so a reader sees the old file or the new one, never half.

    Example:

    >>> write_text_atomically("runs/example/metrics.json", "{}")
    """
    with replaced_atomically(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def remove_dead_temporaries(folder):
    """Deletes the temporary files in `folder` whose writing process is gone.

    Returns the names removed.
    """
    from tfxfer.utils.process_liveness import process_is_alive

    removed = []
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        return removed
    for path in folder.glob(f"{TEMPORARY_PREFIX}*"):
        pid = path.name[len(TEMPORARY_PREFIX) :].split("-", 1)[0]
        if path.is_file() and pid.isdigit() and not process_is_alive(int(pid)):
            path.unlink(missing_ok=True)
            removed.append(path.name)
    return removed
