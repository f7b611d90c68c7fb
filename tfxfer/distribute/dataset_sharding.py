"""`sharded_by_examples`: how a multi-worker job splits a `tf.data` pipeline."""


def sharded_by_examples(dataset):
    """`dataset`, split among workers batch by batch rather than file by file.

    Under `MultiWorkerMirroredStrategy` every worker builds the same pipeline
    (same files, same seeded shuffle) and keeps its own part of each global
    batch, so each example is seen once per epoch across the workers. The
    loaders decode into memory, which leaves no files to split, and a split by
    file would give workers uneven numbers of steps.

    Example:

    >>> import tensorflow as tf
    >>> dataset = sharded_by_examples(tf.data.Dataset.range(8).batch(4))
    >>> dataset.options().experimental_distribute.auto_shard_policy.name
    'DATA'
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def leaves_a_replica_empty(examples, batch_size, replicas):
    """Whether some global batch of `examples` gives a replica no examples.

    `tf.distribute` splits a global batch of n examples into pieces of
    `ceil(n / replicas)`, filling the first replicas; when too few are left
    for the last replica, it gets an empty batch, which a TF Hub module with
    BatchNorm cannot run on. Both the full batches and the short last one
    are checked.

    Example:

    >>> leaves_a_replica_empty(12, 8, 3)  # the last batch of 4 splits 2 + 2 + 0
    True
    >>> leaves_a_replica_empty(12, 6, 3)
    False
    """
    sizes = ([batch_size] if examples >= batch_size else []) + [examples % batch_size]
    return any(size and -(-size // replicas) * (replicas - 1) >= size for size in sizes)


def batch_size_for_replicas(example_counts, batch_size, replicas):
    """The batch size nearest `batch_size` for which no split leaves a replica empty (None if none)."""
    candidates = sorted(range(1, 2 * batch_size + 1), key=lambda size: (abs(size - batch_size), -size))
    for size in candidates:
        if not any(leaves_a_replica_empty(count, size, replicas) for count in example_counts if count):
            return size
    return None
