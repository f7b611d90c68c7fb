"""Locks and version reservations under real races: many trials, two processes at once."""

import json
import multiprocessing
import os
import time

from tfxfer.export.version_slots import place_version, reserved_version
from tfxfer.utils.owner_lock import OwnerLock, lock_is_free

TRIALS = 40


def _take(path, start, results, both_tried):
    while time.time() < start:
        pass
    lock = OwnerLock(path)
    results.put(lock.acquire())
    both_tried.wait(30)  # the winner holds it until the other has tried, however slow its start
    lock.release()


def _race(target, *arguments):
    context = multiprocessing.get_context("fork")
    results, both_tried = context.Queue(), context.Event()
    start = time.time() + 0.15
    extra = (both_tried,) if target is _take else ()
    processes = [context.Process(target=target, args=(*arguments, start, results, *extra)) for _ in range(2)]
    for process in processes:
        process.start()
    try:
        outcome = [results.get(timeout=30) for _ in processes]
        both_tried.set()
        return outcome
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
                process.join()


def test_a_dead_holders_lock_goes_to_exactly_one_of_two_racers(tmp_path):
    for trial in range(TRIALS):
        path = tmp_path / f"{trial}.lock"
        path.write_text(json.dumps({"host": os.uname().nodename, "pid": 999999, "token": "dead"}))
        assert sorted(_race(_take, path)) == [False, True], f"trial {trial}"
        assert not path.exists()  # released and deleted


def _export(base, start, results):
    while time.time() < start:
        pass
    with reserved_version(base) as (version, temporary):
        temporary.mkdir()
        (temporary / "saved_model.pb").write_bytes(str(os.getpid()).encode())
        time.sleep(0.05)
        results.put((version, str(place_version(base, version, temporary))))


def test_two_exporters_after_a_killed_one_get_distinct_versions(tmp_path):
    for trial in range(TRIALS):
        base = tmp_path / str(trial)
        base.mkdir()
        (base / ".version-1.lock").write_text(json.dumps({"pid": 999999, "host": "x", "token": "dead"}))
        (base / ".tmp-1-dead").mkdir()  # the killed exporter's half-written version
        versions = sorted(version for version, _ in _race(_export, base))
        assert versions == [1, 2], f"trial {trial}: {versions}"
        assert sorted(os.listdir(base)) == ["1", "2"]


def test_a_lock_is_free_once_its_holder_is_gone(tmp_path):
    lock = OwnerLock(tmp_path / "run.lock")
    assert lock.acquire() and not lock_is_free(tmp_path / "run.lock")
    assert lock.owner()["pid"] == os.getpid()
    lock.release()
    assert lock_is_free(tmp_path / "run.lock")
