import json
import pathlib
import signal
import subprocess
import sys

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
    assert model.backbone.trainable_weights
    assert set(model.evaluate(image_data(16), verbose=0, return_dict=True)) == {"loss", "accuracy"}


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


def test_validation_split_of_arrays_is_honoured(image_module):
    pixels, labels = random_images(20), np.arange(20) % 2
    model = image_model(image_module)
    history = linear_probe(model, pixels, labels, batch_size=5, validation_split=0.25, epochs=1, verbose=0)
    assert history.cached_features == {**history.cached_features, "examples": 15, "validation_examples": 5}
    assert "val_loss" in history.history
    phases = two_phase(
        image_model(image_module),
        pixels,
        labels,
        batch_size=5,
        validation_split=0.25,
        head_epochs=1,
        epochs=1,
        verbose=0,
    )
    assert len(phases.history["val_loss"]) == 2


def test_unshuffled_arrays_train_the_same_head_with_the_cache(image_module):
    pixels, labels = random_images(20), np.arange(20) % 2
    cached, plain = image_model(image_module), image_model(image_module)
    options = dict(batch_size=8, epochs=2, learning_rate=0.05, shuffle=False, verbose=0)
    assert linear_probe(cached, pixels, labels, **options).cached_features is not None
    linear_probe(plain, pixels, labels, cache_features=False, **options)
    assert heads_differ(cached, plain) < 1e-6


def test_a_shuffled_source_that_drops_a_remainder_is_not_cached(image_module):
    model = image_model(image_module)
    model.freeze_backbone()
    pixels, labels = random_images(20), np.arange(20) % 2
    dropping = tf.data.Dataset.from_tensor_slices((pixels, labels)).shuffle(20).batch(8, drop_remainder=True)
    assert cache_blockers(model, dropping) == ["x is shuffled and drops a remainder (drop_remainder)"]
    in_order = tf.data.Dataset.from_tensor_slices((pixels, labels)).batch(8, drop_remainder=True)
    assert cache_blockers(model, in_order) == []


@pytest.mark.parametrize("value", [1, 0, "yes", None])
def test_cache_features_takes_only_auto_true_or_false(image_module, value):
    with pytest.raises(ValueError, match="cache_features must be 'auto', True or False"):
        linear_probe(image_model(image_module), image_data(), cache_features=value, verbose=0)
    with pytest.raises(ValueError, match="cache_features must be 'auto', True or False"):
        two_phase(image_model(image_module), image_data(), head_epochs=0, cache_features=value, verbose=0)


def test_text_features_on_disk_keep_the_source_order(tmp_path):
    texts, labels = sentences(64)
    data = tf.data.Dataset.from_tensor_slices((texts, labels)).batch(8)
    model = long_text_model()
    in_memory = CachedFeatures(model, data, verbose=0)
    on_disk = CachedFeatures(model, data, memory_budget=200, directory=tmp_path, verbose=0)
    assert in_memory.storage == "memory" and on_disk.storage == "disk"
    for a, b in zip(in_memory.dataset(), on_disk.dataset()):
        np.testing.assert_allclose(a[0], b[0], atol=1e-6)
        np.testing.assert_array_equal(a[1], b[1])
    on_disk.close()


def test_a_failed_extraction_leaves_no_files(image_module, tmp_path):
    model = image_model(image_module)
    model.freeze_backbone()

    def third_batch_fails(index, batch):
        pixels, labels = batch
        return tf.debugging.check_numerics(pixels / tf.cast(2 - index, tf.float32), "bad batch"), labels

    failing = image_data().enumerate().map(third_batch_fails)
    with pytest.raises(tf.errors.InvalidArgumentError, match="bad batch"):
        CachedFeatures(model, failing, memory_budget=100, directory=tmp_path, verbose=0)
    assert not list(tmp_path.iterdir())


