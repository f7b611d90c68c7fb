"""Matching evaluation labels to a model's classes by name, never by position."""

import numpy as np

from tfxfer.data.data_report import DataError


def label_mapping(data_names, model_names, data_source="the data"):
    """An array mapping the data's label ids to the model's class ids, by name.

    The data may hold a subset of the model's classes; a class the model
    does not know is an error that lists both sets.

    Example:

    >>> label_mapping(["bees"], ["ants", "bees"]).tolist()
    [1]
    """
    data_names = [str(name) for name in data_names]
    if model_names is None:
        raise ValueError(
            "The model has no class names, so its outputs cannot be matched to the labels "
            f"of {data_source} by name. Build it with class_names=[...] (in output order) "
            "and save it again."
        )
    model_names = [str(name) for name in model_names]
    index = {name: i for i, name in enumerate(model_names)}
    unknown = [name for name in data_names if name not in index]
    if unknown:
        folded = {name.casefold(): name for name in model_names}
        hints = [f"'{name}' vs '{folded[name.casefold()]}'" for name in unknown if name.casefold() in folded]
        raise DataError(
            f"The classes of {data_source} {data_names} do not match the model's classes "
            f"{model_names}: {unknown} unknown to the model"
            + (f" (names differ in case: {', '.join(hints)})" if hints else "")
            + ". Labels are matched by name: rename the folders or labels to the model's "
            "class names (a subset is fine)."
        )
    return np.array([index[name] for name in data_names], dtype=np.int64)
