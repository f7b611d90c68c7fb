"""Errors that name options the way the caller spelled them: Python arguments or CLI flags.

A message is a template; each option in it has a Python spelling and a CLI
spelling. `str(error)` gives the Python one, and `tfxfer`'s CLI prints
`error.cli_message`.

Example:

>>> error = OptionValueError("{rate} must be positive.", rate=("learning_rate", "--learning-rate"))
>>> str(error), error.cli_message
('learning_rate must be positive.', '--learning-rate must be positive.')
"""

import contextlib


class OptionMessage:
    """Mixin for exceptions whose message names options."""

    def __init__(self, template, /, **spellings):
        self.template = template
        self.spellings = spellings
        super().__init__(self._render(0))

    def _render(self, which):
        if not self.spellings:
            return self.template  # a plain message: its braces are text
        return self.template.format(**{name: pair[which] for name, pair in self.spellings.items()})

    @property
    def cli_message(self):
        return self._render(1)


def escaped(value):
    """`value` as text inside a message template: its braces are not placeholders.

    Example:

    >>> escaped({"data": "photos"})
    "{{'data': 'photos'}}"
    """
    return str(value).replace("{", "{{").replace("}", "}}")


class OptionValueError(OptionMessage, ValueError):
    """A bad option value."""


class OptionFileExistsError(OptionMessage, FileExistsError):
    """A destination exists and the options do not allow replacing it."""


def respelled(error, **spellings):
    """`error` again, with some options spelled otherwise (a model's argument as a `TrainConfig` field).

    Example:

    >>> respelled(error, targets=("lora_targets", "--lora-targets"))
    """
    if not isinstance(error, OptionMessage):
        return error
    known = {name: pair for name, pair in spellings.items() if name in error.spellings}
    return type(error)(error.template, **{**error.spellings, **known})


def flag_of(name):
    """`learning_rate` -> `--learning-rate`."""
    return "--" + name.replace("_", "-")


def option(name):
    """The (Python, CLI) spellings of an option called `name`."""
    return (name, flag_of(name))


@contextlib.contextmanager
def respelled_as(**spellings):
    """Within the block, an option error is raised again with some options spelled otherwise (`respelled`).

    Example:

    >>> with respelled_as(top=("unfreeze_top", "--unfreeze-top")):
    ...     model.unfreeze(top=99)
    """
    try:
        yield
    except Exception as error:
        if not isinstance(error, OptionMessage):
            raise
        raise respelled(error, **spellings) from None
