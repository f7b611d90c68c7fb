import keras
import numpy as np
import pytest
import tensorflow as tf

import tfxfer
from tests.conftest import tiny_bert
from tfxfer.data.length_bucketing import bucket_lengths, grouped_by_length, trimmed_to_bucket
from tfxfer.models.length_grouping import batches_may_vary_in_length, token_lengths_of

WORDS = "the a movie film good bad great awful plot actor was is very not".split()
LENGTH = 64


def long_text_model(length_bucketing=True, seed=0, pooling="masked_avg"):
    """A tiny KerasHub BERT whose preprocessor pads to 64 tokens."""
    keras.utils.set_random_seed(seed)
    backbone, preprocessor = tiny_bert(WORDS, sequence_length=LENGTH, max_sequence_length=LENGTH)
    return tfxfer.TransferModel(
        backbone, 2, preprocessor=preprocessor, pooling=pooling, length_bucketing=length_bucketing
    )


def sentences(count=96, seed=0):
    rng = np.random.default_rng(seed)
    texts = [" ".join(rng.choice(WORDS, rng.integers(1, 45))) for _ in range(count)]
    return texts, np.array(["good" in t.split() for t in texts], "int32")


def test_bucket_lengths_end_at_the_sequence_length():
    assert bucket_lengths(512) == (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)
    assert bucket_lengths(48) == (16, 24, 32, 48)
    assert bucket_lengths(40) == (16, 24, 32, 40)
    assert bucket_lengths(8) == (8,)
    for length in (17, 100, 300, 512):
        buckets = bucket_lengths(length)
        # Padding stays under a third of each bucket beyond the smallest.
        assert all(smaller / larger >= 2 / 3 for smaller, larger in zip(buckets, buckets[1:]) if larger < length)


def test_a_batch_is_cut_to_the_smallest_bucket_that_holds_its_longest_example():
    mask = tf.sequence_mask([3, 25], 64)
    batch = {"token_ids": tf.reshape(tf.range(128), [2, 64]), "padding_mask": mask, "label_like": tf.ones([2])}
    trimmed = trimmed_to_bucket(batch)
    assert trimmed["token_ids"].shape == (2, 32) and trimmed["padding_mask"].shape == (2, 32)
    np.testing.assert_array_equal(trimmed["token_ids"], batch["token_ids"][:, :32])
    assert trimmed_to_bucket({"padding_mask": tf.sequence_mask([17], 64)})["padding_mask"].shape == (1, 24)
    assert trimmed["label_like"].shape == (2,)
    # A full-length example keeps the full length; a left-padded one too (its last token counts).
    assert trimmed_to_bucket({"input_mask": tf.sequence_mask([64], 64)})["input_mask"].shape == (1, 64)
    left = tf.constant([[False] * 40 + [True] * 24])
    assert trimmed_to_bucket({"input_mask": left})["input_mask"].shape == (1, 64)


def test_grouping_keeps_batches_sizes_and_examples_and_groups_lengths():
    texts = ["w " * n for n in range(1, 101)]
    data = tf.data.Dataset.from_tensor_slices((texts, np.arange(100))).shuffle(100, seed=3).batch(8)
    grouped = grouped_by_length(data, tf.strings.length, pool_batches=13)
    assert int(grouped.cardinality()) == 13
    seen, spreads, sizes = [], [], []
    for x, y in grouped:
        lengths = tf.strings.length(x).numpy()
        spreads.append(lengths.max() - lengths.min())
        seen += list(y.numpy())
        sizes.append(len(y))
    assert sorted(seen) == list(range(100)) and sorted(sizes) == [4] + [8] * 12
    # Shuffled batches of 8 span most of the 2..200 range; sorted pools make them narrow.
    assert max(spreads) <= 2 * 8 * 2


def test_batches_come_in_a_new_order_each_epoch_reproducibly():
    data = tf.data.Dataset.from_tensor_slices((tf.range(64), tf.range(64))).batch(4)

    def epochs(grouped, count=3):
        return [[int(x[0]) for x, _ in grouped] for _ in range(count)]

    first, second, third = epochs(grouped_by_length(data, lambda x: x, seed=5))
    # One pool of 16 batches, sorted the same way each pass; only the batch order changes.
    assert sorted(first) == sorted(second) == list(range(0, 64, 4))
    assert first != second and second != third
    assert epochs(grouped_by_length(data, lambda x: x, seed=5)) == [first, second, third]
    assert epochs(grouped_by_length(data, lambda x: x, seed=6))[0] != first


