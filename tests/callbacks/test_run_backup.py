"""`RunBackup` and `BestCheckpoint`: an interrupted recipe resumed equals an uninterrupted one."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import random_images
from tfxfer import TransferModel
from tfxfer.callbacks import BestCheckpoint, RunBackup, resume_epoch
from tfxfer.recipes import run_recipe
from tfxfer.regularizers import L2SP


class _Interrupt(keras.callbacks.Callback):
    """Stops the process's work after `epochs` epochs, as a kill would (after the backup)."""

    def __init__(self, epochs):
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epochs:
            raise KeyboardInterrupt


def _data():
    x, y = random_images(24, seed=3), np.array([0, 1, 2] * 8)
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(8)


def _model(image_module):
    keras.utils.set_random_seed(0)
    return TransferModel.from_hub(
        image_module, input_shape=(10, 10, 3), num_classes=3, regularizer=L2SP(alpha=0.5, beta=0.01)
    )


def _train(image_module, folder, recipe, stop_after=None, **options):
    model = _model(image_module)
    backup = RunBackup(folder / "backup")
    callbacks = [backup] + ([_Interrupt(stop_after)] if stop_after else [])
    run_recipe(recipe, model, _data(), validation_data=_data(), verbose=0, callbacks=callbacks, **options)
    return model, backup


@pytest.mark.parametrize(
    "recipe, options, stops",
    [
        ("two_phase", dict(head_epochs=2, epochs=3, learning_rate=1e-2, layer_decay=0.7), (1, 2, 4)),
        ("gradual", dict(epochs=4, learning_rate=1e-2), (1, 3)),
        ("linear_probe", dict(epochs=3, head_learning_rate=1e-2), (2,)),
    ],
)
def test_resumed_recipe_equals_uninterrupted(image_module, tmp_path, recipe, options, stops):
    reference, reference_backup = _train(image_module, tmp_path / "reference", recipe, **options)
    total = len(reference_backup.history["loss"])
    for stop in stops:
        folder = tmp_path / f"stopped-{stop}"
        with pytest.raises(KeyboardInterrupt):
            _train(image_module, folder, recipe, stop_after=stop, **options)
        assert RunBackup(folder / "backup").latest()[0] == stop
        resumed, backup = _train(image_module, folder, recipe, **options)
        assert backup.resumed_from == stop
        # Every epoch is reported, and the weights (w⁰ included), optimizer
        # step and schedule position are those of the uninterrupted run.
        assert len(backup.history["loss"]) == total
        np.testing.assert_allclose(backup.history["loss"], reference_backup.history["loss"], rtol=1e-5)
        assert int(resumed.optimizer.iterations) == int(reference.optimizer.iterations)
        for mine, theirs in zip(resumed.weights, reference.weights):
            np.testing.assert_allclose(mine.numpy(), theirs.numpy(), atol=1e-5, err_msg=f"{recipe} {stop} {mine.path}")


def test_backup_is_one_complete_file_per_epoch(image_module, tmp_path):
    _, backup = _train(image_module, tmp_path, "linear_probe", epochs=2)
    names = sorted(path.name for path in (tmp_path / "backup").iterdir())
    assert names == ["epoch-2.json", "epoch-2.weights.h5"]
    assert json.loads((tmp_path / "backup" / "epoch-2.json").read_text())["epoch"] == 2


def test_best_checkpoint_breaks_ties_by_loss_and_survives_a_restart(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    checkpoint = BestCheckpoint(tmp_path / "best.keras")
    checkpoint.set_model(model)
    checkpoint.on_epoch_end(0, {"val_accuracy": 0.9, "val_loss": 0.5})
    checkpoint.on_epoch_end(1, {"val_accuracy": 0.9, "val_loss": 0.3})  # same accuracy, lower loss
    checkpoint.on_epoch_end(2, {"val_accuracy": 0.8, "val_loss": 0.1})
    checkpoint.on_epoch_end(3, {"val_accuracy": 0.9, "val_loss": 0.4})
    assert checkpoint.best_epoch == 2
    again = BestCheckpoint(tmp_path / "best.keras")  # a resumed run
    again.set_model(model)
    again.on_epoch_end(4, {"val_accuracy": 0.85, "val_loss": 0.01})
    assert again.best_epoch == 2
    keras.models.load_model(tmp_path / "best.keras")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.json", "best.keras"]
    fallback = BestCheckpoint(tmp_path / "train.keras")
    fallback.set_model(model)
    fallback.on_epoch_end(0, {"accuracy": 0.5, "loss": 1.0})
    assert fallback.best["metric"] == "accuracy"


def test_fit_starts_at_the_backups_epoch_and_a_later_fit_without_it_from_zero(image_module, tmp_path):
    _train(image_module, tmp_path, "linear_probe", epochs=2)
    model = _model(image_module)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    seen = []
    recorder = keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: seen.append(epoch))
    model.fit(_data(), epochs=4, verbose=0, callbacks=[RunBackup(tmp_path / "backup"), recorder])
    assert seen == [2, 3]
    seen.clear()
    model.fit(_data(), epochs=2, verbose=0, callbacks=[recorder])
    assert seen == [0, 1]


def _plain_model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    return model


def test_a_plain_keras_fit_resumes_through_resume_epoch_and_is_refused_without_it(tmp_path):
    x, y = np.ones((8, 3), "float32"), np.ones((8, 2), "float32")
    callbacks = [RunBackup(tmp_path), _Interrupt(2)]
    with pytest.raises(KeyboardInterrupt):
        _plain_model().fit(x, y, epochs=4, verbose=0, callbacks=callbacks)
    with pytest.raises(
        RuntimeError, match="restored the state after epoch 2, but this fit starts at epoch 1.*resume_epoch"
    ):
        _plain_model().fit(x, y, epochs=4, verbose=0, callbacks=[RunBackup(tmp_path)])
    seen = []
    recorder = keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: seen.append(epoch))
    callbacks = [RunBackup(tmp_path), recorder]
    _plain_model().fit(x, y, epochs=4, verbose=0, callbacks=callbacks, initial_epoch=resume_epoch(callbacks))
    assert seen == [2, 3]
    # An explicit start past the backup wins; one before it starts after the backup.
    assert resume_epoch([RunBackup(tmp_path)], initial_epoch=6) == 6
    assert resume_epoch([RunBackup(tmp_path)], initial_epoch=1) == 4


def test_a_fit_with_nothing_left_to_train_still_takes_the_backups_weights(image_module, tmp_path):
    trained, _ = _train(image_module, tmp_path, "linear_probe", epochs=2)
    resumed, backup = _train(image_module, tmp_path, "linear_probe", epochs=2)
    assert backup.resumed_from == 2
    for mine, theirs in zip(resumed.weights, trained.weights):
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), atol=1e-6, err_msg=mine.path)
