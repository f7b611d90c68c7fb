import hashlib
import shutil

import pytest
import tensorflow as tf

from tfxfer.backbones.hub_module import load_hub_module, resolve_handle


def test_local_directory_resolves_to_itself(image_module):
    assert resolve_handle(image_module) == image_module


def test_missing_path_names_the_path(tmp_path):
    missing = tmp_path / "no_such_module"
    with pytest.raises(FileNotFoundError, match="TF Hub module not found.*no_such_module"):
        resolve_handle(str(missing))


def test_directory_without_saved_model_is_rejected(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="not a SavedModel directory.*notes.txt"):
        resolve_handle(str(tmp_path))


def test_file_instead_of_directory_is_rejected(tmp_path):
    archive = tmp_path / "module.tar.gz"
    archive.write_bytes(b"\x1f\x8b")
    with pytest.raises(ValueError, match="is a file, not a SavedModel directory"):
        resolve_handle(str(archive))


def test_legacy_tf1_hub_module_is_rejected(tf1_hub_module):
    with pytest.raises(ValueError, match="legacy TF1 Hub module"):
        load_hub_module(tf1_hub_module)


def test_unreachable_url_explains_offline_options(monkeypatch, tmp_path):
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path))
    with pytest.raises(OSError, match="Could not fetch TF Hub module.*TFHUB_CACHE_DIR"):
        resolve_handle("https://models.example.invalid/image/feature_vector/1")


def test_url_handle_is_served_from_a_prefilled_cache(monkeypatch, tmp_path, image_module):
    handle = "https://www.kaggle.com/models/tfxfer/tiny/TensorFlow2/feature-vector/1"
    cached = tmp_path / hashlib.sha1(handle.encode("utf8")).hexdigest()
    shutil.copytree(image_module, cached)
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path))
    module = load_hub_module(handle)
    assert len(module.variables) == 18


def test_corrupt_saved_model_gives_a_load_error(tmp_path):
    (tmp_path / "saved_model.pb").write_bytes(b"not a protobuf")
    with pytest.raises(ValueError, match="Could not load TF Hub module"):
        load_hub_module(str(tmp_path))


def test_loads_restored_object(image_module):
    module = load_hub_module(image_module)
    outputs = module(tf.zeros([2, 9, 9, 3]), training=False)
    assert outputs.shape == (2, 4)
