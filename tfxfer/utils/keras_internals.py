"""Every Keras internal tfxfer reads or writes, in one place, each with why no public API does it.

`tests/utils/test_keras_internals.py` is the canary: it fails when a Keras
release renames or drops one of them, and says which. The keras#20585
multi-worker workaround keeps its own internals in
`tfxfer.distribute.multi_worker_fix`; the TF tracking hooks of
`HubBackbone` and `lora_adapters` (`_trackable_children`) are overrides of
TensorFlow's saving API, not reads.

Example:

>>> [layer.name for layer in nested_layers(model.backbone)][:2]
['embeddings', 'encoder']
"""


def nested_layers(layer, include_self=False):
    """Every layer inside `layer`, depth first: `Model.layers` is the top level only."""
    return list(layer._flatten_layers(include_self=include_self))


def trainable_capable_weights(layer):
    """The weights of `layer` that can train, whatever `trainable` says now (`trainable_weights` is empty when frozen)."""
    return list(layer._trainable_variables)


def loss_tracker(model):
    """The `loss` metric Keras' own `train_step` updates; a custom step must update it the same way."""
    return model._loss_tracker


def build_from_batch(model, data_batch):
    """Builds `model` (and its metrics) from one batch, as `fit` does before its first step."""
    model._symbolic_build(data_batch=data_batch)


def is_fits_validation(evaluate_kwargs):
    """Whether `evaluate` is called by `fit` on its validation data (already prepared by `fit`)."""
    return bool(evaluate_kwargs.get("_use_cached_eval_dataset"))


def optimizer_map(multi_optimizer):
    """A `MultiOptimizer`'s weight-to-optimizer map (its config does not carry which weights each serves)."""
    return multi_optimizer._optimizer_map


def load_weights_except(model, filepath, objects_to_skip):
    """`model.load_weights` leaving `objects_to_skip` (e.g. the optimizer) as they are: the public one loads all."""
    from keras.src.saving import saving_lib

    saving_lib.load_weights_only(model, filepath, objects_to_skip=objects_to_skip)
