"""`TrainConfig`'s checks: each option by type and range, then the rules between options.

Values given as text (a config file, the CLI) or lists are coerced here to
what the fields hold; every message names the option as the caller spelled
it (`tfxfer.option_errors`).

Example:

>>> rate_or_auto("AUTO"), rate_or_auto("1e-4")
('auto', 0.0001)
"""

import dataclasses
import math

from tfxfer.choices import CO_TUNING_TRADE_OFF, fine_tuning_learning_rate
from tfxfer.option_errors import OptionValueError, option
from tfxfer.runs.output_folders import check_plain_name

# Larger sides are almost always a typo (8192x8192x3 floats is 800 MB per image).
MAX_IMAGE_SIDE = 4096


def rate_or_auto(value):
    """A learning rate from a flag or file: a number, or "auto"."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    return float(value)


def mix_or_auto(value):
    """A WiSE-FT mix: "auto" or a number in [0, 1]."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    mix = float(value)
    if not 0.0 <= mix <= 1.0:
        raise ValueError(f"a mix must be in [0, 1], got {value!r}")
    return mix


def check_options(config):
    """Checks and coerces the options of `config` (a `TrainConfig`, from its `__post_init__`)."""
    if bool(config.backbone) == bool(config.preset):
        raise OptionValueError(
            "Give exactly one of {backbone} (a TF Hub handle or SavedModel path) and {preset} (a KerasHub preset).",
            backbone=option("backbone"),
            preset=option("preset"),
        )
    if not config.data:
        raise OptionValueError(
            "No data given: pass {data} (an image folder, a text file or tfds:NAME).", data=option("data")
        )
    if config.augment in (None, False):
        config.augment = "none"
    for field in dataclasses.fields(config):
        kind, value = field.metadata.get("type"), getattr(config, field.name)
        if value is None and field.default is not None:
            raise _bad(field.name, f"needs a value (default {_shown(field.default)})", value)
        if kind in (rate_or_auto, mix_or_auto) and value is not None:
            try:
                setattr(config, field.name, kind(value))
            except (TypeError, ValueError):
                problem = "must be auto or a number" + (" in [0, 1]" if kind is mix_or_auto else "")
                raise _bad(field.name, problem, value) from None
        if kind in (int, float) and field.metadata.get("nargs") is None and value is not None:
            setattr(config, field.name, _number(value, kind, field.name))
        if field.metadata.get("type") is None and value is not None and not isinstance(value, bool):
            raise _bad(field.name, "must be true or false", value)
        choices = field.metadata.get("choices")
        if choices and value not in choices:
            raise _bad(field.name, f"must be one of {', '.join(map(str, choices))}", value)
    if config.learning_rate is None:  # not given: the default of this kind of fine-tuning, recorded as such
        config.learning_rate = fine_tuning_learning_rate(lora=config.lora_rank is not None)
    for name in ("learning_rate", "head_learning_rate"):
        if name == "learning_rate" and config.learning_rate == "auto":
            continue
        if not 0 < getattr(config, name) < math.inf:
            raise _bad(name, "must be a positive number (e.g. 1e-4)", getattr(config, name))
    for name in ("alpha", "beta"):
        if not 0 <= getattr(config, name) < math.inf:
            raise _bad(name, "must be a number, 0 or more", getattr(config, name))
    if not 0 <= config.seed < 2**32:
        raise _bad("seed", "must be a whole number from 0 to 2**32 - 1", config.seed)
    if config.name is not None:
        config.name = str(config.name)
        check_plain_name(config.name)
    if not 0.0 <= config.dropout < 1.0:
        raise _bad("dropout", "must be in [0, 1)", config.dropout)
    for name in ("epochs", "batch_size", "steps_per_execution", "unfreeze_top", "sequence_length", "lora_rank"):
        if getattr(config, name) is not None and getattr(config, name) < 1:
            raise _bad(name, "must be at least 1", getattr(config, name))
    # The recipe's own checks (tfxfer.recipes imports TensorFlow: not at --help time).
    from tfxfer.recipes.recipe import recipe_named

    recipe_named(config.recipe).check_config(config)
    if config.lora_targets is not None and config.lora_rank is None:
        raise OptionValueError(
            "{lora_targets} chooses where LoRA adapters go; give {lora_rank} too.",
            lora_targets=option("lora_targets"),
            lora_rank=option("lora_rank"),
        )
    if config.delta_layers is not None and config.regularizer != "delta":
        raise OptionValueError(
            f"{{delta_layers}} applies to {{regularizer}} delta, not {config.regularizer!r}.",
            delta_layers=option("delta_layers"),
            regularizer=option("regularizer"),
        )
    co_tuning = config.regularizer in ("co_tuning", "l2_sp+co_tuning")
    if co_tuning and not config.source_classifier:
        raise OptionValueError(
            "{regularizer} " + config.regularizer + " trains the pretrained model's own classifier beside the "
            "new head: give {source_classifier} (a TF Hub classification module of the {backbone}'s network), "
            "or choose another {regularizer}.",
            regularizer=option("regularizer"),
            source_classifier=option("source_classifier"),
            backbone=option("backbone"),
        )
    for name in ("source_classifier", "source_class_names"):
        if getattr(config, name) is not None and not co_tuning:
            raise OptionValueError(
                f"{{{name}}} applies to {{regularizer}} co_tuning or l2_sp+co_tuning, not {config.regularizer!r}.",
                **{name: option(name)},
                regularizer=option("regularizer"),
            )
    if not 0 <= config.trade_off < math.inf:
        raise _bad("trade_off", "must be a number, 0 or more", config.trade_off)
    if config.trade_off != CO_TUNING_TRADE_OFF and not co_tuning:
        raise OptionValueError(
            f"{{trade_off}} weighs Co-Tuning's term: it applies to {{regularizer}} co_tuning or l2_sp+co_tuning, "
            f"not {config.regularizer!r}.",
            trade_off=option("trade_off"),
            regularizer=option("regularizer"),
        )
    if config.head_epochs < 0:
        raise _bad("head_epochs", "must be 0 or more", config.head_epochs)
    if config.layer_decay is not None and not 0.0 < config.layer_decay <= 1.0:
        raise _bad("layer_decay", "must be in (0, 1] (e.g. 0.8)", config.layer_decay)
    if config.validation_split is not None and not 0.0 < config.validation_split < 1.0:
        raise _bad("validation_split", "must be in (0, 1) (e.g. 0.2)", config.validation_split)
    config.image_size = _pair(config.image_size, int, "image_size", "224 224", square=True)
    config.value_range = _pair(config.value_range, float, "value_range", "-1 1")
    if min(config.image_size) < 1:
        raise _bad(
            "image_size", "must be two positive whole numbers (height width, e.g. 224 224)", list(config.image_size)
        )
    if max(config.image_size) > MAX_IMAGE_SIDE and not config.allow_large_images:
        raise OptionValueError(
            f"{{image_size}} {config.image_size[0]} {config.image_size[1]} is above {MAX_IMAGE_SIDE} pixels a side; "
            "pretrained backbones take 224 to 600. Pass {allow} if you mean it.",
            image_size=option("image_size"),
            allow=("allow_large_images=True", "--allow-large-images"),
        )
    if not config.value_range[0] < config.value_range[1]:
        raise _bad("value_range", "must be low < high (e.g. 0 1 or -1 1)", list(config.value_range))
    if config.class_names is not None:
        if isinstance(config.class_names, str) or len(set(map(str, config.class_names))) < 2:
            raise _bad("class_names", "must be at least two distinct names (e.g. neg pos)", config.class_names)
        config.class_names = [str(name) for name in config.class_names]


