"""Keras 3 `fit` on two real worker processes (127.0.0.1, free ports), with and without the fix."""

import json
import pathlib
import sys

import numpy as np
import pytest

from tests.subprocesses import REPO, environment
from tfxfer.distribute.local_cluster import LocalCluster
from tfxfer.distribute.multi_worker_fix import UPSTREAM_ISSUE

WORKER = str(pathlib.Path(__file__).with_name("multi_worker_worker.py"))
TIMEOUT = 240


def _two_workers(tmp_path, *arguments):
    command = [sys.executable, WORKER, *map(str, arguments)]
    with LocalCluster(
        command, 2, log_dir=tmp_path, env=environment(), cwd=REPO, chief_output=tmp_path / "worker-0.log"
    ) as job:
        code = job.wait(timeout=TIMEOUT)
        assert code == 0, f"worker {job.failed_worker} exited {code}:\n{job.tail(job.failed_worker or 0, 40)}"


def _one_process(tmp_path, *arguments):
    import subprocess

    result = subprocess.run(
        [sys.executable, WORKER, *map(str, arguments)],
        env=environment(),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_upstream_keras_still_needs_the_fix(tmp_path):
    """Fails when keras-team/keras#20585 is fixed: then delete tfxfer/distribute/multi_worker_fix.py."""
    _two_workers(tmp_path, "plain_keras", tmp_path / "plain.json")
    outcome = json.loads((tmp_path / "plain.json").read_text())
    assert outcome["fit"] == "failed", (
        f"Plain Keras now trains on two workers: {UPSTREAM_ISSUE} is fixed upstream. Remove "
        "tfxfer/distribute/multi_worker_fix.py and the MultiWorkerFix base of TransferModel."
    )
    assert "PerReplica" in outcome["error"] or "DistributedValues" in outcome["error"], outcome["error"]


CASES = ["l2sp", "discriminative", "gradual"]


@pytest.fixture(scope="module")
def every_case_stepped(image_module, tmp_path_factory):
    """Every case's step on two workers and in one process: all cases in the same processes, one after another.

    One start-up of TensorFlow and of the cluster for the three cases (each
    case starts from the same seeds, see multi_worker_worker.py).
    """
    tmp_path = tmp_path_factory.mktemp("steps")
    (tmp_path / "two").mkdir()
    (tmp_path / "one").mkdir()
    _two_workers(tmp_path, ",".join(CASES), tmp_path / "two", image_module)
    _one_process(tmp_path, ",".join(CASES), tmp_path / "one", image_module)
    return tmp_path


@pytest.mark.parametrize("case", CASES)
def test_two_workers_take_the_single_process_step(case, every_case_stepped):
    """2 workers × 1 replica on one global batch = one process on it: the penalty counts once."""
    two = np.load(every_case_stepped / "two" / f"{case}.npz")
    one = np.load(every_case_stepped / "one" / f"{case}.npz")
    assert int(two["replicas"]) == 2 and int(one["replicas"]) == 1
    assert set(two.files) == set(one.files)
    differences = {key: float(np.abs(two[key] - one[key]).max()) for key in one.files if key != "replicas"}
    print(case, "largest difference:", max(differences.values()))
    assert max(differences.values()) <= 1e-5, differences
    assert "regularization_loss" in one.files and float(one["regularization_loss"][0]) > 0
    if case == "gradual":
        assert int(one["trainable"]) > 2  # the second epoch unfroze a block
