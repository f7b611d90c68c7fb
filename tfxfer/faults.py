"""Named points where fault-injection tests kill the process, as `kill -9` would.

`TFXFER_KILL_AT=<point>` (or `<point>@<n>` for its n-th time) makes the
process SIGKILL itself when it reaches that point: no `finally`, no
`atexit`, exactly what a preempted machine does. Unset (always, outside
tests), a point costs one dictionary lookup.

`TFXFER_PAUSE_AT=<point>` instead sleeps there for a minute, so a test can
send a signal (SIGTERM, Ctrl-C) at a known moment.

Points: `export:before-placing`, `export:old-version-aside`, `checkpoint:before-rename`,
`backup:before-rename`, `train:epoch-end`, `run:before-evaluation`.

Example:

>>> fault_point("export:before-placing")  # nothing happens unless TFXFER_KILL_AT names it
"""

import os
import signal
import time

_SEEN = {}


def fault_point(name):
    if os.environ.get("TFXFER_PAUSE_AT") == name:
        time.sleep(60)
    wanted = os.environ.get("TFXFER_KILL_AT")
    if not wanted:
        return
    point, _, count = wanted.partition("@")
    if point != name:
        return
    _SEEN[name] = _SEEN.get(name, 0) + 1
    if _SEEN[name] >= int(count or 1):
        os.kill(os.getpid(), signal.SIGKILL)
