"""`OwnerLock`: an exclusive lock on a file, released by the kernel when its process dies.

The lock is an `flock` on `path`, so a process killed with `kill -9` never
leaves it held, and there is no "stale lock" to detect or steal: taking a
lock that a dead process held is the same atomic kernel operation as taking
a free one. The file also names its holder (host, pid, token) for messages.
It is deleted on release; a racer that opened the deleted file notices (its
inode is no longer the path's) and tries again.

Example:

>>> lock = OwnerLock("/tmp/example.lock")
>>> lock.acquire()
True
>>> OwnerLock("/tmp/example.lock").acquire()  # held: another taker is refused
False
>>> lock.release()
"""

import contextlib
import fcntl
import json
import os
import pathlib
import socket
import uuid


class OwnerLock:
    def __init__(self, path, token=None):
        self.path = pathlib.Path(path)
        self.token = token or uuid.uuid4().hex[:12]
        self._descriptor = None

    @property
    def held(self):
        return self._descriptor is not None

    def acquire(self):
        """Takes the lock without waiting; False when another live process holds it."""
        while True:
            descriptor = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(descriptor)
                return False
            try:
                current = os.stat(self.path).st_ino == os.fstat(descriptor).st_ino
            except FileNotFoundError:
                current = False
            if not current:  # the holder released (deleted) it after we opened it: try the new file
                os.close(descriptor)
                continue
            owner = {"host": socket.gethostname(), "pid": os.getpid(), "token": self.token}
            os.ftruncate(descriptor, 0)
            os.write(descriptor, json.dumps(owner).encode())
            self._descriptor = descriptor
            return True

    def release(self):
        if self._descriptor is None:
            return
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # while still holding it, so no one can take the old file
        os.close(self._descriptor)
        self._descriptor = None

    def owner(self):
        """`{"host", "pid", "token"}` written by the holder, or None (free, or being written)."""
        return read_owner(self.path)

    def describe_owner(self):
        owner = self.owner() or {}
        return f"pid {owner.get('pid', '?')} on {owner.get('host', '?')}"


def read_owner(path):
    try:
        owner = json.loads(pathlib.Path(path).read_text())
    except (OSError, ValueError):
        return None
    return owner if isinstance(owner, dict) and "pid" in owner else None


def lock_is_free(path):
    """True when no live process holds the lock at `path` (taking and releasing it to find out)."""
    probe = OwnerLock(path)
    if probe.acquire():
        probe.release()
        return True
    return False
