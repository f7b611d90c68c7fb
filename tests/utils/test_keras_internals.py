"""Canary for `tfxfer.utils.keras_internals`: fails, naming the internal, when a Keras release changes one."""

import inspect

import keras
import numpy as np

from tfxfer.utils import keras_internals


def _model():
    inputs = keras.Input((3,))
    hidden = keras.layers.Dense(4, name="hidden")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, name="out")(hidden))
    model.compile(optimizer="adam", loss="mse")
    return model


def test_each_internal_is_still_there_and_means_what_it_did():
    model = _model()
    names = [layer.name for layer in keras_internals.nested_layers(model)]
    assert "hidden" in names and "out" in names
    model.get_layer("hidden").trainable = False
    capable = keras_internals.trainable_capable_weights(model.get_layer("hidden"))
    assert len(capable) == 2 and not model.get_layer("hidden").trainable_weights
    assert isinstance(keras_internals.loss_tracker(model), keras.metrics.Mean)
    keras_internals.build_from_batch(model, (np.zeros((2, 3), "float32"), np.zeros((2, 2), "float32")))
    assert model.built
    assert keras_internals.is_fits_validation({"_use_cached_eval_dataset": True})
    assert "_use_cached_eval_dataset" in inspect.getsource(keras.Model.fit)


def test_multi_optimizer_map_and_loading_weights_without_the_optimizer(tmp_path):
    mapping = keras.optimizers.OptimizerMap(keras.optimizers.Adam())
    assert keras_internals.optimizer_map(keras.optimizers.MultiOptimizer(mapping)) is mapping
    model = _model()
    model.fit(np.ones((4, 3), "float32"), np.ones((4, 2), "float32"), epochs=1, verbose=0)
    path = str(tmp_path / "w.weights.h5")
    model.save_weights(path)
    fresh = _model()
    fresh.build((None, 3))
    keras_internals.load_weights_except(fresh, path, objects_to_skip=[fresh.optimizer])
    np.testing.assert_allclose(fresh.get_weights()[0], model.get_weights()[0])
