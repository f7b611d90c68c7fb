"""`HeadOnFeatures`: a `TransferModel`'s head as a model of its own, over pooled backbone features.

While the backbone is frozen, the cached-features phase
(`tfxfer.recipes.CachedFeatures`) trains this small Functional model on
features computed once, instead of switching the whole model into a mode.
It shares the head's layers (so it trains the transfer model's head), the
transfer model's optimizer object (so checkpoints of the transfer model
carry its state), its loss and metrics (fresh copies) and its regularizer's
penalty. Its `fit` runs the callbacks on the transfer model: checkpoints
and backups save the whole model, a resume's start epoch and
`stop_training` (early stopping) reach this fit, and the returned `History`
is this phase's epochs.

Example:

>>> head_model = model.head_on_features(input_batch)
>>> head_model.fit(features_dataset, epochs=3, callbacks=[checkpoint])
"""

import keras

from tfxfer.callbacks.run_backup import resume_epoch
from tfxfer.models.input_assertions import readable_errors
from tfxfer.models.regularized_step import RegularizedStep
from tfxfer.utils.xla_errors import xla_errors_explained


class HeadOnFeatures(RegularizedStep, keras.Model):
    """The head of `model` over pooled backbone features, compiled like `model`.

    Build it with `TransferModel.head_on_features`, which first makes sure
    the transfer model itself is compiled and built.

    Args:
        model: the `TransferModel` whose head this is (its backbone frozen).
        compile_arguments: how to compile it (`model.head_compile_arguments()`).
    """

    def __init__(self, model, compile_arguments):
        head = model.head
        features = keras.Input(shape=(int(head.dense.kernel.shape[0]),), dtype="float32", name="features")
        super().__init__(inputs=features, outputs=head.classify(features), name=f"{model.name}_head_on_features")
        self.regularizer = model.regularizer
        # In a closure: as an attribute the transfer model would become a sublayer of this one.
        self._transfer_model = lambda: model
        if self.regularizer is not None:
            self.task_loss_tracker = keras.metrics.Mean(name="task_loss")
            self.regularization_loss_tracker = keras.metrics.Mean(name="regularization_loss")
        self.compile(**compile_arguments)

    def regularization_penalty(self, features=None, feature_maps=None, labels=None):
        """The transfer model's penalty (its backbone is frozen: the head's weights and the features).

        Co-Tuning's source term is left out (no `labels`): on a frozen
        backbone the source classifier cannot change the head.
        """
        return self._transfer_model().regularization_penalty(features, feature_maps)

    def _forward_for_training(self, x):
        return self(x, training=True), x, None

    def _optimizer_variables(self):
        return self._transfer_model().compile_state.optimizer_variables

    def fit(self, x=None, *args, callbacks=None, **kwargs):
        """Keras' `fit`, with `callbacks` run on the transfer model."""
        kwargs["initial_epoch"] = resume_epoch(callbacks, kwargs.get("initial_epoch", 0))
        callbacks = [_OnTransferModel(self._transfer_model(), callbacks or [])]
        with xla_errors_explained(), readable_errors():
            return super().fit(x, *args, callbacks=callbacks, **kwargs)

    def evaluate(self, *args, **kwargs):
        with readable_errors():
            return self.results_without_penalty(super().evaluate(*args, **kwargs))


class _OnTransferModel(keras.callbacks.Callback):
    """Runs `callbacks` on the transfer model while its head model fits, and passes back what they decide.

    The callbacks get the fit's own `logs` dicts (not copies), so what they
    add (a learning-rate callback's `learning_rate`) reaches the History.
    """

    def __init__(self, model, callbacks):
        super().__init__()
        self._transfer_model = model
        # A CallbackList sets each callback's model to the transfer model.
        self._callbacks = keras.callbacks.CallbackList(callbacks, model=model).callbacks

    def _each(self, hook, *args):
        for callback in self._callbacks:
            getattr(callback, hook)(*args)

    def set_params(self, params):
        super().set_params(params)
        self._each("set_params", params)

    def on_train_begin(self, logs=None):
        self._transfer_model.stop_training = False
        self._each("on_train_begin", logs)

    def on_train_end(self, logs=None):
        self._each("on_train_end", logs)

    def on_epoch_begin(self, epoch, logs=None):
        self._each("on_epoch_begin", epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._each("on_epoch_end", epoch, logs)
        self._pass_back_stop()

    def on_train_batch_begin(self, batch, logs=None):
        self._each("on_train_batch_begin", batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        self._each("on_train_batch_end", batch, logs)
        self._pass_back_stop()

    def on_test_begin(self, logs=None):
        self._each("on_test_begin", logs)

    def on_test_end(self, logs=None):
        self._each("on_test_end", logs)

    def on_test_batch_begin(self, batch, logs=None):
        self._each("on_test_batch_begin", batch, logs)

    def on_test_batch_end(self, batch, logs=None):
        self._each("on_test_batch_end", batch, logs)

    def _pass_back_stop(self):
        if self._transfer_model.stop_training:
            self.model.stop_training = True
