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
