"""Hiding TensorFlow's C++ start-up lines from the CLI's output.

TensorFlow 2.21 logs through absl before absl is initialised, so
`TF_CPP_MIN_LOG_LEVEL` no longer silences lines such as
`I0000 00:00:... port.cc:153] oneDNN custom operations are on` or
`E0000 ... failed call to cuInit`. The CLI puts a filter on file
descriptor 2: a thread copies every line to the real stderr except absl's
info, warning and error lines and their known continuation lines. Python's
own messages, tracebacks and fatal (`F`) lines pass through.
"""

import atexit
import os
import re
import sys
import threading

_NATIVE_LINE = re.compile(
    rb"^([IWE]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ \S+:\d+\]"
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    rb"|To enable the following instructions: .* rebuild TensorFlow"
    # libjpeg's own warnings on a corrupt file; tfxfer reports the file in its own words.
    rb"|Improper call to JPEG library|Corrupt JPEG data|Premature end of JPEG file|Invalid SOS parameters)"
)

_installed = None


def is_native_log_line(line):
    """True for a line TensorFlow's C++ runtime wrote at start-up.

    Example:

    >>> is_native_log_line(b"I0000 00:00:1795.5 8369 port.cc:153] oneDNN custom operations are on.")
    True
    >>> is_native_log_line(b"tfxfer train: error: --epochs must be at least 1")
    False
    """
    return bool(_NATIVE_LINE.match(line))


def filter_native_logs():
    """Installs the filter on stderr for the rest of the process (idempotent)."""
    global _installed
    if _installed is not None:
        return
    sys.stderr.flush()
    original = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def copy():
        pending = b""
        with os.fdopen(read_end, "rb", buffering=0) as source:
            while chunk := source.read(65536):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if not is_native_log_line(line):
                        os.write(original, line + b"\n")
            if pending and not is_native_log_line(pending):
                os.write(original, pending)

    thread = threading.Thread(target=copy, name="tfxfer-stderr-filter", daemon=True)
    thread.start()
    _installed = (original, thread)
    atexit.register(_drain)


def _drain():
    """Puts the real stderr back and waits for every filtered line to be written."""
    global _installed
    if _installed is None:
        return
    original, thread = _installed
    sys.stderr.flush()
    os.dup2(original, 2)  # closes the pipe's last write end: the thread reads to the end
    thread.join(timeout=5)
    _installed = None
