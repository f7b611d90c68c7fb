"""Refusing to train at a learning rate that is silently zero."""

import keras


def _sub_optimizers(optimizer):
    return optimizer.optimizers if isinstance(optimizer, keras.optimizers.MultiOptimizer) else [optimizer]


def _schedule(optimizer):
    schedule = getattr(optimizer, "_learning_rate", None)
    return schedule if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule) else None


def upcoming_learning_rates(optimizer, steps=2):
    """The largest rate each (sub-)optimizer applies over its next `steps` steps.

    More than one step: a warmup starts at 0 and rises at once.
    """
    rates = []
    for inner in _sub_optimizers(optimizer):
        schedule = _schedule(inner)
        if schedule is not None:
            start = int(keras.ops.convert_to_numpy(inner.iterations))
            values = [schedule(step) for step in range(start, start + steps)]
        else:
            values = [inner.learning_rate]
        rates.append(max(float(keras.ops.convert_to_numpy(value)) for value in values))
    return rates


def check_learning_rate(model):
    """Raises when every learning rate of `model`'s optimizer is zero at its current step.

    This happens when training continues from a checkpoint whose schedule
    (warmup + cosine over the old run's steps) has already decayed to 0:
    `fit` would run and change nothing.
    """
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not model.trainable_weights:
        return
    if isinstance(optimizer, keras.optimizers.MultiOptimizer) and not optimizer.built:
        return  # its sub-optimizers exist once built; a fresh one starts at step 0
    schedules = [s for s in map(_schedule, _sub_optimizers(optimizer)) if s is not None]
    # A constant rate of 0 is the caller's explicit choice; a schedule that ran out is not.
    if schedules and all(rate == 0.0 for rate in upcoming_learning_rates(optimizer)):
        raise ValueError(
            f"The optimizer's learning rate is 0 at its step {int(optimizer.iterations)}"
            f" (its {type(schedules[0]).__name__} schedule has run its course)"
            ", so fit would change no weight. This happens when training continues from a checkpoint of a "
            "finished run. Compile with a fresh optimizer first (model.compile(optimizer=...)), or use a recipe "
            "(tfxfer.recipes.fine_tune), which sets a new schedule; to continue an interrupted run, use "
            "tfxfer.resume_run."
        )
