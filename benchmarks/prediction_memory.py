"""Peak memory of `tfxfer predict` and `tfxfer evaluate` on many images: flat, not growing with the count.

A `.keras` model on EfficientNet-Lite0 (../shared) with a new 2-class head is
exported once; then, each in its own process, `tfxfer predict EXPORT --file
LIST` and `tfxfer evaluate EXPORT --data FOLDER` run on 1,000 and on 10,000
generated 224x224 JPEGs (two classes of smooth gradients). The peak
resident memory of each process (`ru_maxrss`) is printed side by side,
with the ratio 10,000 / 1,000: inputs stream in batches, so the ratio stays
near 1 and every peak under the 2 GB target (issue 12).

Measured on 2026-11-24 (2-core CPU VM, EfficientNet-Lite0): 1,000 images,
predict 1.39 GB / evaluate 1.39 GB; 10,000 images, predict 1.41 GB (158 s) /
evaluate 1.44 GB (147 s); ratios 1.02 and 1.03.

Without ../shared, a tiny generated TF Hub module stands in (the memory
then measures tfxfer and TensorFlow themselves).

Run: `python benchmarks/prediction_memory.py [--counts 1000 10000]`
"""

import argparse
import os
import pathlib
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
SHARED = pathlib.Path(os.environ.get("TFXFER_SHARED", REPO.parent / "shared"))
MODULE = SHARED / "models" / "tfhub" / "efficientnet_lite0_feature_vector"
LIMIT_GB = 2.0


def make_images(root, count):
    """`count` JPEGs in root/dark and root/light, plus a list file of every path."""
    import numpy as np
    import tensorflow as tf

    paths = []
    ramp = np.linspace(0, 1, 224, dtype=np.float32)
    for i in range(count):
        label = ("dark", "light")[i % 2]
        folder = root / label
        folder.mkdir(parents=True, exist_ok=True)
        base = 40 if label == "dark" else 180
        image = (base + 60 * np.add.outer(ramp, ramp * ((i % 7) / 7)))[..., None].repeat(3, -1)
        path = folder / f"{i:05d}.jpg"
        path.write_bytes(tf.io.encode_jpeg(np.clip(image, 0, 255).astype("uint8"), quality=85).numpy())
        paths.append(str(path))
    listing = root / "inputs.txt"
    listing.write_text("\n".join(paths) + "\n")
    return listing


def export_model(work):
    import tfxfer

    handle = str(MODULE) if MODULE.exists() else tiny_module(work)
    model = tfxfer.TransferModel.from_hub(handle, num_classes=2, class_names=["dark", "light"])
    return tfxfer.export_for_serving(model, work / "saved_models" / "gradients"), handle


def tiny_module(work):
    import tensorflow as tf
    import tf_keras

    inputs = tf_keras.Input((None, None, 3))
    x = tf_keras.layers.Conv2D(8, 3, strides=4)(inputs)
    x = tf_keras.layers.GlobalAveragePooling2D()(x)
    path = work / "tiny_module"
    tf.saved_model.save(tf_keras.Model(inputs, x), str(path))
    return str(path)


# A fresh wrapper per command: its RUSAGE_CHILDREN peak is that command's alone.
_MEASURE = (
    "import resource, subprocess, sys; "
    "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode; "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(code)"
)


def peak_rss_gb(command):
    """Runs `command` in a child process; its peak resident memory in GB and its seconds."""
    started = time.time()
    result = subprocess.run(
        [sys.executable, "-c", _MEASURE, *command],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return int(result.stdout.split()[-1]) / 1024 / 1024, time.time() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[1000, 10000])
    args = parser.parse_args()
    tfxfer = [sys.executable, "-m", "tfxfer.cli.main"]
    with tempfile.TemporaryDirectory() as temporary:
        work = pathlib.Path(temporary)
        export, handle = export_model(work)
        print(f"export {export} on {handle}")
        rows = []
        for count in sorted(args.counts):
            root = work / f"images-{count}"
            listing = make_images(root, count)
            predict = peak_rss_gb([*tfxfer, "predict", export, "--file", str(listing), "--json"])
            evaluate = peak_rss_gb([*tfxfer, "evaluate", export, "--data", str(root), "--quiet"])
            rows.append((count, predict, evaluate))
            print(
                f"{count:>6} images: predict peak {predict[0]:.2f} GB ({predict[1]:.0f} s), "
                f"evaluate peak {evaluate[0]:.2f} GB ({evaluate[1]:.0f} s)",
                flush=True,
            )
    print(
        f"\nratio of peaks {max(rows)[0]:,} / {min(rows)[0]:,} images: "
        f"predict {max(rows)[1][0] / min(rows)[1][0]:.2f}, evaluate {max(rows)[2][0] / min(rows)[2][0]:.2f}"
    )
    worst = max(max(r[1][0], r[2][0]) for r in rows)
    print(f"worst peak {worst:.2f} GB: {'under' if worst < LIMIT_GB else 'OVER'} the {LIMIT_GB} GB target")


if __name__ == "__main__":
    main()
