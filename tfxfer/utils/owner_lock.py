"""`OwnerLock`: a lock file created exclusively, naming the process that holds it.

A lock whose process is gone (killed, machine rebooted) is taken over, so a
`kill -9` never leaves a folder locked for ever. Locks held by a process
on another machine are respected, as its liveness cannot be checked.

Example:

>>> lock = OwnerLock("runs/ants-20261124-101500/run.lock")
>>> lock.acquire()
True
>>> lock.release()
"""

import contextlib
import json
import os
import pathlib
import socket
import time
import uuid

from tfxfer.utils.process_liveness import process_is_alive

# A lock file created but never written (its owner died in between) is stale after this long.
_UNWRITTEN_GRACE_SECONDS = 60


class OwnerLock:
    def __init__(self, path):
        self.path = pathlib.Path(path)
        self.token = uuid.uuid4().hex[:12]
        self.held = False

    def acquire(self):
        """Takes the lock; False when a live process holds it."""
        for _ in range(3):
            try:
                descriptor = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if self.owner_alive():
                    return False
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()  # left by a dead process
                continue
            with os.fdopen(descriptor, "w") as file:
                json.dump({"host": socket.gethostname(), "pid": os.getpid(), "token": self.token}, file)
            self.held = True
            return True
        return False

    def release(self):
        if self.held:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            self.held = False

    def owner(self):
        """`{"host", "pid", "token"}` of the holder, or None when there is no lock."""
        return read_owner(self.path)

    def owner_alive(self):
        owner = self.owner()
        return owner is not None and owner_alive(owner)

    def describe_owner(self):
        owner = self.owner() or {}
        return f"pid {owner.get('pid', '?')} on {owner.get('host', '?')}"


def read_owner(path):
    path = pathlib.Path(path)
    try:
        owner = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        # Created but not yet written: its owner is writing it now, unless that was long ago.
        try:
            age = time.time() - path.stat().st_mtime
        except FileNotFoundError:
            return None
        if age > _UNWRITTEN_GRACE_SECONDS:
            return None
        return {"host": socket.gethostname(), "pid": os.getpid(), "token": ""}
    return owner if isinstance(owner, dict) and "pid" in owner else None


def owner_alive(owner):
    if owner.get("host") != socket.gethostname():
        return True
    return process_is_alive(int(owner["pid"]))
