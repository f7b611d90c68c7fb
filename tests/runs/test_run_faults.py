"""`tfxfer train` killed with SIGKILL at many points, then `--resume`d, in real subprocesses."""

import json
import pathlib

import keras
import pytest
import tensorflow as tf

from tests.conftest import make_image_folder, relocated_copy
from tests.subprocesses import killed, run, run_in_process, tfxfer_command
from tfxfer.runs.run_folder import RunFolder


def _train_arguments(image_module, image_folder, tmp_path, export):
    return (
        "train", "--backbone", image_module, "--data", image_folder, "--image-size", 10, 10, "--augment", "none",
        "--head-epochs", 1, "--epochs", 2, "--batch-size", 8, "--head-learning-rate", 0.05,
        "--learning-rate", 0.01, "--runs-dir", tmp_path / "runs", "--export-dir", tmp_path / "saved_models",
        "--name", "shapes", "--quiet", "--export" if export else "--no-export",
    )  # fmt: skip


def _train_command(image_module, image_folder, tmp_path, export):
    return tfxfer_command(*_train_arguments(image_module, image_folder, tmp_path, export))


def _only_run_folder(tmp_path):
    (folder,) = (tmp_path / "runs").iterdir()
    return RunFolder(folder)


def _reset_keras():
    # A module fixture is set up before the test's own autouse reset (tests/conftest.py).
    keras.utils.clear_session(free_memory=False)
    keras.utils.set_random_seed(0)


@pytest.fixture(scope="module")
def uninterrupted_run(image_module, tmp_path_factory):
    """One uninterrupted run, no export, on the image_folder fixture's images (the same every time).

    The reference for the resumed runs' metrics, and the completed run that
    test_resume_refusals resumes (on a copy of its own).
    """
    _reset_keras()
    base = tmp_path_factory.mktemp("uninterrupted")
    image_folder = make_image_folder(base)
    result = run_in_process(*_train_arguments(image_module, image_folder, base, export=False))
    assert result.returncode == 0, result.stderr[-3000:]
    return base


@pytest.fixture(scope="module")
def killed_after_the_head_phase(image_module, tmp_path_factory):
    """A run killed (SIGKILL, a real process) at the end of its first epoch, the head phase; and its data.

    For the tests of what a resume does with data that moved: each works on
    a copy of its own (`relocated_copy`: the run's files name the copy's data).
    """
    base = tmp_path_factory.mktemp("killed_after_head")
    image_folder = make_image_folder(base)
    command = _train_command(image_module, image_folder, base, export=False)
    assert killed(run(command, kill_at="train:epoch-end@1"))
    return base


@pytest.mark.parametrize(
    "kill_at, epochs_before, export",
    [
        ("train:epoch-end@1", 1, False),  # the head phase done
        ("backup:before-rename@2", 1, False),  # epoch 2's backup half written
        ("checkpoint:before-rename@1", 0, False),  # the very first checkpoint half written
        ("train:epoch-end@2", 2, False),  # one fine-tuning epoch done
        ("run:before-evaluation", 3, True),  # all epochs done, nothing reported yet
        ("export:before-placing", 3, True),  # the export half written
    ],
)
def test_killed_run_resumes_to_the_end(
    image_module, image_folder, uninterrupted_run, tmp_path, kill_at, epochs_before, export
):
    command = _train_command(image_module, image_folder, tmp_path, export)
    assert killed(run(command, kill_at=kill_at))
    folder = _only_run_folder(tmp_path)
    status = folder.status()
    assert status["state"] == "interrupted" and "is gone" in status["note"]
    assert status["epochs_completed"] == epochs_before or kill_at.startswith(("run:", "export:"))
    if folder.best_checkpoint.exists():
        keras.models.load_model(folder.best_checkpoint)  # whatever was killed, the checkpoint is whole
    # Using the unfinished run is refused, naming the way forward.
    for action in (["export", folder.path], ["evaluate", folder.path]):
        refused = run_in_process(*action)
        assert refused.returncode == 2
        assert "did not complete: interrupted" in refused.stderr
        assert f"tfxfer train --resume {folder.path}" in refused.stderr and "resume_run" not in refused.stderr

    resumed = run_in_process("train", "--resume", folder.path, "--quiet")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    metrics = json.loads(folder.metrics_file.read_text())
    assert folder.status()["state"] == "completed"
    assert len(metrics["history"]["loss"]) == 3  # every epoch, before and after the kill
    assert metrics["resumed_after_epoch"] == (epochs_before or None)
    assert not folder.backup_dir.exists() and not (folder.path / "run.lock").exists()
    assert sorted(p.name for p in folder.best_checkpoint.parent.iterdir()) == ["best.json", "best.keras"]
    assert (folder.logs_dir / "train").is_dir()  # TensorBoard
    if export:
        base = tmp_path / "saved_models" / "shapes"
        assert sorted(p.name for p in base.iterdir()) == ["1"]
        assert "serving_default" in tf.saved_model.load(str(base / "1")).signatures

    reference = json.loads(_only_run_folder(uninterrupted_run).metrics_file.read_text())
    # The epochs before the kill are the uninterrupted run's, exactly; the
    # epochs after it see the data in another shuffled order (a new
    # process), so they agree within noise.
    for key in ("loss", "val_loss"):
        before = metrics["history"][key][:epochs_before]
        assert before == pytest.approx(reference["history"][key][:epochs_before], rel=1e-5)
    assert metrics["evaluation"]["accuracy"] == pytest.approx(reference["evaluation"]["accuracy"], abs=0.25)


