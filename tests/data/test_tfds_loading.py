import numpy as np
import pytest
import tensorflow_datasets as tfds

from tfxfer.data import from_tfds


class TfxferTinyShapes(tfds.core.GeneratorBasedBuilder):
    """A tiny image dataset the tests prepare from local arrays, offline."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(16, 16, 3)),
                "label": tfds.features.ClassLabel(names=["dark", "light"]),
            }),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(12, 0), "test": self._generate_examples(6, 1)}

    def _generate_examples(self, count, seed):
        rng = np.random.default_rng(seed)
        for i in range(count):
            label = i % 2
            image = rng.integers(0, 60, (16, 16, 3)) + 190 * label
            yield i, {"image": image.astype(np.uint8), "label": label}


@pytest.fixture(scope="module")
def prepared_dir(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("tfds")
    TfxferTinyShapes(data_dir=str(data_dir)).download_and_prepare()
    return str(data_dir)


def test_loads_a_prepared_dataset_offline(prepared_dir):
    data = from_tfds("tfxfer_tiny_shapes", data_dir=prepared_dir, download=False,
                     image_size=(8, 8), batch_size=4)
    assert data.class_names == ["dark", "light"]
    assert (data.train_size, data.validation_size) == (12, 6)
    images, labels = next(iter(data.validation))
    assert images.shape == (4, 8, 8, 3)
    assert 0.0 <= images.numpy().min() and images.numpy().max() <= 1.0
    light = images.numpy()[labels.numpy() == 1]
    assert light.mean() > 0.7


def test_split_slicing_and_augmentation(prepared_dir):
    data = from_tfds("tfxfer_tiny_shapes", split="train[:50%]", validation_split="train[50%:]",
                     data_dir=prepared_dir, download=False, image_size=(8, 8), augment="default")
    assert (data.train_size, data.validation_size) == (6, 6)
    images, _ = next(iter(data.train))
    assert images.shape[1:] == (8, 8, 3)


def test_unprepared_dataset_explains_what_to_do(tmp_path):
    with pytest.raises(OSError, match="TFDS dataset 'tfxfer_tiny_shapes' is not prepared"):
        from_tfds("tfxfer_tiny_shapes", data_dir=str(tmp_path), download=False)
    with pytest.raises(OSError, match="TFDS dataset 'no_such_dataset_xyz'"):
        from_tfds("no_such_dataset_xyz", data_dir=str(tmp_path), download=False)
