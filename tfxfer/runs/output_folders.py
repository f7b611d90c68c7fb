"""Checks that the folders a run writes to can be written, before anything slow runs.

Without them, a `--runs-dir` that is a file or an `--export-dir` that cannot
be created fails with a bare `[Errno 20] Not a directory` once the data is
loaded, or after training.
"""

import os
import pathlib
import tempfile

from tfxfer.option_errors import OptionValueError, option


def check_output_folder(path, name, spelling=None):
    """Refuses `path` unless it is a folder that can be written, or one that can be created.

    The message names the option (`spelling`: its Python and CLI names,
    default those of the `TrainConfig` field `name`) and the problem. A
    probe folder is made and removed at once, as permission bits say
    nothing to root. Remote paths (`gs://...`) are not checked here.

    Example:

    >>> check_output_folder("runs", "runs_dir")
    """
    spelling = spelling or option(name)
    if "://" in str(path):
        return
    path = pathlib.Path(path).expanduser()

    def refuse(problem):
        raise OptionValueError(f"{{name}} {path} {problem}.", name=spelling)

    if path.exists() and not path.is_dir():
        refuse("is a file, not a folder; give a folder path (created when missing)")
    existing = path
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        refuse(f"cannot be created: {existing} is a file")
    try:
        probe = tempfile.mkdtemp(prefix=".tfxfer-write-check-", dir=existing)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        refuse(f"is not writable ({reason})" if existing == path else f"cannot be created in {existing} ({reason})")
    os.rmdir(probe)


def check_output_folders(config, resuming=False):
    """The folders a `TrainConfig` run writes: its runs folder (a new run) and export folder (when exporting).

    Example:

    >>> check_output_folders(TrainConfig(backbone="...", data="photos", runs_dir="runs"))
    """
    if not resuming:
        if config.run_folder:
            check_output_folder(config.run_folder, "run_folder")
        else:
            check_output_folder(config.runs_dir, "runs_dir")
    if config.export:
        check_output_folder(config.export_dir, "export_dir")


def check_plain_name(name, spelling=None):
    """Refuses a run or export name that is no plain folder name (`../x`, `a/b`, `.hidden`, empty).

    Example:

    >>> check_plain_name("ants_bees")
    """
    if name and "/" not in name and "\\" not in name and not name.startswith("."):
        return
    shown = repr(name).replace("{", "{{").replace("}", "}}")
    raise OptionValueError(
        "{name} must be a plain name (no '/', '\\' or leading '.'): it names a folder under the runs and export "
        f"folders, got {shown}.",
        name=spelling or option("name"),
    )
