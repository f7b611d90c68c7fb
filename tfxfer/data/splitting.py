"""Seeded, stratified train/validation splits."""

import random

from tfxfer.data.data_report import DataError


def stratified_split(items, fraction, seed):
    """Splits `(example, label)` items, holding out `fraction` of each class.

    Example:

    >>> train, validation = stratified_split([("a", 0), ("b", 0), ("c", 1), ("d", 1)], 0.5, 0)
    >>> len(validation)
    2
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation_split must be in (0, 1), got {fraction!r}.")
    by_label = {}
    for item in items:
        by_label.setdefault(item[1], []).append(item)
    rng = random.Random(seed)
    train, validation = [], []
    for label in sorted(by_label):
        group = by_label[label][:]
        rng.shuffle(group)
        # Every class keeps at least one training example.
        cut = min(len(group) - 1, max(1, round(len(group) * fraction))) if len(group) > 1 else 0
        validation.extend(group[:cut])
        train.extend(group[cut:])
    return train, validation


def check_batches(train_size, batch_size, drop_remainder):
    """A training split must fill at least one batch when remainders drop."""
    if drop_remainder and train_size < batch_size:
        raise DataError(
            f"The training split has {train_size} examples, fewer than one batch "
            f"of {batch_size}, and drop_remainder=True would leave nothing; use a "
            "smaller batch_size."
        )
