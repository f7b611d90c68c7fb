"""Issue 24, items 12 and 13: `tfxfer info` on plain Keras exports and on text exports."""

import pytest

from tfxfer import TransferModel, export_for_serving
from tfxfer.cli.main import main


def _cli(argv, capsys):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_info_on_a_keras_export_describes_it_and_suggests_what_works(image_module, tmp_path, capsys):
    model = TransferModel.from_hub(image_module, num_classes=2, input_shape=(10, 10, 3))
    model.export(str(tmp_path / "plain"), verbose=False)
    code, out, err = _cli(["info", tmp_path / "plain"], capsys)
    assert code == 0, err
    # --signature is a flag of train, not of info: suggested only as such.
    assert all("tfxfer train --backbone" in line for line in out.splitlines() if "--signature" in line), out
    assert f"tfxfer train --backbone {tmp_path / 'plain'} --signature serving_default" in out
    assert f"SavedModel: {tmp_path / 'plain'}" in out and "not a tfxfer export" in out
    assert "signature serve: inputs {inputs: float32[?, 10, 10, 3]}" in out, out
    # What predict and evaluate take instead, in their own words.
    assert "tfxfer export RUN_FOLDER_OR_MODEL.keras" in out and "tfxfer predict" in out, out


@pytest.fixture(scope="module")
def text_export(tiny_bert_preset, tmp_path_factory):
    model = TransferModel.from_preset(tiny_bert_preset, num_classes=2, sequence_length=8)
    return export_for_serving(model, tmp_path_factory.mktemp("exports") / "texts")


def test_info_on_a_text_export_says_tensorflow_text_is_needed(text_export, capsys):
    code, out, err = _cli(["info", text_export], capsys)
    assert code == 0, err
    assert "import tensorflow_text" in out and "RegexSplitWithOffsets" in out, out


def test_info_on_an_image_export_does_not(image_module, tmp_path, capsys):
    model = TransferModel.from_hub(image_module, num_classes=2, input_shape=(10, 10, 3))
    code, out, err = _cli(["info", export_for_serving(model, tmp_path / "images")], capsys)
    assert code == 0, err
    assert "tensorflow_text" not in out
