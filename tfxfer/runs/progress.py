"""Stage messages of runs and evaluations, printed unless `verbose` is 0."""


def speaker(verbose):
    """A `say(message)` that prints (flushed) when `verbose` is truthy.

    Example:

    >>> speaker(0)("not shown")
    """

    def say(message):
        if verbose:
            print(message, flush=True)

    return say
