import keras
import numpy as np
import pytest
import tensorflow as tf

from tfxfer.preprocessing import ImagePreprocessor, preprocessor_modality


def pixels(count=2, height=9, width=7, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (count, height, width, 3)).astype(np.uint8)


def test_resizes_rounds_and_scales_to_the_value_range():
    preprocessor = ImagePreprocessor(image_size=(4, 5), value_range=(-1, 1))
    out = preprocessor(pixels()).numpy()
    assert out.shape == (2, 4, 5, 3)
    resized = tf.image.resize(pixels().astype(np.float32), (4, 5)).numpy()
    expected = np.clip(np.round(resized), 0, 255) * (2 / 255) - 1
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_mean_and_std_per_channel():
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    preprocessor = ImagePreprocessor(image_size=(9, 7), mean=mean, std=std)
    out = preprocessor(pixels()).numpy()
    expected = (pixels() / 255.0 - np.array(mean)) / np.array(std)
    np.testing.assert_allclose(out, expected, atol=1e-5)
    assert preprocessor.value_range is None


def test_decode_gives_the_pixels_the_call_resizes_to():
    preprocessor = ImagePreprocessor(image_size=(4, 4), value_range=(0, 1))
    images = pixels(3)
    decoded = np.stack([preprocessor.decode(tf.io.encode_png(image)).numpy() for image in images])
    assert decoded.dtype == np.uint8 and decoded.shape == (3, 4, 4, 3)
    # Decoded-then-scaled (loaders, exports) equals scaling the raw images directly.
    np.testing.assert_array_equal(preprocessor(decoded).numpy(), preprocessor(images).numpy())


def test_grayscale_images_become_rgb():
    preprocessor = ImagePreprocessor(image_size=(4, 4))
    gray = np.full((6, 6, 1), 200, np.uint8)
    assert preprocessor.resized_uint8(gray).shape == (4, 4, 3)
    assert preprocessor.decode(tf.io.encode_png(gray)).shape == (4, 4, 3)


def test_grayscale_and_rgba_batches_become_rgb_as_the_decoder_makes_them():
    preprocessor = ImagePreprocessor(image_size=(4, 4))
    rgba = np.concatenate([pixels(), np.full((2, 9, 7, 1), 128, np.uint8)], axis=-1)
    gray = pixels()[..., :1]
    # As tf.io.decode_image(..., channels=3) does: alpha dropped, gray repeated.
    np.testing.assert_array_equal(preprocessor(rgba).numpy(), preprocessor(pixels()).numpy())
    np.testing.assert_array_equal(preprocessor(gray).numpy(), preprocessor(np.repeat(gray, 3, axis=-1)).numpy())
    decoded = preprocessor.decode(tf.io.encode_png(rgba[0]))
    np.testing.assert_array_equal(decoded.numpy(), preprocessor.resized_uint8(pixels()[0]).numpy())
    assert preprocessor.compute_output_shape((None, 9, 7, 4)) == (None, 4, 4, 3)
    with pytest.raises(ValueError, match="images with 2 channels"):
        preprocessor(pixels()[..., :2])


def test_config_round_trips_through_keras_serialization():
    preprocessor = ImagePreprocessor(image_size=(6, 8), value_range=(-1, 1), interpolation="nearest")
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(preprocessor))
    assert type(restored) is ImagePreprocessor
    assert restored.image_size == (6, 8) and restored.value_range == (-1.0, 1.0)
    assert restored.interpolation == "nearest" and restored.round_pixels
    np.testing.assert_array_equal(restored(pixels()).numpy(), preprocessor(pixels()).numpy())


def test_runs_in_a_tf_data_pipeline():
    preprocessor = ImagePreprocessor(image_size=(4, 4))
    dataset = tf.data.Dataset.from_tensor_slices(pixels(4)).batch(2).map(preprocessor)
    batch = next(iter(dataset))
    assert batch.shape == (2, 4, 4, 3) and float(tf.reduce_max(batch)) <= 1.0


@pytest.mark.parametrize(
    "arguments, message",
    [
        (dict(image_size=(0, 0)), "positive integers"),
        (dict(image_size=64), "height, width"),
        (dict(value_range=(1, 0)), "low < high"),
        (dict(value_range="fast"), "value_range"),
        (dict(mean=(0.5, 0.5, 0.5)), "mean and std go together"),
        (dict(value_range=(0, 1), mean=(0.5,) * 3, std=(0.5,) * 3), "Give one of"),
        (dict(mean=(0.5, 0.5), std=(0.5, 0.5)), "per RGB channel"),
    ],
)
def test_bad_arguments_get_clear_errors(arguments, message):
    with pytest.raises(ValueError, match=message):
        ImagePreprocessor(**arguments)


def test_modality_is_read_off_the_preprocessor():
    assert preprocessor_modality(ImagePreprocessor()) == "image"
    assert preprocessor_modality(keras.layers.Identity()) == "text"
    assert preprocessor_modality(None) is None
