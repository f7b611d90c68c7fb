import keras
import pytest

from tfxfer import HubBackbone
from tfxfer.freezing.layer_groups import group_name, layer_groups


@pytest.mark.parametrize(
    "path, expected",
    [
        ("b3_bn1/gamma", "b3"),
        ("b15_project/kernel", "b15"),
        ("block6a_expand_conv/kernel", "block6a"),
        ("block6d_se_reduce/bias", "block6d"),
        ("transformer_layer_0/self_attention_layer/query/kernel", "transformer_layer_0"),
        ("stem_conv/kernel", "stem_conv"),
        ("token_embedding/embeddings", "token_embedding"),
        ("conv2d_3/kernel", "conv2d_3"),
        ("max_pooling2d/kernel", "max_pooling2d"),
        ("dense_1/kernel", "dense_1"),
        ("bias", "bias"),
    ],
)
def test_group_name(path, expected):
    assert group_name(path) == expected


def test_hub_backbone_groups_follow_module_order(image_module):
    groups = layer_groups(HubBackbone(image_module))
    assert [group.name for group in groups] == ["stem_conv", "stem_bn", "b0", "b1"]
    # Moving statistics are never grouped: they cannot be trained.
    b0 = groups[2]
    assert sorted(weight.name for weight in b0.weights) == [
        "b0_bn_beta",
        "b0_bn_gamma",
        "b0_conv_bias",
        "b0_conv_kernel",
    ]


def test_groups_ignore_current_trainable_flags(image_module):
    frozen = layer_groups(HubBackbone(image_module, trainable=False))
    trainable = layer_groups(HubBackbone(image_module, trainable=True))
    assert [len(g.weights) for g in frozen] == [len(g.weights) for g in trainable]
    assert all(g.trainable_weights == [] for g in frozen)


def test_keras_backbone_groups_by_block():
    inputs = keras.Input((4,))
    x = keras.layers.Dense(3, name="block1_dense")(inputs)
    x = keras.layers.BatchNormalization(name="block1_bn")(x)
    x = keras.layers.Dense(3, name="block2_dense")(x)
    x = keras.layers.Dense(2, name="top_dense")(x)
    backbone = keras.Model(inputs, x, name="tiny")
    groups = layer_groups(backbone)
    assert [group.name for group in groups] == ["block1", "block2", "top_dense"]
    assert len(groups[0].weights) == 4  # dense kernel+bias, bn gamma+beta


def test_single_numbered_prefix_falls_back_to_layers():
    inputs = keras.Input((4,))
    x = keras.layers.Dense(3, name="net1_a")(inputs)
    x = keras.layers.Dense(2, name="net1_b")(x)
    groups = layer_groups(keras.Model(inputs, x))
    assert [group.name for group in groups] == ["net1_a", "net1_b"]
