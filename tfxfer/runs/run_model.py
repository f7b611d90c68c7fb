"""The model of a run: built from a `TrainConfig`, or loaded from a `.keras` file."""


def build_run_model(config, data):
    """A `TransferModel` for the config's backbone or preset and the data's classes.

    The model carries the data's class names and, for images, its own
    `ImagePreprocessor` (`config.image_size` and `config.value_range` for TF
    Hub modules; a KerasHub image preset's own converter).

    Example:

    >>> model = build_run_model(config, load_run_data(config))
    """
    from tfxfer.option_errors import OptionValueError, option, respelled
    from tfxfer.regularizers import regularizer_from_name

    is_images = data.modality == "image"
    if is_images and config.preprocessor:
        raise ValueError(
            f"The data at {config.data} are images but a text preprocessor was given "
            f"(--preprocessor {config.preprocessor}); drop --preprocessor and pass an image backbone."
        )
    if config.lora_rank and config.backbone:
        raise OptionValueError(
            "{lora_rank} adds LoRA adapters to the layers of a Keras-native backbone: give a KerasHub "
            "{preset}. {backbone} " + repr(config.backbone) + " is a TF Hub module, a fixed graph whose "
            "layers cannot take adapters; fine-tune it with a {regularizer} instead.",
            lora_rank=option("lora_rank"),
            preset=option("preset"),
            backbone=option("backbone"),
            regularizer=option("regularizer"),
        )
    regularizer = regularizer_from_name(config.regularizer, config.alpha, config.beta, config.trade_off)
    if config.delta_layers:
        from tfxfer.regularizers import DELTA

        regularizer = DELTA(alpha=config.alpha, beta=config.beta, layers=list(config.delta_layers))
    common = dict(
        dropout=config.dropout,
        pooling=config.pooling,
        class_names=list(data.class_names),
        regularizer=regularizer,
        length_bucketing=config.length_bucketing,
        keep_source_weights=config.wise_ft is not None,
    )
    if config.feature_key:
        common["feature_key"] = config.feature_key
    if config.source_classifier:
        from tfxfer.models.source_classifier import SourceClassifier

        common["source_classifier"] = SourceClassifier.from_hub(
            config.source_classifier, class_names=config.source_class_names
        )
    if config.preset and (config.signature or config.output_key):
        raise OptionValueError(
            "{signature} and {output_key} choose what a TF Hub module returns; a KerasHub preset has neither. "
            "Drop them, or use {feature_key} to pick the backbone output the head reads.",
            signature=option("signature"),
            output_key=option("output_key"),
            feature_key=option("feature_key"),
        )
    try:
        model = _build(config, data, common, is_images)
        if config.unfreeze_top is not None:
            from tfxfer.freezing.trainability import check_top

            check_top(model.backbone, config.unfreeze_top)  # now, not after the head phase
        return model
    except OptionValueError as error:
        # The model's arguments, as this config names them.
        raise respelled(
            error,
            targets=option("lora_targets"),
            rank=option("lora_rank"),
            layers=option("delta_layers"),
            top=option("unfreeze_top"),
            class_names=option("source_class_names"),
        ) from None


def _build(config, data, common, is_images):
    from tfxfer import TransferModel

    source = config.backbone or config.preset
    if config.preset:
        model = TransferModel.from_preset(
            config.preset, num_classes=data.num_classes, sequence_length=config.sequence_length, **common
        )
    else:
        image_options = {}
        if is_images:
            image_options = dict(image_size=config.image_size, value_range=config.value_range)
        model = TransferModel.from_hub(
            config.backbone,
            num_classes=data.num_classes,
            preprocessor=config.preprocessor,
            signature=config.signature,
            output_key=config.output_key,
            **image_options,
            **common,
        )
    if model.modality != data.modality:
        takes = {"image": "images", "text": "raw strings", None: "only preprocessed tensors"}[model.modality]
        fix = (
            "pass an image backbone"
            if is_images
            else "pass a text preset, or a TF Hub text encoder with --preprocessor"
        )
        raise ValueError(f"The data at {config.data} are {data.modality}s but {source} takes {takes}; {fix}.")
    if config.lora_rank:
        model.enable_lora(rank=config.lora_rank, targets=config.lora_targets)
    return model


def load_model_file(path, hub_handles=None):
    """Loads a `.keras` file saved from a `TransferModel`, with a clear error."""
    from tfxfer.models.model_loading import load_model

    return load_model(path, hub_handles=hub_handles)
