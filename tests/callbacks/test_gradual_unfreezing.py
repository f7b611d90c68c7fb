import keras
import numpy as np
import pytest

from tests.conftest import random_images
from tfxfer import TransferModel, discriminative_optimizer
from tfxfer.callbacks import GradualUnfreezing
from tfxfer.regularizers import L2SP


class GroupsChangedPerEpoch(keras.callbacks.Callback):
    """Records which backbone layer groups changed during each epoch."""

    def __init__(self):
        super().__init__()
        self.changed = []

    def _snapshot(self):
        return {id(w): w.numpy().copy() for group in self.model.backbone_layer_groups() for w in group.weights}

    def on_epoch_begin(self, epoch, logs=None):
        self.before = self._snapshot()

    def on_epoch_end(self, epoch, logs=None):
        self.changed.append(
            [
                group.name
                for group in self.model.backbone_layer_groups()
                if any(not np.allclose(w.numpy(), self.before[id(w)]) for w in group.weights)
            ]
        )


def _fit(model, epochs, unfreezing):
    recorder = GroupsChangedPerEpoch()
    x, y = random_images(16, seed=2), np.array([0, 1] * 8)
    history = model.fit(x, y, epochs=epochs, batch_size=8, verbose=0, callbacks=[unfreezing, recorder])
    return recorder.changed, history


def test_one_more_group_each_epoch_in_one_fit(image_module):
    model = TransferModel.from_hub(image_module, input_shape=(10, 10, 3), num_classes=2)
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    optimizer = model.optimizer
    changed, _ = _fit(model, 5, GradualUnfreezing(verbose=0))
    assert changed == [[], ["b1"], ["b0", "b1"], ["stem_bn", "b0", "b1"], ["stem_conv", "stem_bn", "b0", "b1"]]
    # No recompile inside fit: the same optimizer, which kept counting.
    assert model.optimizer is optimizer
    assert int(optimizer.iterations.numpy()) == 5 * 2
    assert model.trainable_backbone is True


def test_explicit_schedule_list(image_module):
    model = TransferModel.from_hub(image_module, input_shape=(10, 10, 3), num_classes=2)
    unfreezing = GradualUnfreezing(schedule=[0, 2], verbose=0)
    changed, _ = _fit(model, 3, unfreezing)
    assert changed == [[], ["b0", "b1"], ["b0", "b1"]]
    assert unfreezing.history == [0, 2, 2]


def test_with_discriminative_rates_and_regularizer(image_module):
    model = TransferModel.from_hub(image_module, input_shape=(10, 10, 3), num_classes=2, regularizer=L2SP(0.1, 0.01))
    model.compile(optimizer=discriminative_optimizer(model, 0.01, layer_decay=0.5, optimizer="adam"))
    changed, history = _fit(model, 3, GradualUnfreezing(verbose=0))
    # The MultiOptimizer gets zero gradients for frozen groups: they stay put.
    assert changed == [[], ["b1"], ["b0", "b1"]]
    assert all(np.isfinite(history.history["regularization_loss"]))


def test_bad_schedules():
    with pytest.raises(TypeError, match="schedule must be None, a list"):
        GradualUnfreezing(schedule="fast")
    with pytest.raises(ValueError, match="groups_per_epoch must be a positive integer"):
        GradualUnfreezing(groups_per_epoch=0)
    with pytest.raises(ValueError, match="gave -1 for epoch 0"):
        GradualUnfreezing(schedule=lambda epoch: -1).top_groups(0)


def test_needs_a_transfer_model(image_module):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile("sgd", "mse")
    with pytest.raises(TypeError, match="works with tfxfer.TransferModel"):
        model.fit(np.zeros((4, 3)), np.zeros((4, 2)), verbose=0, callbacks=[_PrepareOnTrainBegin(GradualUnfreezing())])


class _PrepareOnTrainBegin(keras.callbacks.Callback):
    def __init__(self, unfreezing):
        super().__init__()
        self.unfreezing = unfreezing

    def on_train_begin(self, logs=None):
        self.unfreezing.prepare(self.model)
