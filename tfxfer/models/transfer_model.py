"""`TransferModel`: a pretrained backbone plus a new classification head.

The class holds the contract, the graph and `fit`/`evaluate`/`predict` on raw inputs; the rest is
in modules named after it (`model_constructors`, `backbone_freezing`, `compile_state`,
`regularized_step`, `raw_inputs`, `length_grouping`, `feature_maps`, `category_relationship`, `network_export`).
"""

import keras
import keras_hub

from tfxfer.backbones.hub_backbone import HubBackbone
from tfxfer.callbacks.run_backup import resume_epoch
from tfxfer.data.length_bucketing import grouped_by_length, trimmed_to_bucket
from tfxfer.distribute.multi_worker_fix import MultiWorkerFix
from tfxfer.models import model_constructors
from tfxfer.models.backbone_freezing import BackboneFreezing
from tfxfer.models.category_relationship import CategoryRelationship
from tfxfer.models.classification_head import ClassificationHead
from tfxfer.models.compile_state import CompileState, Compiling
from tfxfer.models.feature_maps import delta_state, measure_feature_attention, needs_feature_attention
from tfxfer.models.head_on_features import HeadOnFeatures
from tfxfer.models.input_assertions import readable_errors
from tfxfer.models.length_grouping import batches_may_vary_in_length, groups_by_length, token_lengths_of
from tfxfer.models.model_inputs import (
    activation_for,
    check_known_arguments,
    check_preprocessor_fits_inputs,
    checked_class_names,
    model_inputs,
    pooling_mask,
    preprocessor_and_input_shape,
    regularizer_from,
)
from tfxfer.models.network_export import export_network
from tfxfer.models.raw_inputs import prepared_class_weight, prepared_data
from tfxfer.models.regularized_step import SourceRegularized, source_weights_for
from tfxfer.models.source_classifier import source_classifier_for
from tfxfer.optimizers.learning_rate_check import check_learning_rate
from tfxfer.option_errors import respelled_as
from tfxfer.preprocessing.modality import preprocessor_modality
from tfxfer.utils.array_batches import is_array_like, shuffled_batches, split_last
from tfxfer.utils.keras_internals import build_from_batch, is_fits_validation
from tfxfer.utils.xla_errors import xla_errors_explained


