"""Version folders that TF Serving can never see half-written, shared safely between exporters.

TF Serving loads the highest numeric folder under a model's base directory,
so a numeric folder must only ever appear complete. An exporter:

1. reserves its version with an exclusive lock (`.version-<N>.lock`, an
   `flock` the kernel releases when the process dies; `OwnerLock`): two
   exporters never get the same number;
2. writes the SavedModel under `.tmp-<N>-<token>/`;
3. renames it to `<N>/` (on overwrite: the old version is renamed aside to
   `.old-<N>-<token>/` first and deleted after);
4. releases the lock.

Whatever a killed exporter leaves behind (its lock file, a `.tmp-*`
folder, an old version renamed aside) is cleaned, or put back, by the next
exporter into the same directory.
"""

import contextlib
import os
import pathlib
import shutil
import uuid

from tfxfer.faults import fault_point
from tfxfer.option_errors import OptionFileExistsError
from tfxfer.utils.owner_lock import OwnerLock, lock_is_free


class VersionTakenError(OptionFileExistsError):
    """The requested version exists, or another exporter is writing it."""


_NEXT = ("version=None", "no --version")
_OVERWRITE = ("overwrite=True", "--overwrite")


def numeric_versions(base):
    """The complete versions in `base` (folders named by a number holding `saved_model.pb`)."""
    base = pathlib.Path(base)
    if not base.is_dir():
        return []
    return sorted(
        int(child.name) for child in base.iterdir() if child.name.isdigit() and (child / "saved_model.pb").exists()
    )


def clean_stale_files(base):
    """Removes what dead exporters left in `base`; puts back a version renamed aside.

    A temporary folder belongs to a live exporter exactly while that
    exporter holds its version's lock (it takes the lock before creating the
    folder and lets it go after renaming it), so a folder whose lock can be
    taken is a dead exporter's. Returns the names removed or restored.
    """
    base = pathlib.Path(base)
    if not base.is_dir():
        return []
    cleaned = []
    for child in sorted(base.iterdir()):
        if not child.name.startswith((".tmp-", ".old-")):
            continue
        version, _, token = child.name[5:].partition("-")
        if not version.isdigit():
            continue
        lock = OwnerLock(base / f".version-{version}.lock")
        if not lock.acquire():
            holder = lock.owner()
            if holder is None or holder.get("token") == token:
                continue  # the live exporter's own folder (or one it is still naming)
            shutil.rmtree(child, ignore_errors=True)  # an earlier, dead exporter's
            cleaned.append(child.name)
            continue
        try:
            target = base / version
            if child.name.startswith(".old-") and not target.exists():
                # Killed between renaming the old version aside and the new one in.
                os.rename(child, target)
                cleaned.append(f"{child.name} (restored as {version}/)")
            else:
                shutil.rmtree(child, ignore_errors=True)
                cleaned.append(child.name)
        finally:
            lock.release()
    for lock_file in base.glob(".version-*.lock"):
        if lock_is_free(lock_file):  # taking and releasing a dead exporter's lock deletes it
            cleaned.append(lock_file.name)
    return cleaned


@contextlib.contextmanager
def reserved_version(base, version=None, overwrite=False):
    """Reserves a version number in `base` for the duration of the block.

    Yields `(version, temporary_folder)`; write the SavedModel into the
    temporary folder, then call `place_version`. With `version=None` the
    next free number is taken.
    """
    base = pathlib.Path(base)
    base.mkdir(parents=True, exist_ok=True)
    clean_stale_files(base)
    token = uuid.uuid4().hex[:12]
    if version is not None:
        version = int(version)
        lock = OwnerLock(base / f".version-{version}.lock", token)
        if not lock.acquire():
            raise VersionTakenError(
                f"{base / str(version)} is being written by another export ({lock.describe_owner()}). "
                "Pick another version, or pass {next} for the next free one.",
                next=_NEXT,
            )
        if (base / str(version)).exists() and not overwrite:
            lock.release()
            raise VersionTakenError(
                f"{base / str(version)} already exists; TF Serving may be serving it. Pick another version, "
                "pass {next} for the next free one, or {overwrite} to replace it.",
                next=_NEXT,
                overwrite=_OVERWRITE,
            )
    else:
        version = max(_folder_numbers(base), default=0) + 1
        while True:
            lock = OwnerLock(base / f".version-{version}.lock", token)
            if lock.acquire():
                if not (base / str(version)).exists():
                    break
                lock.release()
            version += 1
    temporary = base / f".tmp-{version}-{token}"
    try:
        yield version, temporary
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
        lock.release()


def place_version(base, version, temporary):
    """Moves a finished temporary folder to `base/<version>`, renaming any old one aside first."""
    base = pathlib.Path(base)
    target = base / str(version)
    token = pathlib.Path(temporary).name.split("-", 2)[-1]
    aside = None
    if target.exists():
        aside = base / f".old-{version}-{token}"
        os.rename(target, aside)
        fault_point("export:old-version-aside")
    os.rename(temporary, target)
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)
    return target


def _folder_numbers(base):
    # Numeric folders without saved_model.pb (foreign or broken) still hold their number.
    return [int(child.name) for child in base.iterdir() if child.name.isdigit()]
