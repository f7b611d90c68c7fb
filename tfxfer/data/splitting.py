"""Seeded, stratified train/validation splits."""

import random

from tfxfer.data.data_report import DataError
from tfxfer.option_errors import escaped


def stratified_split(items, fraction, seed, class_names=None):
    """Splits `(example, label)` items, holding out `fraction` of each class.

    Every class keeps at least one training example, so classes of one
    example hold none out; a split that comes out empty is a `DataError`
    naming `validation_split` and the examples per class (`class_names`
    names them, label i being `class_names[i]`).

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
    if not train or not validation:
        counts = {class_names[label] if class_names else label: len(by_label[label]) for label in sorted(by_label)}
        shown = ", ".join(f"{name!r}: {count}" for name, count in list(counts.items())[:10])
        shown += ", ..." if len(counts) > 10 else ""
        why = (
            "there are no examples to split"
            if not items
            else "every class has a single example, which it keeps for training"
        )
        raise DataError(
            f"{{split}} holds out no examples: {escaped(why)} (examples per class: {{{{{escaped(shown)}}}}}). "
            "Give classes two examples or more, or a separate validation set.",
            split=(f"validation_split={fraction}", f"--validation-split {fraction}"),
        )
    return train, validation


def check_batches(train_size, batch_size, drop_remainder):
    """A training split must fill at least one batch when remainders drop."""
    if drop_remainder and train_size < batch_size:
        raise DataError(
            f"The training split has {train_size} examples, fewer than one batch "
            f"of {batch_size}, and drop_remainder=True would leave nothing; use a "
            "smaller batch_size."
        )
