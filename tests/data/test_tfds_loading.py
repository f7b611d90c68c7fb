import pytest
import tensorflow as tf

from tfxfer.data import from_tfds


@pytest.fixture
def prepared_dir(tfds_dir):
    return tfds_dir


def test_loads_a_prepared_dataset_offline(prepared_dir):
    data = from_tfds("tfxfer_tiny_shapes", data_dir=prepared_dir, download=False, image_size=(8, 8), batch_size=4)
    assert data.class_names == ["dark", "light"]
    assert (data.train_size, data.validation_size) == (12, 6)
    images, labels = next(iter(data.validation))
    assert images.shape == (4, 8, 8, 3) and images.dtype == tf.uint8  # raw pixels, rounded as folders are
    light = images.numpy()[labels.numpy() == 1]
    assert light.mean() > 0.7 * 255


def test_split_slicing_and_augmentation(prepared_dir):
    data = from_tfds(
        "tfxfer_tiny_shapes",
        split="train[:50%]",
        validation_split="train[50%:]",
        data_dir=prepared_dir,
        download=False,
        image_size=(8, 8),
        augment="default",
    )
    assert (data.train_size, data.validation_size) == (6, 6)
    images, _ = next(iter(data.train))
    assert images.shape[1:] == (8, 8, 3)


def test_unprepared_dataset_explains_what_to_do(tmp_path):
    with pytest.raises(OSError, match="TFDS dataset 'tfxfer_tiny_shapes' is not prepared"):
        from_tfds("tfxfer_tiny_shapes", data_dir=str(tmp_path), download=False)
    with pytest.raises(OSError, match="TFDS dataset 'no_such_dataset_xyz'"):
        from_tfds("no_such_dataset_xyz", data_dir=str(tmp_path), download=False)
