"""Writing files that other commands read: temporary name, fsync, rename."""

import os
import pathlib
import uuid


def write_text_atomically(path, text):
    """Writes `text` to `path` so a reader sees the old file or the new one, never half.

    Example:

    >>> write_text_atomically("runs/example/metrics.json", "{}")
    """
    path = pathlib.Path(path)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        with open(temporary, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


def remove_dead_temporaries(folder, prefix):
    """Deletes `<prefix><pid>-*` files in `folder` whose writing process is gone.

    Returns the names removed.
    """
    from tfxfer.utils.process_liveness import process_is_alive

    removed = []
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        return removed
    for path in folder.glob(f"{prefix}*"):
        pid = path.name[len(prefix) :].split("-", 1)[0]
        if pid.isdigit() and not process_is_alive(int(pid)):
            path.unlink(missing_ok=True)
            removed.append(path.name)
    return removed
