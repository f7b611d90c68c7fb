"""Exports a tiny model in its own process, then checks what it wrote.

`python export_worker.py HANDLE BASE SEED [VERSION] [--overwrite]` builds a
model whose head is initialised from SEED, exports it to BASE and loads the
version it wrote in this same process: it prints JSON with the path and how
far the served probabilities are from this model's own (a torn version,
graph of one model and variables of another, shows as a large difference).
Tests run several at once, or kill them with TFXFER_KILL_AT.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tfxfer  # noqa: E402


def main(handle, base, seed, version=None, overwrite=False):
    keras.utils.set_random_seed(seed)
    model = tfxfer.TransferModel.from_hub(handle, num_classes=3, input_shape=(10, 10, 3))
    pixels = np.random.default_rng(seed).integers(0, 255, (4, 10, 10, 3), dtype=np.uint8)
    try:
        path = tfxfer.export_for_serving(model, base, version=version, overwrite=overwrite)
    except FileExistsError as error:
        print(json.dumps({"error": str(error)}))
        return 3
    served = (
        tf.saved_model.load(path)
        .signatures["serving_default"](image_bytes=tf.stack([tf.io.encode_png(p) for p in pixels]))["probabilities"]
        .numpy()
    )
    difference = float(np.abs(served - model.predict(pixels, verbose=0)).max())
    print(json.dumps({"path": path, "max_abs_difference": difference}))
    return 0


if __name__ == "__main__":
    arguments = [a for a in sys.argv[1:] if a != "--overwrite"]
    version = int(arguments[3]) if len(arguments) > 3 else None
    sys.exit(main(arguments[0], arguments[1], int(arguments[2]), version, "--overwrite" in sys.argv))
