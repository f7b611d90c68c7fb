"""Makes Keras 3 `fit`/`evaluate`/`predict` work under `MultiWorkerMirroredStrategy`.

Workaround for https://github.com/keras-team/keras/issues/20585 (open since
Keras 3.0 / TF 2.16; the TF multi-worker tutorial fails with "Attempt to
convert a value (PerReplica:{...}) with an unsupported type"). Two places in
`keras/src/backend/tensorflow/trainer.py` go wrong when the strategy's
collectives span several workers:

1. `TensorFlowTrainer._maybe_symbolic_build` reduces the first distributed
   data batch across workers (`strategy.reduce("MEAN", batch, axis=None)`)
   just to learn its structure and shapes; across workers that reduction
   cannot take a per-replica batch. One replica's local batch has the same
   structure, so the fix builds from that.
2. `reduce_per_replica` reduces the step's logs with
   `strategy.reduce("MEAN", v, axis=0)`, which fails for scalar logs (a
   loss, a metric result). Scalars are reduced with `axis=None`.

Beside that bug, `predict_on_batch` under the same strategy runs the local
batch on every worker and concatenates the workers' copies (Keras'
"concat" reduction); `first_copy` keeps one.

This is the only module that touches Keras internals for multi-worker
training. `tests/distribute/test_multi_worker_fix.py` runs plain Keras on
two workers without it, and fails once upstream Keras no longer needs it:
then delete this module and `MultiWorkerFix` from `TransferModel`'s bases.

Example:

>>> from tfxfer.distribute import multi_worker_fix
>>> multi_worker_fix.install()  # idempotent; TransferModel does it before it builds
>>> multi_worker_fix.installed()
True
"""

import functools

UPSTREAM_ISSUE = "https://github.com/keras-team/keras/issues/20585"


class MultiWorkerFix:
    """The two `TransferModel` overrides this workaround needs (a mixin, first among Keras' bases)."""

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if not spans_workers(self.distribute_strategy):
            return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)
        install()
        symbolic_build(self, iterator=iterator, data_batch=data_batch)

    def predict_on_batch(self, x):
        outputs = super().predict_on_batch(x)
        if spans_workers(self.distribute_strategy):
            import tensorflow as tf

            rows = int(tf.shape(next(t for t in tf.nest.flatten(x) if t is not None))[0])
            outputs = first_copy(outputs, rows)
        return outputs


def spans_workers(strategy):
    """Whether `strategy` all-reduces across several worker processes."""
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and (
        strategy.extended._in_multi_worker_mode()
    )


def local_batch(strategy, data_batch):
    """One replica's part of a distributed batch: the structure Keras builds from."""
    import tensorflow as tf

    def local(value):
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(value)[0]
        return value

    return tf.nest.map_structure(local, data_batch)


def symbolic_build(model, iterator=None, data_batch=None):
    """`_maybe_symbolic_build` that never reduces a data batch across workers."""
    strategy = model._distribute_strategy
    if strategy is None:
        return
    if iterator is not None:
        for _, _, batches in iterator:
            data_batch = local_batch(strategy, next(batches))
            break
    with strategy.scope():
        model._symbolic_build(data_batch=data_batch)


def first_copy(outputs, rows):
    """`predict_on_batch` outputs of a local batch of `rows`: the first worker's copy."""
    import tensorflow as tf

    return tf.nest.map_structure(lambda value: value[:rows], outputs)


# The replacements `install` made: this module owns the record of what it patched.
_REPLACEMENTS = set()


def install():
    """Swaps Keras' `reduce_per_replica` for one that reduces scalar logs across workers."""
    from keras.src.backend.tensorflow import trainer

    if installed():
        return
    original = trainer.reduce_per_replica

    @functools.wraps(original)
    def reduce_per_replica(values, strategy, reduction):
        if reduction not in ("auto", "mean") or not spans_workers(strategy):
            return original(values, strategy, reduction)
        return _mean_across_workers(values, strategy)

    _REPLACEMENTS.add(reduce_per_replica)
    trainer.reduce_per_replica = reduce_per_replica


def installed():
    """Whether `install` has replaced Keras' `reduce_per_replica`."""
    from keras.src.backend.tensorflow import trainer

    return trainer.reduce_per_replica in _REPLACEMENTS


def _mean_across_workers(values, strategy):
    import tensorflow as tf

    def mean(value):
        if not isinstance(value, tf.distribute.DistributedValues):
            return value
        rank = strategy.experimental_local_results(value)[0].shape.rank
        return strategy.reduce("MEAN", value, axis=0 if rank else None)

    return tf.nest.map_structure(mean, values)
