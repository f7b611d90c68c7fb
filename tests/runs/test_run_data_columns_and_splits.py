"""A run reads a CSV's columns by their header names, and refuses a split that holds nothing out (issue 24)."""

import numpy as np
import pytest

from tfxfer.cli.main import main
from tfxfer.data import DataError, stratified_split
from tfxfer.runs import TrainConfig
from tfxfer.runs.run_data import load_run_data


def _cli(argv, capsys):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _train_argv(dict_module, text_preprocessor_module, data, tmp_path, *extra):
    return ["train", "--backbone", dict_module, "--preprocessor", text_preprocessor_module, "--data", data,
            "--runs-dir", tmp_path / "runs", "--export-dir", tmp_path / "saved_models", "--quiet", *extra]  # fmt: skip


def test_a_run_reads_a_text_label_header_by_its_names(dict_module, tmp_path):
    # The c.csv: 33 rows under `text,label` came out as 33 classes.
    path = tmp_path / "c.csv"
    path.write_text("text,label\n" + "".join(f"review {i} here,{'pos' if i % 2 else 'neg'}\n" for i in range(33)))
    data = load_run_data(TrainConfig(backbone=dict_module, data=str(path), validation_split=0.2))
    assert data.class_names == ["neg", "pos"] and (data.train_size, data.validation_size) == (27, 6)
    # --text-column joins comma-separated columns (AG News: title and description).
    news = tmp_path / "news.csv"
    news.write_text("class,title,description\n" + "".join(f"{i % 2},Title {i},Body {i}\n" for i in range(10)))
    data = load_run_data(TrainConfig(backbone=dict_module, data=str(news), text_column="title,description"))
    assert sorted(text for text, _ in data.train_examples + data.validation_examples)[0] == "Title 0 Body 0"


def test_an_empty_validation_split_stops_train_before_a_run_folder(
    dict_module, text_preprocessor_module, tmp_path, capsys
):
    path = tmp_path / "c.csv"
    path.write_text("text,label\n" + "".join(f"good film {i},class{i}\n" for i in range(4)))
    argv = _train_argv(dict_module, text_preprocessor_module, path, tmp_path, "--validation-split", 0.2)
    code, _, err = _cli(argv, capsys)
    assert code == 2, err
    assert "--validation-split 0.2 holds out no examples" in err and "'class0': 1, 'class1': 1" in err, err
    assert "validation_split" not in err.replace("--validation-split", "") and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_an_image_folder_split_that_holds_out_nothing_is_an_error(image_module, tmp_path):
    import tensorflow as tf

    for name in ("dark", "light"):
        (tmp_path / "one" / name).mkdir(parents=True)
        image = np.full((10, 10, 3), 30 if name == "dark" else 220, np.uint8)
        (tmp_path / "one" / name / "0.png").write_bytes(tf.io.encode_png(image).numpy())
    # The run's default split (0.2) too: the run would otherwise report accuracy on training data.
    with pytest.raises(DataError, match=r"validation_split=0.2 holds out no examples.*'dark': 1, 'light': 1"):
        load_run_data(TrainConfig(backbone=image_module, data=str(tmp_path / "one")))


def test_a_split_with_no_examples_to_split_is_an_error():
    with pytest.raises(DataError, match=r"validation_split=0.5 holds out no examples: there are no examples"):
        stratified_split([], 0.5, 0)
