"""Issue 24, items 10 and 11: options that cannot work are refused before a run folder exists."""

import pytest

from tfxfer.runs import TrainConfig, train_run, training_job


def _config(image_module, image_folder, tmp_path, **options):
    values = dict(
        backbone=image_module, data=str(image_folder), image_size=(10, 10), epochs=1, head_epochs=0,
        batch_size=8, runs_dir=str(tmp_path / "runs"), export_dir=str(tmp_path / "saved_models"),
    )  # fmt: skip
    return TrainConfig(**{**values, **options})


@pytest.fixture
def nothing_loads(monkeypatch):
    """Fails the test if the run gets as far as loading its data."""

    def load_run_data(*args, **kwargs):
        raise AssertionError("the run loaded its data before refusing")

    monkeypatch.setattr(training_job, "load_run_data", load_run_data)


def test_cache_features_with_augmentation_is_refused_naming_both(image_module, image_folder, tmp_path, nothing_loads):
    config = _config(image_module, image_folder, tmp_path, cache_features=True, augment="default")
    with pytest.raises(ValueError) as raised:
        train_run(config, verbose=0)
    message = str(raised.value)
    assert "cache_features=True" in message and "augment='default'" in message, message
    assert "augment='none'" in message  # and what to do instead
    assert not (tmp_path / "runs").exists()


def test_cache_features_by_default_is_used_only_where_it_can_be(image_module, image_folder, tmp_path):
    # Not given: augmentation trains on fresh images, no refusal; without augmentation the cache is used.
    # (No exports: they are not the point here, and each costs a SavedModel and a fresh process.)
    probe = dict(recipe="linear_probe", export=False)
    augmented = train_run(_config(image_module, image_folder, tmp_path, **probe), verbose=0)
    assert augmented["cached_features"] is None
    plain = train_run(_config(image_module, image_folder, tmp_path, augment="none", **probe), verbose=0)
    assert plain["cached_features"]["examples"] == 24
    asked = _config(image_module, image_folder, tmp_path, augment="none", cache_features=True, **probe)
    assert train_run(asked, verbose=0)["cached_features"]["examples"] == 24


@pytest.mark.parametrize("name", ["runs_dir", "export_dir"])
def test_an_output_folder_that_is_a_file_is_named(image_module, image_folder, tmp_path, nothing_loads, name):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    for where, problem in ((blocker, "is a file, not a folder"), (blocker / "inside", f"{blocker} is a file")):
        config = _config(image_module, image_folder, tmp_path, **{name: str(where)})
        with pytest.raises(ValueError) as raised:
            train_run(config, verbose=0)
        message = str(raised.value)
        assert message.startswith(f"{name} {where}") and problem in message, message
        assert "Errno" not in message
    assert not (tmp_path / "runs").exists()


def test_an_export_folder_that_cannot_be_created_is_named(image_module, image_folder, tmp_path, nothing_loads):
    config = _config(image_module, image_folder, tmp_path, export_dir="/proc/tfxfer-x")
    with pytest.raises(ValueError, match=r"^export_dir /proc/tfxfer-x cannot be created"):
        train_run(config, verbose=0)
    assert not (tmp_path / "runs").exists()
    # Without an export the folder does not matter.
    from tfxfer.runs.output_folders import check_output_folders

    check_output_folders(_config(image_module, image_folder, tmp_path, export_dir="/proc/tfxfer-x", export=False))
    assert not (tmp_path / "runs").exists()  # the check writes nothing that stays


def test_moved_data_must_map_options_to_paths(tmp_path):
    from tfxfer.runs import resume_run

    (tmp_path / "config.yaml").write_text("data: photos\n")
    with pytest.raises(ValueError, match=r"moved_data maps 'data'.*got str"):
        resume_run(tmp_path, moved_data="photos_moved")