@keras.saving.register_keras_serializable(package="tfxfer")
class TransferModel(
    BackboneFreezing, SourceRegularized, CategoryRelationship, Compiling, MultiWorkerFix, keras_hub.models.Task
):
    """A pretrained backbone with a new classification head.

    Build one with `from_hub` (TF Hub modules), `from_preset` (KerasHub
    presets) or from any backbone layer. Like a KerasHub `Task`, the model
    owns its input/output contract, saved in its config: the `preprocessor`
    (an `ImagePreprocessor`, a preset's tokenizer or a TF Hub preprocessing
    module), the `class_names`, and the head, which decodes outputs into
    decisions. `fit`, `evaluate` and `predict` take raw inputs (pixels in
    [0, 255] of any size, or strings) and run the preprocessor in the
    `tf.data` pipeline, outside the XLA-compilable train step; inputs and
    labels that cannot be right are refused first (`raw_inputs`).
    `model(x)` takes preprocessed inputs. The backbone starts frozen;
    `unfreeze(top=k)` counts layer groups from the top, BatchNorm stays in
    inference mode unless `train_batchnorm=True`, and a changed trainable
    set recompiles at the next `fit` with a fresh optimizer of the same
    configuration. See docs/models_and_freezing.md.

    Args:
        backbone: a `HubBackbone`, a KerasHub `Backbone` or a Functional
            Keras model that maps the inputs to features.
        num_classes: number of classes (1 for a single sigmoid output).
        preprocessor: the layer run on raw inputs in the input pipeline
            (TF Hub image modules get an `ImagePreprocessor` by default).
        class_names: class names in output order (one sigmoid output: the
            negative, then the positive class).
        input_shape: the per-example input shape of a single-input TF Hub
            module, e.g. `(224, 224, 3)`.
        dropout: dropout rate before the classifier.
        activation: `"auto"` (softmax, or sigmoid for one output or
            `multi_label`), `"softmax"`, `"sigmoid"` or None (logits).
        multi_label: independent sigmoid outputs, one per class.
        threshold: the probability above which a sigmoid output says yes.
        pooling, feature_key: how backbone outputs become one feature
            vector per example (see `ClassificationHead`).
        trainable_backbone: False (frozen), True or k (the top k groups).
        train_batchnorm: BatchNorm uses batch statistics while fine-tuning.
        regularizer: a `tfxfer.regularizers` penalty (e.g. `L2SP`) added to
            the task loss in `train_step`, with w⁰ captured here and saved
            with the model; `fit` logs `task_loss` and `regularization_loss`.
        length_bucketing: for text, cut batches to the smallest length
            bucket that holds them, and group training examples by length
            (`tfxfer.data.length_bucketing`; results unchanged, skipped
            where batch shapes must be fixed).
        lora: LoRA adapters as `{"rank", "targets", "alpha"}` (set by
            `enable_lora`).
        keep_source_weights: keep w⁰ of every backbone variable, for
            `tfxfer.wise_ft`.
        wise_ft_mix: the mix `tfxfer.wise_ft` applied, or None.
        source_classifier: for `regularizer=CoTuning(...)`, the pretrained
            model's own classifier: a TF Hub classification module of the
            backbone's network (handle or path), the `Dense` top of a Keras
            model, or a `tfxfer.SourceClassifier` (with source class names).
            Trained beside the head, kept with the model, never exported.

    Example:

    >>> model = tfxfer.TransferModel.from_hub(
    ...     "../shared/models/tfhub/efficientnet_lite0_feature_vector",
    ...     num_classes=2, dropout=0.2, class_names=["ants", "bees"])
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
        source_classifier=None,
        **kwargs,
    ):
        check_known_arguments(kwargs, TransferModel.__init__)
        activation = activation_for(activation, num_classes, multi_label)
        regularizer = regularizer_from(regularizer)
        dtype = kwargs.pop("dtype", None)  # the head's policy (saved: a mixed policy survives a reload)
        preprocessor, input_shape = preprocessor_and_input_shape(backbone, preprocessor, input_shape)
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
        self.lora = self.lora_state = self.source_backbone = self.feature_attention = self.source_classifier = None
        self.source_weights = source_weights_for(backbone, regularizer, keep_source_weights)
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
        self._trainable_backbone = None
        self.compile_state = CompileState()
        # DELTA compares feature maps with those of a frozen pretrained copy.
        self.source_backbone, self.feature_attention = delta_state(backbone, regularizer, self.head)
        # Co-Tuning trains the pretrained model's own classifier beside the head.
        self.source_classifier = source_classifier_for(source_classifier, backbone, regularizer, self.head)
        if lora is not None:
            self._add_lora(**lora)
        with respelled_as(top=("trainable_backbone", "--unfreeze-top")):
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

    def fine_tune(self, x, y=None, **kwargs):
        """Two-phase fine-tuning (`tfxfer.recipes.two_phase`): head first, then backbone at a lower rate.

        >>> history = model.fine_tune(train_ds, validation_data=val_ds, head_epochs=1, epochs=3)
        """
        from tfxfer.recipes.two_phase import two_phase

        return two_phase(self, x, y, **kwargs)

    def lr_find(self, x, y=None, **kwargs):
        """The loss along a ramp of rates on a throw-away copy of the weights (`tfxfer.recipes.lr_find`).

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
        with xla_errors_explained(), readable_errors():
            return self._fit_raw_inputs(
                x, y, batch_size, sample_weight, validation_data, validation_split, shuffle, **kwargs
            )

    def _fit_raw_inputs(self, x, y, batch_size, sample_weight, validation_data, validation_split, shuffle, **kwargs):
        self._recompile_if_trainability_changed()
        for callback in kwargs.get("callbacks") or []:
            if hasattr(callback, "prepare"):  # e.g. GradualUnfreezing
                callback.prepare(self)
        kwargs["initial_epoch"] = resume_epoch(kwargs.get("callbacks"), kwargs.get("initial_epoch", 0))
        check_learning_rate(self)
        x, y, validation_data = self._raw_data("fit", x, y, validation_data)
        if kwargs.get("class_weight") is not None:
            kwargs["class_weight"] = prepared_class_weight(self, kwargs["class_weight"])
        if needs_feature_attention(self):
            measure_feature_attention(self, x, y, batch_size)
        if self.source_classifier is not None and not self.source_classifier.is_measured:
            self._measure_relationship_for_fit(x, y, batch_size, validation_split, validation_data)
        if self.preprocessor is None:
            # Nothing to preprocess: plain Keras handling of the inputs.
            # (Datasets bring their own order; Keras warns on shuffle=True.)
            shuffle, fit = shuffle and is_array_like(x), keras.Model.fit.__get__(self)
        else:
            if shuffle and is_array_like(x):
                # KerasHub batches arrays unshuffled; shuffle them each epoch as
                # Keras does, before the preprocessor is mapped over the batches.
                if validation_split and validation_data is None:
                    (x, y, sample_weight), validation = split_last(validation_split, x, y, sample_weight)
                    validation_data, validation_split = tuple(v for v in validation if v is not None), None
                x = shuffled_batches(x, y, sample_weight, batch_size or 32)
                y = sample_weight = batch_size = None
            if groups_by_length(self, x):
                x = grouped_by_length(x, token_lengths_of(self))
            shuffle, fit = False, super().fit  # arrays were shuffled above; datasets keep their order
        return fit(
            x=x,
            y=y,
            batch_size=batch_size,
            sample_weight=sample_weight,
            validation_data=validation_data,
            validation_split=validation_split,
            shuffle=shuffle,
            **kwargs,
        )

    def evaluate(self, x=None, y=None, *args, **kwargs):
        if not is_fits_validation(kwargs):  # fit's validation data: prepared by fit
            x, y, _ = self._raw_data("evaluate", x, y)
        with readable_errors():
            if self.preprocessor is None:
                results = keras.Model.evaluate(self, x, y, *args, **kwargs)
            else:
                results = super().evaluate(x, y, *args, **kwargs)
        # No penalty in evaluation: fit's val_ logs and evaluate(return_dict=True) leave it out.
        return self.results_without_penalty(results)

    def predict(self, x, *args, **kwargs):
        x, _, _ = self._raw_data("predict", x)
        with readable_errors():
            if self.preprocessor is None:
                return keras.Model.predict(self, x, *args, **kwargs)
            return super().predict(x, *args, **kwargs)

    def _raw_data(self, method, x, y=None, validation_data=None):
        """Raw inputs and labels checked and adapted (`tfxfer.models.raw_inputs`)."""
        return prepared_data(self, method, x, y, validation_data)

    # --- Cached backbone features ------------------------------------------

    def head_on_features(self, input_batch):
        """The head alone as a model over pooled backbone features, to train on cached features.

        The backbone must be frozen. This model is first recompiled if its
        trainable set changed and built from `input_batch` (a batch of
        preprocessed inputs), so that checkpoints taken while the head model
        fits save it whole; see `tfxfer.models.head_on_features`.
        """
        self._recompile_if_trainability_changed()
        check_learning_rate(self)
        with self.distribute_strategy.scope():
            build_from_batch(self, input_batch)
            return HeadOnFeatures(self, self.head_compile_arguments())

    def preprocess_samples(self, x, y=None, sample_weight=None):
        data = super().preprocess_samples(x, y, sample_weight)
        if not batches_may_vary_in_length(self, x):
            return data
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        return keras.utils.pack_x_y_sample_weight(trimmed_to_bucket(x), y, sample_weight)

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
        state = (
            self.source_weights,
            self.lora_state,
            self.source_backbone,
            self.feature_attention,
            self.source_classifier,
        )
        return [layer for layer in super().layers if not any(layer is part for part in state)]

    def summary(self, *args, show_trainable=True, print_fn=None, **kwargs):
        """Keras' summary with a Trainable column and the backbone's state."""
        super().summary(*args, show_trainable=show_trainable, print_fn=print_fn, **kwargs)
        (print_fn or print)(self.trainability_report())

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
                "source_classifier": (
                    None
                    if self.source_classifier is None
                    else keras.saving.serialize_keras_object(self.source_classifier)
                ),
                "dtype": keras.dtype_policies.serialize(self.head.dtype_policy),
                "regularizer": (
                    None if self.regularizer is None else keras.saving.serialize_keras_object(self.regularizer)
                ),
            }
        )
        return config
