import shutil

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import shared_path
from tfxfer.data import DataError, from_image_folder


def _write_image(path, color, size=(12, 10), format="jpeg"):
    image = np.zeros(size + (3,), np.uint8) + np.array(color, np.uint8)
    encoded = tf.io.encode_jpeg(image) if format == "jpeg" else tf.io.encode_png(image)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encoded.numpy())


@pytest.fixture
def folder(tmp_path):
    for i in range(4):
        _write_image(tmp_path / "cats" / f"{i}.jpg", (200, 10, 10))
        _write_image(tmp_path / "dogs" / f"{i}.png", (10, 10, 200), format="png")
    return tmp_path


def test_class_folders_with_a_seeded_split(folder):
    data = from_image_folder(folder, image_size=(8, 8), batch_size=4, validation_split=0.25)
    assert data.class_names == ["cats", "dogs"]
    assert (data.train_size, data.validation_size) == (6, 2)
    images, labels = next(iter(data.validation))
    assert images.shape == (2, 8, 8, 3) and images.dtype == tf.uint8
    # Raw pixels (the model scales them), red for cats and blue for dogs.
    for image, label in zip(images.numpy(), labels.numpy()):
        channel = 0 if label == 0 else 2
        assert image[..., channel].mean() > 0.6 * 255
    assert data.report.summary() == "8 examples, none skipped"


def test_the_models_preprocessor_sets_the_size_and_augmentation_keeps_pixels(folder):
    from tfxfer.preprocessing import ImagePreprocessor

    data = from_image_folder(folder, preprocessor=ImagePreprocessor((6, 5), value_range=(-1, 1)), augment="default")
    images, _ = next(iter(data.train))
    assert images.shape[1:] == (6, 5, 3) and data.image_size == (6, 5)
    assert images.numpy().min() >= 0.0 and images.numpy().max() <= 255.0 and images.numpy().max() > 1.0


def test_broken_files_are_named_or_counted(folder):
    good = (folder / "cats" / "0.jpg").read_bytes()
    (folder / "cats" / "truncated.jpg").write_bytes(good[: len(good) // 3])
    (folder / "cats" / "empty.jpg").write_bytes(b"")
    (folder / "dogs" / "notes.jpg").write_text("not an image")
    (folder / "dogs" / "readme.txt").write_text("hello")
    # Files are listed first (extensions), then decoded: the first problem stops.
    with pytest.raises(DataError, match=r"readme\.txt: not an image file \(\.txt\)"):
        from_image_folder(folder, image_size=(8, 8))
    (folder / "dogs" / "readme.txt").unlink()
    with pytest.raises(DataError, match=r"(truncated|empty|notes)\.jpg: (unreadable|empty file)"):
        from_image_folder(folder, image_size=(8, 8))
    (folder / "dogs" / "readme.txt").write_text("hello")
    data = from_image_folder(folder, image_size=(8, 8), on_bad_data="skip")
    skipped = {pathlib_name(where): why for where, why in data.report.skipped}
    assert set(skipped) == {"truncated.jpg", "empty.jpg", "notes.jpg", "readme.txt"}
    assert skipped["empty.jpg"] == "empty file"
    assert skipped["readme.txt"].startswith("not an image file")
    assert data.train_size == 8
    assert "8 examples kept, 4 skipped" in data.report.summary()


def test_truncated_jpeg_alone_is_caught(folder):
    good = (folder / "cats" / "0.jpg").read_bytes()
    (folder / "cats" / "truncated.jpg").write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match=r"truncated\.jpg: unreadable or truncated image"):
        from_image_folder(folder, image_size=(8, 8))


def pathlib_name(where):
    return where.rsplit("/", 1)[-1]


def test_gif_named_jpg_loads(folder):
    gif = tf.io.encode_png(np.zeros((5, 5, 3), np.uint8))  # any valid image bytes
    shutil.copy(
        shared_path("data", "images", "hymenoptera", "train", "ants", "imageNotFound.gif"),
        folder / "cats" / "actually_a_gif.jpg",
    )
    data = from_image_folder(folder, image_size=(8, 8))
    assert data.train_size == 9 and gif is not None


def test_empty_class_folder_and_single_class(folder, tmp_path):
    (folder / "birds").mkdir()
    with pytest.raises(DataError, match="birds: class folder has no usable images"):
        from_image_folder(folder, image_size=(8, 8))
    data = from_image_folder(folder, image_size=(8, 8), on_bad_data="skip")
    assert data.class_names == ["cats", "dogs"]
    single = tmp_path / "single"
    _write_image(single / "only" / "a.jpg", (1, 2, 3))
    with pytest.raises(DataError, match=r"found 1 class folder\(s\) \['only'\]; a classifier needs at least two"):
        from_image_folder(single)


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="Image folder not found"):
        from_image_folder(tmp_path / "nowhere")


@pytest.mark.real
def test_hymenoptera_keeps_its_train_and_val_split():
    data = from_image_folder(shared_path("data", "images", "hymenoptera"))
    assert data.class_names == ["ants", "bees"]
    assert (data.train_size, data.validation_size) == (245, 153)
    images, labels = next(iter(data.validation))
    assert images.shape == (32, 224, 224, 3)
    assert images.dtype.name == "uint8"  # raw pixels: the model scales them


def test_loaded_folder_trains_a_transfer_model(folder, image_module):
    from tfxfer import TransferModel

    data = from_image_folder(
        folder, image_size=(10, 10), batch_size=4, validation_split=0.25, augment="default", drop_remainder=True
    )
    images, _ = next(iter(data.train))
    assert tuple(images.shape) == (4, 10, 10, 3)  # fixed shapes for TPU
    model = TransferModel.from_hub(image_module, num_classes=data.num_classes, input_shape=(10, 10, 3))
    history = model.fit(data.train, validation_data=data.validation, epochs=2, verbose=0)
    assert len(history.history["val_accuracy"]) == 2
    with pytest.raises(DataError, match="fewer than one batch of 32"):
        from_image_folder(folder, image_size=(10, 10), drop_remainder=True)


def test_augmented_pixels_stay_in_0_255(folder):
    # Rotation and zoom interpolate: a 255 pixel came out as 255.00002 now and
    # then, and the model's raw-pixel check refused the batch mid-training.
    # A brightening layer overshoots every time.
    import keras

    data = from_image_folder(folder, image_size=(8, 8), augment=[keras.layers.Rescaling(1.5, offset=-20.0)])
    images, _ = next(iter(data.train))
    assert images.numpy().min() == 0.0 and images.numpy().max() == 255.0
