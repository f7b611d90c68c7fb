"""A tiny TFDS image dataset the tests prepare from local arrays, offline."""

import numpy as np
import tensorflow_datasets as tfds


class TfxferTinyShapes(tfds.core.GeneratorBasedBuilder):
    """A tiny image dataset the tests prepare from local arrays, offline."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(16, 16, 3)),
                    "label": tfds.features.ClassLabel(names=["dark", "light"]),
                }
            ),
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
