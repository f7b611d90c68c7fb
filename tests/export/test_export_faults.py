"""Exports under `kill -9` and with two exporters at once, in real subprocesses."""

import contextlib
import io
import json
import os
import pathlib
import subprocess
import time

import pytest
import tensorflow as tf

from tests.export import export_worker
from tests.subprocesses import killed, python_command, run, started
from tfxfer.export.version_slots import clean_stale_files, numeric_versions

WORKER = pathlib.Path(__file__).with_name("export_worker.py")


def _export(handle, base, seed, *extra, kill_at=None):
    return run(python_command(WORKER, handle, base, seed, *extra), kill_at=kill_at)


def _export_here(handle, base, seed, version=None, overwrite=False):
    """The worker's export in this process, for the exports that no test kills or races."""
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = export_worker.main(handle, str(base), seed, version, overwrite)
    return subprocess.CompletedProcess(["export_worker.py"], code, stdout.getvalue(), "")


def _report(result):
    assert result.returncode in (0, 3), result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _assert_complete_versions(base):
    """Every numeric folder is a complete SavedModel that loads and serves."""
    for child in pathlib.Path(base).iterdir():
        if child.name.isdigit():
            assert (child / "saved_model.pb").exists(), f"{child} is a torn version"
            assert "serving_default" in tf.saved_model.load(str(child)).signatures


def test_kill_before_placing_leaves_no_version_and_is_cleaned(image_module, tmp_path):
    base = tmp_path / "shapes"
    assert killed(_export(image_module, base, 0, kill_at="export:before-placing"))
    assert numeric_versions(base) == []
    assert not any(child.name.isdigit() for child in base.iterdir())
    leftovers = sorted(child.name for child in base.iterdir())
    assert any(name.startswith(".tmp-1-") for name in leftovers) and ".version-1.lock" in leftovers
    report = _report(_export_here(image_module, base, 0))
    assert report["path"] == str(base / "1") and report["max_abs_difference"] < 1e-5
    assert sorted(os.listdir(base)) == ["1"]  # the dead exporter's files are gone


def test_kill_during_overwrite_keeps_or_restores_the_old_version(image_module, tmp_path):
    base = tmp_path / "shapes"
    first = _report(_export_here(image_module, base, 0))
    for point in ("export:before-placing", "export:old-version-aside"):
        assert killed(_export(image_module, base, 1, 1, "--overwrite", kill_at=point))
        clean_stale_files(base)  # what the next export does first
        assert numeric_versions(base) == [1], point
        _assert_complete_versions(base)
        assert not [name for name in os.listdir(base) if name.startswith(".")], point
    served = _report(_export_here(image_module, base, 0, 1, overwrite=True))
    assert served["path"] == first["path"] and served["max_abs_difference"] < 1e-5


def test_kill_at_random_times_never_leaves_a_torn_version(image_module, tmp_path):
    base = tmp_path / "shapes"
    _report(_export_here(image_module, base, 0))
    for delay in (3.0, 4.5, 6.0, 7.5):
        with started(python_command(WORKER, image_module, base, 1, 1, "--overwrite")) as process:
            time.sleep(delay)
            process.kill()
        _assert_complete_versions(base)
    clean_stale_files(base)
    assert numeric_versions(base) == [1]
    _assert_complete_versions(base)


def test_two_exporters_get_distinct_versions(image_module, tmp_path):
    base = tmp_path / "race"
    with (
        started(python_command(WORKER, image_module, base, 1)) as one,
        started(python_command(WORKER, image_module, base, 2)) as two,
    ):
        outputs = [process.communicate(timeout=240) for process in (one, two)]
    reports = [json.loads(stdout.strip().splitlines()[-1]) for stdout, _ in outputs]
    assert sorted(report["path"] for report in reports) == [str(base / "1"), str(base / "2")]
    # Each exporter served its own model from its own version: nothing torn.
    assert all(report["max_abs_difference"] < 1e-5 for report in reports)
    assert sorted(os.listdir(base)) == ["1", "2"]


def test_two_exporters_of_one_explicit_version(image_module, tmp_path):
    base = tmp_path / "race"
    with (
        started(python_command(WORKER, image_module, base, 1, 5)) as one,
        started(python_command(WORKER, image_module, base, 2, 5)) as two,
    ):
        outputs = [process.communicate(timeout=240) for process in (one, two)]
    reports = [json.loads(stdout.strip().splitlines()[-1]) for stdout, _ in outputs]
    winners = [report for report in reports if "path" in report]
    losers = [report for report in reports if "error" in report]
    assert len(winners) == 1 and len(losers) == 1, reports
    assert winners[0]["max_abs_difference"] < 1e-5
    assert "being written by another export" in losers[0]["error"] or "already exists" in losers[0]["error"]
    assert "version=None" in losers[0]["error"]
    assert sorted(os.listdir(base)) == ["5"]


def test_lock_of_a_live_process_is_respected(tmp_path):
    from tfxfer.export.version_slots import reserved_version

    base = tmp_path / "m"
    with reserved_version(base) as (version, _):
        assert version == 1
        assert clean_stale_files(base) == []  # our own lock: alive
        with reserved_version(base) as (second, _):
            assert second == 2
        with pytest.raises(FileExistsError, match="being written by another export"):
            with reserved_version(base, 1):
                pass
    assert os.listdir(base) == []
