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
