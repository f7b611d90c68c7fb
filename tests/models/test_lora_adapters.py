import keras
import numpy as np
import pytest
import tensorflow as tf

import tfxfer
from tests.conftest import WORDS, tiny_bert
from tfxfer.freezing.layer_groups import named_backbone_weights
from tfxfer.models.lora_adapters import lora_factors, lora_layers, merged_kernel


def text_model(regularizer=None, seed=0, **options):
    keras.utils.set_random_seed(seed)
    backbone, preprocessor = tiny_bert(WORDS[2:], sequence_length=8, max_sequence_length=16)
    return tfxfer.TransferModel(backbone, 2, preprocessor=preprocessor, regularizer=regularizer, **options)


def sentences(count=32, seed=0):
    rng = np.random.default_rng(seed)
    texts = [" ".join(rng.choice(WORDS[2:], 5)) for _ in range(count)]
    return texts, np.array([i % 2 for i in range(count)])


def randomize_adapters(model, seed=1):
    rng = np.random.default_rng(seed)
    for layer in lora_layers(model.backbone):
        _, b, _ = lora_factors(layer)
        b.assign(rng.normal(0.0, 0.3, b.shape).astype("float32"))


def test_only_the_adapters_and_the_head_train():
    model = text_model()
    model.enable_lora(rank=2)
    assert sorted(layer.name for layer in lora_layers(model.backbone)) == ["query", "query", "value", "value"]
    trainable = [weight.path.rsplit("/", 1)[-1] for weight in model.trainable_weights]
    assert set(trainable) == {"lora_kernel_a", "lora_kernel_b", "kernel", "bias"}
    assert all("lora" in w.path or w.path.startswith("head/") for w in model.trainable_weights)
    counts = model.parameter_counts()
    assert 0 < counts["trainable"] < counts["total"] / 5
    assert "LoRA rank 2 on 4 layers" in model.trainability_report()
    kernels = {w.path: w.numpy() for w in model.backbone.weights if "lora" not in w.path}
    texts, labels = sentences()
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    model.fit(texts, labels, epochs=2, verbose=0)
    assert all(np.array_equal(kernels[w.path], w.numpy()) for w in model.backbone.weights if "lora" not in w.path)
    assert any(np.abs(lora_factors(layer)[1].numpy()).max() > 0 for layer in lora_layers(model.backbone))
    model.freeze_backbone()
    assert not model.backbone.trainable_weights
    model.unfreeze()
    assert {w.path.rsplit("/", 1)[-1] for w in model.backbone.trainable_weights} == {"lora_kernel_a", "lora_kernel_b"}


def test_l2_sp_on_a_lora_model_penalises_the_merged_update():
    alpha, beta = 0.3, 0.2
    model = text_model(regularizer=tfxfer.regularizers.L2SP(alpha=alpha, beta=beta))
    model.enable_lora(rank=2)
    randomize_adapters(model)
    sources = model.source_weights.by_path()
    expected = 0.0
    for layer in lora_layers(model.backbone):
        path = next(p for p, weight in named_backbone_weights(model.backbone) if weight is lora_factors(layer)[2])
        expected += alpha / 2 * float(np.sum((merged_kernel(layer).numpy() - sources[path].numpy()) ** 2))
    head = sum(float(np.sum(w.numpy() ** 2)) for w in model.head.trainable_weights if w.path.endswith("kernel"))
    expected += beta / 2 * head
    assert float(model.regularization_penalty()) == pytest.approx(expected, rel=1e-5)


def test_adapters_survive_save_load_and_resume(tmp_path):
    model = text_model(regularizer=tfxfer.regularizers.L2SP(alpha=0.1, beta=0.1))
    model.enable_lora(rank=2)
    texts, labels = sentences()
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    model.fit(texts, labels, epochs=2, verbose=0)
    x = model.preprocessor(texts)
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert loaded.lora == {"rank": 2, "targets": None, "alpha": None}
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-6)
    for saved, restored in zip(lora_layers(model.backbone), lora_layers(loaded.backbone)):
        for a, b in zip(lora_factors(saved), lora_factors(restored)):
            np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)
    assert float(loaded.regularization_penalty()) == pytest.approx(float(model.regularization_penalty()), rel=1e-5)
    # Training goes on from the loaded adapters (Keras alone zeroes both factors on load).
    loaded.fit(texts, labels, epochs=1, verbose=0)
    assert any(np.abs(lora_factors(layer)[0].numpy()).max() > 0 for layer in lora_layers(loaded.backbone))


