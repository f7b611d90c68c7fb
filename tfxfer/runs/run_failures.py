"""How a training run fails: interrupted (Ctrl-C, SIGTERM), a lost worker, or an error recorded in one line.

Example:

>>> one_line(ValueError("no\n  data"))
'no data'
"""

from tfxfer.option_errors import OptionMessage, option


class RunInterrupted(OptionMessage, KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped a run; the message says how to continue it."""


def lost_worker(error, choice, config):
    """A collective failed because another worker is gone: say so, and how to continue."""
    import tensorflow as tf

    if choice.workers < 2 or not isinstance(
        error, (tf.errors.UnavailableError, tf.errors.CancelledError, tf.errors.AbortedError, tf.errors.InternalError)
    ):
        return None
    again = (
        "the same command (same {run_folder})"
        if config.run_folder
        else "with {resume} RUN_FOLDER (or give every worker the same {run_folder})"
    )
    return OptionRuntimeError(
        f"Another worker of this {choice.workers}-worker job stopped or became unreachable, so training "
        f"cannot go on (TensorFlow {type(error).__name__}). Start every worker again with {again}: the "
        "job continues from its last completed epoch.",
        run_folder=option("run_folder"),
        resume=("tfxfer.resume_run", "tfxfer train --resume"),
    )


class OptionRuntimeError(OptionMessage, RuntimeError):
    """A runtime failure whose message names options."""


def one_line(error):
    import tensorflow as tf

    if isinstance(error, tf.errors.OpError):
        from tfxfer.data.image_folder import tensorflow_reason

        return f"TensorFlow {type(error).__name__}: {tensorflow_reason(error)}"
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 500 else text[:497] + "..."
