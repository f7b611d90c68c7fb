"""What a `tf.data` pipeline does, read from its graph (random ops, shuffling)."""

import tensorflow as tf


def pipeline_ops(dataset):
    """The names of the ops in `dataset`'s pipeline and its functions, or None.

    None when TensorFlow cannot serialize the pipeline (e.g. a Python
    generator).

    Example:

    >>> "ShuffleDatasetV3" in pipeline_ops(tf.data.Dataset.range(4).shuffle(4))
    True
    """
    try:
        serialized = tf.raw_ops.DatasetToGraphV2(
            input_dataset=dataset._variant_tensor,
            external_state_policy=1,  # IGNORE: stateful ops do not matter here
        )
    except (tf.errors.OpError, ValueError, TypeError):
        return None
    graph = tf.compat.v1.GraphDef()
    graph.ParseFromString(serialized.numpy())
    ops = {node.op for node in graph.node}
    for function in graph.library.function:
        ops.update(node.op for node in function.node_def)
    return ops


def fixed_batch_size(structure):
    """Whether batches of `structure` (tensors or specs) have a static batch size (`drop_remainder`)."""
    return any(t.shape.rank and t.shape[0] is not None for t in tf.nest.flatten(structure))
