"""Train under a 2-replica MirroredStrategy, then export for serving.

Run as a script (TF must split the CPU into 2 logical devices before it
starts, so the test runs this in a fresh process). Prints, as JSON, how far
each export's `serving_default` is from the trained model.
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


def main(handle, directory):
    keras.utils.set_random_seed(0)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        model = tfxfer.TransferModel.from_hub(
            handle,
            num_classes=2,
            input_shape=(10, 10, 3),
            trainable_backbone=True,
            regularizer=tfxfer.regularizers.L2SP(alpha=0.1, beta=0.01),
        )
        model.compile(optimizer=keras.optimizers.Adam(0.05))
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (16, 10, 10, 3), dtype=np.uint8)
    labels = (pixels.mean(axis=(1, 2, 3)) > 127).astype("int32")
    before = model.predict(pixels, verbose=0)
    model.fit(pixels, labels, batch_size=8, epochs=2, verbose=0)
    encoded = [tf.io.encode_png(image).numpy() for image in pixels[:4]]

    results = {"replicas": strategy.num_replicas_in_sync}
    outside = tfxfer.export_for_serving(model, directory, class_names=["dark", "light"])
    with strategy.scope():
        inside = tfxfer.export_for_serving(model, directory)
    # What a TPU-trained model needs: variables read and written through the host.
    host_io = tfxfer.export_for_serving(
        model, directory, save_options=tf.saved_model.SaveOptions(experimental_io_device="/job:localhost")
    )
    for name, path in [("outside_scope", outside), ("inside_scope", inside), ("host_io_device", host_io)]:
        results[name] = tfxfer.verify_export(path, encoded, model)["max_abs_difference"]
    served = tfxfer.predict_from_export(outside, encoded)["probabilities"]
    results["training_moved_predictions"] = float(np.abs(served - before[:4]).max())
    print(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
