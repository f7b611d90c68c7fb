"""Shared fixtures: tiny TF Hub-format modules and a tiny KerasHub preset.

Every module is built and saved by the tests themselves, the way real TF Hub
modules were made, so the fast suite needs nothing from the network or
../shared.
"""

import gc
import os
import pathlib
import shutil

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The suite trains in float32 on every CPU, so its tolerances hold on all of
# them; `--mixed-precision auto`'s bfloat16 is tested by setting flags
# (tests/distribute/test_native_precision.py, tests/runs/test_training_run.py).
os.environ.setdefault("TFXFER_CPU_FLAGS", "")

import numpy as np
import pytest
import tensorflow as tf

SHARED = pathlib.Path(__file__).resolve().parents[1].parent / "shared"
WORDS = ["[PAD]", "[UNK]", "good", "bad", "film", "great", "awful", "plot"]
SEQUENCE_LENGTH = 6


def shared_path(*parts):
    """A path under ../shared, skipping the test with a reason if absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real artifact not available: {path} (see ../shared/DATA.md)")
    return str(path)


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    import keras

    # Without Python's full garbage collection, which clear_session runs by
    # default: in a worker holding many TF objects it took about 0.4 s per
    # test, a third of the suite's time. It runs once per file instead.
    keras.utils.clear_session(free_memory=False)
    keras.utils.set_random_seed(0)
    yield


@pytest.fixture(autouse=True, scope="module")
def _memory_freed_after_each_file():
    yield
    gc.collect()


@pytest.fixture(scope="session")
def image_module(tmp_path_factory):
    """A tf_keras CNN with BatchNorm saved with tf.saved_model.save.

    Like tfhub.dev image feature vectors: float images [batch, h, w, 3] of
    any size in, [batch, 4] features out, `training` selects BatchNorm mode.
    """
    import tf_keras

    tf_keras.utils.set_random_seed(1)
    inputs = tf_keras.Input((None, None, 3))
    x = tf_keras.layers.Conv2D(6, 3, name="stem_conv")(inputs)
    x = tf_keras.layers.BatchNormalization(name="stem_bn")(x)
    x = tf_keras.layers.ReLU()(x)
    x = tf_keras.layers.Conv2D(5, 3, name="b0_conv")(x)
    x = tf_keras.layers.BatchNormalization(name="b0_bn")(x)
    x = tf_keras.layers.Conv2D(4, 1, name="b1_conv")(x)
    x = tf_keras.layers.BatchNormalization(name="b1_bn")(x)
    x = tf_keras.layers.GlobalAveragePooling2D()(x)
    model = tf_keras.Model(inputs, x)
    path = tmp_path_factory.mktemp("hub") / "image_module"
    tf.saved_model.save(model, str(path))
    return str(path)


@pytest.fixture(scope="session")
def classification_modules(tmp_path_factory):
    """A tiny CNN saved twice, as TF Hub modules: `(feature vector, classification)`.

    The same body (same variables, names and values) in both; the
    classification module adds a dense `classifier` of 7 source-class logits,
    as efficientnet_lite0_classification adds ImageNet's 1000 to
    efficientnet_lite0_feature_vector.
    """
    import tf_keras

    tf_keras.utils.set_random_seed(3)
    inputs = tf_keras.Input((None, None, 3))
    x = tf_keras.layers.Conv2D(6, 3, name="stem_conv")(inputs)
    x = tf_keras.layers.BatchNormalization(name="stem_bn")(x)
    x = tf_keras.layers.ReLU()(x)
    x = tf_keras.layers.Conv2D(4, 1, name="b0_conv")(x)
    features = tf_keras.layers.GlobalAveragePooling2D()(x)
    logits = tf_keras.layers.Dense(7, name="classifier")(features)
    root = tmp_path_factory.mktemp("hub_pair")
    tf.saved_model.save(tf_keras.Model(inputs, features), str(root / "feature_vector"))
    tf.saved_model.save(tf_keras.Model(inputs, logits), str(root / "classification"))
    return str(root / "feature_vector"), str(root / "classification")


class _DictEncoder(tf.Module):
    """A BERT-style encoder: dict of int32 inputs in, dict of outputs out."""

    def __init__(self):
        super().__init__()
        rng = np.random.default_rng(2)
        self.embeddings = tf.Variable(
            rng.normal(size=(len(WORDS), 8)).astype("float32"),
            name="token_embedding/embeddings",
        )
        self.kernel = tf.Variable(
            rng.normal(size=(8, 8)).astype("float32") * 0.3,
            name="transformer_layer_0/dense/kernel",
        )
        self.pooler = tf.Variable(
            rng.normal(size=(8, 8)).astype("float32") * 0.3,
            name="pooled_dense/kernel",
        )

    @tf.function
    def __call__(self, inputs, training=False):
        x = tf.gather(self.embeddings, inputs["input_word_ids"])
        x = tf.nn.relu(tf.einsum("bsh,hk->bsk", x, self.kernel))
        if training:  # Dropout only in training mode, so tests see `training`.
            x = tf.nn.dropout(x, 0.5)
        mask = tf.cast(inputs["input_mask"], tf.float32)[..., None]
        pooled = tf.reduce_sum(x * mask, 1) / tf.maximum(tf.reduce_sum(mask, 1), 1.0)
        pooled = tf.tanh(tf.matmul(pooled, self.pooler))
        return {"pooled_output": pooled, "sequence_output": x}


@pytest.fixture(scope="session")
def dict_module(tmp_path_factory):
    module = _DictEncoder()
    spec = {
        "input_word_ids": tf.TensorSpec([None, None], tf.int32),
        "input_mask": tf.TensorSpec([None, None], tf.int32),
    }
    for training in (True, False):
        module.__call__.get_concrete_function(spec, training)
    path = tmp_path_factory.mktemp("hub") / "dict_module"
    tf.saved_model.save(module, str(path))
    return str(path)


class _TextPreprocessor(tf.Module):
    """Strings in, the encoder's input dict out (a lookup table inside)."""

    def __init__(self):
        super().__init__()
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(WORDS), tf.range(len(WORDS), dtype=tf.int64)),
            default_value=1,
        )

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def __call__(self, text):
        tokens = tf.strings.split(tf.strings.lower(text))
        ids = tf.cast(self.table.lookup(tokens), tf.int32)
        ids = ids.to_tensor(shape=[None, SEQUENCE_LENGTH])
        return {
            "input_word_ids": ids,
            "input_mask": tf.cast(ids > 0, tf.int32),
        }


