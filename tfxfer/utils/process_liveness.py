"""Whether a process that left a lock or a status file behind still runs."""

import os
import pathlib


def process_is_alive(pid):
    """True while process `pid` runs on this machine (a zombie counts as dead).

    Example:

    >>> import os
    >>> process_is_alive(os.getpid())
    True
    """
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    stat = pathlib.Path(f"/proc/{pid}/stat")
    try:
        # The state follows the parenthesised command name: "Z" is a zombie.
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def remove_folders_of_dead_processes(prefix, directory=None):
    """Removes folders named `<prefix><pid>-...` whose process no longer runs.

    A process killed with -9 cannot clean up its temporary folders; the
    next one that makes such folders calls this first.

    Returns:
        The number of folders removed.
    """
    import shutil
    import tempfile

    removed = 0
    for path in pathlib.Path(directory or tempfile.gettempdir()).glob(f"{prefix}*"):
        pid = path.name[len(prefix) :].split("-", 1)[0]
        if path.is_dir() and pid.isdigit() and not process_is_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    return removed
