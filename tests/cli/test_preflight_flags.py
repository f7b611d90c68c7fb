"""Issue 24, items 10, 11 and 14 (lr-find): the CLI names its flags, and writes where they say."""

import json

import pytest

from tfxfer.cli.main import main


def _cli(argv, capsys):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _train_argv(image_module, image_folder, tmp_path, *extra, command="train"):
    return [command, "--backbone", image_module, "--data", image_folder, "--image-size", 10, 10,
            "--runs-dir", tmp_path / "runs", "--export-dir", tmp_path / "saved_models", "--quiet", *extra]  # fmt: skip


def _one_clear_line(code, err):
    assert code == 2, err
    assert "Traceback" not in err and "Errno" not in err, err
    assert len(err.strip().splitlines()) == 2, err  # the message and the TFXFER_DEBUG hint


def test_cache_features_with_augmentation_is_refused(image_module, image_folder, tmp_path, capsys):
    code, _, err = _cli(_train_argv(image_module, image_folder, tmp_path, "--cache-features"), capsys)
    _one_clear_line(code, err)
    assert "--cache-features" in err and "--augment default" in err and "--augment none" in err, err
    assert "cache_features=" not in err
    assert not (tmp_path / "runs").exists()
    argv = _train_argv(image_module, image_folder, tmp_path, "--cache-features", "--augment", "randaugment")
    code, _, err = _cli(argv, capsys)
    assert code == 2 and "--augment randaugment" in err, err


@pytest.mark.parametrize(
    "flag, where, problem",
    [
        ("--export-dir", "/proc/tfxfer-x", "cannot be created"),
        ("--runs-dir", "FILE", "is a file, not a folder"),
        ("--runs-dir", "FILE/runs", "cannot be created"),
    ],
)
def test_unusable_output_folders_are_named_before_training(
    image_module, image_folder, tmp_path, capsys, flag, where, problem
):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    where = where.replace("FILE", str(blocker))
    code, _, err = _cli(_train_argv(image_module, image_folder, tmp_path, flag, where), capsys)
    _one_clear_line(code, err)
    assert f"{flag} {where} {problem}" in err, err
    assert not (tmp_path / "runs").exists() and not (tmp_path / "saved_models").exists()


def test_export_command_names_an_unusable_export_dir(image_module, tmp_path, capsys):
    import tfxfer

    model_file = tmp_path / "model.keras"
    tfxfer.TransferModel.from_hub(image_module, num_classes=2, input_shape=(10, 10, 3)).save(model_file)
    code, _, err = _cli(["export", model_file, "--export-dir", "/proc/tfxfer-x"], capsys)
    _one_clear_line(code, err)
    assert "--export-dir /proc/tfxfer-x cannot be created" in err, err


def test_lr_find_writes_into_a_run_style_folder_under_runs_dir(
    image_module, image_folder, tmp_path, capsys, monkeypatch
):
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    argv = _train_argv(image_module, image_folder, tmp_path, "--steps", 5, "--batch-size", 8, "--name", "probe",
                       command="lr-find")  # fmt: skip
    argv.remove("--quiet")
    code, out, err = _cli(argv, capsys)
    assert code == 0, err
    assert list(here.iterdir()) == []  # nothing in the current folder
    (folder,) = (tmp_path / "runs").iterdir()
    assert folder.name.startswith("probe-lr-find-")
    assert sorted(p.name for p in folder.iterdir()) == ["lr_find.json", "lr_find.png"]  # no temporaries
    assert len(json.loads((folder / "lr_find.json").read_text())["learning_rates"]) == 5
    assert f"curve in {folder / 'lr_find.png'}" in out, out

    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    argv = _train_argv(image_module, image_folder, tmp_path, "--runs-dir", blocker, command="lr-find")
    code, _, err = _cli(argv, capsys)
    _one_clear_line(code, err)
    assert f"--runs-dir {blocker} is a file, not a folder" in err, err
