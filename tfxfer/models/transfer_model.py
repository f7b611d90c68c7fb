"""`TransferModel`: a pretrained backbone plus a new classification head.

The class holds the contract (backbone, preprocessor, head, class names,
modality), the graph, freezing and `fit`/`evaluate`/`predict` on raw
inputs. The rest lives in modules named after it: `model_constructors`
(`from_hub`, `from_preset`), `compile_state` (compile and every optimizer
change), `regularized_step` (the train and test steps with the source
regularizer), `raw_inputs` (input and label checks), `length_grouping`,
`feature_maps` (DELTA), `network_export`, and
`tfxfer.distribute.multi_worker_fix` (the keras#20585 workaround).
"""

import contextlib

import keras
import keras_hub
import numpy as np
import tensorflow as tf

from tfxfer.backbones.hub_backbone import HubBackbone
from tfxfer.data.length_bucketing import grouped_by_length, trimmed_to_bucket
from tfxfer.distribute.multi_worker_fix import MultiWorkerFix
from tfxfer.freezing.layer_groups import layer_groups, named_backbone_variables, named_backbone_weights
from tfxfer.freezing.trainability import set_backbone_trainable, trainability_report
from tfxfer.models import model_constructors
from tfxfer.models.classification_head import ClassificationHead
from tfxfer.models.compile_state import CompileState, Compiling
from tfxfer.models.feature_maps import (
    FeatureAttention,
    check_feature_map_layers,
    feature_map_channels,
    measure_feature_attention,
    needs_feature_attention,
    source_copy,
)
from tfxfer.models.length_grouping import batches_may_vary_in_length, groups_by_length, token_lengths_of
from tfxfer.models.lora_adapters import (
    LoraFactors,
    check_lora_backbone,
    check_targets_reach_the_head,
    enable_lora,
    is_lora_factor,
    lora_target_layers,
    normalized_targets,
)
from tfxfer.models.model_inputs import (
    activation_for,
    check_preprocessor_fits_inputs,
    checked_class_names,
    model_inputs,
    pooling_mask,
    regularizer_from,
)
from tfxfer.models.network_export import export_network
from tfxfer.models.raw_inputs import prepared_data, readable_errors
from tfxfer.models.regularized_step import RegularizedStep
from tfxfer.optimizers.learning_rate_check import check_learning_rate
from tfxfer.preprocessing.image_preprocessor import DEFAULT_IMAGE_SIZE, ImagePreprocessor
from tfxfer.preprocessing.modality import preprocessor_modality
from tfxfer.regularizers.source_regularizer import weight_kind
from tfxfer.regularizers.source_weights import SourceWeights
from tfxfer.utils.array_batches import is_array_like, shuffled_batches, split_last
from tfxfer.utils.xla_errors import xla_unsupported_ops


@keras.saving.register_keras_serializable(package="tfxfer")
class TransferModel(RegularizedStep, Compiling, MultiWorkerFix, keras_hub.models.Task):
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
        activation = activation_for(activation, num_classes, multi_label)
        regularizer = regularizer_from(regularizer)
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
        inputs = model_inputs(backbone, input_shape)
        check_preprocessor_fits_inputs(preprocessor, inputs)
        head_kwargs = {}
        if pooling == "masked_avg":
            head_kwargs["padding_mask"] = pooling_mask(inputs)
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
        self._cached_features_batch = None
        self._trainable_backbone = None
        self.compile_state = CompileState()
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
        self._class_names = checked_class_names(names, self.head)

    @property
    def modality(self):
        """`"image"`, `"text"`, or None when the model takes preprocessed tensors only."""
        return preprocessor_modality(self.preprocessor)

    # --- Constructors ------------------------------------------------------

    from_hub = classmethod(model_constructors.from_hub)
    from_preset = classmethod(model_constructors.from_preset)

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
        changed = state != self._trainable_backbone
        self._trainable_backbone = state
        if recompile and changed:
            self._trainable_set_changed()

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
        check_targets_reach_the_head(self, lora_target_layers(self.backbone, targets))
        self._add_lora(rank=rank, targets=targets, alpha=alpha)
        self.set_trainable_backbone(True)

    def _add_lora(self, rank, targets=None, alpha=None):
        check_lora_backbone(self.backbone)
        enable_lora(self.backbone, rank, None if targets is None else list(targets), alpha)
        self.lora = {"rank": rank, "targets": None if targets is None else list(targets), "alpha": alpha}
        self.lora_state = LoraFactors(self.backbone, name="lora_state")
        self.compile_state.needs_recompile = bool(self.compile_state.arguments)

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

    # --- Training on raw inputs ---------------------------------------------

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
        if needs_feature_attention(self):
            batches = (
                x
                if isinstance(x, tf.data.Dataset)
                else tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size or 32)
            )
            measure_feature_attention(self, batches)
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
        if groups_by_length(self, x):
            x = grouped_by_length(x, token_lengths_of(self))
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
        if self.training_on_features:
            return x, y, validation_data  # cached backbone features, not raw inputs
        return prepared_data(self, method, x, y, validation_data)

    # --- Cached backbone features ------------------------------------------

    @property
    def training_on_features(self):
        """Whether `fit`/`evaluate` take cached backbone features now (inside `on_cached_features`)."""
        return self._cached_features_batch is not None

    @contextlib.contextmanager
    def on_cached_features(self, input_batch):
        """Within the block `fit`/`evaluate` train and test the head on cached backbone features.

        `input_batch` is a batch of (preprocessed) model inputs, to build the
        model from. `tfxfer.recipes.cached_features` uses it.
        """
        self._cached_features_batch = input_batch
        self.train_function = self.test_function = self.predict_function = None
        try:
            yield
        finally:
            self._cached_features_batch = None
            self.train_function = self.test_function = self.predict_function = None

    def preprocess_samples(self, x, y=None, sample_weight=None):
        if self.training_on_features:  # cached features need no preprocessing
            return keras.utils.pack_x_y_sample_weight(x, y, sample_weight)
        data = super().preprocess_samples(x, y, sample_weight)
        if not batches_may_vary_in_length(self, x):
            return data
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        return keras.utils.pack_x_y_sample_weight(trimmed_to_bucket(x), y, sample_weight)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if self.training_on_features:
            # Training on cached features: build from a batch of model inputs.
            with self.distribute_strategy.scope():
                return self._symbolic_build(data_batch=self._cached_features_batch)
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def train_on_batch(self, *args, **kwargs):
        self._recompile_if_trainability_changed()
        return super().train_on_batch(*args, **kwargs)

    # --- Export, reporting and serialization -----------------------------------

    def export(self, filepath, format="tf_saved_model", verbose=None, input_signature=None, **kwargs):
        """Exports the inference network (Keras' `model.export`): the backbone and the head only."""
        if format != "tf_saved_model":
            return super().export(filepath, format=format, verbose=verbose, input_signature=input_signature, **kwargs)
        export_network(self, filepath, verbose=verbose, input_signature=input_signature)

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
        return trainability_report(self)

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
