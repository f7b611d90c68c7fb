"""One worker of a local multi-worker job, or the same job in one process.

Usage: multi_worker_worker.py CASE OUTPUT [HUB_MODULE]
       multi_worker_worker.py CASE,CASE,... OUTPUT_FOLDER HUB_MODULE

Several cases (comma-separated) run one after the other in the same
processes, each from the same seeds, each written to OUTPUT_FOLDER/CASE.npz:
one start-up of TensorFlow and of the cluster for all of them.

Under a multi-worker `TF_CONFIG` (as `tfxfer.distribute.LocalCluster` sets
it) this is one worker of the job; without one, the default strategy in one
process. Every worker runs the same
ops (reading MirroredVariables under MultiWorkerMirroredStrategy is
collective); worker 0 writes OUTPUT (an .npz of the weights and predictions,
or a JSON line for `plain_keras`).

Cases:
    plain_keras: a plain Keras model's `fit`, without tfxfer's fix (detects
        whether keras-team/keras#20585 still needs it).
    l2sp, discriminative, gradual: one global batch of a TransferModel step
        (gradual: two epochs of one step, the second with one more block).
"""

import json
import os
import sys

cases, output = sys.argv[1].split(","), sys.argv[2]
multi_worker = "TF_CONFIG" in os.environ
index = json.loads(os.environ["TF_CONFIG"])["task"]["index"] if multi_worker else 0
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

strategy = tf.distribute.MultiWorkerMirroredStrategy() if multi_worker else tf.distribute.get_strategy()


def seed():
    """The same seeds at the start of every case, so that a case's run does not depend on those before it."""
    global rng
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)


def plain_keras():
    x = rng.normal(size=(32, 4)).astype("float32")
    y = (x.sum(1) > 0).astype("int32")
    with strategy.scope():
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
        model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    try:
        model.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(8), epochs=1, verbose=0)
        outcome = {"fit": "ok"}
    except Exception as error:  # the upstream bug's error is what this case records
        outcome = {"fit": "failed", "error": f"{type(error).__name__}: {str(error)[:300]}"}
    if index == 0:
        with open(output, "w") as file:
            json.dump(outcome, file)


def transfer_step(case, handle, output):
    import tfxfer

    with strategy.scope():
        model = tfxfer.TransferModel.from_hub(
            handle,
            num_classes=2,
            trainable_backbone=case != "gradual",
            input_shape=(10, 10, 3),
            regularizer=tfxfer.regularizers.L2SP(alpha=5.0, beta=1.0),
        )
        for _, weight in model.backbone.module_weights:
            weight.assign(weight + 0.1)  # so that w != w0
        if case == "discriminative":
            optimizer = tfxfer.discriminative_optimizer(model, 0.1, layer_decay=0.5, optimizer="sgd")
        else:
            optimizer = keras.optimizers.SGD(0.1)
        model.compile(optimizer=optimizer)
    x = rng.integers(0, 256, (8, 10, 10, 3)).astype(np.float32)  # raw pixels
    y = np.array([0, 1] * 4)
    one_global_batch = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    callbacks, epochs = [], 1
    if case == "gradual":
        callbacks, epochs = [tfxfer.callbacks.GradualUnfreezing(verbose=0)], 2
    history = model.fit(one_global_batch, epochs=epochs, verbose=0, callbacks=callbacks)
    evaluation = model.evaluate(one_global_batch, verbose=0, return_dict=True)
    predictions = model.predict(tf.data.Dataset.from_tensor_slices(x).batch(3), verbose=0)
    weights = [weight.numpy() for weight in model.weights]
    if index == 0:
        logs = {key: np.asarray(values) for key, values in history.history.items()}
        logs.update({f"evaluate_{key}": np.asarray(value) for key, value in evaluation.items()})
        np.savez(
            output,
            *weights,
            predictions=predictions,
            replicas=strategy.num_replicas_in_sync,
            trainable=len(model.trainable_weights),
            **logs,
        )


if cases == ["plain_keras"]:
    seed()
    plain_keras()
elif len(cases) == 1:
    seed()
    transfer_step(cases[0], sys.argv[3], output)
else:
    for case in cases:
        seed()
        transfer_step(case, sys.argv[3], os.path.join(output, f"{case}.npz"))