def test_resume_refusals(uninterrupted_run, tmp_path):
    folder = _only_run_folder(relocated_copy(uninterrupted_run, tmp_path / "completed"))
    again = run_in_process("train", "--resume", folder.path)
    assert again.returncode == 2 and "already completed; there is nothing to resume" in again.stderr
    assert "start a new run with tfxfer train" in again.stderr
    mixed = run_in_process("train", "--resume", folder.path, "--epochs", 5)
    assert mixed.returncode == 2 and "drop --epochs" in mixed.stderr
    missing = run(tfxfer_command("train", "--resume", tmp_path / "nowhere"))  # the real entry point's stderr
    assert missing.returncode == 2 and "Run folder not found" in missing.stderr
    not_a_run = run_in_process("train", "--resume", tmp_path)
    assert not_a_run.returncode == 2 and "is not a run folder" in not_a_run.stderr
    assert "I0000" not in missing.stderr and "oneDNN" not in missing.stderr


def test_interrupt_marks_the_run(image_module, image_folder, tmp_path):
    import os
    import signal
    import time

    from tests.subprocesses import started

    command = _train_command(image_module, image_folder, tmp_path, export=False)
    with started(command, TFXFER_PAUSE_AT="train:epoch-end") as process:
        deadline = time.time() + 120
        while time.time() < deadline and not (tmp_path / "runs").exists():
            time.sleep(0.2)
        while time.time() < deadline:
            runs = list((tmp_path / "runs").iterdir())
            if runs and (runs[0] / "status.json").exists():
                if json.loads((runs[0] / "status.json").read_text()).get("epochs_completed"):
                    break
            time.sleep(0.2)
        os.kill(process.pid, signal.SIGTERM)  # what a preempting scheduler sends first
        _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-2000:]
    status = _only_run_folder(tmp_path).status()
    assert status["state"] == "interrupted" and "note" not in status
    assert f"--resume {_only_run_folder(tmp_path).path}" in stderr


def test_a_killed_run_whose_data_moved_resumes_with_the_new_path(killed_after_the_head_phase, tmp_path):
    import shutil

    copy = relocated_copy(killed_after_the_head_phase, tmp_path / "killed")
    image_folder, folder = copy / "shapes", _only_run_folder(copy)
    moved = shutil.move(str(image_folder), str(tmp_path / "moved"))
    stuck = run_in_process("train", "--resume", folder.path)
    assert stuck.returncode == 2 and "no longer exists" in stuck.stderr, stuck.stderr[-2000:]
    assert f"tfxfer train --resume {folder.path} --data NEW_PATH" in stuck.stderr
    other = run_in_process("train", "--resume", folder.path, "--epochs", 5, "--data", moved)
    assert other.returncode == 2 and "drop --epochs" in other.stderr
    resumed = run_in_process("train", "--resume", folder.path, "--data", moved, "--quiet")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    config = folder.read_config()
    assert config.data == str(pathlib.Path(moved).resolve()) and config.run_name == "shapes"
    assert json.loads(folder.metrics_file.read_text())["resumed_after_epoch"] == 1
    # Data that is still where the run recorded it is not replaced.
    again = run_in_process("train", "--resume", folder.path, "--data", tmp_path)
    assert again.returncode == 2 and "still exists" in again.stderr, again.stderr[-2000:]
    assert "Drop --data," in again.stderr and "{" not in again.stderr


def test_moved_data_that_is_not_the_runs_data_is_refused_and_the_run_stays_resumable(
    killed_after_the_head_phase, tmp_path
):
    import shutil

    copy = relocated_copy(killed_after_the_head_phase, tmp_path / "killed")
    image_folder, folder = copy / "shapes", _only_run_folder(copy)
    recorded = folder.config_file.read_text()
    moved = shutil.move(str(image_folder), str(tmp_path / "moved"))
    other = tmp_path / "other"
    shutil.copytree(moved, other)
    for split in ("train", "val"):
        (other / split / "dark").rename(other / split / "night")  # other class names
    wrong = run_in_process("train", "--resume", folder.path, "--data", other)
    assert wrong.returncode == 2 and "is not the data the run" in wrong.stderr, wrong.stderr[-2000:]
    assert "class_names" in wrong.stderr and "Pass --data with the folder or file it moved to" in wrong.stderr
    assert folder.config_file.read_text() == recorded  # unchanged: the right data still resumes it
    resumed = run_in_process("train", "--resume", folder.path, "--data", moved, "--quiet")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
