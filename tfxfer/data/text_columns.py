"""Which columns of a CSV/TSV file hold the texts and the labels.

A header's names decide (`TEXT_COLUMN_NAMES`, `LABEL_COLUMN_NAMES`, in any
case and padding), else the columns the caller names, else the one column
left; what stays unclear is a `DataError` that names the options in the
caller's spelling (`text_column=` from Python, `--text-column` from the CLI).

Example:

>>> rows = [(1, ["Review", "Sentiment"]), (2, ["great film", "pos"])]
>>> chosen_columns("reviews.csv", rows, None, None, "auto", None, labelled=True)
ColumnChoice(text_indices=[0], label_index=1, has_header=True, header_guessed=False)
"""

import typing

from tfxfer.data.data_report import DataError
from tfxfer.option_errors import escaped


class ColumnChoice(typing.NamedTuple):
    text_indices: list
    label_index: int | None
    has_header: bool
    header_guessed: bool  # read as a header only because its label cell is in no other row


# Header names that say what a column holds (compared in lower case).
TEXT_COLUMN_NAMES = (
    "text", "texts", "sentence", "sentences", "review", "reviews", "sms", "message", "document", "content",
    "body", "tweet", "comment", "question", "utterance", "query", "title", "description", "headline",
    "abstract", "passage", "excerpt", "summary",
)  # fmt: skip
LABEL_COLUMN_NAMES = (
    "label", "labels", "sentiment", "class", "classes", "category", "target", "topic", "intent",
    "polarity", "emotion", "rating", "stars", "tag",
)  # fmt: skip


def _role(name):
    """`"text"`, `"label"` or None for a header cell."""
    name = name.strip().lower()
    return "text" if name in TEXT_COLUMN_NAMES else "label" if name in LABEL_COLUMN_NAMES else None


def chosen_columns(file, rows, text_column, label_column, header, class_names, labelled):
    """Which columns hold the texts and the label, and whether the first row is a header (`ColumnChoice`).

    `rows` are `(line number, cells)`. Columns the caller names are used; the others come from a header's
    names (`TEXT_COLUMN_NAMES`, `LABEL_COLUMN_NAMES`), else are the one
    column left, else (a two-column file without a header) label first,
    then text. What stays unclear is a `DataError` naming the options.
    """
    _check_column_arguments(text_column, label_column, header)
    first = rows[0][1]
    names_given = _names_given(text_column, label_column)
    known = any(_role(cell) for cell in first)
    if header != "auto":
        has_header = bool(header)
    else:
        has_header = names_given or known or _looks_like_header(rows, label_column, class_names)
    columns = first if has_header else None
    width = len(first)
    # A one-column header holding `;` (or `|`, a tab) that every row holds too: another separator, not texts.
    # (Rows are compared as lines: a comma inside a text splits it into cells.)
    lines = [",".join(row) for _, row in rows[:20]]
    separator = next(
        (
            name
            for mark, name in ((";", "semicolons"), ("|", "bars"), ("\t", "tabs"))
            if mark in first[0] and all(mark in line for line in lines)
        ),
        None,
    )
    # Named columns cannot be found in such a header either: the separator is the cause to name.
    unreadable = text_column is None or names_given
    if width == 1 and separator == "tabs" and unreadable:
        raise DataError(
            f"{escaped(file)}: every row is one column, and its first row {escaped(first)} looks separated by "
            "tabs; read it as tab-separated with {tsv}.",
            tsv=("format='tsv'", "--data-format tsv"),
        )
    if width == 1 and separator and unreadable:
        raise DataError(
            f"{file}: every row is one column, and its first row {first} looks separated by {separator}; the "
            "file is read as comma-separated (.csv) or tab-separated (.tsv). Save it with commas or tabs."
        )
    text_indices = [_column_index(c, columns, file) for c in _as_list(text_column)]
    label_index = None if label_column is None else _column_index(label_column, columns, file)
    if label_index is not None and label_index in text_indices:
        raise DataError(
            f"{escaped(file)}: {{text}} and {{label}} name the same column: the labels would be the texts.",
            text=("text_column", "--text-column"),
            label=("label_column", "--label-column"),
        )
    for role, indices in (("text", text_indices), ("label", [label_index])):
        for index in indices:
            if index is not None and not 0 <= index < width:
                raise DataError(
                    f"{escaped(file)}: {{{role}}} {index} is no column: the first row has {width} "
                    f"({escaped(first)}), numbered from 0.",
                    **{role: (f"{role}_column", f"--{role}-column")},
                )
    if has_header:
        if label_index is None:  # without labels too: a label column is no text
            found = _header_columns(file, first, "label", excluded=text_indices)
            label_index = found[0] if found else None
        if not text_indices:
            text_indices = _header_columns(file, first, "text", excluded=[label_index])
    elif not text_indices and label_index is None and width == 2:
        text_indices, label_index = [1], 0  # `<label>,<text>`, as SST and SMS spam
    # A column not named is the one left, if one is.
    if labelled and label_index is None and text_indices:
        rest = [i for i in range(width) if i not in text_indices]
        label_index = rest[0] if len(rest) == 1 else None
    if not text_indices and (label_index is not None or not labelled):
        rest = [i for i in range(width) if i != label_index]
        text_indices = rest if len(rest) == 1 else []
    missing = [
        what for what, unknown in (("texts", not text_indices), ("labels", labelled and label_index is None)) if unknown
    ]
    if missing:
        wanted = " and the ".join(missing)
        if has_header:
            guessed = header == "auto" and not names_given and not known
            shape = f"the first row, read as a header, is {first}" if guessed else f"the header is {first}"
        else:
            shape = f"it has {width} column(s) and no header row naming them"
        raise _column_error(file, f"cannot tell which column holds the {wanted}: {shape}", None, missing)
    # A header found by its names or named columns is sure; one found by its label cell only is a guess.
    guessed = has_header and header == "auto" and not names_given and not known
    return ColumnChoice(text_indices, label_index, has_header, guessed)