def test_bucketing_changes_no_prediction_and_no_training_step():
    texts, labels = sentences()
    bucketed, padded = long_text_model(True), long_text_model(False)
    np.testing.assert_array_equal(bucketed.predict(texts, verbose=0), padded.predict(texts, verbose=0))
    data = tf.data.Dataset.from_tensor_slices((texts, labels)).batch(16)
    for model in (bucketed, padded):
        model.unfreeze()
        model.compile(optimizer=keras.optimizers.SGD(0.1))
    # Grouping reorders examples across batches: compare one batch, trimmed vs padded.
    first = next(iter(data))
    logs = [m.train_on_batch(*first, return_dict=True) for m in (bucketed, padded)]
    assert logs[0]["loss"] == pytest.approx(logs[1]["loss"], abs=1e-6)
    for a, b in zip(bucketed.weights, padded.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)


def test_fit_sees_few_shapes_and_compiles_with_xla():
    texts, labels = sentences(160)
    model = long_text_model()
    shapes = set()
    original = model.preprocess_samples

    data = tf.data.Dataset.from_tensor_slices((texts, labels)).shuffle(160, seed=0).batch(16)
    grouped = grouped_by_length(data, token_lengths_of(model))
    for batch in grouped.map(original):
        shapes.add(tuple(batch[0]["token_ids"].shape[1:]))
    assert shapes <= {(16,), (24,), (32,), (48,), (64,)} and len(shapes) >= 3
    model.unfreeze()
    model.compile(optimizer="adam", jit_compile=True)
    history = model.fit(data, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


def test_fixed_shapes_are_kept_where_they_are_asked_for():
    texts, labels = sentences(64)
    model = long_text_model()
    fixed = tf.data.Dataset.from_tensor_slices((texts, labels)).batch(16, drop_remainder=True)
    assert fixed.map(model.preprocess_samples).element_spec[0]["token_ids"].shape[1] == LENGTH
    varying = tf.data.Dataset.from_tensor_slices((texts, labels)).batch(16)
    assert varying.map(model.preprocess_samples).element_spec[0]["token_ids"].shape.as_list() == [None, None]
    model.compile(steps_per_execution=4)
    assert varying.map(model.preprocess_samples).element_spec[0]["token_ids"].shape.as_list() == [None, LENGTH]
    off = long_text_model(length_bucketing=False)
    assert varying.map(off.preprocess_samples).element_spec[0]["token_ids"].shape.as_list() == [None, LENGTH]


def test_the_setting_is_saved_with_the_model(tmp_path):
    model = long_text_model(length_bucketing=False)
    model.save(tmp_path / "model.keras")
    assert keras.models.load_model(tmp_path / "model.keras").length_bucketing is False


def test_tf_hub_text_route_is_bucketed_too(dict_module, text_preprocessor_module):
    model = tfxfer.TransferModel.from_hub(dict_module, num_classes=2, preprocessor=text_preprocessor_module)
    texts = ["good film", "bad plot awful"]
    assert batches_may_vary_in_length(model, tf.TensorSpec([None], tf.string))
    off = tfxfer.TransferModel.from_hub(
        dict_module, num_classes=2, preprocessor=text_preprocessor_module, length_bucketing=False
    )
    off.set_weights(model.get_weights())
    np.testing.assert_allclose(model.predict(texts, verbose=0), off.predict(texts, verbose=0), atol=1e-6)


def test_pooling_over_padded_positions_is_not_trimmed():
    """avg/max over the sequence count padding: trimming it would change the outputs."""
    texts = ["good film", " ".join(["very"] * 40)]
    outputs = {}
    for bucketing in (True, False):
        keras.utils.set_random_seed(0)
        backbone, preprocessor = tiny_bert(WORDS, sequence_length=LENGTH, max_sequence_length=LENGTH)
        model = tfxfer.TransferModel(
            backbone,
            2,
            preprocessor=preprocessor,
            pooling="avg",
            feature_key="sequence_output",
            length_bucketing=bucketing,
        )
        assert not batches_may_vary_in_length(model, tf.TensorSpec([None], tf.string))
        outputs[bucketing] = model.predict(texts, batch_size=1, verbose=0)
    np.testing.assert_allclose(outputs[True], outputs[False], atol=1e-6)


def test_a_backbone_of_one_fixed_length_gets_that_length():
    _, preprocessor = tiny_bert(WORDS, sequence_length=LENGTH, max_sequence_length=LENGTH)
    inputs = {
        name: keras.Input((LENGTH,), dtype="int32", name=name) for name in ("token_ids", "padding_mask", "segment_ids")
    }
    embedded = keras.layers.Embedding(len(WORDS) + 5, 4)(inputs["token_ids"])
    backbone = keras.Model(inputs, keras.layers.GlobalAveragePooling1D()(embedded))
    model = tfxfer.TransferModel(backbone, 2, preprocessor=preprocessor)
    assert not batches_may_vary_in_length(model, tf.TensorSpec([None], tf.string))
    texts, labels = sentences(16)
    model.fit(texts, labels, batch_size=8, epochs=1, verbose=0)
    assert model.predict(["good"], verbose=0).shape == (1, 2)
