"""`HubBackbone`: a Keras 3 layer over a TF Hub module (TF2 SavedModel)."""

import os

import keras
import tensorflow as tf

from tfxfer.backbones.hub_module import is_remote_handle, load_hub_module, relocated_handle
from tfxfer.backbones.module_inputs import conformed_inputs, describe_value
from tfxfer.freezing.group_declarations import checked_rules
from tfxfer.option_errors import OptionValueError

_BATCHNORM_STATISTICS = ("moving_mean", "moving_variance")


_SIGNATURE = ("signature=", "--signature")


@keras.saving.register_keras_serializable(package="tfxfer")
class HubBackbone(keras.layers.Layer):
    """A TF Hub module as a Keras 3 layer.

    `hub.KerasLayer` is a `tf_keras` (Keras 2) layer and cannot be used in a
    Keras 3 model. `HubBackbone` restores the module with
    `tf.saved_model.load` and exposes the module's own variables as Keras
    weights (the same `tf.Variable`s the module's functions read, no copies),
    so optimizers, `.weights.h5` files, `tf.train.Checkpoint` and `model.save`
    all see them. It works in Sequential, Functional and subclassed models.

    `training` is passed to modules whose `__call__` accepts it, so dropout
    and BatchNorm behave; BatchNorm moving statistics are updated only when
    the layer is trainable and called with `training=True` (and
    `train_batchnorm` is True). A module's graph is fixed: for modules that
    contain BatchNorm, `train_batchnorm=False` runs the whole module in
    inference mode (dropout too) while its weights still train.

    Args:
        handle: a tfhub.dev/Kaggle URL, a `gs://` path or a local SavedModel
            directory, resolved through `tensorflow_hub.resolve` (so
            `TFHUB_CACHE_DIR` works offline).
        trainable: whether the module's trainable variables are trained.
        output_key: for modules that return a dict (BERT-style encoders),
            the entry to return, e.g. `"pooled_output"`. Without it the
            whole dict is returned (or its only entry, for signatures).
        signature: call this named signature (e.g. `"serving_default"`)
            instead of the module's `__call__`; needed for signature-only
            modules. Signature functions take keyword inputs: pass a dict, or
            a single tensor when the signature has one input.
        arguments: extra keyword arguments passed on every call.
        train_batchnorm: when False, modules with BatchNorm always run in
            inference mode.
        layer_groups: the module's layer groups, declared as ordered
            `(group name, regex)` rules over its variable names (see
            `tfxfer.freezing.group_declarations`), e.g.
            `[("stem", r"stem_"), ("\\1", r"(b\\d+)_"), ("head", r"head_")]`.
            Saved in the config. Default: tfxfer's declaration for known
            module layouts (EfficientNet-Lite), else inferred groups.
        name: layer name.
        dtype: layer dtype; defaults to float32 because a SavedModel's graph
            has fixed dtypes (inputs are cast to the module's dtypes).

    Example:

    >>> backbone = tfxfer.HubBackbone(
    ...     "../shared/models/tfhub/efficientnet_lite0_feature_vector")
    >>> model = keras.Sequential([
    ...     keras.Input((224, 224, 3)), backbone, keras.layers.Dense(2)])
    >>> model(np.zeros((1, 224, 224, 3), "float32")).shape
    TensorShape([1, 2])
    """

    def __init__(
        self,
        handle,
        *,
        trainable=False,
        output_key=None,
        signature=None,
        arguments=None,
        train_batchnorm=True,
        layer_groups=None,
        name=None,
        dtype=None,
        **kwargs,
    ):
        super().__init__(
            trainable=trainable,
            name=name,
            dtype=dtype or "float32",
            autocast=False,
            **kwargs,
        )
        self.handle = _absolute_if_local(handle)
        self.output_key = output_key
        self.signature = signature
        self.arguments = dict(arguments or {})
        self.train_batchnorm = bool(train_batchnorm)
        self.layer_groups = checked_rules(layer_groups)

        self._hub_module = load_hub_module(handle)
        self._function = self._select_function()
        self._accepts_training = self._function_accepts_training()
        self._input_structures = self._collect_input_structures()
        self._check_output_key()

        self._module_weights = []
        with keras.name_scope(self.name):
            for variable in self._collect_variables():
                self._wrap_variable(variable)
        self.has_batchnorm = any(
            statistic in module_name for module_name, _ in self._module_weights for statistic in _BATCHNORM_STATISTICS
        )
        self.built = True
        if self.layer_groups is not None:
            # A rule that matches no variable fails here, not at unfreeze time.
            from tfxfer.freezing.layer_groups import layer_groups as split_into_groups

            split_into_groups(self)

    # --- Module introspection -------------------------------------------

    def _describe(self):
        return f"HubBackbone '{self.name}' (module '{self.handle}')"

    def _select_function(self):
        module = self._hub_module
        signatures = sorted(getattr(module, "signatures", {}).keys())
        if self.signature is not None:
            if self.signature not in signatures:
                raise OptionValueError(
                    f"{self._describe()} has no signature "
                    f"'{self.signature}'. Available signatures: "
                    f"{signatures or 'none'}"
                    + ("; or leave out {signature} to call the module itself." if callable(module) else "."),
                    signature=_SIGNATURE,
                )
            return module.signatures[self.signature]
        if not callable(module):
            if not signatures:
                raise ValueError(
                    f"{self._describe()} is neither callable nor has signatures: there is nothing to call."
                )
            raise OptionValueError(
                f"{self._describe()} has no __call__ (it is not a TF2 reusable SavedModel). Pass {{signature}} "
                f"with one of {signatures}.",
                signature=_SIGNATURE,
            )
        return module.__call__

    def _function_accepts_training(self):
        if self.signature is not None:
            return False
        spec = getattr(self._function, "function_spec", None)
        if spec is None:
            return False
        return "training" in spec.fullargspec.args

    def _concrete_functions(self):
        if self.signature is not None:
            return [self._function]
        return list(getattr(self._function, "concrete_functions", []))

    def _collect_input_structures(self):
        structures = []
        for function in self._concrete_functions():
            args, kwargs = function.structured_input_signature
            if self.signature is not None:
                structures.append(dict(kwargs))
            elif args:
                structures.append(args[0])
        return structures

    def _output_structure(self):
        functions = self._concrete_functions()
        return functions[0].structured_outputs if functions else None

    def _check_output_key(self):
        outputs = self._output_structure()
        if self.output_key is None or outputs is None:
            return
        if not isinstance(outputs, dict):
            raise OptionValueError(
                f"{self._describe()} returns a single tensor, not a dict, so "
                f"{{output_key}} {self.output_key!r} cannot be used. Leave it out.",
                output_key=("output_key", "--output-key"),
            )
        if self.output_key not in outputs:
            raise ValueError(
                f"{self._describe()} has no output '{self.output_key}'. Its outputs are {sorted(outputs)}."
            )

    def _collect_variables(self):
        if self.signature is None and hasattr(self._hub_module, "variables"):
            candidates = list(self._hub_module.variables)
        else:
            candidates = []
            for function in self._concrete_functions():
                candidates.extend(function.variables)
        unique, seen = [], set()
        for variable in candidates:
            if id(variable) not in seen:
                seen.add(id(variable))
                unique.append(variable)
        return unique

    def _wrap_variable(self, variable):
        module_name = variable.name.rsplit(":", 1)[0]
        # Passing the tf.Variable itself makes the Keras variable share it:
        # the optimizer updates exactly what the module's functions read.
        weight = keras.Variable(
            initializer=variable,
            trainable=variable.trainable,
            name=module_name.replace("/", "_"),
        )
        self._track_variable(weight)
        self._module_weights.append((module_name, weight))

    @property
    def module_weights(self):
        """`(module variable name, Keras variable)` pairs in module order."""
        return list(self._module_weights)

    @property
    def input_structure(self):
        """The module's inputs as a `tf.TensorSpec` or a dict of them."""
        if not self._input_structures:
            raise ValueError(f"{self._describe()} declares no input signature.")
        return self._input_structures[0]

    @property
    def output_structure(self):
        """The module's outputs as a `tf.TensorSpec` or a dict of them."""
        return self._output_structure()

    @property
    def takes_images(self):
        """Whether the module takes one float `[batch, height, width, 3]` tensor."""
        structure = self.input_structure
        return not isinstance(structure, dict) and structure.shape.rank == 4 and structure.dtype.is_floating

    def model_inputs(self, input_shape=None):
        """`keras.Input`s for a Functional model around this module.

        Args:
            input_shape: the per-example shape for single-input modules, e.g.
                `(224, 224, 3)`; it must fit the module's declared shape
                (None there means any size). Default: the module's own.
        """
        structure = self.input_structure
        if isinstance(structure, dict):
            if input_shape is not None:
                raise ValueError(
                    f"input_shape cannot be used with module '{self.handle}': "
                    f"it takes several inputs {sorted(structure)}."
                )
            return {
                key: keras.Input(shape=spec.shape[1:], dtype=spec.dtype.name, name=key)
                for key, spec in sorted(structure.items())
            }
        if structure.shape.rank is None:
            if input_shape is None:
                raise ValueError(f"Module '{self.handle}' does not declare its input rank; pass input_shape=...")
            shape = tuple(input_shape)
        else:
            shape = tuple(structure.shape[1:].as_list())
            if input_shape is not None:
                shape = self._checked_input_shape(tuple(input_shape), shape)
        return keras.Input(shape=shape, dtype=structure.dtype.name, name="inputs")

    def _checked_input_shape(self, requested, module_shape):
        fits = len(requested) == len(module_shape) and all(
            expected is None or got == expected for got, expected in zip(requested, module_shape)
        )
        if not fits:
            missing_channels = len(requested) == len(module_shape) - 1
            raise ValueError(
                f"input_shape={requested} does not fit module '{self.handle}', which "
                f"takes per-example inputs of shape {module_shape} (None = any size)."
                + (" The channel axis is missing." if missing_channels else "")
            )
        return requested

    # --- Calling ---------------------------------------------------------

    def call(self, inputs, training=None):
        inputs = self._conform_inputs(inputs)
        if not self._accepts_training:
            outputs = self._invoke(inputs, None)
        else:
            module_training = self._module_training(training)
            if isinstance(module_training, bool):
                outputs = self._invoke(inputs, module_training)
            else:
                outputs = tf.cond(
                    module_training,
                    lambda: self._invoke(inputs, True),
                    lambda: self._invoke(inputs, False),
                )
        return self._select_output(outputs)

    def _module_training(self, training):
        if not self.trainable:
            return False
        if self.has_batchnorm and not self.train_batchnorm:
            return False
        if training is None:
            return False
        static = tf.get_static_value(training)
        if static is not None:
            return bool(static)
        return tf.cast(training, tf.bool)

    def _invoke(self, inputs, training):
        try:
            if self.signature is not None:
                if not isinstance(inputs, dict):
                    (input_name,) = self._single_signature_input()
                    inputs = {input_name: inputs}
                return self._function(**inputs, **self.arguments)
            kwargs = dict(self.arguments)
            if training is not None:
                kwargs["training"] = training
            return self._function(inputs, **kwargs)
        except (ValueError, TypeError) as error:
            raise ValueError(
                f"{self._describe()} cannot be called on "
                f"{describe_value(inputs)}. The module accepts: "
                f"{self._describe_accepted()}. ({error})"
            ) from None

    def _single_signature_input(self):
        names = sorted(self.input_structure)
        if len(names) != 1:
            raise ValueError(
                f"{self._describe()}: signature '{self.signature}' takes "
                f"several inputs {names}; pass a dict with those keys."
            )
        return names

    def _describe_accepted(self):
        return " or ".join(describe_value(structure) for structure in self._input_structures) or "unknown inputs"

    def _conform_inputs(self, inputs):
        """Checks keys, ranks and shapes; casts dtypes to the module's."""
        if not self._input_structures:
            return inputs
        return conformed_inputs(inputs, self.input_structure, self._describe(), by_signature=self.signature is not None)

    def _select_output(self, outputs):
        if not isinstance(outputs, dict):
            return outputs
        if self.output_key is not None:
            return outputs[self.output_key]
        if self.signature is not None and len(outputs) == 1:
            return next(iter(outputs.values()))
        return dict(outputs)

    # --- Serialization and tracking -------------------------------------

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "handle": self.handle,
                "output_key": self.output_key,
                "signature": self.signature,
                "arguments": self.arguments,
                "train_batchnorm": self.train_batchnorm,
                "layer_groups": None if self.layer_groups is None else [list(rule) for rule in self.layer_groups],
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["handle"] = relocated_handle(config["handle"], config.get("name"))
        return cls(**config)

    @tf.__internal__.tracking.no_automatic_dependency_tracking
    def _trackable_children(self, save_type="checkpoint", **kwargs):
        children = super()._trackable_children(save_type, **kwargs)
        if save_type == "checkpoint":
            # Checkpoints hold each module variable once, keyed by its name
            # in the module. SavedModel export instead keeps the module: its
            # functions, tables and assets are needed there.
            children.pop("_hub_module", None)
            for module_name, weight in self._module_weights:
                children[f"hub_weights/{module_name}"] = weight
        elif save_type == "savedmodel":
            # The module carries its variables; the Keras wrappers of the
            # same variables would store every value a second time.
            children.pop("_module_weights", None)
        return children


def _absolute_if_local(handle):
    # A saved model must find a local module again from any working folder.
    if isinstance(handle, (str, os.PathLike)) and not is_remote_handle(handle):
        path = os.path.expanduser(os.fspath(handle))
        if os.path.exists(path):
            return os.path.abspath(path)
    return handle
