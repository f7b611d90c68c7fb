"""The names a user can choose from and the default rates, one constant each.

Kept free of TensorFlow imports so that the CLI can build its `--help` from
them quickly; the registries that implement each choice check against them.
"""

RECIPE_NAMES = ("linear_probe", "fine_tune", "two_phase", "gradual")
REGULARIZER_NAMES = (
    "none",
    "l2",
    "l2_sp",
    "cosine_sp",
    "orthogonal_sp",
    "bss",
    "l2_sp+bss",
    "delta",
    "co_tuning",
    "l2_sp+co_tuning",
)
# Co-Tuning's weight of the source term (You et al.; TLlib's default).
CO_TUNING_TRADE_OFF = 2.3
STRATEGY_NAMES = ("auto", "default", "mirrored", "multi_worker", "tpu", "tpu_rehearsal")
MIXED_PRECISION_NAMES = ("auto", "off", "mixed_float16", "mixed_bfloat16")

# Default learning rates, used by every recipe and the CLI alike.
# A new head on a frozen backbone (linear probe, first phase of two_phase):
HEAD_LEARNING_RATE = 1e-3
# Pretrained weights being fine-tuned: small steps, or they forget.
FINE_TUNING_LEARNING_RATE = 1e-4
# The fine-tuning phase with LoRA adapters (`--lora-rank`, `enable_lora`): the kernels stay frozen,
# and new rank-r factors (B starts at 0) with the head barely move at 1e-4 (issue 24; measured in
# docs/benchmarks.md, "LoRA's learning rate").
LORA_LEARNING_RATE = 3e-3


def fine_tuning_learning_rate(lora=False):
    """The default peak rate of a fine-tuning phase: `LORA_LEARNING_RATE` with LoRA adapters, else
    `FINE_TUNING_LEARNING_RATE`; the CLI, the recipes and `compile("auto")` all take it from here.

    >>> fine_tuning_learning_rate(), fine_tuning_learning_rate(lora=True)
    (0.0001, 0.003)
    """
    return LORA_LEARNING_RATE if lora else FINE_TUNING_LEARNING_RATE
