"""Reading TensorFlow's "cannot compile with XLA" errors."""

import contextlib
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


@contextlib.contextmanager
def xla_errors_explained():
    """Within the block, XLA's refusal of a train step's ops becomes a ValueError that says what to do."""
    import tensorflow as tf

    try:
        yield
    except tf.errors.InvalidArgumentError as error:
        unsupported = xla_unsupported_ops(error)
        if not unsupported:
            raise
        raise ValueError(
            f"The train step cannot be compiled with XLA (jit_compile=True, as on a TPU): it uses "
            f"{', '.join(unsupported)}, which XLA does not support. Move that work into the input "
            "pipeline (the preprocessor runs there, outside the compiled step), choose another "
            "backbone, or train without jit_compile (on the CLI: --strategy default)."
        ) from None
