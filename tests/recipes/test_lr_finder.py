import keras
import numpy as np
import pytest

from tests.models.test_lora_adapters import sentences, text_model
from tfxfer.recipes import steepest_descent
from tfxfer.recipes.lr_finder import LearningRateCurve


def test_the_finder_ramps_rates_suggests_one_and_restores_everything():
    model = text_model()
    model.unfreeze()
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    texts, labels = sentences(64)
    model.fit(texts, labels, epochs=1, verbose=0)
    weights = [np.array(w) for w in model.get_weights()]
    steps = int(model.optimizer.iterations.numpy())
    trainable = [w.path for w in model.trainable_weights]
    curve = model.lr_find(texts, labels, start=1e-5, end=10.0, steps=40)
    rates = curve.learning_rates
    assert rates[0] == pytest.approx(1e-5) and all(b > a for a, b in zip(rates, rates[1:]))
    assert len(curve.losses) == len(rates) == len(curve.smoothed_losses)
    assert rates[0] <= curve.suggestion <= rates[-1]
    assert all(np.array_equal(a, b) for a, b in zip(weights, model.get_weights()))
    assert int(model.optimizer.iterations.numpy()) == steps
    assert [w.path for w in model.trainable_weights] == trainable
    assert type(model.optimizer) is keras.optimizers.Adam


def test_a_diverging_loss_stops_the_ramp():
    model = text_model()
    model.unfreeze()
    texts, labels = sentences(64)
    curve = model.lr_find(texts, labels, start=1e-3, end=1e4, steps=60, optimizer="sgd")
    assert curve.stopped_early and len(curve.losses) < 60


def test_the_suggestion_is_the_steepest_fall_before_the_minimum():
    rates = [1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0]
    assert steepest_descent(rates, [1.0, 0.98, 0.6, 0.5, 0.45, 3.0]) == 1e-3
    assert steepest_descent(rates, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]) == 1e-5


def test_a_suggestion_at_the_start_of_the_range_comes_with_a_caveat():
    rates = [1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0]
    rising = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    curve = LearningRateCurve(rates, rising, rising, steepest_descent(rates, rising), stopped_early=False)
    assert "at the very start of the range tried" in curve.caveat
    assert curve.as_dict()["caveat"] == curve.caveat
    falling = [1.0, 0.98, 0.6, 0.5, 0.45, 3.0]
    assert LearningRateCurve(rates, falling, falling, steepest_descent(rates, falling), False).caveat is None


@pytest.mark.parametrize(
    "options, message",
    [
        ({"start": 1.0, "end": 0.1}, "0 < start < end"),
        ({"steps": 2}, "steps must be an integer >= 5"),
        ({"diverge": 1.0}, "diverge must be > 1"),
    ],
)
def test_bad_options_are_named(options, message):
    texts, labels = sentences(8)
    with pytest.raises(ValueError, match=message):
        text_model().lr_find(texts, labels, **options)
