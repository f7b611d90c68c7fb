"""Co-Tuning on the real EfficientNet-Lite0 pair in ../shared: ants relate to ImageNet's ant, bees to its bee."""

import numpy as np
import pytest
import tensorflow as tf

import tfxfer
from tests.conftest import shared_path

pytestmark = pytest.mark.real

ANT, BEE = 310, 309  # ImageNet-2012 class indices (n02219486, n02206856)


def test_ants_and_bees_relate_first_to_imagenets_ant_and_bee():
    feature_vector = shared_path("models", "tfhub", "efficientnet_lite0_feature_vector")
    classification = shared_path("models", "tfhub", "efficientnet_lite0_classification")
    images = shared_path("data", "images", "hymenoptera")
    data = tfxfer.data.from_image_folder(images, batch_size=32)
    model = tfxfer.TransferModel.from_hub(
        feature_vector,
        num_classes=2,
        class_names=data.class_names,
        regularizer=tfxfer.regularizers.CoTuning(),
        source_classifier=tfxfer.SourceClassifier.from_hub(classification, class_names="imagenet"),
    )
    # The model's source logits are the classification module's own.
    pixels, _ = next(iter(data.validation))
    preprocessed = model.preprocessor(pixels[:8])
    expected = tfxfer.load_hub_module(classification)(preprocessed, training=False)
    np.testing.assert_allclose(model.source_classifier(model.backbone_features(preprocessed)), expected, atol=1e-4)

    relationship = model.compute_relationship(data.train_without_augmentation)
    ants, bees = data.class_names.index("ants"), data.class_names.index("bees")
    assert int(np.argmax(relationship[ants])) == ANT
    assert int(np.argmax(relationship[bees])) == BEE
    top = model.source_classifier.top_source_classes(k=1)
    assert top[ants][0][1] == "n02219486" and top[bees][0][1] == "n02206856"
    assert tf.reduce_all(tf.abs(tf.reduce_sum(relationship, axis=1) - 1.0) < 1e-4)
