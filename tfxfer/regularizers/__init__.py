"""Source-parameter regularizers: fine-tuning that stays close to w⁰.

Pass one to `TransferModel(..., regularizer=...)`; the model's `train_step`
adds its penalty to the task loss (scaled like the loss under
`tf.distribute`, in float32 under mixed precision) and logs it as
`regularization_loss`, beside `task_loss`.

Example:

>>> regularizer = tfxfer.regularizers.L2SP(alpha=0.01, beta=0.01) + tfxfer.regularizers.BSS(k=1)
"""

from tfxfer.regularizers.bss import BSS
from tfxfer.regularizers.by_name import REGULARIZER_NAMES, regularizer_from_name
from tfxfer.regularizers.co_tuning import CoTuning
from tfxfer.regularizers.cosine_sp import CosineSP
from tfxfer.regularizers.delta import DELTA
from tfxfer.regularizers.l2 import L2
from tfxfer.regularizers.l2_sp import L2SP
from tfxfer.regularizers.orthogonal_sp import OrthogonalSP
from tfxfer.regularizers.source_regularizer import (
    CompositeRegularizer,
    SourceRegularizer,
    weight_kind,
)

__all__ = [
    "BSS",
    "CoTuning",
    "CompositeRegularizer",
    "CosineSP",
    "DELTA",
    "L2",
    "L2SP",
    "OrthogonalSP",
    "REGULARIZER_NAMES",
    "SourceRegularizer",
    "regularizer_from_name",
    "weight_kind",
]