def test_keras_still_zeroes_lora_factors_on_load(tmp_path):
    """Shows when `LoraFactors` is no longer needed: Keras' own load keeps A and B."""
    layer = keras.layers.Dense(3)
    layer.build((None, 4))
    layer.enable_lora(2)
    layer.lora_kernel_b.assign(np.ones((2, 3), "float32"))
    store = {}
    layer.save_own_variables(store)
    layer.load_own_variables(store)
    assert not np.any(layer.lora_kernel_a.numpy()) and not np.any(layer.lora_kernel_b.numpy())


def test_the_export_merges_the_adapters(tmp_path):
    model = text_model()
    model.enable_lora(rank=2)
    randomize_adapters(model)
    texts, _ = sentences(8)
    x = {key: tf.cast(value, tf.int32) for key, value in model.preprocessor(texts).items()}
    expected = model(x).numpy()
    model.export(str(tmp_path / "export"), verbose=False)
    served = tf.saved_model.load(str(tmp_path / "export"))
    np.testing.assert_allclose(served.serve(x).numpy(), expected, atol=1e-5)
    graph = served.signatures["serving_default"].graph.as_graph_def()
    nodes = [node.name for node in graph.node] + [n.name for f in graph.library.function for n in f.node_def]
    assert nodes and not [name for name in nodes if "lora" in name.lower()]
    np.testing.assert_allclose(model(x).numpy(), expected, atol=1e-6)  # the model keeps its adapters
    path = tfxfer.export_for_serving(model, str(tmp_path / "serving"), warmup_inputs=texts[:2])
    probabilities = tfxfer.predict_from_export(path, texts)["probabilities"]
    np.testing.assert_allclose(probabilities, model.predict(texts, verbose=0), atol=1e-5)
    # The merged kernels are all the export stores: no factor variables.
    stored = [name for name, _ in tf.train.list_variables(f"{path}/variables/variables")]
    assert stored and not [name for name in stored if "lora" in name.lower()]
    assert all("_trackable_children" not in layer.__dict__ for layer in lora_layers(model.backbone))


def test_targets_pick_layers_and_bad_targets_are_named():
    model = text_model()
    model.enable_lora(rank=2, targets=["*_dense", "query"])
    assert {layer.name for layer in lora_layers(model.backbone)} == {
        "query",
        "feedforward_intermediate_dense",
        "feedforward_output_dense",
        "pooled_dense",
    }
    with pytest.raises(ValueError, match="already enabled"):
        model.enable_lora(rank=2)
    with pytest.raises(ValueError, match="No Dense, EinsumDense, Embedding or convolution layer .* named: "):
        text_model().enable_lora(rank=2, targets=["nothing_like_this"])
    with pytest.raises(ValueError, match="rank must be a positive integer"):
        text_model().enable_lora(rank=0)
    with pytest.raises(ValueError, match="targets must be a layer name or pattern, or a non-empty list"):
        text_model().enable_lora(rank=2, targets=[])
    one = text_model()
    one.enable_lora(rank=2, targets="query")  # one string is one pattern, not its letters
    assert {layer.name for layer in lora_layers(one.backbone)} == {"query"} and one.lora["targets"] == ["query"]


def test_adapters_on_a_layer_the_head_never_reads_are_refused():
    model = text_model(pooling="masked_avg")
    with pytest.raises(
        ValueError, match="head reads the backbone's 'sequence_output'.*\\['pooled_dense'\\] never"
    ) as e:
        model.enable_lora(rank=2, targets=["query", "pooled_dense"])
    assert "--lora-targets" in e.value.cli_message and model.lora is None
    model.enable_lora(rank=2, targets=["query"])


def test_a_tf_hub_backbone_says_which_backbones_take_adapters(image_module):
    model = tfxfer.TransferModel.from_hub(image_module, num_classes=2, input_shape=(10, 10, 3))
    with pytest.raises(ValueError, match="LoRA needs a Keras-native backbone.*TF Hub module"):
        model.enable_lora(rank=4)
