import os

import numpy as np
import pytest
import tensorflow as tf

from tfxfer import TransferModel, export_for_serving
from tfxfer.regularizers import L2SP


def _image_bytes(count, size=(10, 10), seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 255, (count,) + size + (3,), dtype=np.uint8)
    return images, tf.stack([tf.io.encode_png(image) for image in images])


def _stored_values(path):
    return [(name, shape) for name, shape in tf.train.list_variables(os.path.join(path, "variables", "variables"))
            if name.endswith("VARIABLE_VALUE")]


def test_versioned_atomic_layout(image_module, tmp_path):
    model = TransferModel.from_hub(image_module, num_classes=2, input_shape=(10, 10, 3))
    base = tmp_path / "saved_models" / "shapes"
    first = export_for_serving(model, base)
    second = export_for_serving(model, base)
    assert (first, second) == (str(base / "1"), str(base / "2"))
    assert sorted(os.listdir(base)) == ["1", "2"]  # no temporary folders left
    with pytest.raises(FileExistsError, match="already exists; TF Serving may be serving it"):
        export_for_serving(model, base, version=2)
    assert export_for_serving(model, base, version=2, overwrite=True) == str(base / "2")


def test_image_signatures_match_the_model(image_module, tmp_path):
    model = TransferModel.from_hub(image_module, num_classes=2, input_shape=(10, 10, 3),
                                   regularizer=L2SP(1.0, 1.0), trainable_backbone=True)
    path = export_for_serving(model, tmp_path / "m", class_names=["dark", "light"])
    loaded = tf.saved_model.load(path)
    assert set(loaded.signatures) == {"serving_default", "predict_preprocessed"}
    serving = loaded.signatures["serving_default"]
    assert list(serving.structured_input_signature[1]) == ["image_bytes"]
    images, encoded = _image_bytes(3)
    outputs = serving(image_bytes=encoded)
    assert set(outputs) == {"probabilities", "class_ids", "class_names"}
    expected = model.predict(images.astype("float32") / 255.0, verbose=0)
    np.testing.assert_allclose(outputs["probabilities"].numpy(), expected, atol=1e-5)
    np.testing.assert_array_equal(outputs["class_ids"].numpy(), expected.argmax(-1))
    names = [name.decode() for name in outputs["class_names"].numpy()]
    assert names == [["dark", "light"][i] for i in expected.argmax(-1)]
    preprocessed = loaded.signatures["predict_preprocessed"](inputs=tf.constant(images / 255.0, tf.float32))
    np.testing.assert_allclose(preprocessed["probabilities"].numpy(), expected, atol=1e-5)
    # Only the serving weights, each once: no w0 copies, no optimizer slots.
    stored = _stored_values(path)
    assert len(stored) == len(model.backbone.weights) + len(model.head.weights)


def test_text_models_tokenize_in_the_graph(dict_module, text_preprocessor_module, tiny_bert_preset, tmp_path):
    texts = ["good film", "awful plot twist"]
    for name, model in [
        ("hub", TransferModel.from_hub(dict_module, num_classes=2, preprocessor=text_preprocessor_module)),
        ("preset", TransferModel.from_preset(tiny_bert_preset, num_classes=3, sequence_length=8)),
    ]:
        path = export_for_serving(model, tmp_path / name)
        serving = tf.saved_model.load(path).signatures["serving_default"]
        assert list(serving.structured_input_signature[1]) == ["text"]
        outputs = serving(text=tf.constant(texts))
        np.testing.assert_allclose(outputs["probabilities"].numpy(), model.predict(texts, verbose=0), atol=1e-5)


def test_bad_arguments(image_module, tmp_path):
    model = TransferModel.from_hub(image_module, num_classes=2)
    with pytest.raises(ValueError, match="class_names has 3 names but the model has 2 classes"):
        export_for_serving(model, tmp_path / "m", class_names=["a", "b", "c"])
    with pytest.raises(ValueError, match="version must be a positive integer"):
        export_for_serving(model, tmp_path / "m", version=0)


def test_warmup_requests_parse_back(image_module, dict_module, text_preprocessor_module, tmp_path):
    from tfxfer.export import read_warmup_requests

    model = TransferModel.from_hub(image_module, num_classes=2, input_shape=(10, 10, 3))
    path = export_for_serving(model, tmp_path / "images")
    requests = read_warmup_requests(path)
    assert [r.model_spec.signature_name for r in requests] == ["serving_default"] * 2
    assert requests[0].model_spec.name == "images"
    batch = tf.make_ndarray(requests[1].inputs["image_bytes"])
    assert batch.shape == (2,) and batch[0][:2] == b"\xff\xd8"  # JPEG bytes

    text_model = TransferModel.from_hub(dict_module, num_classes=2, preprocessor=text_preprocessor_module)
    path = export_for_serving(text_model, tmp_path / "texts", warmup_inputs=["good film", "bad plot"])
    (request,) = read_warmup_requests(path)
    assert list(tf.make_ndarray(request.inputs["text"])) == [b"good film", b"bad plot"]


def test_verify_and_predict_from_export(image_module, dict_module, text_preprocessor_module, tmp_path):
    from tfxfer import predict_from_export, verify_export

    model = TransferModel.from_hub(image_module, num_classes=2, input_shape=(10, 10, 3))
    path = export_for_serving(model, tmp_path / "images", class_names=["dark", "light"])
    _, encoded = _image_bytes(2, seed=5)
    samples = [bytes(v) for v in encoded.numpy()]
    report = verify_export(path, samples, model)
    assert report["max_abs_difference"] <= 1e-5 and report["examples"] == 2
    outputs = predict_from_export(path, samples)
    assert outputs["probabilities"].shape == (2, 2)
    assert {n.decode() for n in outputs["class_names"]} <= {"dark", "light"}

    text_model = TransferModel.from_hub(dict_module, num_classes=2, preprocessor=text_preprocessor_module)
    text_path = export_for_serving(text_model, tmp_path / "texts")
    assert verify_export(text_path, ["good film", "awful plot"], text_model)["max_abs_difference"] <= 1e-5


def test_verify_export_catches_a_different_model(image_module, tmp_path):
    from tfxfer import verify_export

    model = TransferModel.from_hub(image_module, num_classes=2, input_shape=(10, 10, 3))
    path = export_for_serving(model, tmp_path / "m")
    other = TransferModel.from_hub(image_module, num_classes=2, input_shape=(10, 10, 3))
    other.head.dense.kernel.assign(other.head.dense.kernel + 1.0)
    _, encoded = _image_bytes(2, seed=6)
    with pytest.raises(AssertionError, match="differs from the model"):
        verify_export(path, [bytes(v) for v in encoded.numpy()], other)
