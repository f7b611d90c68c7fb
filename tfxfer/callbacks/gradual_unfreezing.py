"""`GradualUnfreezing`: unfreeze the backbone top-down during `fit`."""

import keras

from tfxfer.freezing.layer_groups import layer_groups


class GradualUnfreezing(keras.callbacks.Callback):
    """Unfreezes the backbone from the top, a layer group at a time.

    ULMFiT's gradual unfreezing (Howard & Ruder, 2018): the first epoch
    trains the head alone, each later epoch one more layer group (block) of
    the backbone, counted from the top with `tfxfer.layer_groups`, until
    all are trainable. It takes effect in the running `fit`, at epoch
    boundaries, without recompiling: before training starts the model's
    optimizer is built once over every weight (so it keeps its state and
    learning-rate schedule), and the train step is retraced when the
    trainable set changes. It works with `tfxfer.discriminative_optimizer`
    and with the source regularizers (newly unfrozen weights start being
    penalised toward w⁰). Use it with `TransferModel.fit`.

    Args:
        schedule: what is trainable at each epoch (0-based):
            - None: epoch e trains the top `e * groups_per_epoch` groups;
            - a list: entry e is the number of top groups for epoch e (the
              last entry holds for later epochs);
            - a callable `epoch -> number of top groups`.
            0 means the backbone is frozen; counts above the number of groups
            mean the whole backbone.
        groups_per_epoch: groups added per epoch when `schedule` is None.
        verbose: print a line when the trainable set changes.

    Example:

    >>> model.fit(train_ds, epochs=4, callbacks=[tfxfer.callbacks.GradualUnfreezing()])
    """

    def __init__(self, schedule=None, groups_per_epoch=1, verbose=1):
        super().__init__()
        if schedule is not None and not (callable(schedule) or isinstance(schedule, (list, tuple))):
            raise TypeError(
                "schedule must be None, a list of group counts per epoch, or "
                f"a callable epoch -> group count; got {schedule!r}."
            )
        if isinstance(schedule, (list, tuple)) and not schedule:
            raise ValueError("schedule must not be an empty list.")
        if not isinstance(groups_per_epoch, int) or groups_per_epoch < 1:
            raise ValueError(f"groups_per_epoch must be a positive integer, got {groups_per_epoch!r}.")
        self.schedule = schedule
        self.groups_per_epoch = groups_per_epoch
        self.verbose = verbose
        self.history = []

    def top_groups(self, epoch):
        """How many top groups train in `epoch` (before capping)."""
        if self.schedule is None:
            count = epoch * self.groups_per_epoch
        elif callable(self.schedule):
            count = self.schedule(epoch)
        else:
            count = self.schedule[min(epoch, len(self.schedule) - 1)]
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise ValueError(
                f"GradualUnfreezing: the schedule gave {count!r} for epoch "
                f"{epoch}; it must give a whole number of groups >= 0."
            )
        return count

    def prepare(self, model):
        """Called by `TransferModel.fit` before training starts."""
        if not hasattr(model, "build_optimizer_for_all_weights"):
            raise TypeError(
                "GradualUnfreezing works with tfxfer.TransferModel, which can "
                "train a changing set of weights in one fit."
            )
        model.build_optimizer_for_all_weights()

    def on_epoch_begin(self, epoch, logs=None):
        model = self.model
        total = len(layer_groups(model.backbone))
        count = min(self.top_groups(epoch), total)
        state = False if count == 0 else (True if count == total else count)
        self.history.append(count)
        if state == model.trainable_backbone:
            return
        model.set_trainable_backbone(state, recompile=False)
        # The compiled step captured the old trainable set: trace it again.
        model.make_train_function(force=True)
        if self.verbose:
            print(f"\nGradualUnfreezing: epoch {epoch + 1}: {model.trainability_report()}")
