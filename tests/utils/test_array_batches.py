import numpy as np
import pytest

from tfxfer.utils.array_batches import is_array_like, shuffled_batches, split_last


def _epoch(dataset):
    return [int(v) for x, y in dataset for v in y.numpy()]


def test_batches_are_reshuffled_every_epoch():
    texts = [f"text {i}" for i in range(64)]
    dataset = shuffled_batches(texts, np.arange(64), batch_size=16, seed=3)
    first, second = _epoch(dataset), _epoch(dataset)
    assert sorted(first) == sorted(second) == list(range(64))
    assert first != second and first != list(range(64))


def test_split_last_takes_the_tail_like_keras():
    (x, y, w), (vx, vy, vw) = split_last(0.25, ["a", "b", "c", "d"], np.arange(4), None)
    assert list(x) == ["a", "b", "c"] and list(vx) == ["d"]
    assert list(vy) == [3] and w is None and vw is None


def test_split_that_leaves_nothing_is_rejected():
    with pytest.raises(ValueError, match="empty training or validation set"):
        split_last(0.5, ["a"], np.arange(1))


def test_empty_training_set_is_rejected():
    with pytest.raises(ValueError, match="no training examples"):
        shuffled_batches(np.zeros((0, 3)), np.zeros((0,)))


def test_is_array_like():
    import tensorflow as tf

    assert is_array_like(["a"]) and is_array_like({"a": np.zeros(2)})
    assert not is_array_like(tf.data.Dataset.range(3))
    assert not is_array_like(iter([1]))
