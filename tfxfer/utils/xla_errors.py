"""Reading TensorFlow's "cannot compile with XLA" errors."""

import re

_UNSUPPORTED = re.compile(r"on XLA_\w+: (.*?)\s*\(No registered")


def xla_unsupported_ops(error):
    """The op names XLA refused in `error`'s message, or [] when it is another error.

    Example:

    >>> xla_unsupported_ops(ValueError(
    ...     "Detected unsupported operations when trying to compile graph f[] on "
    ...     "XLA_CPU_JIT: AsString (No registered 'AsString' OpKernel ..."))
    ['AsString']
    """
    text = str(error)
    if "Detected unsupported operations" not in text:
        return []
    ops = []
    for match in _UNSUPPORTED.finditer(text):
        for name in match.group(1).split(","):
            name = name.strip().split(" ")[0]
            if name and name not in ops:
                ops.append(name)
    return ops
