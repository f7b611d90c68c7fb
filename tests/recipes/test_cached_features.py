import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfxfer
from tests.conftest import random_images
from tests.data.test_length_bucketing import long_text_model, sentences
from tfxfer.recipes import linear_probe, two_phase
from tfxfer.recipes.cached_features import CachedFeatures, cache_blockers
from tfxfer.runs import TrainConfig, train_run


def image_model(image_module, seed=0, **options):
    keras.utils.set_random_seed(seed)
    return tfxfer.TransferModel.from_hub(image_module, num_classes=2, input_shape=(10, 10, 3), **options)


def image_data(count=40, batch=8, shuffle=False):
    pixels = random_images(count)
    labels = (pixels.mean(axis=(1, 2, 3)) > 127).astype("int32")
    data = tf.data.Dataset.from_tensor_slices((pixels, labels))
    if shuffle:
        data = data.shuffle(count, seed=0)
    return data.batch(batch)


def heads_differ(first, second):
    return max(float(np.abs(a - b).max()) for a, b in zip(first.head.get_weights(), second.head.get_weights()))


@pytest.mark.parametrize("regularizer", [None, "l2_sp", "bss"])
def test_cached_features_train_the_same_image_head(image_module, regularizer):
    made = {
        None: lambda: None,
        "l2_sp": lambda: tfxfer.regularizers.L2SP(alpha=0.1, beta=0.1),
        "bss": lambda: tfxfer.regularizers.BSS(k=1, weight=0.01),
    }[regularizer]
    cached, plain = image_model(image_module, regularizer=made()), image_model(image_module, regularizer=made())
    data, validation = image_data(), image_data(16, 8)
    options = dict(epochs=3, learning_rate=0.05, validation_data=validation, verbose=0)
    with_cache = linear_probe(cached, data, cache_features=True, **options)
    without = linear_probe(plain, data, cache_features=False, **options)
    assert with_cache.cached_features["examples"] == 40 and with_cache.cached_features["storage"] == "memory"
    assert with_cache.cached_features["validation_examples"] == 16
    assert without.cached_features is None
    assert heads_differ(cached, plain) < 1e-5
    for key in without.history:
        np.testing.assert_allclose(with_cache.history[key], without.history[key], rtol=1e-5, atol=1e-6)
    # Afterwards the model runs on raw inputs as before.
    np.testing.assert_allclose(
        cached.predict(random_images(4), verbose=0), plain.predict(random_images(4), verbose=0), atol=1e-5
    )


def test_cached_features_train_the_same_text_head_with_bucketing():
    texts, labels = sentences(80)
    data = tf.data.Dataset.from_tensor_slices((texts, labels)).batch(16)
    cached, plain = long_text_model(), long_text_model()
    linear_probe(cached, data, epochs=2, learning_rate=0.05, cache_features=True, verbose=0)
    linear_probe(plain, data, epochs=2, learning_rate=0.05, cache_features=False, verbose=0)
    assert heads_differ(cached, plain) < 1e-5


def test_features_over_the_memory_budget_go_to_disk_and_are_removed(image_module, tmp_path):
    model = image_model(image_module)
    model.freeze_backbone()
    in_memory = CachedFeatures(model, image_data(), verbose=0)
    on_disk = CachedFeatures(model, image_data(), memory_budget=100, directory=tmp_path, verbose=0)
    assert in_memory.storage == "memory" and on_disk.storage == "disk"
    assert list(tmp_path.iterdir())
    for a, b in zip(in_memory.dataset(), on_disk.dataset()):
        np.testing.assert_allclose(a[0], b[0], atol=1e-6)
        np.testing.assert_array_equal(a[1], b[1])
    on_disk.close()
    assert not list(tmp_path.iterdir())


def test_shuffled_sources_give_reshuffled_caches(image_module):
    model = image_model(image_module)
    model.freeze_backbone()
    cache = CachedFeatures(model, image_data(shuffle=True), verbose=0)
    assert cache.shuffles
    epochs = [np.concatenate([y.numpy() for _, y in cache.dataset(seed=None)]) for _ in range(2)]
    features = [np.concatenate([x.numpy() for x, _ in cache.dataset()]) for _ in range(2)]
    assert len(epochs[0]) == 40 and not np.array_equal(features[0], features[1])


def test_what_prevents_caching_is_named(image_module):
    model = image_model(image_module)
    model.freeze_backbone()
    flip = keras.layers.RandomFlip("horizontal", seed=0)
    augmented = image_data().map(lambda x, y: (flip(x, training=True), y))
    assert cache_blockers(model, image_data()) == []
    assert cache_blockers(model, augmented) == ["the input pipeline of x is random (augmentation)"]
    assert cache_blockers(model, image_data().repeat()) == ["x repeats forever"]
    history = linear_probe(model, augmented, epochs=1, verbose=0)  # "auto": trains without the cache
    assert history.cached_features is None
    with pytest.raises(ValueError, match="cache_features=True.*random \\(augmentation\\)"):
        linear_probe(model, augmented, epochs=1, verbose=0, cache_features=True)
    model.unfreeze()
    assert "the backbone is not frozen" in cache_blockers(model, image_data())


def test_arrays_are_cached_like_fit_would_batch_them(image_module):
    model = image_model(image_module)
    pixels = random_images(20)
    labels = np.arange(20) % 2
    history = linear_probe(model, pixels, labels, batch_size=8, epochs=2, validation_data=(pixels, labels), verbose=0)
    assert history.cached_features["examples"] == 20 and history.cached_features["validation_examples"] == 20


def test_two_phase_caches_its_head_phase_then_fine_tunes_on_inputs(image_module):
    model = image_model(image_module)
    history = two_phase(
        model, image_data(), validation_data=image_data(16), head_epochs=2, epochs=1, learning_rate=0.01, verbose=0
    )
    assert history.cached_features["examples"] == 40
    assert len(history.history["loss"]) == 3
    assert model.backbone.trainable_weights and model._training_on_features is None


def test_a_run_reports_the_cache(image_module, image_folder, tmp_path):
    common = dict(
        backbone=image_module,
        data=str(image_folder),
        image_size=(10, 10),
        augment="none",
        recipe="two_phase",
        batch_size=8,
        epochs=1,
        head_epochs=2,
        export=False,
        runs_dir=str(tmp_path / "runs"),
    )
    metrics = train_run(TrainConfig(**common), verbose=0)
    assert metrics["cached_features"]["examples"] == metrics["data"]["train_examples"]
    report = (tmp_path / "runs").glob("*/report.md")
    assert "trained on cached features" in next(report).read_text()
    augmented = train_run(TrainConfig(**{**common, "augment": "default", "name": "augmented"}), verbose=0)
    assert augmented["cached_features"] is None
    off = train_run(TrainConfig(**{**common, "cache_features": False, "name": "off"}), verbose=0)
    assert off["cached_features"] is None
    recorded = json.loads(next((tmp_path / "runs").glob("off-*/metrics.json")).read_text())
    assert recorded["cached_features"] is None
