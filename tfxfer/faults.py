"""Named points where fault-injection tests kill the process, as `kill -9` would.

`TFXFER_KILL_AT=<point>` (or `<point>@<n>` for its n-th time) makes the
process SIGKILL itself when it reaches that point: no `finally`, no
`atexit`, exactly what a preempted machine does. Unset (always, outside
tests), a point costs one dictionary lookup.

Points: `export:before-placing`, `export:old-version-aside`, `checkpoint:before-rename`,
`backup:before-rename`, `train:epoch-end`, `run:before-evaluation`.

Example:

>>> fault_point("export:before-placing")  # nothing happens unless TFXFER_KILL_AT names it
"""

import os
import signal

_SEEN = {}


def fault_point(name):
    wanted = os.environ.get("TFXFER_KILL_AT")
    if not wanted:
        return
    point, _, count = wanted.partition("@")
    if point != name:
        return
    _SEEN[name] = _SEEN.get(name, 0) + 1
    if _SEEN[name] >= int(count or 1):
        os.kill(os.getpid(), signal.SIGKILL)
