"""Issue 24, items 13 and 15: what a user needs to load and check an export is written down."""

import json
import pathlib

from tfxfer import TransferModel, export_for_serving

SERVING_GUIDE = pathlib.Path(__file__).resolve().parents[2] / "docs" / "serving.md"


def _note(path):
    extra = pathlib.Path(path) / "assets.extra"
    return (extra / "README.txt").read_text(), json.loads((extra / "tfxfer_export.json").read_text())


def test_a_text_export_tokenizing_with_tf_text_says_to_import_it(tiny_bert_preset, tmp_path):
    model = TransferModel.from_preset(tiny_bert_preset, num_classes=2, sequence_length=8)
    note, metadata = _note(export_for_serving(model, tmp_path / "texts"))
    assert "import tensorflow_text" in note and "RegexSplitWithOffsets" in note, note
    assert "Op type not registered" in note  # the error a user would otherwise see
    assert metadata["tensorflow_text_ops"] == sorted(metadata["tensorflow_text_ops"])
    assert "RegexSplitWithOffsets" in metadata["tensorflow_text_ops"]


def test_exports_without_tf_text_ops_say_plain_tensorflow_loads_them(
    image_module, dict_module, text_preprocessor_module, tmp_path
):
    for name, model in [
        ("images", TransferModel.from_hub(image_module, num_classes=2, input_shape=(10, 10, 3))),
        ("hub_texts", TransferModel.from_hub(dict_module, num_classes=2, preprocessor=text_preprocessor_module)),
    ]:
        note, metadata = _note(export_for_serving(model, tmp_path / name))
        assert "tensorflow_text" not in note and metadata["tensorflow_text_ops"] == [], (name, note)
        assert "tf.saved_model.load" in note


def test_the_serving_guide_says_so_too():
    serving = SERVING_GUIDE.read_text()
    assert "import tensorflow_text" in serving and "RegexSplitWithOffsets" in serving
    assert "tf.io.decode_image" in serving and "18 gray levels" in serving
