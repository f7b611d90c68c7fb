import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import random_images
from tfxfer import TransferModel
from tfxfer.regularizers import L2SP


class _Snapshots:
    def __init__(self, model):
        self.model = model

    def take(self):
        return (
            [w.numpy().copy() for _, w in self.model.backbone.module_weights],
            [w.numpy().copy() for w in self.model.head.weights],
        )


def _dataset():
    x, y = random_images(16, seed=7), np.array([0, 1] * 8)
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(8)


def test_phase_one_trains_only_the_head_then_phase_two_the_backbone(image_module):
    model = TransferModel.from_hub(image_module, input_shape=(10, 10, 3), num_classes=2)
    snapshots = _Snapshots(model)
    start_backbone, start_head = snapshots.take()
    after_phase_one = {}

    def record(epoch, logs):
        if epoch == 1:  # last epoch of phase one
            after_phase_one["backbone"], after_phase_one["head"] = snapshots.take()

    import keras

    history = model.fine_tune(
        _dataset(),
        validation_data=_dataset(),
        head_epochs=2,
        epochs=2,
        callbacks=[keras.callbacks.LambdaCallback(on_epoch_end=record)],
        verbose=0,
    )
    for before, after in zip(start_backbone, after_phase_one["backbone"]):
        np.testing.assert_array_equal(before, after)  # backbone frozen in phase one
    assert any(not np.allclose(a, b) for a, b in zip(start_head, after_phase_one["head"]))
    end_backbone, _ = snapshots.take()
    assert any(not np.allclose(a, b) for a, b in zip(after_phase_one["backbone"], end_backbone))

    assert history.epoch == [0, 1, 2, 3]
    assert len(history.history["loss"]) == len(history.history["val_accuracy"]) == 4
    assert model.trainable_backbone is True


def test_phase_two_uses_warmup_cosine_and_layer_decay(image_module):
    model = TransferModel.from_hub(image_module, input_shape=(10, 10, 3), num_classes=2)
    model.fine_tune(
        _dataset(),
        head_epochs=1,
        epochs=2,
        learning_rate=1e-3,
        layer_decay=0.5,
        warmup_fraction=0.5,
        unfreeze_top=2,
        verbose=0,
    )
    import keras

    assert isinstance(model.optimizer, keras.optimizers.MultiOptimizer)
    head_optimizer = model.optimizer.optimizers[-1]  # the map's default
    schedule = keras.optimizers.schedules.deserialize(head_optimizer.get_config()["learning_rate"])
    assert float(schedule(2)) == pytest.approx(1e-3)  # 4 steps, 2 of warmup
    assert float(schedule(1)) == pytest.approx(5e-4)
    top_group = model.optimizer.optimizers[0]  # b1, one group down: lr/2
    top_schedule = keras.optimizers.schedules.deserialize(top_group.get_config()["learning_rate"])
    assert float(top_schedule(2)) == pytest.approx(5e-4)
    assert model.trainable_backbone == 2


def test_fine_tune_with_regularizer_and_arrays(image_module):
    model = TransferModel.from_hub(image_module, input_shape=(10, 10, 3), num_classes=2, regularizer=L2SP(0.01, 0.01))
    x, y = random_images(16, seed=7), np.array([0, 1] * 8)
    history = model.fine_tune(x, y, head_epochs=1, epochs=1, batch_size=8, verbose=0)
    assert set(history.history) >= {"loss", "task_loss", "regularization_loss", "accuracy"}
    assert len(history.history["loss"]) == 2


@pytest.mark.parametrize(
    "options, message",
    [
        ({"epochs": 0}, "epochs must be a positive integer"),
        ({"head_epochs": -1}, "head_epochs must be an integer >= 0"),
        ({"warmup_fraction": 1.0}, r"warmup_fraction must be in \[0, 1\)"),
    ],
)
def test_bad_options(image_module, options, message):
    model = TransferModel.from_hub(image_module, input_shape=(10, 10, 3), num_classes=2)
    with pytest.raises(ValueError, match=message):
        model.fine_tune(_dataset(), **options)


@pytest.mark.parametrize("cache_features", [True, False])
def test_initial_epoch_counts_on_in_every_recipe(image_module, cache_features):
    from tfxfer.recipes import linear_probe

    model = TransferModel.from_hub(image_module, input_shape=(10, 10, 3), num_classes=2)
    probe = linear_probe(model, _dataset(), epochs=2, initial_epoch=2, cache_features=cache_features, verbose=0)
    assert probe.epoch == [2, 3]
    with pytest.raises(ValueError, match="initial_epoch must be an integer >= 0, got -1"):
        linear_probe(model, _dataset(), epochs=1, initial_epoch=-1, verbose=0)
    both = model.fine_tune(
        _dataset(), head_epochs=1, epochs=1, initial_epoch=1, cache_features=cache_features, verbose=0
    )
    assert both.epoch == [1, 2]


def test_callbacks_that_set_the_rate_are_refused_before_any_phase(image_module):
    import keras

    model = TransferModel.from_hub(image_module, input_shape=(10, 10, 3), num_classes=2)
    before = [w.numpy().copy() for w in model.head.weights]
    plateau = keras.callbacks.ReduceLROnPlateau()
    with pytest.raises(ValueError, match=r"schedules its learning rate itself.*ReduceLROnPlateau cannot set it"):
        model.fine_tune(_dataset(), head_epochs=1, epochs=1, callbacks=[plateau], verbose=0)
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(before, model.head.weights))  # no head phase ran