def test_folders_of_killed_processes_are_removed_by_the_next_cache(image_module, tmp_path):
    """A process killed with -9 cannot clean up; the next cache on disk does."""
    script = (
        "import os, signal, keras, tfxfer, tensorflow as tf, numpy as np\n"
        f"model = tfxfer.TransferModel.from_hub({str(image_module)!r}, num_classes=2, input_shape=(10, 10, 3))\n"
        "pixels = np.random.default_rng(0).integers(0, 256, (16, 10, 10, 3)).astype('float32')\n"
        "data = tf.data.Dataset.from_tensor_slices((pixels, np.arange(16) % 2)).batch(4)\n"
        "from tfxfer.recipes.cached_features import CachedFeatures\n"
        f"cache = CachedFeatures(model, data, memory_budget=100, directory={str(tmp_path)!r}, verbose=0)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    killed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=240)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    left = list(tmp_path.iterdir())
    assert len(left) == 1 and left[0].name.startswith("tfxfer-features-")
    model = image_model(image_module)
    model.freeze_backbone()
    cache = CachedFeatures(model, image_data(), memory_budget=100, directory=tmp_path, verbose=0)
    assert [path.name for path in tmp_path.iterdir()] == [pathlib.Path(cache.directory).name]
    cache.close()
    assert not list(tmp_path.iterdir())


def test_verbose_2_caches_without_progress_bars(image_module, capsys):
    # Issue 24, item 14: `--verbose 2` is for logs; the cache's progress is one plain line.
    model = image_model(image_module)
    model.freeze_backbone()
    CachedFeatures(model, image_data(), verbose=2).close()
    history = linear_probe(model, image_data(), cache_features=True, epochs=1, validation_data=image_data(), verbose=2)
    out = capsys.readouterr().out
    assert history.cached_features is not None
    assert "\x1b[" not in out and "\r" not in out and "\b" not in out, repr(out)
    assert "5/5 - " in out


class _StopsAfterTwoEpochs(keras.callbacks.Callback):
    """Saves the model it is given at each epoch end, as checkpoints do, and stops after the second."""

    def __init__(self, path):
        super().__init__()
        self.path, self.logs = path, []

    def on_epoch_end(self, epoch, logs=None):
        self.logs.append(sorted(logs))
        self.model.save(self.path)
        if epoch == 1:
            self.model.stop_training = True


def test_callbacks_of_the_cached_phase_see_the_transfer_model_and_can_stop_it(image_module, tmp_path):
    model = image_model(image_module)
    stopper = _StopsAfterTwoEpochs(tmp_path / "model.keras")
    history = linear_probe(
        model, image_data(), epochs=5, validation_data=image_data(16), callbacks=[stopper], verbose=0
    )
    assert history.cached_features is not None
    assert stopper.model is model
    assert len(stopper.logs) == 2 and len(history.history["loss"]) == 2
    assert stopper.logs[0] == ["accuracy", "loss", "val_accuracy", "val_loss"]
    reloaded = keras.models.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(
        reloaded.predict(random_images(4), verbose=0), model.predict(random_images(4), verbose=0), atol=1e-6
    )


def test_a_backup_restored_in_the_cached_phase_starts_the_fit_at_its_epoch(image_module, tmp_path):
    options = dict(epochs=4, learning_rate=0.05, verbose=0, cache_features=True)
    interrupted = image_model(image_module)
    stopper = _StopsAfterTwoEpochs(tmp_path / "interrupted.keras")
    linear_probe(interrupted, image_data(), callbacks=[tfxfer.callbacks.RunBackup(str(tmp_path)), stopper], **options)
    resumed, epochs = image_model(image_module), []
    recorder = keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: epochs.append(epoch))
    linear_probe(resumed, image_data(), callbacks=[tfxfer.callbacks.RunBackup(str(tmp_path)), recorder], **options)
    assert epochs == [2, 3]
    straight = image_model(image_module)
    linear_probe(straight, image_data(), **options)
    assert heads_differ(resumed, straight) < 1e-5


def test_what_callbacks_add_to_the_logs_reaches_the_history(image_module):
    histories = {}
    for cache in (True, False):
        model = image_model(image_module)
        halving = keras.callbacks.LearningRateScheduler(lambda epoch, rate: 0.05 / 2**epoch)
        histories[cache] = linear_probe(
            model, image_data(), epochs=3, learning_rate=0.05, cache_features=cache, callbacks=[halving], verbose=0
        )
    assert histories[True].cached_features is not None
    assert histories[True].history["learning_rate"] == pytest.approx([0.05, 0.025, 0.0125])
    np.testing.assert_allclose(histories[True].history["loss"], histories[False].history["loss"], rtol=1e-5)
