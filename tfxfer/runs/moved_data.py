"""Resuming a run whose data moved: the new path is taken only for data that is gone, and only if it holds the same data.

A run records what its data held when it started (`data.json`: class names
and example counts). `tfxfer train --resume RUN --data NEW_PATH` (Python:
`resume_run(RUN, moved_data={"data": NEW_PATH})`) loads the data at the new
path and compares it with that record before `config.yaml` changes, so a
wrong folder is refused and the run stays resumable.
"""

import dataclasses
import pathlib

from tfxfer.option_errors import OptionValueError, escaped, option

MOVABLE_DATA = ("data", "validation_data")


def data_facts(data):
    """What a run's `RunData` holds, as `data.json` records it.

    Example:

    >>> data_facts(load_run_data(config))
    {'class_names': ['ants', 'bees'], 'train_examples': 245, 'validation_examples': 153}
    """
    return {
        "class_names": [str(name) for name in data.class_names],
        "train_examples": int(data.train_size),
        "validation_examples": int(data.validation_size),
    }


def record_moved_data(folder, moved_data):
    """Points the run's recorded data paths at where the data went, once the data there is seen to be the same.

    Only a recorded path that no longer exists changes; the run keeps its
    name (the default name comes from the data's).
    """
    from tfxfer.runs.run_data import load_run_data

    if not isinstance(moved_data, dict):
        raise ValueError(
            f"moved_data maps 'data' (or 'validation_data') to the new path, e.g. "
            f"{{'data': 'photos'}}; got {type(moved_data).__name__} {moved_data!r}."
        )
    config = folder.read_config()
    changes = {}
    for name, new in moved_data.items():
        if name not in MOVABLE_DATA:
            raise ValueError(f"moved_data takes {', '.join(MOVABLE_DATA)}, got {name!r}.")
        recorded = getattr(config, name)
        new_path = pathlib.Path(new).expanduser().resolve()
        if recorded and _exists(recorded):
            if pathlib.Path(recorded).expanduser().resolve() == new_path:
                continue
            raise OptionValueError(
                f"{{name}} {escaped(recorded)}, recorded by the run {escaped(folder.path)}, still exists; a resumed run "
                "reads the data it started with. Drop {name}, or start a new run to train on other data.",
                name=option(name),
            )
        if not new_path.exists():
            raise OptionValueError(f"{{name}} {escaped(new_path)} not found.", name=option(name))
        changes[name] = str(new_path)
    if not changes:
        return
    recorded_facts = folder.read_data_facts()
    if recorded_facts is None:
        raise OptionValueError(
            f"The run {folder.path} started before tfxfer recorded what its data held (data.json), so data "
            "at another path cannot be checked against it. Put the data back where config.yaml says, or start a "
            "new run.",
        )
    moved = dataclasses.replace(config, name=config.run_name, **changes)
    found = data_facts(load_run_data(moved))
    if found != recorded_facts:
        differences = "; ".join(
            f"{key}: {recorded_facts.get(key)} recorded, {found[key]} there"
            for key in found
            if recorded_facts.get(key) != found[key]
        )
        raise OptionValueError(
            f"The data at {escaped(', '.join(changes.values()))} is not the data the run {escaped(folder.path)} started "
            f"with ({escaped(differences)}). Pass {{moved}}, or start a new run.",
            moved=(
                f"moved_data={{{next(iter(changes))!r}: <the folder or file it moved to>}}",
                f"{option(next(iter(changes)))[1]} with the folder or file it moved to",
            ),
        )
    values = config.to_dict()
    values.update(changes, name=config.run_name)  # named after its data: the run, report and export keep the name
    folder.write_config(values)


def check_recorded_data(folder):
    """Recorded data that is gone is named, with the way to point the run at where it went."""
    config = folder.read_config()
    for name in MOVABLE_DATA:
        recorded = getattr(config, name)
        if recorded and not recorded.startswith("tfds:") and not _exists(recorded):
            raise OptionValueError(
                f"{{name}} {escaped(recorded)}, recorded by the run {escaped(folder.path)}, no longer exists. If it "
                "moved, {resume}.",
                name=option(name),
                resume=(
                    f"pass resume_run({str(folder.path)!r}, moved_data={{{name!r}: NEW_PATH}})",
                    f"pass tfxfer train --resume {folder.path} {option(name)[1]} NEW_PATH",
                ),
            )


def _exists(path):
    return "://" in str(path) or pathlib.Path(path).expanduser().exists()
