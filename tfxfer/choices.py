"""The names a user can choose from and the default rates, one constant each.

Kept free of TensorFlow imports so that the CLI can build its `--help` from
them quickly; the registries that implement each choice check against them.
"""

RECIPE_NAMES = ("linear_probe", "fine_tune", "two_phase", "gradual")
REGULARIZER_NAMES = ("none", "l2", "l2_sp", "cosine_sp", "orthogonal_sp", "bss", "l2_sp+bss", "delta")
STRATEGY_NAMES = ("auto", "default", "mirrored", "multi_worker", "tpu", "tpu_rehearsal")
MIXED_PRECISION_NAMES = ("auto", "off", "mixed_float16", "mixed_bfloat16")

# Default learning rates, used by every recipe and the CLI alike.
# A new head on a frozen backbone (linear probe, first phase of two_phase):
HEAD_LEARNING_RATE = 1e-3
# Pretrained weights being fine-tuned: small steps, or they forget.
FINE_TUNING_LEARNING_RATE = 1e-4
