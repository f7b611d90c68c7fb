import json
import sys
import time

from tfxfer.distribute import LocalCluster, free_ports, worker_role, worker_tf_config


def test_free_ports_are_distinct():
    ports = free_ports(4)
    assert len(set(ports)) == 4 and all(1024 < port < 65536 for port in ports)


def test_each_worker_gets_its_own_tf_config(tmp_path):
    script = "import os, sys; open(sys.argv[1] + os.environ['TF_CONFIG'][-3:-2], 'w').write(os.environ['TF_CONFIG'])"
    with LocalCluster([sys.executable, "-c", script, str(tmp_path / "config-")], 3, log_dir=tmp_path) as job:
        assert job.wait(timeout=60) == 0
    roles = [worker_role((tmp_path / f"config-{index}").read_text()) for index in range(3)]
    assert [(role.index, role.workers, role.is_chief) for role in roles] == [(0, 3, True), (1, 3, False), (2, 3, False)]
    cluster = json.loads((tmp_path / "config-0").read_text())["cluster"]["worker"]
    assert cluster == [f"127.0.0.1:{port}" for port in job.ports]


def test_one_failing_worker_stops_the_others(tmp_path):
    script = (
        "import json, os, sys, time; i = json.loads(os.environ['TF_CONFIG'])['task']['index']; "
        "print('worker', i, flush=True); time.sleep(120) if i == 0 else sys.exit(3)"
    )
    started = time.monotonic()
    with LocalCluster([sys.executable, "-c", script], 2, log_dir=tmp_path, chief_output=tmp_path / "chief.log") as job:
        code = job.wait(timeout=60)
    assert (code, job.failed_worker) == (3, 1)
    assert time.monotonic() - started < 30
    assert all(process.poll() is not None for process in job.processes)  # all reaped
    assert "worker 1" in job.tail(1) and "worker 0" in job.tail(0)


def test_timeout_stops_everyone(tmp_path):
    with LocalCluster(
        [sys.executable, "-c", "import time; time.sleep(120)"], 2, log_dir=tmp_path, chief_output=tmp_path / "chief.log"
    ) as job:
        assert job.wait(timeout=1) == 124
    assert all(process.poll() is not None for process in job.processes)


def test_worker_role_without_and_with_a_chief_task():
    assert worker_role("") == worker_role("  ")
    assert worker_role("").is_chief and worker_role("").workers == 1
    config = {"cluster": {"chief": ["a:1"], "worker": ["b:1", "c:1"]}, "task": {"type": "worker", "index": 0}}
    role = worker_role(json.dumps(config))
    assert (role.workers, role.is_chief) == (3, False)
    config["task"] = {"type": "chief", "index": 0}
    assert worker_role(json.dumps(config)).is_chief
    assert json.loads(worker_tf_config([1, 2], 0))["cluster"]["worker"] == ["127.0.0.1:1", "127.0.0.1:2"]


def test_batches_that_leave_a_replica_empty():
    from tfxfer.distribute.dataset_sharding import batch_size_for_replicas, leaves_a_replica_empty

    # Checked against tf.distribute's own split on 2 and 3 workers (12 examples, batch 8: [4, 4] + [2, 2]
    # on two; [3, 3, 2] + [2, 2, 0] on three).
    assert not leaves_a_replica_empty(12, 8, 2)
    assert leaves_a_replica_empty(12, 8, 3)
    assert leaves_a_replica_empty(24, 4, 3)  # every batch of 4 splits 2 + 2 + 0
    assert not leaves_a_replica_empty(24, 8, 1)
    size = batch_size_for_replicas([24, 12], 8, 3)
    assert not leaves_a_replica_empty(24, size, 3) and not leaves_a_replica_empty(12, size, 3)
