import json

import pytest

from tfxfer.runs import TrainConfig, load_config


def test_file_values_and_overrides(tmp_path):
    (tmp_path / "data").mkdir()
    config_file = tmp_path / "run.yaml"
    config_file.write_text("backbone: https://tfhub.dev/x/1\ndata: data\nepochs: 5\nbatch-size: 8\n")
    config = load_config(config_file, epochs=2)
    assert config.epochs == 2 and config.batch_size == 8
    assert config.data == str(tmp_path / "data")  # relative to the config file
    assert config.backbone == "https://tfhub.dev/x/1"
    json_file = tmp_path / "run.json"
    json_file.write_text(json.dumps({"preset": "bert_tiny_en_uncased", "data": "tfds:imdb_reviews"}))
    config = load_config(json_file)
    assert config.preset == "bert_tiny_en_uncased" and config.run_name == "imdb_reviews"


def test_bad_config_files(tmp_path):
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("backbone: x\ndata: y\nepoch: 3\n")
    with pytest.raises(ValueError, match="unknown option\\(s\\) epoch. Known options: .*epochs"):
        load_config(unknown)
    broken = tmp_path / "broken.yaml"
    broken.write_text("backbone: [unclosed\n")
    with pytest.raises(ValueError, match="is not valid YAML"):
        load_config(broken)
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(ValueError, match="must hold a mapping"):
        load_config(listing)
    with pytest.raises(FileNotFoundError, match="Config file not found"):
        load_config(tmp_path / "missing.yaml")


def test_a_bare_off_in_yaml_means_off(tmp_path):
    written = tmp_path / "off.yaml"
    written.write_text("backbone: x\ndata: y\nmixed_precision: off\n")  # YAML 1.1 reads it as false
    assert load_config(written).mixed_precision == "off"


@pytest.mark.parametrize(
    "options, message",
    [
        ({"data": "d"}, "exactly one of backbone"),
        ({"backbone": "b", "preset": "p", "data": "d"}, "exactly one of backbone"),
        ({"backbone": "b"}, "No data given"),
        ({"backbone": "b", "data": "d", "recipe": "magic"}, "recipe must be one of"),
        ({"backbone": "b", "data": "d", "epochs": 0}, "epochs must be at least 1"),
        ({"backbone": "b", "data": "d", "validation_split": 1.5}, "validation_split must be in"),
    ],
)
def test_invalid_options(options, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**options)


def test_saved_config_uses_absolute_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "images").mkdir()
    values = TrainConfig(backbone="https://tfhub.dev/x/1", data="images").to_dict(absolute_paths=True)
    assert values["data"] == str(tmp_path / "images")
    assert values["backbone"] == "https://tfhub.dev/x/1"
    assert values["image_size"] == [224, 224]
