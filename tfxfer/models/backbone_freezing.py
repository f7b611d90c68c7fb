"""Freezing a `TransferModel`'s backbone, LoRA adapters and parameter counts (a `TransferModel` mixin).

The model's trainable set changes only here; after a change the model's
compile state decides whether the next `fit` recompiles
(`tfxfer.models.compile_state`).

Example:

>>> model.unfreeze(top=2)
>>> model.trainable_backbone
2
"""

import numpy as np

from tfxfer.freezing.layer_groups import layer_groups, named_backbone_weights
from tfxfer.freezing.trainability import set_backbone_trainable, trainability_report
from tfxfer.models.lora_adapters import (
    LoraFactors,
    check_lora_backbone,
    check_targets_reach_the_head,
    enable_lora,
    is_lora_factor,
    lora_target_layers,
    normalized_targets,
)


class BackboneFreezing:
    """`freeze_backbone`, `unfreeze`, `enable_lora` and what they report."""

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

    def trainability_report(self):
        """One line saying which backbone layer groups are trainable."""
        return trainability_report(self)
