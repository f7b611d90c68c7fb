"""Locks and version reservations under real races: many trials, two processes at once."""

import json
import multiprocessing
import os
import time

from tfxfer.export.version_slots import place_version, reserved_version
from tfxfer.utils.owner_lock import OwnerLock, lock_is_free

TRIALS = 40


def _take(path, both_tried):
    lock = OwnerLock(path)
    taken = lock.acquire()
    both_tried()  # the winner holds it until the other has tried, however slow its start
    lock.release()
    return taken


def _races(target, trials):
    """Two processes run `target(*arguments)` at the same moment, once per trial; the outcomes per trial.

    The same two forked processes run every trial (forking the test process
    twice a trial took most of the time). Before each trial both wait at a
    barrier; its last arrival sets a start a few milliseconds ahead, and
    both spin until it, so the two calls start together. `_take` gets a
    `both_tried` that waits for the other process's attempt.
    """
    context = multiprocessing.get_context("fork")
    results, start = context.Queue(), context.Value("d", 0.0)
    barrier = context.Barrier(2, action=lambda: setattr(start, "value", time.time() + 0.01))

    def both_tried():
        barrier.wait(30)

    def racer():
        try:
            for trial, arguments in enumerate(trials):
                barrier.wait(30)
                while time.time() < start.value:
                    pass
                extra = (both_tried,) if target is _take else ()
                results.put((trial, target(*arguments, *extra)))
            barrier.wait(30)  # both are done: every lock released, every version placed
        except Exception as error:
            barrier.abort()  # the other process stops waiting
            results.put((None, repr(error)))

    processes = [context.Process(target=racer) for _ in range(2)]
    for process in processes:
        process.start()
    try:
        outcomes = [[] for _ in trials]
        for _ in range(2 * len(trials)):
            trial, outcome = results.get(timeout=30)
            assert trial is not None, outcome
            outcomes[trial].append(outcome)
        return outcomes
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
                process.join()


def test_a_dead_holders_lock_goes_to_exactly_one_of_two_racers(tmp_path):
    paths = [tmp_path / f"{trial}.lock" for trial in range(TRIALS)]
    for path in paths:
        path.write_text(json.dumps({"host": os.uname().nodename, "pid": 999999, "token": "dead"}))
    for trial, (path, outcome) in enumerate(zip(paths, _races(_take, [(path,) for path in paths]))):
        assert sorted(outcome) == [False, True], f"trial {trial}"
        assert not path.exists()  # released and deleted


def _export(base):
    with reserved_version(base) as (version, temporary):
        temporary.mkdir()
        (temporary / "saved_model.pb").write_bytes(str(os.getpid()).encode())
        time.sleep(0.05)
        return version, str(place_version(base, version, temporary))


def test_two_exporters_after_a_killed_one_get_distinct_versions(tmp_path):
    bases = [tmp_path / str(trial) for trial in range(TRIALS)]
    for base in bases:
        base.mkdir()
        (base / ".version-1.lock").write_text(json.dumps({"pid": 999999, "host": "x", "token": "dead"}))
        (base / ".tmp-1-dead").mkdir()  # the killed exporter's half-written version
    for trial, (base, outcome) in enumerate(zip(bases, _races(_export, [(base,) for base in bases]))):
        versions = sorted(version for version, _ in outcome)
        assert versions == [1, 2], f"trial {trial}: {versions}"
        assert sorted(os.listdir(base)) == ["1", "2"]


def test_a_lock_is_free_once_its_holder_is_gone(tmp_path):
    lock = OwnerLock(tmp_path / "run.lock")
    assert lock.acquire() and not lock_is_free(tmp_path / "run.lock")
    assert lock.owner()["pid"] == os.getpid()
    lock.release()
    assert lock_is_free(tmp_path / "run.lock")
