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
