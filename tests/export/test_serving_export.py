import os
import pathlib

import numpy as np
import pytest
import tensorflow as tf

from tests.subprocesses import script_report
from tfxfer import TransferModel, export_for_serving
from tfxfer.regularizers import L2SP


def _image_bytes(count, size=(10, 10), seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 255, (count,) + size + (3,), dtype=np.uint8)
    return images, tf.stack([tf.io.encode_png(image) for image in images])


def _stored_values(path):
    return [
        (name, shape)
        for name, shape in tf.train.list_variables(os.path.join(path, "variables", "variables"))
        if name.endswith("VARIABLE_VALUE")
    ]


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
    model = TransferModel.from_hub(
        image_module, num_classes=2, input_shape=(10, 10, 3), regularizer=L2SP(1.0, 1.0), trainable_backbone=True
    )
    path = export_for_serving(model, tmp_path / "m", class_names=["dark", "light"])
    loaded = tf.saved_model.load(path)
    assert set(loaded.signatures) == {"serving_default", "predict_preprocessed"}
    serving = loaded.signatures["serving_default"]
    assert list(serving.structured_input_signature[1]) == ["image_bytes"]
    images, encoded = _image_bytes(3)
    outputs = serving(image_bytes=encoded)
    assert set(outputs) == {"probabilities", "class_ids", "class_names"}
    expected = model.predict(images, verbose=0)
    np.testing.assert_allclose(outputs["probabilities"].numpy(), expected, atol=1e-5)
    np.testing.assert_array_equal(outputs["class_ids"].numpy(), expected.argmax(-1))
    names = [name.decode() for name in outputs["class_names"].numpy()]
    assert names == [["dark", "light"][i] for i in expected.argmax(-1)]
    preprocessed = loaded.signatures["predict_preprocessed"](inputs=model.preprocessor(images))
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
        loaded = tf.saved_model.load(path)
        serving = loaded.signatures["serving_default"]
        assert list(serving.structured_input_signature[1]) == ["text"]
        outputs = serving(text=tf.constant(texts))
        expected = model.predict(texts, verbose=0)
        np.testing.assert_allclose(outputs["probabilities"].numpy(), expected, atol=1e-5)
        # The preprocessed signature takes the token tensors under their own names.
        token_ids = model.preprocessor(tf.constant(texts))
        preprocessed = loaded.signatures["predict_preprocessed"]
        assert sorted(preprocessed.structured_input_signature[1]) == sorted(token_ids)
        specs = preprocessed.structured_input_signature[1]
        token_ids = {key: tf.cast(value, specs[key].dtype) for key, value in token_ids.items()}
        np.testing.assert_allclose(preprocessed(**token_ids)["probabilities"].numpy(), expected, atol=1e-5)


def test_bad_arguments(image_module, tmp_path):
    model = TransferModel.from_hub(image_module, input_shape=(10, 10, 3), num_classes=2)
    with pytest.raises(ValueError, match="class_names has 3 names but the model's head decodes to 2 classes"):
        export_for_serving(model, tmp_path / "m", class_names=["a", "b", "c"])
    named = TransferModel.from_hub(image_module, input_shape=(10, 10, 3), num_classes=2, class_names=["a", "b"])
    with pytest.raises(ValueError, match=r"differ from the model's own \['a', 'b'\]"):
        export_for_serving(named, tmp_path / "m", class_names=["b", "a"])
    with pytest.raises(ValueError, match="threshold must be in"):
        export_for_serving(model, tmp_path / "m", threshold=1.5)
    with pytest.raises(ValueError, match="version must be a positive whole number") as raised:
        export_for_serving(model, tmp_path / "m", version=0)
    assert raised.value.cli_message.startswith("--version must be")
    export_for_serving(model, tmp_path / "m", version=3)
    with pytest.raises(FileExistsError, match="version=None for the next free one, or overwrite=True") as raised:
        export_for_serving(model, tmp_path / "m", version=3)
    assert "no --version for the next free one, or --overwrite" in raised.value.cli_message


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

    # What users pass: one text is a batch of one (not one input per character), the model's
    # folder means its newest version, and wrong inputs are named.
    one = predict_from_export(tmp_path / "texts", "good film")["probabilities"]
    np.testing.assert_array_equal(one, predict_from_export(text_path, ["good film"])["probabilities"])
    for bad, message in (([], "got no inputs"), (["ok", None], r"inputs\[1\] is NoneType"), (3, "got int")):
        with pytest.raises(ValueError, match=message):
            predict_from_export(text_path, bad)
    with pytest.raises(ValueError, match=r"inputs\[0\] is a str.*read the file first"):
        predict_from_export(path, ["ant.jpg"])
    with pytest.raises(ValueError, match=r"inputs\[1\] is not an image file TensorFlow decodes"):
        predict_from_export(path, [samples[0], b"not an image"])
    with pytest.raises(ValueError, match=r"array of pixels.*encode_png"):
        predict_from_export(path, [np.zeros((4, 4, 3), "uint8")])
    np.testing.assert_array_equal(predict_from_export(text_path, tf.constant(["good film"]))["probabilities"], one)
    np.testing.assert_array_equal(predict_from_export(text_path, [["good film"]])["probabilities"], one)
    with pytest.raises(FileNotFoundError, match="No export at"):
        predict_from_export(tmp_path, samples)


