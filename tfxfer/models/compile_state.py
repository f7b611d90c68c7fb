"""A `TransferModel`'s compile state, and every change of its optimizer.

`compile("auto")` picks the head's loss, metrics and an optimizer for what
trains now. The model keeps what `compile` was given in a `CompileState`,
and changes its optimizer only through the model's methods built on it:
`recompile` (the same loss and metrics, another or a fresh optimizer: the
recipes, and the automatic recompile after the trainable set changed),
`compiled_temporarily` (`lr_find`), `without_training_state` (WiSE-FT's
saved model) and `build_optimizer_for_all_weights` (gradual unfreezing).

Example:

>>> state = CompileState({"optimizer": "auto", "loss": "auto", "metrics": "auto"})
>>> state.covers([])
False
"""

import contextlib
import logging

import keras

from tfxfer.choices import HEAD_LEARNING_RATE, fine_tuning_learning_rate
from tfxfer.freezing.layer_groups import named_backbone_weights
from tfxfer.optimizers.cloning import clone_optimizer
from tfxfer.optimizers.fused_adam import FusedAdam
from tfxfer.utils.keras_internals import nested_layers

logger = logging.getLogger("tfxfer")


class CompileState:
    """What the last `compile` was given, and whether its optimizer still fits the trainable weights.

    Args:
        arguments: the `compile` arguments as given (`"auto"` included), or
            None before any compile.
    """

    def __init__(self, arguments=None):
        self.arguments = None if arguments is None else dict(arguments)
        # Set when the trainable set changed after compile and the optimizer does not cover it.
        self.needs_recompile = False
        # The weights the optimizer was built over, when that is every weight that can ever
        # train (gradual unfreezing); None: the weights that train now.
        self.optimizer_variables = None

    def covers(self, trainable_weights):
        """Whether the optimizer was built over all of `trainable_weights` already."""
        if self.optimizer_variables is None:
            return False
        known = {id(weight) for weight in self.optimizer_variables}
        return all(id(weight) in known for weight in trainable_weights)

    def fresh_arguments(self, **changes):
        """The arguments with `changes`, and the optimizer, if it is an object, a fresh unbuilt copy."""
        arguments = {**(self.arguments or {}), **changes}
        if isinstance(arguments.get("optimizer"), keras.optimizers.Optimizer):
            arguments["optimizer"] = clone_optimizer(arguments["optimizer"])
        return arguments


