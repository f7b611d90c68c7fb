"""Config files for `tfxfer train --config`: YAML or JSON, paths relative to the file.

Example:

>>> config = load_config("examples/configs/ants_bees.yaml", epochs=1)
"""

import json
import pathlib

from tfxfer.runs.train_config import PATH_OPTIONS, TrainConfig, option_fields


def read_config_file(path):
    """A YAML or JSON config file as a dict with underscore keys."""
    file = pathlib.Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"Config file not found: {file}.")
    text = file.read_text()
    try:
        if file.suffix.lower() == ".json":
            values = json.loads(text)
        else:
            import yaml

            values = yaml.safe_load(text)
    except (json.JSONDecodeError, Exception) as error:  # yaml.YAMLError has no common base here
        raise ValueError(
            f"{file} is not valid {'JSON' if file.suffix == '.json' else 'YAML'}: {_parse_problem(error)}"
        ) from None
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ValueError(f"{file} must hold a mapping of option names to values, not {type(values).__name__}.")
    values = {str(key).replace("-", "_"): value for key, value in values.items()}
    if values.get("mixed_precision") is False:
        values["mixed_precision"] = "off"  # YAML 1.1 reads a bare `off` as false
    known = {field.name for field in option_fields()}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{file}: unknown option(s) {', '.join(unknown)}. Known options: {', '.join(sorted(known))}.")
    return values


def _parse_problem(error):
    """A parser's error as one line with its line number."""
    mark = getattr(error, "problem_mark", None)
    if mark is not None:
        return f"{getattr(error, 'problem', None) or 'cannot parse'} at line {mark.line + 1}, column {mark.column + 1}"
    return " ".join(str(error).split())


def load_config(path=None, **overrides):
    """A `TrainConfig` from a config file, with `overrides` taking precedence.

    Relative paths in a config file are relative to the file's folder.

    Example:

    >>> config = load_config("examples/configs/ants_bees.yaml", epochs=1)
    """
    values = {}
    if path is not None:
        values = read_config_file(path)
        base = pathlib.Path(path).expanduser().resolve().parent
        for key in PATH_OPTIONS:
            if isinstance(values.get(key), str):
                values[key] = _relative_to(base, values[key])
    values.update({key: value for key, value in overrides.items() if value is not None})
    return TrainConfig(**values)


def _relative_to(base, value):
    if "://" in value or value.startswith("tfds:") or pathlib.Path(value).expanduser().is_absolute():
        return value
    candidate = base / value
    # A preset name like "bert_tiny_en_uncased" is not a path.
    return str(candidate) if candidate.exists() or "/" in value else value