def _shown(value):
    return " ".join(map(str, value)) if isinstance(value, (tuple, list)) else value


def _bad(name, problem, value):
    return OptionValueError(f"{{name}} {problem}, got {value!r}.", name=option(name))


def _number(value, kind, name):
    if isinstance(value, bool):
        return _raise(_bad(name, "must be a number", value))
    try:
        number = kind(value)
    except (TypeError, ValueError):
        return _raise(_bad(name, "must be a whole number" if kind is int else "must be a number", value))
    if kind is int and number != float(value):
        return _raise(_bad(name, "must be a whole number", value))
    if kind is float and number != number:  # NaN
        return _raise(_bad(name, "must be a number", value))
    return number


def _raise(error):
    raise error


def _pair(value, kind, name, example, square=False):
    if square and isinstance(value, int) and not isinstance(value, bool):
        return (value, value)  # image_size: 64 in a config file means 64x64
    try:
        if isinstance(value, (str, bytes)):
            raise TypeError(value)  # "64" would otherwise read as 6 and 4
        first, second = (kind(v) for v in value)
        if kind is int and (first != float(list(value)[0]) or second != float(list(value)[1])):
            raise ValueError(value)
    except (TypeError, ValueError):
        raise OptionValueError(
            f"{{name}} takes two numbers (e.g. {example}), got {value!r}.", name=option(name)
        ) from None
    return (first, second)
