"""Train-step time of one process versus two workers of one multi-worker job, on this machine.

EfficientNet-Lite0 (TF Hub, ../shared) fine-tuned whole with L2-SP, a global
batch of `--batch-size` random 224x224 images, `--steps` timed steps after one
untimed epoch that traces the step. Side by side in one run:

- one process, the default strategy (what you would run on one machine);
- the same job as 2 workers (`LocalCluster`: 127.0.0.1, free ports,
  `MultiWorkerMirroredStrategy`), each doing half of every global batch.

Both arms see the same global batches; the table gives seconds per global
step, examples per second and the ratio. On a 2-core machine the two workers
share the same two cores (and pay for all-reducing 3.4 M gradients through
gRPC every step), so do not expect a speed-up here: the benchmark measures
the price of the machinery, not the gain of more machines.

Measured on 2026-11-24 (2-core CPU VM, defaults): 0.47 s per global step in
one process, 0.69 s on two workers (1.46x); see docs/benchmarks.md.

Run: `python benchmarks/multi_worker_step_time.py [--steps 12] [--batch-size 16]`
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_SHARED = REPO.parent / "shared"
MODULE = "models/tfhub/efficientnet_lite0_feature_vector"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=pathlib.Path, default=DEFAULT_SHARED)
    parser.add_argument("--steps", type=int, default=12, help="timed global steps per arm")
    parser.add_argument("--batch-size", type=int, default=16, help="global batch size")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # OUTPUT.json: run as one worker
    return parser.parse_args(argv)


def worker(args):
    """One process of an arm: untimed epoch, then a timed epoch of `--steps` steps."""
    import keras
    import numpy as np
    import tensorflow as tf

    import tfxfer
    from tfxfer.distribute import worker_role
    from tfxfer.distribute.dataset_sharding import sharded_by_examples

    role = worker_role()
    keras.utils.set_random_seed(0)
    strategy = tf.distribute.MultiWorkerMirroredStrategy() if role.workers > 1 else tf.distribute.get_strategy()
    with strategy.scope():
        model = tfxfer.TransferModel.from_hub(
            str(args.shared / MODULE), num_classes=2, trainable_backbone=True,
            regularizer=tfxfer.regularizers.L2SP(alpha=0.01, beta=0.01),
        )  # fmt: skip
        model.compile(optimizer=keras.optimizers.Adam(1e-4))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.steps * args.batch_size, 224, 224, 3), dtype=np.uint8)
    labels = rng.integers(0, 2, len(images))
    dataset = sharded_by_examples(tf.data.Dataset.from_tensor_slices((images, labels)).batch(args.batch_size))
    model.fit(dataset.take(2), epochs=1, verbose=0)  # traces and builds the step
    started = time.perf_counter()
    model.fit(dataset, epochs=1, verbose=0)
    seconds = time.perf_counter() - started
    if role.is_chief:
        pathlib.Path(args.worker).write_text(
            json.dumps({"workers": role.workers, "replicas": strategy.num_replicas_in_sync, "seconds": seconds})
        )


def arm(args, workers, output):
    from tfxfer.distribute import LocalCluster

    command = [sys.executable, __file__, "--worker", str(output), "--shared", str(args.shared),
               "--steps", str(args.steps), "--batch-size", str(args.batch_size)]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(REPO))
    if workers == 1:
        env.pop("TF_CONFIG", None)
        subprocess.run(command, env=env, check=True, timeout=1800)
    else:
        with LocalCluster(command, workers, log_dir=output.parent, env=env,
                          chief_output=output.parent / "chief.log") as job:  # fmt: skip
            code = job.wait(timeout=1800)
            if code:
                raise SystemExit(f"worker {job.failed_worker} failed ({code}):\n{job.tail(job.failed_worker or 0)}")
    return json.loads(output.read_text())


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        return worker(args)
    if not (args.shared / MODULE).exists():
        raise SystemExit(f"Needs {args.shared / MODULE} (see ../shared/DATA.md).")
    with tempfile.TemporaryDirectory() as scratch:
        results = []
        for workers in (1, 2):
            print(f"timing {workers} worker(s): {args.steps} global steps of {args.batch_size} ...", flush=True)
            results.append(arm(args, workers, pathlib.Path(scratch) / f"arm{workers}.json"))
    base = results[0]["seconds"] / args.steps
    print(f"\n{'arm':<26}{'s/global step':>14}{'examples/s':>12}{'vs 1 process':>14}")
    for result in results:
        step = result["seconds"] / args.steps
        name = f"{result['workers']} worker(s), {result['replicas']} replica(s)"
        print(f"{name:<26}{step:>14.2f}{args.batch_size / step:>12.1f}{step / base:>13.2f}x")


if __name__ == "__main__":
    main()