@pytest.fixture(scope="session")
def text_preprocessor_module(tmp_path_factory):
    path = tmp_path_factory.mktemp("hub") / "text_preprocessor"
    tf.saved_model.save(_TextPreprocessor(), str(path))
    return str(path)


class _SignatureOnly(tf.Module):
    def __init__(self):
        super().__init__()
        self.kernel = tf.Variable(np.arange(12, dtype="float32").reshape(3, 4) / 10, name="dense/kernel")

    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="features")])
    def serve(self, features):
        return {"embedding": tf.matmul(features, self.kernel)}


@pytest.fixture(scope="session")
def signature_module(tmp_path_factory):
    module = _SignatureOnly()
    path = tmp_path_factory.mktemp("hub") / "signature_module"
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    return str(path)


@pytest.fixture(scope="session")
def tf1_hub_module(tmp_path_factory):
    """A folder laid out like a legacy TF1 hub.Module."""
    path = tmp_path_factory.mktemp("hub") / "tf1_module"
    path.mkdir()
    (path / "tfhub_module.pb").write_bytes(b"\x08\x03")
    (path / "saved_model.pb").write_bytes(b"")
    return str(path)


def tiny_bert(words, sequence_length, max_sequence_length):
    """A 2-layer KerasHub BERT backbone (hidden 8) and its preprocessor over `words`.

    Seeded here: a session fixture is built before the test's own seeding, so
    its weights would otherwise depend on which tests ran first.
    """
    import keras
    import keras_hub

    keras.utils.set_random_seed(0)

    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list(words)
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=vocabulary)
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor(tokenizer, sequence_length=sequence_length)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=len(vocabulary),
        num_layers=2,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        max_sequence_length=max_sequence_length,
    )
    return backbone, preprocessor