class Compiling:
    """`compile("auto")` and the optimizer changes built on `CompileState` (a `TransferModel` mixin)."""

    @property
    def compile_arguments(self):
        """The arguments of the last `compile` (as given, "auto" included)."""
        return dict(self.compile_state.arguments or {})

    def compile(self, optimizer="auto", loss="auto", metrics="auto", **kwargs):
        """Configures training; `"auto"` picks defaults for this head.

        `optimizer="auto"` is Adam (`tfxfer.optimizers.FusedAdam`) at `HEAD_LEARNING_RATE` (1e-3) while the
        backbone is frozen and `FINE_TUNING_LEARNING_RATE` (1e-4) once any
        of it trains (`LORA_LEARNING_RATE`, 3e-3, with LoRA adapters: the
        same default as `tfxfer train --lora-rank`); `loss="auto"` is sparse
        categorical cross-entropy for softmax heads and binary cross-entropy for sigmoid
        heads (from logits when `activation=None`); `metrics="auto"` is
        accuracy.
        """
        self.compile_state = CompileState(dict(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs))
        super().compile(
            optimizer=_optimizer(self, optimizer), loss=_loss(self, loss), metrics=_metrics(self, metrics), **kwargs
        )
        if kwargs.get("jit_compile") is True and not self.jit_compile:
            # Keras quietly falls back to no XLA; a TPU has no such fallback.
            unsupported = sorted(
                {layer.name for layer in nested_layers(self, include_self=True) if not layer.supports_jit}
            )
            raise ValueError(
                "jit_compile=True was asked for, but these layers do not support XLA compilation: "
                f"{', '.join(unsupported) or 'unknown (op determinism is enabled?)'}. This model "
                "cannot train on a TPU as it is."
            )

    def recompile(self, optimizer=None, **changes):
        """Compiles again with the last compile's loss, metrics and options.

        Args:
            optimizer: the new optimizer (default: a fresh, unbuilt one of
                the same configuration as the last one).
            **changes: other `compile` arguments to change.

        Example:

        >>> model.recompile(keras.optimizers.Adam(1e-5))
        """
        arguments = self.compile_state.fresh_arguments(**changes)
        if optimizer is not None:
            arguments["optimizer"] = optimizer
        self.compile(**arguments)

    def head_compile_arguments(self):
        """How to compile a model of the head alone (`HeadOnFeatures`) like this model.

        The same optimizer object (its state is this model's, saved in this
        model's checkpoints), the loss, fresh metrics of the same
        configuration, and the other `compile` options.
        """
        arguments = dict(self.compile_state.arguments or {})
        arguments["optimizer"] = self.optimizer
        arguments["loss"] = _loss(self, arguments.get("loss", "auto"))
        arguments["metrics"] = keras.tree.map_structure(_fresh_metric, _metrics(self, arguments.get("metrics", "auto")))
        return arguments

    @contextlib.contextmanager
    def compiled_temporarily(self, optimizer):
        """Within the block the model trains with `optimizer`; then its compile state and optimizer are back."""
        state, previous = self.compile_state, self.optimizer
        self.recompile(optimizer)
        try:
            yield
        finally:
            if state.arguments:
                self.compile(**{**state.arguments, "optimizer": previous})
                self.compile_state = state

    @contextlib.contextmanager
    def without_training_state(self):
        """Within the block the model has a fresh optimizer of its configuration (to save it without slots)."""
        state, optimizer = self.compile_state, self.optimizer
        if state.arguments is not None and optimizer is not None:
            fresh = clone_optimizer(optimizer)
            self.compile_state, self.optimizer = CompileState({**state.arguments, "optimizer": fresh}), fresh
        try:
            yield
        finally:
            self.compile_state, self.optimizer = state, optimizer

    def build_optimizer_for_all_weights(self):
        """Builds the optimizer over every weight that can ever train.

        Afterwards the backbone can be frozen and unfrozen between steps,
        inside a running `fit`, without a recompile: the optimizer already
        has state for every weight (one extra set of slots for the frozen
        ones). `tfxfer.callbacks.GradualUnfreezing` calls this.
        """
        self._recompile_if_trainability_changed()
        variables = list(self.head.trainable_weights) + [weight for _, weight in named_backbone_weights(self.backbone)]
        if self.source_classifier is not None:  # Co-Tuning's, trained beside the head
            variables += list(self.source_classifier.trainable_weights)
        if self.optimizer.built:
            self.recompile()  # its slots cover a smaller set: start it again, same config
        self.optimizer.build(variables)
        self.compile_state.optimizer_variables = variables

    def _trainable_set_changed(self):
        """Called by freezing: the next `fit` recompiles unless the optimizer covers the new set."""
        if self.compile_state.arguments and not self.compile_state.covers(self.trainable_weights):
            self.compile_state.needs_recompile = True

    def _recompile_if_trainability_changed(self):
        if not self.compile_state.needs_recompile:
            return
        arguments = self.compile_state.fresh_arguments()
        logger.info(
            "The backbone's trainable weights changed since compile(): recompiling with a fresh %s.",
            type(arguments["optimizer"]).__name__,
        )
        self.compile(**arguments)

    def get_compile_config(self):
        if not self.compile_state.arguments:
            return None
        config = keras.saving.serialize_keras_object(self.compile_state.arguments)
        config["optimizer_built"] = bool(getattr(self.optimizer, "built", False))
        return config

    def compile_from_config(self, config):
        config = dict(config)
        optimizer_built = config.pop("optimizer_built", False)
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built and optimizer_built:
            # Build the optimizer now so that its saved state loads.
            self.optimizer.build(self.trainable_variables)


def _binary(model):
    return model.multi_label or model.num_classes == 1 or model.activation == "sigmoid"


def _optimizer(model, optimizer):
    if optimizer != "auto":
        return optimizer
    frozen = model.trainable_backbone is False
    return FusedAdam(HEAD_LEARNING_RATE if frozen else fine_tuning_learning_rate(lora=model.lora is not None))


def _loss(model, loss):
    if loss != "auto":
        return loss
    from_logits = model.activation is None
    if _binary(model):
        return keras.losses.BinaryCrossentropy(from_logits=from_logits)
    return keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)


def _metrics(model, metrics):
    if metrics != "auto":
        return metrics
    if _binary(model):
        threshold = 0.0 if model.activation is None else 0.5
        return [keras.metrics.BinaryAccuracy("accuracy", threshold=threshold)]
    return [keras.metrics.SparseCategoricalAccuracy("accuracy")]


def _fresh_metric(metric):
    """An unused copy of a metric object (its state belongs to the model it was compiled with)."""
    if isinstance(metric, keras.metrics.Metric):
        return type(metric).from_config(metric.get_config())
    return metric
