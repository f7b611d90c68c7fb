"""One regularized SGD step under the default strategy and MirroredStrategy.

Run as a script (TF must split the CPU into 2 logical devices before it
starts, so the test runs this in a fresh process). Prints the largest weight
difference from the default strategy for the real train step and for a naive
one that adds the penalty after the per-replica loss scaling.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf

CPU = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(CPU, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

import tfxfer  # noqa: E402
from tfxfer.models import regularized_step  # noqa: E402


def one_step(handle, strategy, naive=False, discriminative=False, source_classifier=None):
    keras.utils.set_random_seed(0)
    scale = regularized_step._per_replica
    if naive:
        regularized_step._per_replica = lambda value: value
    try:
        regularizer = tfxfer.regularizers.L2SP(alpha=5.0, beta=1.0)
        if source_classifier:
            regularizer = regularizer + tfxfer.regularizers.CoTuning(trade_off=5.0)
        with strategy.scope():
            model = tfxfer.TransferModel.from_hub(
                handle,
                num_classes=2,
                trainable_backbone=True,
                input_shape=(10, 10, 3),
                regularizer=regularizer,
                source_classifier=source_classifier,
            )
            for _, weight in model.backbone.module_weights:
                if weight.trainable:
                    weight.assign(weight + 0.1)  # so that w != w0
            if discriminative:
                optimizer = tfxfer.discriminative_optimizer(model, 0.1, layer_decay=0.5, optimizer="sgd")
            else:
                optimizer = keras.optimizers.SGD(0.1)
            model.compile(optimizer=optimizer)
        rng = np.random.default_rng(0)
        x = rng.integers(0, 256, (8, 10, 10, 3)).astype(np.float32)  # raw pixels
        y = np.array([0, 1] * 4)
        dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)  # one global batch
        if source_classifier:
            model.compute_relationship(dataset)
        model.fit(dataset, epochs=1, verbose=0)
        return [weight.numpy() for weight in model.weights]
    finally:
        regularized_step._per_replica = scale


def largest_difference(a, b):
    return max(float(np.abs(p - q).max()) for p, q in zip(a, b))


def main(handle, source_classifier=None):
    mirrored_strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    if source_classifier:  # L2-SP + Co-Tuning (its labels and source classifier in the step)
        default = one_step(handle, tf.distribute.get_strategy(), source_classifier=source_classifier)
        mirrored = one_step(handle, mirrored_strategy, source_classifier=source_classifier)
        naive = one_step(handle, mirrored_strategy, naive=True, source_classifier=source_classifier)
        report = {"mirrored": largest_difference(default, mirrored), "naive": largest_difference(default, naive)}
        print(json.dumps({"replicas": mirrored_strategy.num_replicas_in_sync, **report}))
        return
    default = one_step(handle, tf.distribute.get_strategy())
    mirrored = one_step(handle, mirrored_strategy)
    naive = one_step(handle, mirrored_strategy, naive=True)
    discriminative_default = one_step(handle, tf.distribute.get_strategy(), discriminative=True)
    discriminative_mirrored = one_step(handle, mirrored_strategy, discriminative=True)
    print(
        json.dumps(
            {
                "discriminative": largest_difference(discriminative_default, discriminative_mirrored),
                "discriminative_vs_plain": largest_difference(default, discriminative_default),
                "replicas": mirrored_strategy.num_replicas_in_sync,
                "mirrored": largest_difference(default, mirrored),
                "naive": largest_difference(default, naive),
            }
        )
    )


if __name__ == "__main__":
    main(*sys.argv[1:])
