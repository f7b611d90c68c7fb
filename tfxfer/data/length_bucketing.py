"""Length bucketing: text batches cut to the smallest of a few lengths that fits them.

A text preprocessor pads every example to its sequence length (128), while
most sentences are far shorter, so most of a transformer's work is padding.
Two steps remove it without changing any result:

- `trimmed_to_bucket` cuts a preprocessed batch to the smallest bucket
  length that holds its longest example. Attention and masked pooling
  ignore padding, so the outputs are those of the full-length batch; the
  number of distinct shapes stays at the number of buckets, so `tf.function`
  and XLA compile a few programs, not one per batch.
- `grouped_by_length` reorders a raw training set so that each batch holds
  examples of similar length (sorted within pools of batches), keeping the
  number and sizes of the batches.
"""

import tensorflow as tf

PADDING_MASK_KEYS = ("padding_mask", "input_mask")
SMALLEST_BUCKET = 16
POOL_BATCHES = 32


def bucket_lengths(sequence_length, smallest=SMALLEST_BUCKET):
    """Powers of two and 1.5 times powers of two from `smallest`, then `sequence_length`.

    Two buckets per doubling keep a batch's padding below a third of its
    bucket (below half with powers of two alone, which pads SST-2's batches
    to about a quarter more tokens), while the number of shapes stays
    small: 7 up to 128, 11 up to 512.

    Example:

    >>> bucket_lengths(128)
    (16, 24, 32, 48, 64, 96, 128)
    >>> bucket_lengths(100)
    (16, 24, 32, 48, 64, 96, 100)
    """
    lengths = []
    length = smallest
    while length < sequence_length:
        lengths.append(length)
        if 3 * length // 2 < sequence_length:
            lengths.append(3 * length // 2)
        length *= 2
    return tuple(lengths) + (int(sequence_length),)


def padding_mask_of(inputs):
    """The padding mask of preprocessed text inputs (a dict), or None."""
    if not isinstance(inputs, dict):
        return None
    for key in PADDING_MASK_KEYS:
        if key in inputs:
            return inputs[key]
    return None


def token_lengths(mask):
    """Tokens of each example up to its last unpadded position, `[batch]` int32."""
    positions = tf.range(1, tf.shape(mask)[1] + 1)
    return tf.reduce_max(tf.where(tf.cast(mask, tf.bool), positions[tf.newaxis, :], 0), axis=1)


def trimmed_to_bucket(inputs, buckets=None):
    """`inputs` with every `[batch, length, ...]` tensor cut to the batch's bucket.

    The bucket is the smallest of `buckets` (default: `bucket_lengths` of the
    padded length) that holds the batch's longest example. Inputs without a
    padding mask, or without a static padded length, come back unchanged.

    Example:

    >>> batch = {"token_ids": tf.ones([2, 128], tf.int32),
    ...          "padding_mask": tf.sequence_mask([5, 20], 128)}
    >>> trimmed_to_bucket(batch)["token_ids"].shape
    TensorShape([2, 24])
    """
    mask = padding_mask_of(inputs)
    if mask is None or mask.shape.rank != 2 or mask.shape[1] is None:
        return inputs
    padded_length = int(mask.shape[1])
    buckets = tf.constant(buckets or bucket_lengths(padded_length), tf.int32)
    longest = tf.reduce_max(token_lengths(mask))
    bucket = tf.reduce_min(tf.where(buckets >= longest, buckets, padded_length))
    return {
        key: value[:, :bucket] if value.shape.rank >= 2 and value.shape[1] == padded_length else value
        for key, value in inputs.items()
    }


def grouped_by_length(dataset, lengths_of, *, pool_batches=POOL_BATCHES, seed=0):
    """Batches of `dataset` regrouped so that each holds examples of similar length.

    `dataset` yields `(x, y[, sample_weight])` batches; `lengths_of(x)` gives
    each example's length (e.g. its token count). Every `pool_batches`
    consecutive batches are pooled, their examples sorted by length and
    dealt back into batches of the original sizes, which come out in a
    random order that changes from epoch to epoch (reproducibly, from
    `seed`). The number of batches and their sizes stay those
    of `dataset`, so step counts, schedules and progress bars are unchanged;
    every example is seen once per epoch. Shuffle `dataset` first (as the
    loaders do) for pools that differ from epoch to epoch.

    Example:

    >>> lengths = lambda x: tf.strings.length(x)
    >>> data = tf.data.Dataset.from_tensor_slices((["a", "bbbb", "cc", "ddd"], [0, 1, 0, 1])).batch(2)
    >>> sorted(list(x.numpy()) for x, _ in grouped_by_length(data, lengths))
    [[b'a', b'cc'], [b'ddd', b'bbbb']]
    """
    if not isinstance(dataset.element_spec, tuple):
        return dataset
    cardinality = int(dataset.cardinality())

    def with_valid_rows(*batch):
        rows = tf.shape(tf.nest.flatten(batch)[0])[0]
        return batch, tf.ones([rows], tf.bool)

    def dealt(pool, order_seed):
        batch, valid = pool
        sizes = tf.reduce_sum(tf.cast(valid, tf.int32), axis=1)
        examples = tf.nest.map_structure(lambda t: tf.boolean_mask(t, valid), batch)
        order = tf.argsort(lengths_of(examples[0]), stable=True)
        examples = tf.nest.map_structure(lambda t: tf.gather(t, order), examples)
        ends = tf.cumsum(sizes)
        starts = ends - sizes
        batch_order = tf.random.experimental.stateless_shuffle(tf.range(tf.size(sizes)), seed=[order_seed, seed])
        return tf.data.Dataset.from_tensor_slices(batch_order).map(
            lambda i: tf.nest.map_structure(lambda t: t[starts[i] : ends[i]], examples)
        )

    pools = dataset.map(with_valid_rows).padded_batch(pool_batches)
    # One seed per pool, new at every pass over the data: a small dataset
    # forms a single pool whose sorted batches would otherwise come in the
    # same order every epoch.
    order_seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    grouped = tf.data.Dataset.zip(pools, order_seeds).flat_map(dealt)
    if cardinality >= 0:
        grouped = grouped.apply(tf.data.experimental.assert_cardinality(cardinality))
    return grouped.prefetch(tf.data.AUTOTUNE)