def _header_columns(file, header, role, excluded):
    """The header's columns named for `role` (`"text"`, `"label"`), but those `excluded`; several is an error."""
    found = [i for i, cell in enumerate(header) if _role(cell) == role and i not in excluded]
    if len(found) > 1:
        names = [header[i] for i in found]
        raise _column_error(file, f"the header {header} has several {role} columns {names}", role, names)
    return found


def _column_error(file, what, several, names):
    """A `DataError`: `what` is unclear; the options that settle it, in the caller's spelling.

    `names`: the columns found for the `several` role (`"text"`, `"label"`),
    or with `several=None` the roles left unknown (`"texts"`, `"labels"`).
    """
    if several == "label":
        return DataError(
            f"{escaped(file)}: {escaped(what)}; pass {{label}}.",
            label=(f"label_column={names[0]!r}", f"--label-column {names[0]}"),
        )
    if several == "text":
        return DataError(
            f"{escaped(file)}: {escaped(what)}; pass {{text}} to read one, or {{joined}} to join them.",
            text=(f"text_column={names[0]!r}", f"--text-column {names[0]}"),
            joined=(f"text_column={names!r}", f"--text-column {','.join(names)}"),
        )
    recognised = "a header naming them text/sentence/review/... and label/class/sentiment/... needs neither"
    return DataError(
        f"{escaped(file)}: {escaped(what)}. Pass "
        + " and ".join(
            placeholder for placeholder, role in (("{text}", "texts"), ("{label}", "labels")) if role in names
        )
        + " (a header name "
        f"or a 0-based index; {escaped(recognised)}).",
        text=("text_column", "--text-column"),
        label=("label_column", "--label-column"),
    )


def _names_given(text_column, label_column):
    return any(isinstance(c, str) for c in _as_list(text_column) + _as_list(label_column))


def _looks_like_header(rows, label_column, class_names=None):
    """A first row whose label cell never recurs below (and is no declared class) is a header row."""
    index = label_column if isinstance(label_column, int) else 0
    if len(rows) < 3 or len(rows[0][1]) <= index or len(rows[0][1]) < 2:
        return False
    first = rows[0][1][index]
    if class_names is not None and first.strip() in [str(name) for name in class_names]:
        return False
    if is_whole_number(first.strip()):
        return False  # a number is a label (a class seen once, like AG News' first rows), not a column name
    return all(len(row) <= index or row[index] != first for _, row in rows[1:])


def _as_list(value):
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _column_index(column, columns, file):
    if isinstance(column, int):
        return column
    if columns is None:
        raise DataError(
            f"{file}: column '{column}' was named but the file has no header row; pass a column index or header=True."
        )
    if column in columns:
        return columns.index(column)
    # Header cells are often padded or capitalised (` Text `): a name matches them as the header detection does.
    loose = [i for i, name in enumerate(columns) if name.strip().lower() == str(column).strip().lower()]
    if len(loose) == 1:
        return loose[0]
    raise DataError(f"{file}: no column '{column}'; the header has {columns}.")  # a plain message: no escapes


def is_whole_number(text):
    """Whole numbers, also as a spreadsheet writes them (`1.0`)."""
    try:
        int(text)
        return True
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return False
    return number.is_integer()


def _check_column_arguments(text_column, label_column, header):
    """Python's spelling only: the CLI's flags cannot give these."""
    if not (header == "auto" or header is True or header is False):
        raise ValueError(f"header must be 'auto', True or False, got {header!r}.")
    for argument, value in (("text_column", text_column), ("label_column", label_column)):
        columns = list(value) if isinstance(value, (list, tuple)) and argument == "text_column" else [value]
        if isinstance(value, (list, tuple)) and not value:
            raise ValueError(f"{argument} is an empty list; name at least one column (or pass None).")
        for column in columns:
            if column is not None and (isinstance(column, bool) or not isinstance(column, (int, str))):
                raise ValueError(
                    f"{argument} must be a header name or a 0-based column index"
                    + (" (or a list of them, joined)" if argument == "text_column" else "")
                    + f", got {column!r}."
                )
