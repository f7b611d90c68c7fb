"""`from_text_file`: labelled text files (CSV, TSV, `<label> <text>`) to `tf.data`."""

import codecs
import csv
import io
import pathlib

import tensorflow as tf

from tfxfer.data.data_report import DataError, DataReport
from tfxfer.data.splitting import check_batches, stratified_split
from tfxfer.data.text_columns import chosen_columns, is_whole_number
from tfxfer.option_errors import escaped

FORMATS = ("auto", "csv", "tsv", "label_text")


def from_text_file(
    path,
    *,
    format="auto",
    text_column=None,
    label_column=None,
    header="auto",
    class_names=None,
    label_base=0,
    validation_split=None,
    validation_path=None,
    seed=0,
    batch_size=32,
    on_bad_data="error",
    encoding_errors="strict",
    drop_remainder=False,
    min_classes=2,
):
    """Loads labelled texts as raw strings.

    Formats: `"csv"`/`"tsv"` with a text column and a label column, or
    `"label_text"`, one example a line as `<label> <text>` (SST, TREC).
    `"auto"` goes by the extension (.csv, .tsv) and otherwise by the first
    line.

    Columns: `text_column`/`label_column` name them (a header name or a
    0-based index; several text columns are joined with a space, e.g. a
    title and a description). A column not given is read off the header
    (case-insensitive: `text`, `sentence`, `review`, `sms`, `document`,
    `content`, `title`, `description`, ... hold texts; `label`, `class`,
    `sentiment`, `category`, `target`, ... labels), else is the one column
    left; a two-column file without a header is `<label>,<text>`. Anything
    else is a `DataError` naming the columns to pass rather than a guess:
    a header with two text columns, like AG News' `class,title,description`,
    needs `text_column="title"` or `["title", "description"]` to join them,
    and a headerless file of three columns needs both options.

    Labels: class names (`"spam"`) or integer ids; integer labels compare as
    integers (`01` and `1` are one class). Without `class_names` the classes
    are the distinct labels of the training file, sorted (numerically for
    integers), and a label seen only in `validation_path` is bad data. With
    `class_names` the classes are declared: a label must be one of the names
    (or, when the names are not integers, an id counted from `label_base`:
    AG News numbers its classes from 1), else it is bad data.

    Bad data: a missing label or text, a label out of range or unknown,
    text that is not valid UTF-8 (with `encoding_errors="strict"`) and an
    empty file each raise a `DataError` naming the file and line, or with
    `on_bad_data="skip"` are left out and listed in `report`.

    The texts stay raw strings: a `TransferModel` with a preprocessor
    tokenizes them in its input pipeline.

    Args:
        path: the file.
        format, text_column, label_column, header: how to read it; `header`
            is True, False or `"auto"` (a first row that holds the column
            names given or a known column name, or whose label cell recurs
            in no other row and is no declared class).
        class_names, label_base: the label set (see above).
        validation_split: fraction held out, stratified and seeded.
        validation_path: a separate validation file in the same format.
        seed, batch_size, drop_remainder: pipeline options.
        on_bad_data: `"error"` or `"skip"`.
        encoding_errors: `"strict"` (bad bytes are bad data) or `"replace"`.
        min_classes: classes the examples must hold (1 for evaluating on a
            subset of a model's declared classes).

    Returns:
        A `LoadedData` of `(text, label)` batches.

    Example:

    >>> data = from_text_file("../shared/data/text/sms_spam/SMSSpamCollection",
    ...                       text_column="SMS", label_column="Label", validation_split=0.2)
    >>> data.class_names
    ['ham', 'spam']
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}.")
    if encoding_errors not in ("strict", "replace"):
        raise ValueError(f"encoding_errors must be 'strict' or 'replace', got {encoding_errors!r}.")
    report = DataReport(on_bad_data)
    options = (format, text_column, label_column, header, encoding_errors, report, class_names)
    rows = _read_examples(path, *options)
    validation_rows = _read_examples(validation_path, *options) if validation_path else []
    class_names, labels = _label_ids(
        rows + validation_rows,
        class_names,
        label_base,
        report,
        training_wheres={where for where, _, _ in rows},
    )
    examples = [(text, labels[(where)]) for where, text, _ in rows if where in labels]
    validation = [(text, labels[where]) for where, text, _ in validation_rows if where in labels]
    if len({label for _, label in examples}) < max(1, min_classes):
        raise DataError(
            f"{path}: the training examples hold {len({label for _, label in examples})} class(es); "
            "a classifier needs at least two."
        )
    if validation_split and not validation_path:
        examples, validation = stratified_split(examples, validation_split, seed, class_names)
    report.kept = len(examples) + len(validation)
    check_batches(len(examples), batch_size, drop_remainder)

    def build(items, training):
        if not items:
            return None
        dataset = tf.data.Dataset.from_tensor_slices(([text for text, _ in items], [label for _, label in items]))
        if training:
            dataset = dataset.shuffle(len(items), seed=seed, reshuffle_each_iteration=True)
        # Only training drops its last partial batch: validation sees all.
        return dataset.batch(batch_size, drop_remainder=drop_remainder and training).prefetch(tf.data.AUTOTUNE)

    from tfxfer.data.loaded_data import LoadedData

    return LoadedData(
        train=build(examples, True),
        validation=build(validation, False),
        class_names=class_names,
        report=report,
        train_size=len(examples),
        validation_size=len(validation),
        train_examples=examples,
        validation_examples=validation,
    )


def read_texts(
    path,
    *,
    format="auto",
    text_column=None,
    label_column=None,
    header="auto",
    encoding_errors="strict",
    on_bad_data="error",
    class_names=None,
):
    """The texts of a file to predict on, read as `from_text_file` reads them, and a `DataReport`.

    A CSV/TSV (by extension, or `format`) gives its text column, found as
    `from_text_file` finds it (a header row and a label column are no
    texts, and a label column need not be there); `"label_text"` gives each
    line's text after its label; `"lines"` is one text a line. `"auto"`
    reads other files as `tfxfer train` would where they are plainly its
    data (a tab on every line: TSV; every line starting with one of
    `class_names`: `<label> <text>`, noted in the report's `notes`), and
    otherwise one text a line. `class_names` (the model's) also tell a
    headerless first row from a header.

    Returns:
        `([(where, text)], report)`, `where` being `file:line`.

    Example:

    >>> texts, report = read_texts("reviews.csv")  # header: text,label
    >>> [text for _, text in texts][:1]
    ['a gripping film']
    """
    if format not in FORMATS + ("lines",):
        raise ValueError(f"format must be one of {FORMATS + ('lines',)}, got {format!r}.")
    if encoding_errors not in ("strict", "replace"):
        raise ValueError(f"encoding_errors must be 'strict' or 'replace', got {encoding_errors!r}.")
    report = DataReport(on_bad_data)
    rows = _read_examples(
        path, format, text_column, label_column, header, encoding_errors, report, class_names, labelled=False
    )
    report.kept = len(rows)
    return [(where, text) for where, text, _ in rows], report


def _read_lines(path, encoding_errors, report):
    file = pathlib.Path(path).expanduser()
    if not file.exists():
        raise FileNotFoundError(f"Text file not found: {file} (absolute: {file.resolve()}).")
    if file.is_dir():
        raise DataError(f"{file} is a folder; pass the file itself.")
    # A byte-order mark (Excel and Notepad write one) is no part of the first label or column name.
    data = file.read_bytes().removeprefix(codecs.BOM_UTF8)
    if not data.strip():
        raise DataError(f"{file} is empty: there are no examples to load.")
    lines = []
    for number, raw in enumerate(data.splitlines(), start=1):
        try:
            line = raw.decode("utf-8", errors=encoding_errors)
        except UnicodeDecodeError as error:
            report.problem(
                f"{file}:{number}",
                f"not valid UTF-8 (byte {raw[error.start]:#04x} at column {error.start + 1}; "
                "{replace} reads it anyway)",
                replace=("encoding_errors='replace'", "--encoding-errors replace"),
            )
            continue
        lines.append((number, line))
    return file, lines


def _detect_format(file, lines):
    suffix = file.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".tsv", ".tab"):
        return "tsv"
    first = next((line for _, line in lines if line.strip()), "")
    return "tsv" if "\t" in first else "label_text"


def _detect_unlabelled_format(file, lines, class_names, report):
    """The format of a file of texts to predict on: one text a line, unless it is plainly labelled data."""
    suffix = file.suffix.lower()
    if suffix in (".csv", ".tsv", ".tab"):
        return _detect_format(file, lines)
    texts = [line for _, line in lines if line.strip()]
    if texts and all("\t" in line for line in texts):
        report.note(
            f"{escaped(file)}: read as TSV (a tab on every line), its text column as tfxfer train finds it; "
            "{lines} reads every line as an input",
            lines=("format='lines'", "--data-format lines"),
        )
        return "tsv"
    names = {str(name) for name in class_names or ()}
    if len(texts) >= 2 and names and all(len(line.split(None, 1)) == 2 and line.split()[0] in names for line in texts):
        report.note(
            f"{escaped(file)}: read as '<label> <text>' lines (every line starts with a class name), as tfxfer "
            "train reads it; the labels are left out ({lines} reads every line as an input)",
            lines=("format='lines'", "--data-format lines"),
        )
        return "label_text"
    return "lines"


def _read_examples(
    path, format, text_column, label_column, header, encoding_errors, report, class_names=None, labelled=True
):
    """[(where, text, raw_label)] for one file; without `labelled`, raw_label is None.

    `format="lines"` (unlabelled only) reads one text a line.
    """
    file, lines = _read_lines(path, encoding_errors, report)
    if format == "auto":
        format = (
            _detect_format(file, lines) if labelled else _detect_unlabelled_format(file, lines, class_names, report)
        )
    examples = []
    if format == "lines":
        return [(f"{file}:{number}", line.strip(), None) for number, line in lines if line.strip()]
    if format == "label_text":
        for number, line in lines:
            if not line.strip():
                continue
            parts = line.strip().split(None, 1)
            where = f"{file}:{number}"
            if not labelled:
                examples.append((where, parts[-1], None))  # a line without a label is all text
                continue
            if len(parts) < 2:
                report.problem(where, "missing text after the label" if parts else "missing label")
                continue
            examples.append((where, parts[1], parts[0]))
        return examples
    # Lines that were not valid UTF-8 are already reported: blank them so
    # that line numbers stay those of the file.
    text = [""] * (max((number for number, _ in lines), default=0))
    for number, line in lines:
        text[number - 1] = line
    if format == "csv":
        # strict: a quote left open is an error, not a field that swallows the rest of the file.
        reader = csv.reader(io.StringIO("\n".join(text)), strict=True)
    else:  # TSV carries quotes literally (e.g. SMS messages quoting someone).
        reader = csv.reader(io.StringIO("\n".join(text)), delimiter="\t", quoting=csv.QUOTE_NONE)
    rows = []
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            raise DataError(
                f"{file}:{start}: not valid CSV ({error}): a quoted field must end with its closing quote, and a "
                'quote inside one is written twice (""). Fix the row, or save the file as .tsv.'
            ) from None
        if row and any(cell.strip() for cell in row):
            rows.append((start, row))
    if not rows:
        raise DataError(f"{file} holds no rows.")
    columns = chosen_columns(file, rows, text_column, label_column, header, class_names, labelled)
    text_indices, label_index, has_header = columns.text_indices, columns.label_index, columns.has_header
    width = len(rows[0][1])
    if columns.header_guessed:
        report.note(
            f"{escaped(file)}: the first row {escaped(rows[0][1])} was read as a header (its label cell is in no "
            "other row); if it is an example, pass {classes} (or {header}).",
            classes=("class_names=[...]", "--class-names with the classes"),
            header=("header=False", "a file with a header row"),
        )
    if has_header:
        header_row, rows = rows[0][1], rows[1:]
        if not rows:
            raise DataError(f"{file} has a header row {header_row} and no rows after it.")
    separator = "commas" if format == "csv" else "tabs"
    for number, row in rows:
        where = f"{file}:{number}"
        while len(row) > width and not row[-1].strip():
            row = row[:-1]  # trailing empty cells (`a,b,`) add nothing
        if len(row) > width:
            report.problem(
                where,
                f"has {len(row)} fields but the {'header' if has_header else 'first row'} has {width}: a text "
                f'holding {separator} must be quoted ("funny, sharp and moving"), or its tail is read as '
                "another column",
            )
            continue
        needed = max(text_indices + ([label_index] if labelled else []))
        if len(row) <= needed:
            report.problem(where, f"has {len(row)} column(s), column {needed} (numbered from 0) is needed")
            continue
        label = row[label_index].strip() if labelled else None
        text = " ".join(row[i].strip() for i in text_indices).strip()
        if labelled and not label:
            report.problem(where, "missing label")
            continue
        if not text:
            report.problem(where, "empty text")
            continue
        examples.append((where, text, label))
    return examples


def _label_key(label):
    """Integer labels compare as integers ("01" and "1.0" are 1); other labels as written."""
    if not is_whole_number(label):
        return label
    try:
        return str(int(label))
    except ValueError:
        return str(int(float(label)))


def _label_ids(examples, class_names, label_base, report, training_wheres):
    """Class names and {where: label id} for the examples with a valid label.

    Without `class_names` the classes are the labels of the training
    examples; a label seen only in validation data is bad data.
    """
    if class_names is None:
        training = {_label_key(label) for where, _, label in examples if where in training_wheres}
        all_ints = all(is_whole_number(label) for label in training)
        names = sorted(training, key=int if all_ints else str)
        index = {name: i for i, name in enumerate(names)}
        ids = {}
        for where, _, label in examples:
            key = _label_key(label)
            if key in index:
                ids[where] = index[key]
            else:
                report.problem(
                    where,
                    f"label '{escaped(label)}' appears in the validation data but in no training "
                    f"example (training classes: {escaped(names)}); declare the classes with "
                    "{class_names} or fix the label",
                    class_names=("class_names", "--class-names"),
                )
        return names, ids
    names = [str(name) for name in class_names]
    if len(set(names)) != len(names) or len(names) < 2:
        raise ValueError(f"class_names must be at least two distinct names, got {names}.")
    by_name = {name: i for i, name in enumerate(names)}
    names_are_ints = all(is_whole_number(name) for name in names)
    if names_are_ints:
        by_name = {_label_key(name): i for i, name in enumerate(names)}
    ids = {}
    for where, _, label in examples:
        key = _label_key(label) if names_are_ints else label
        if key in by_name:
            ids[where] = by_name[key]
        elif is_whole_number(label) and not names_are_ints:
            value = int(label) - label_base
            if 0 <= value < len(names):
                ids[where] = value
            else:
                report.problem(
                    where,
                    f"label {label} out of range: {len(names)} classes numbered from {label_base}",
                )
        else:
            report.problem(where, f"label '{label}' is not one of the declared classes {names}")
    return names, ids
