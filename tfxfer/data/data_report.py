"""What a loader did with bad input: stop with an error, or skip and count."""

import dataclasses
import warnings

from tfxfer.option_errors import OptionMessage, escaped

ON_BAD_DATA = ("error", "skip")


class DataError(OptionMessage, ValueError):
    """A problem in the user's data, naming the file (and line)."""


class DataNote(UserWarning):
    """How a loader read data where it had to guess (a first row taken as a header, a file's format).

    `str(note)` names Python arguments; `note.cli_message` CLI flags, which
    `tfxfer`'s commands print instead.
    """

    def __init__(self, message):
        super().__init__(str(message))
        self.cli_message = getattr(message, "cli_message", str(message))


@dataclasses.dataclass
class DataReport:
    """Examples kept, and every example skipped with where and why.

    With `on_bad_data="error"` the first problem raises a `DataError`; with
    `"skip"` it is recorded here and the loader goes on. Nothing is dropped
    without an entry.
    """

    on_bad_data: str = "error"
    kept: int = 0
    skipped: list = dataclasses.field(default_factory=list)
    notes: list = dataclasses.field(default_factory=list)  # how the data was read, where it was a guess

    def note(self, template, **spellings):
        """Records how the data was read where that was a guess, and warns (`DataNote`) in Python's words.

        The note is a `DataError` that is not raised: `str(note)` names
        Python arguments, `note.cli_message` CLI flags (the CLI shows that).
        """
        message = DataError(template, **spellings)
        self.notes.append(message)
        warnings.warn(DataNote(message), stacklevel=4)

    def __post_init__(self):
        if self.on_bad_data not in ON_BAD_DATA:
            raise ValueError(f"on_bad_data must be one of {ON_BAD_DATA}, got {self.on_bad_data!r}.")

    def problem(self, where, why, **spellings):
        """Raises, or records a skip, for the example at `where`.

        `why` may name options as `{name}` with their `spellings`
        (`tfxfer.option_errors`).
        """
        if not spellings:
            why = escaped(why)
        if self.on_bad_data == "error":
            raise DataError(
                f"{escaped(where)}: {why}. Fix or remove it, or pass {{skip}} to skip such examples "
                "(they are counted in the report).",
                skip=("on_bad_data='skip'", "--on-bad-data skip"),
                **spellings,
            )
        self.skipped.append((str(where), DataError(why, **spellings).args[0] if spellings else str(why)))

    def summary(self):
        """One line: how many examples were kept and skipped, and why."""
        if not self.skipped:
            return f"{self.kept} examples, none skipped"
        reasons = {}
        for _, why in self.skipped:
            reasons[why] = reasons.get(why, 0) + 1
        detail = "; ".join(f"{count} {why}" for why, count in sorted(reasons.items()))
        return f"{self.kept} examples kept, {len(self.skipped)} skipped ({detail})"