def test_verify_export_catches_a_different_model(image_module, tmp_path):
    from tfxfer import verify_export

    model = TransferModel.from_hub(image_module, num_classes=2, input_shape=(10, 10, 3))
    path = export_for_serving(model, tmp_path / "m")
    other = TransferModel.from_hub(image_module, num_classes=2, input_shape=(10, 10, 3))
    other.head.dense.kernel.assign(other.head.dense.kernel + 1.0)
    _, encoded = _image_bytes(2, seed=6)
    with pytest.raises(AssertionError, match="differs from the model"):
        verify_export(path, [bytes(v) for v in encoded.numpy()], other)


def test_export_of_a_model_trained_under_mirrored_strategy(image_module, tmp_path):
    report = script_report(
        pathlib.Path(__file__).with_name("mirrored_export.py"), image_module, str(tmp_path / "mirrored")
    )
    assert report["replicas"] == 2
    for case in ["outside_scope", "inside_scope", "host_io_device"]:
        assert report[case] <= 1e-5, (case, report)
    # The exports hold the trained weights, not the pretrained ones.
    assert report["training_moved_predictions"] > 1e-3
    assert sorted(os.listdir(tmp_path / "mirrored")) == ["1", "2", "3"]


def test_the_models_value_range_is_applied_in_the_graph_and_recorded(image_module, tmp_path):
    from tfxfer.export import read_export_metadata

    model = TransferModel.from_hub(
        image_module, num_classes=2, image_size=(10, 10), value_range=(-1, 1), class_names=["a", "b"]
    )
    path = export_for_serving(model, tmp_path / "m")
    images, encoded = _image_bytes(3, seed=3)
    served = tf.saved_model.load(path).signatures["serving_default"](image_bytes=encoded)
    expected = model(images.astype("float32") / 127.5 - 1.0).numpy()
    np.testing.assert_allclose(served["probabilities"].numpy(), expected, atol=1e-5)
    unscaled = model(images.astype("float32") / 255.0).numpy()
    assert np.abs(unscaled - expected).max() > 1e-4  # the range matters for this model
    assert read_export_metadata(path) == {
        "input_name": "image_bytes",
        "modality": "image",
        "class_names": ["a", "b"],
        "decoding": "multiclass",
        "threshold": 0.5,
        "image_size": [10, 10],
        "tensorflow_text_ops": [],  # plain TensorFlow loads it
    }


def test_export_size_is_the_serving_weights_after_training(image_module, tmp_path):
    model = TransferModel.from_hub(
        image_module, num_classes=2, input_shape=(10, 10, 3), regularizer=L2SP(0.1, 0.01), trainable_backbone=True
    )
    model.compile(optimizer="adam")
    rng = np.random.default_rng(0)
    model.fit(rng.integers(0, 256, (8, 10, 10, 3)).astype(np.uint8), np.arange(8) % 2, epochs=1, verbose=0)
    assert len(model.optimizer.variables) > len(model.trainable_weights)  # Adam slots exist
    path = export_for_serving(model, tmp_path / "m")
    reader = tf.train.load_checkpoint(os.path.join(path, "variables", "variables"))
    dtypes = reader.get_variable_to_dtype_map()
    stored_bytes = sum(np.prod(shape, dtype=np.int64) * dtypes[name].size for name, shape in _stored_values(path))
    serving_weights = model.backbone.weights + model.head.weights
    weight_bytes = sum(np.prod(w.shape, dtype=np.int64) * np.dtype(w.dtype).itemsize for w in serving_weights)
    assert stored_bytes == weight_bytes
