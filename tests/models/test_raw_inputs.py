"""Raw inputs and labels in `fit`/`evaluate`/`predict`: refused with a clear message, or adapted exactly."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import random_images
from tfxfer import TransferModel

NAMES = ["ants", "bees", "wasps"]


def _model(image_module, num_classes=3, **kwargs):
    return TransferModel.from_hub(image_module, num_classes=num_classes, input_shape=(10, 10, 3), **kwargs)


def _dataset(x, y=None, batch_size=4):
    slices = x if y is None else (x, y)
    return tf.data.Dataset.from_tensor_slices(slices).batch(batch_size)


# --- Images: scaled twice, out of range, 16-bit (item 3) --------------------


def test_images_in_unit_range_are_refused_in_a_list(image_module):
    model = _model(image_module)
    images = random_images(3)
    with pytest.raises(ValueError, match=r"predict takes raw pixel values in \[0, 255\].*all in \[0, 1\]"):
        model.predict([image / 255.0 for image in images], verbose=0)


def test_images_in_unit_range_are_refused_in_a_dataset(image_module):
    model = _model(image_module)
    x, y = random_images(8) / 255.0, np.array([0, 1, 2, 0] * 2)
    with pytest.raises(ValueError, match=r"fit takes raw pixel values in \[0, 255\].*x.*all in \[0, 1\]"):
        model.fit(_dataset(x, y), epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"evaluate takes raw pixel values.*all in \[0, 1\]"):
        model.evaluate(_dataset(x, y), verbose=0)
    with pytest.raises(ValueError, match=r"predict takes raw pixel values.*all in \[0, 1\]"):
        model.predict(_dataset(x), verbose=0)
    # Validation data gets the same check.
    with pytest.raises(ValueError, match=r"fit takes raw pixel values.*validation_data.*all in \[0, 1\]"):
        model.fit(x * 255, y, validation_data=_dataset(x, y), epochs=1, verbose=0)


def test_images_scaled_to_minus_1_1_are_refused(image_module):
    model = _model(image_module)
    scaled = random_images(3) / 127.5 - 1.0
    for x in (scaled, list(scaled), _dataset(scaled)):
        with pytest.raises(ValueError, match=r"predict takes raw pixel values.*all in \[0, 1\] or \[-1, 1\]"):
            model.predict(x, verbose=0)
    with pytest.raises(ValueError, match=r"x has pixel values outside \[0, 255\]"):
        model.predict(random_images(2) / -255.0, verbose=0)  # [-1, 0]


def test_pixel_values_outside_0_255_and_16_bit_images_are_refused(image_module):
    model = _model(image_module)
    too_bright = random_images(2) * 2
    with pytest.raises(ValueError, match=r"x has pixel values outside \[0, 255\]"):
        model.predict(too_bright, verbose=0)
    with pytest.raises(ValueError, match=r"x has pixel values outside \[0, 255\]"):
        model.predict(list(too_bright), verbose=0)
    with pytest.raises(ValueError, match=r"x has pixel values outside \[0, 255\]"):
        model.predict(_dataset(too_bright), verbose=0)
    sixteen_bit = (random_images(2) * 257).astype("uint16")
    for x in (sixteen_bit, list(sixteen_bit), _dataset(sixteen_bit)):
        with pytest.raises(ValueError, match="x holds uint16 images.*8-bit"):
            model.predict(x, verbose=0)


def test_the_dataset_check_costs_no_extra_pass(image_module):
    model = _model(image_module)
    passes = []

    def images():
        passes.append(1)
        yield from random_images(6)

    dataset = tf.data.Dataset.from_generator(images, output_signature=tf.TensorSpec((10, 10, 3), tf.float32))
    assert model.predict(dataset.batch(4), verbose=0).shape == (6, 3)
    assert len(passes) == 1  # batches are checked in the pipeline, not read twice


def test_a_scaled_image_in_a_later_batch_of_a_dataset_is_refused(image_module):
    model = _model(image_module)
    images = random_images(3).astype("float32")
    images[2] /= 255.0
    with pytest.raises(ValueError, match=r"all in \[0, 1\].*Positions of such images: \[0\]"):
        model.predict(_dataset(images, batch_size=2), verbose=0)  # image 2 is the second batch's first


# --- Labels: whole numbers, range, names, one-hot (items 5 and 7) ------------


def test_float_labels_must_be_whole_numbers(image_module):
    model = _model(image_module)
    x = random_images(3)
    with pytest.raises(ValueError, match=r"y holds class ids that are not whole numbers.*0\.5"):
        model.fit(x, np.array([0.0, 1.0, 0.5]), epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"y holds class ids that are not whole numbers.*0\.5"):
        model.fit(_dataset(x, np.array([0.0, 1.0, 0.5])), epochs=1, verbose=0)
    whole = model.evaluate(x, np.array([0.0, 1.0, 2.0]), verbose=0, return_dict=True)
    assert whole == model.evaluate(x, np.array([0, 1, 2]), verbose=0, return_dict=True)


def test_out_of_range_labels_are_refused(image_module):
    model = _model(image_module, class_names=NAMES)
    x = random_images(4)
    for method in ("fit", "evaluate"):
        with pytest.raises(ValueError, match=r"y holds class ids outside 0\.\.2 \(3 classes\).*\[3\]"):
            getattr(model, method)(x, np.array([0, 1, 2, 3]), verbose=0)
        with pytest.raises(ValueError, match=r"y holds class ids outside 0\.\.2 \(3 classes\).*-1"):
            getattr(model, method)(_dataset(x, np.array([0, 1, 2, -1])), verbose=0)


def test_string_labels_are_mapped_through_class_names(image_module):
    model = _model(image_module, class_names=NAMES)
    x, ids = random_images(6), np.array([0, 1, 2, 2, 1, 0])
    names = [NAMES[i] for i in ids]
    expected = model.evaluate(x, ids, verbose=0, return_dict=True)
    assert model.evaluate(x, names, verbose=0, return_dict=True) == expected
    assert model.evaluate(_dataset(x, names), verbose=0, return_dict=True) == pytest.approx(expected)
    history = model.fit(x, names, validation_data=(x, names), epochs=1, verbose=0)
    assert np.isfinite(history.history["val_loss"][0])


def test_unknown_string_labels_list_the_class_names(image_module):
    model = _model(image_module, class_names=NAMES)
    x = random_images(3)
    message = r"y holds labels that are not in class_names \['ants', 'bees', 'wasps'\].*'moths'"
    with pytest.raises(ValueError, match=message):
        model.fit(x, ["ants", "moths", "bees"], epochs=1, verbose=0)
    with pytest.raises(ValueError, match=message):
        model.evaluate(_dataset(x, ["ants", "moths", "bees"]), verbose=0)
    with pytest.raises(ValueError, match=r"class_names .*: \['Ants'\]\.$"):  # each unknown name once
        model.fit(x, ["Ants", "Ants", "Ants"], epochs=1, verbose=0)
    without_names = _model(image_module)
    with pytest.raises(ValueError, match="y holds strings, but this model has no class_names"):
        without_names.fit(x, ["ants", "bees", "ants"], epochs=1, verbose=0)


def test_one_hot_labels_are_accepted_and_must_be_exact(image_module):
    model = _model(image_module)
    x, ids = random_images(6), np.array([0, 1, 2, 2, 1, 0])
    one_hot = np.eye(3, dtype="float32")[ids]
    expected = model.evaluate(x, ids, verbose=0, return_dict=True)
    assert model.evaluate(x, one_hot, verbose=0, return_dict=True) == expected
    assert model.evaluate(_dataset(x, one_hot), verbose=0, return_dict=True) == pytest.approx(expected)
    soft = one_hot * 0.8 + 0.2 / 3
    with pytest.raises(ValueError, match=r"y has rows of 3 values but they are not exact one-hot"):
        model.fit(x, soft, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"y has shape \(6, 4\).*class ids \[batch\] or one-hot rows \[batch, 3\]"):
        model.fit(x, np.eye(4)[ids], epochs=1, verbose=0)


def test_binary_and_multi_label_heads_keep_their_labels(image_module):
    binary = _model(image_module, num_classes=1, class_names=["ants", "bees"])
    x = random_images(4)
    ids = np.array([0, 1, 1, 0])
    expected = binary.evaluate(x, ids, verbose=0, return_dict=True)
    assert binary.evaluate(x, ["ants", "bees", "bees", "ants"], verbose=0, return_dict=True) == expected
    with pytest.raises(ValueError, match=r"y holds labels outside \[0, 1\].*2"):
        binary.fit(x, np.array([0, 1, 2, 0]), epochs=1, verbose=0)
    multi_label = _model(image_module, num_classes=3, multi_label=True)
    multi_hot = np.array([[1, 0, 1], [0, 0, 0], [1, 1, 1], [0, 1, 0]], "float32")
    history = multi_label.fit(_dataset(x, multi_hot), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    with pytest.raises(ValueError, match=r"y holds labels outside \[0, 1\]"):
        multi_label.fit(x, multi_hot * 2, epochs=1, verbose=0)


# --- Images: sizes, one image, channels (item 8) ------------------------------


def test_differently_sized_images_in_a_list_are_resized(image_module):
    model = _model(image_module)
    images = [random_images(1, size=size, seed=size)[0] for size in (7, 10, 16)]
    together = model.predict(images, verbose=0)
    apart = np.concatenate([model.predict(image[None], verbose=0) for image in images])
    np.testing.assert_allclose(together, apart, rtol=1e-6)


def test_a_single_image_is_a_batch_of_one_for_predict(image_module):
    model = _model(image_module)
    image = random_images(1, size=12)[0]
    np.testing.assert_allclose(model.predict(image, verbose=0), model.predict(image[None], verbose=0), rtol=1e-6)
    with pytest.raises(ValueError, match=r"fit got one image \(12, 12, 3\) as x.*batch"):
        model.fit(image, np.array([0]), epochs=1, verbose=0)


def test_grayscale_and_rgba_images_become_rgb(image_module):
    model = _model(image_module)
    rgb = random_images(2)
    gray = rgb[..., :1]
    np.testing.assert_allclose(
        model.predict(gray, verbose=0), model.predict(np.repeat(gray, 3, axis=-1), verbose=0), rtol=1e-6
    )
    rgba = np.concatenate([rgb, np.full_like(rgb[..., :1], 255)], axis=-1)
    np.testing.assert_allclose(model.predict(rgba, verbose=0), model.predict(rgb, verbose=0), rtol=1e-6)
    np.testing.assert_allclose(model.predict(_dataset(rgba), verbose=0), model.predict(rgb, verbose=0), rtol=1e-6)
    with pytest.raises(ValueError, match="x has images with 2 channels"):
        model.predict(rgb[..., :2], verbose=0)


# --- The cached-features path (linear_probe, fine_tune's head phase) ---------


@pytest.mark.parametrize("as_dataset", [False, True], ids=["arrays", "dataset"])
def test_the_cached_features_path_checks_and_maps_labels_as_fit_does(image_module, as_dataset):
    from tfxfer.recipes import linear_probe

    x = random_images(8)

    def data(labels):
        return (_dataset(x, labels),) if as_dataset else (x, labels)

    model = _model(image_module, class_names=NAMES)
    with pytest.raises(ValueError, match="not whole numbers.*0.5"):
        linear_probe(model, *data(np.array([0.0, 1.0, 2.0, 0.5] * 2)), epochs=1, verbose=0, cache_features=True)
    with pytest.raises(ValueError, match="outside 0..2"):
        linear_probe(model, *data(np.array([0, 1, 2, 3] * 2)), epochs=1, verbose=0, cache_features=True)
    names = np.array(["ants", "bees", "wasps", "ants"] * 2)
    history = linear_probe(model, *data(names), epochs=1, verbose=0, cache_features=True,
                           validation_data=_dataset(x, names))  # fmt: skip
    assert history.cached_features is not None
    assert 0.0 <= history.history["val_accuracy"][0] <= 1.0
    one_hot = np.eye(3)[[0, 1, 2, 0] * 2]
    assert linear_probe(model, *data(one_hot), epochs=1, verbose=0, cache_features=True).cached_features is not None
    with pytest.raises(ValueError, match=r"all in \[0, 1\]"):
        scaled = (_dataset(x / 255.0, names),) if as_dataset else (x / 255.0, names)
        linear_probe(model, *scaled, epochs=1, verbose=0, cache_features=True)


def test_one_scaled_image_among_raw_ones_is_refused_and_black_images_are_not(image_module):
    model = _model(image_module)
    images = random_images(3).astype("float32")
    mixed = [images[0], images[1] / 255.0, images[2]]
    with pytest.raises(ValueError, match=r"all in \[0, 1\].*Positions of such images: \[1\]"):
        model.predict(mixed, verbose=0)
    with pytest.raises(ValueError, match=r"all in \[0, 1\].*Positions of such images: \[1\]"):
        model.predict(np.stack(mixed), verbose=0)
    with pytest.raises(ValueError, match=r"x\[1\] are all in \[0, 1\]"):
        model.predict([images[0], random_images(1, size=7)[0] / 255.0], verbose=0)
    black = np.zeros_like(images)
    assert model.predict(black, verbose=0).shape == (3, 3)  # zeros are zeros at either scale


# --- Shapes and counts that Keras reports from deep inside --------------------


def test_labels_shaped_batch_by_one_train_like_flat_labels(image_module):
    model = _model(image_module, num_classes=2)
    x, y = random_images(6), np.array([0, 1] * 3)
    model.fit(x, y, epochs=1, verbose=0, batch_size=6)
    # A later fit with [batch, 1] labels used to retrace with labels of unknown rank.
    history = model.fit(x, y[:, None], epochs=1, verbose=0, batch_size=6)
    assert np.isfinite(history.history["loss"][0])


def test_empty_inputs_and_mismatched_counts_are_named(image_module):
    model = _model(image_module, num_classes=2)
    for empty in ([], np.zeros((0, 10, 10, 3), "uint8")):
        with pytest.raises(ValueError, match="predict got no examples: x is empty"):
            model.predict(empty, verbose=0)
    with pytest.raises(ValueError, match="x holds 6 examples but y holds 4 labels"):
        model.fit(random_images(6), np.array([0, 1] * 2), epochs=1, verbose=0)


def test_text_inputs_one_text_non_texts_and_unbatched_datasets(tiny_bert_preset):
    model = TransferModel.from_preset(tiny_bert_preset, num_classes=2, sequence_length=8)
    texts = ["a gripping film", "dull"]
    np.testing.assert_allclose(
        model.predict("a gripping film", verbose=0), model.predict(texts[:1], verbose=0), rtol=1e-6
    )
    with pytest.raises(ValueError, match=r"x\[1\] is NoneType.*not a text"):
        model.predict(["ok", None], verbose=0)
    with pytest.raises(ValueError, match="fit got one text as x"):
        model.fit("a gripping film", np.array([1]), epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"dataset of single texts.*\.batch"):
        model.predict(tf.data.Dataset.from_tensor_slices(texts), verbose=0)
    with pytest.raises(ValueError, match="predict got no examples"):
        model.predict([], verbose=0)
    history = model.fit(texts, np.array([[1], [0]]), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_text_columns_scalars_tuples_and_generators(tiny_bert_preset):
    model = TransferModel.from_preset(tiny_bert_preset, num_classes=2, sequence_length=8)
    texts = ["a gripping film", "dull"]
    expected = model.predict(texts, verbose=0)
    column = np.array(texts)[:, None]  # df[["text"]].values
    np.testing.assert_allclose(model.predict(column, verbose=0), expected, rtol=1e-6)
    np.testing.assert_allclose(model.predict(tuple(texts), verbose=0), expected, rtol=1e-6)
    np.testing.assert_allclose(model.predict(_dataset(column, batch_size=2), verbose=0), expected, rtol=1e-6)
    np.testing.assert_allclose(model.predict(tf.constant(texts[0]), verbose=0), expected[:1], rtol=1e-6)
    np.testing.assert_allclose(model.predict(np.array(texts[0]), verbose=0), expected[:1], rtol=1e-6)
    assert np.isfinite(model.fit(column, np.array([1, 0]), epochs=1, verbose=0).history["loss"][0])
    with pytest.raises(ValueError, match="x is a Python generator.*from_generator"):
        model.fit((pair for pair in [(texts, [1, 0])]), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="validation_data is a Python generator"):
        model.fit(texts, np.array([1, 0]), validation_data=(pair for pair in []), epochs=1, verbose=0)


def test_none_or_a_file_name_in_a_list_of_images_is_named(image_module):
    model = _model(image_module)
    with pytest.raises(ValueError, match=r"x\[1\] is NoneType, not an image"):
        model.predict([random_images(1)[0], None], verbose=0)
    with pytest.raises(ValueError, match=r"predict got strings, but this model takes images"):
        model.predict(["ant.jpg"], verbose=0)


def test_fit_and_evaluate_without_labels_are_named_and_leave_the_model_usable(image_module):
    model = _model(image_module, num_classes=2)
    x, y = random_images(4), np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match="fit needs labels: pass y"):
        model.fit(x, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="evaluate got a dataset of inputs only"):
        model.evaluate(_dataset(x), verbose=0)
    assert np.isfinite(model.fit(x, y, epochs=1, verbose=0).history["loss"][0])


def test_pixels_a_rounding_step_outside_0_255_are_raw_pixels(image_module):
    # Resizing and augmentation interpolate: 255.00002 is a pixel of 255.
    model = _model(image_module)
    images = np.full((2, 10, 10, 3), 255.00002, np.float32)
    images[1] = -0.00001
    assert model.predict(_dataset(images), verbose=0).shape == (2, 3)
    assert model.predict(images, verbose=0).shape == (2, 3)


def test_class_weight_takes_class_names(image_module):
    from tfxfer.recipes import linear_probe

    x, y = random_images(6), np.array([0, 1, 2] * 2)
    histories = []
    for class_weight in ({"ants": 1.0, "bees": 3.0, "wasps": 0.5}, {0: 1.0, 1: 3.0, 2: 0.5}):
        keras.utils.set_random_seed(0)
        model = _model(image_module, class_names=["ants", "bees", "wasps"])
        histories.append(model.fit(x, y, class_weight=class_weight, shuffle=False, epochs=1, verbose=0))
    assert histories[0].history["loss"] == pytest.approx(histories[1].history["loss"])
    with pytest.raises(ValueError, match=r"class_weight names class 'moths', which is not a class; class_names are"):
        model.fit(x, y, class_weight={"moths": 2.0}, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"class_weight gives class 1 two weights"):
        model.fit(x, y, class_weight={"bees": 1.0, 1: 2.0}, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"class_weight has the key 7; keys are class ids 0..2 or class names"):
        linear_probe(model, _dataset(x, y), class_weight={7: 2.0}, epochs=1, verbose=0)
    linear_probe(model, _dataset(x, y), class_weight={"bees": 2.0}, epochs=1, verbose=0, cache_features=True)