@pytest.fixture(scope="session")
def tiny_bert_preset(tmp_path_factory):
    """A tiny KerasHub BERT preset written with save_to_preset."""
    backbone, preprocessor = tiny_bert(WORDS[2:], sequence_length=8, max_sequence_length=16)
    path = tmp_path_factory.mktemp("presets") / "tiny_bert"
    backbone.save_to_preset(str(path))
    preprocessor.save_to_preset(str(path))
    return str(path)


def random_images(count, size=10, seed=0):
    """Raw pixel values in [0, 255] (float32), as image models' fit/predict take them."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (count, size, size, 3)).astype(np.float32)


@pytest.fixture
def image_folder(tmp_path):
    """Two classes a tiny CNN can tell apart: dark and light PNGs, train/ and val/."""
    return make_image_folder(tmp_path)


def make_image_folder(tmp_path):
    """The `image_folder` fixture's images (the same every time) under `tmp_path/shapes`."""
    rng = np.random.default_rng(0)
    root = tmp_path / "shapes"
    for split, count in (("train", 12), ("val", 6)):
        for label, (low, high) in (("dark", (0, 90)), ("light", (165, 255))):
            folder = root / split / label
            folder.mkdir(parents=True)
            for i in range(count):
                image = rng.integers(low, high, (10, 10, 3), dtype=np.uint8)
                (folder / f"{i}.png").write_bytes(tf.io.encode_png(image).numpy())
    return root


def relocated_copy(source, destination):
    """A copy of the folder `source` at `destination`, as if made there: its text files name the copy.

    For a run that a module's tests share (trained once): each test works on
    a copy of its own, so what one test writes (an export, an evaluation)
    no other test sees.
    """
    source, destination = str(source), str(destination)
    shutil.copytree(source, destination)
    for path in pathlib.Path(destination).rglob("*"):
        if path.is_file() and path.suffix in (".json", ".yaml", ".md"):
            text = path.read_text()
            if source in text:
                path.write_text(text.replace(source, destination))
    return pathlib.Path(destination)


@pytest.fixture
def text_file(tmp_path):
    """`<label> <text>` lines in the vocabulary of the tiny text modules."""
    rng = np.random.default_rng(0)
    lines = []
    for i in range(40):
        label = i % 2
        words = rng.choice(["good", "great", "film"] if label else ["bad", "awful", "plot"], size=3)
        lines.append(f"{label} {' '.join(words)}")
    path = tmp_path / "texts.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="session")
def tiny_image_preset(tmp_path_factory):
    """A tiny KerasHub image preset (VGG backbone + its image converter), saved with save_to_preset."""
    import keras_hub

    backbone = keras_hub.models.VGGBackbone(
        stackwise_num_repeats=[1], stackwise_num_filters=[4], image_shape=(None, None, 3)
    )
    converter = keras_hub.layers.VGGImageConverter(image_size=(12, 12), scale=1 / 127.5, offset=-1.0)
    path = tmp_path_factory.mktemp("presets") / "tiny_vgg"
    backbone.save_to_preset(str(path))
    converter.save_to_preset(str(path))
    return str(path)


@pytest.fixture(scope="session")
def tfds_dir(tmp_path_factory):
    """A data_dir holding the prepared `tfxfer_tiny_shapes` TFDS dataset (16×16 dark/light images)."""
    from tests.tiny_tfds import TfxferTinyShapes

    data_dir = tmp_path_factory.mktemp("tfds")
    TfxferTinyShapes(data_dir=str(data_dir)).download_and_prepare()
    return str(data_dir)
