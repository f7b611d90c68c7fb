"""Regularizers by name: the choices of `tfxfer train --regularizer`."""

from tfxfer.choices import CO_TUNING_TRADE_OFF, REGULARIZER_NAMES


def regularizer_from_name(name, alpha=0.01, beta=0.01, trade_off=CO_TUNING_TRADE_OFF):
    """The regularizer a name stands for (None for `"none"`).

    Example:

    >>> regularizer_from_name("l2_sp", alpha=0.1)
    L2SP(alpha=0.1, beta=0.01, include_bias=False, include_batchnorm=False)
    """
    from tfxfer import regularizers

    builders = {
        "none": lambda: None,
        "l2": lambda: regularizers.L2(alpha=alpha, beta=beta),
        "l2_sp": lambda: regularizers.L2SP(alpha=alpha, beta=beta),
        "cosine_sp": lambda: regularizers.CosineSP(alpha=alpha, beta=beta),
        "orthogonal_sp": lambda: regularizers.OrthogonalSP(alpha=alpha, beta=beta),
        "bss": lambda: regularizers.BSS(),
        "l2_sp+bss": lambda: regularizers.L2SP(alpha=alpha, beta=beta) + regularizers.BSS(),
        "delta": lambda: regularizers.DELTA(alpha=alpha, beta=beta),
        "co_tuning": lambda: regularizers.CoTuning(trade_off=trade_off, beta=beta),
        "l2_sp+co_tuning": lambda: regularizers.L2SP(alpha=alpha, beta=beta) + regularizers.CoTuning(trade_off),
    }
    assert set(builders) == set(REGULARIZER_NAMES)
    if name not in builders:
        raise ValueError(f"regularizer must be one of {REGULARIZER_NAMES}, got {name!r}.")
    return builders[name]()
