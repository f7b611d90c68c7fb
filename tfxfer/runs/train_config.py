"""`TrainConfig`: every option of a training run, from a file, flags or Python."""

import dataclasses
import json
import math
import pathlib

from tfxfer.choices import (
    FINE_TUNING_LEARNING_RATE,
    HEAD_LEARNING_RATE,
    LORA_LEARNING_RATE,
    MIXED_PRECISION_NAMES,
    RECIPE_NAMES,
    REGULARIZER_NAMES,
    STRATEGY_NAMES,
    fine_tuning_learning_rate,
)
from tfxfer.option_errors import OptionValueError, option
from tfxfer.runs.output_folders import check_plain_name

# Larger sides are almost always a typo (8192x8192x3 floats is 800 MB per image).
MAX_IMAGE_SIDE = 4096

# How a data file is read: `tfxfer evaluate` takes these too.
EVALUATION_DATA_OPTIONS = ("data_format", "text_column", "label_column", "label_base", "encoding_errors", "on_bad_data")
PATH_OPTIONS = ("backbone", "preset", "preprocessor", "data", "validation_data")


def _option(default, help, type=None, choices=None, nargs=None):
    return dataclasses.field(default=default, metadata={"help": help, "type": type, "choices": choices, "nargs": nargs})


def _rate_or_auto(value):
    """A learning rate from a flag or file: a number, or "auto"."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    return float(value)


def _mix_or_auto(value):
    """A WiSE-FT mix: "auto" or a number in [0, 1]."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    mix = float(value)
    if not 0.0 <= mix <= 1.0:
        raise ValueError(f"a mix must be in [0, 1], got {value!r}")
    return mix


@dataclasses.dataclass
class TrainConfig:
    """Options of `tfxfer train`; keys of a YAML/JSON config file have the same names.

    Example:

    >>> config = TrainConfig(backbone="../shared/models/tfhub/efficientnet_lite0_feature_vector",
    ...                      data="../shared/data/images/hymenoptera", epochs=2)
    """

    # What to train on.
    backbone: str = _option(None, "TF Hub handle, URL or local SavedModel directory", str)
    preset: str = _option(None, "KerasHub preset name, kaggle:// or hf:// handle, or local directory", str)
    preprocessor: str = _option(None, "TF Hub text preprocessor for a --backbone text encoder", str)
    signature: str = _option(None, "signature of a TF Hub module to call (default: the module itself)", str)
    output_key: str = _option(None, "the output of a TF Hub module's signature to use, when it has several", str)
    feature_key: str = _option(None, "the backbone output the head reads (e.g. pooled_output)", str)
    data: str = _option(None, "image folder, text file (CSV/TSV/'<label> <text>'), or tfds:NAME", str)
    validation_data: str = _option(None, "separate validation file or folder", str)
    validation_split: float = _option(None, "fraction held out when there is no validation split", float)
    text_column: str = _option(None, "text column of a CSV/TSV (name or index)", str)
    label_column: str = _option(None, "label column of a CSV/TSV (name or index)", str)
    data_format: str = _option("auto", "text file format", str, ("auto", "csv", "tsv", "label_text"))
    class_names: list = _option(
        None, "the classes of a text file, declared (other labels are bad data)", str, nargs="+"
    )
    label_base: int = _option(0, "the first integer label (AG News counts from 1)", int)
    encoding_errors: str = _option("strict", "bad UTF-8 in text files", str, ("strict", "replace"))
    on_bad_data: str = _option("error", "unreadable images / bad lines", str, ("error", "skip"))
    image_size: list = _option((224, 224), f"image height and width (1..{MAX_IMAGE_SIDE})", int, nargs=2)
    allow_large_images: bool = _option(False, f"allow --image-size above {MAX_IMAGE_SIDE}", None)
    value_range: list = _option((0.0, 1.0), "pixel range the backbone expects", float, nargs=2)
    augment: str = _option("default", "image augmentation", str, ("default", "randaugment", "none"))
    sequence_length: int = _option(None, "token sequence length for presets", int)
    length_bucketing: bool = _option(
        True, "pad text batches only to the smallest of a few lengths that fits them (off on TPUs)", None
    )
    # The model.
    pooling: str = _option("auto", "head pooling", str, ("auto", "avg", "max", "first", "masked_avg", "none"))
    dropout: float = _option(0.0, "dropout before the classifier", float)
    # How to train.
    recipe: str = _option("two_phase", "training recipe", str, RECIPE_NAMES)
    epochs: int = _option(3, "epochs (for two_phase: of the fine-tuning phase)", int)
    head_epochs: int = _option(1, "head-only epochs before fine-tuning (two_phase)", int)
    learning_rate: float = _option(
        None,
        "peak fine-tuning learning rate, or auto (the learning-rate finder's suggestion; see tfxfer "
        f"lr-find) (default: {FINE_TUNING_LEARNING_RATE:g}; {LORA_LEARNING_RATE:g} with --lora-rank, where the "
        "adapters barely move at the full fine-tuning rate; the run records the rate used)",
        _rate_or_auto,
    )
    head_learning_rate: float = _option(
        HEAD_LEARNING_RATE, "learning rate of the head-only phase / linear probe", float
    )
    cache_features: bool = _option(
        None,
        "train a frozen backbone's head on features computed once (linear probe, head phase); "
        "default: where the data allows (no image augmentation); true: asked for (refused with augmentation); "
        "false: never",
        None,
    )
    unfreeze_top: int = _option(None, "fine-tune only the top K layer groups", int)
    layer_decay: float = _option(None, "discriminative learning-rate decay per layer group", float)
    regularizer: str = _option("l2_sp", "regularizer toward the source weights", str, REGULARIZER_NAMES)
    alpha: float = _option(0.01, "strength on the pretrained weights", float)
    delta_layers: list = _option(
        None,
        "with --regularizer delta: backbone layers (KerasHub: e.g. transformer_layer_5) or TF Hub "
        "outputs whose feature maps stay near the source model's (default: the features the head reads)",
        str,
        nargs="+",
    )
    lora_rank: int = _option(
        None,
        "fine-tune through LoRA adapters of this rank instead of the backbone's weights "
        "(KerasHub presets; exports merge them)",
        int,
    )
    lora_targets: list = _option(
        None,
        "with --lora-rank: the layers (names or patterns) that get adapters (default: attention query and value)",
        str,
        nargs="+",
    )
    wise_ft: str = _option(
        None,
        "WiSE-FT after fine-tuning: mix the backbone with the pretrained one, (1-mix)*w0 + mix*w; "
        "auto picks mix on the validation split (curve in wise_ft.png), or give a mix in [0, 1]",
        _mix_or_auto,
    )
    beta: float = _option(0.01, "strength on the new head", float)
    batch_size: int = _option(32, "global batch size", int)
    mixed_precision: str = _option("auto", "dtype policy (auto: mixed_bfloat16 on TPU)", str, MIXED_PRECISION_NAMES)
    strategy: str = _option("auto", "distribution strategy", str, STRATEGY_NAMES)
    steps_per_execution: int = _option(None, "steps per compiled call (auto: 32 on TPU)", int)
    drop_remainder: bool = _option(None, "fixed training batch shapes (auto: on for TPU)", None)
    seed: int = _option(0, "seed for splits, shuffling and initialisation", int)
    # Where results go.
    name: str = _option(None, "run and export name (default: the data's name)", str)
    runs_dir: str = _option("runs", "folder for run folders", str)
    export_dir: str = _option("saved_models", "folder for TF Serving exports", str)
    export: bool = _option(True, "export for TF Serving after training", None)
    run_folder: str = _option(
        None,
        "a fixed run folder instead of runs_dir/<name>-<time>: started when new, resumed when "
        "unfinished (for jobs a cluster manager restarts with the same command)",
        str,
    )

    def __post_init__(self):
        self.validate()

    def validate(self):
        """Checks every option by type and range; messages name the option as the caller spelled it."""
        if bool(self.backbone) == bool(self.preset):
            raise OptionValueError(
                "Give exactly one of {backbone} (a TF Hub handle or SavedModel path) and {preset} (a KerasHub preset).",
                backbone=option("backbone"),
                preset=option("preset"),
            )
        if not self.data:
            raise OptionValueError(
                "No data given: pass {data} (an image folder, a text file or tfds:NAME).", data=option("data")
            )
        if self.augment in (None, False):
            self.augment = "none"
        for field in dataclasses.fields(self):
            kind, value = field.metadata.get("type"), getattr(self, field.name)
            if value is None and field.default is not None:
                raise _bad(field.name, f"needs a value (default {_shown(field.default)})", value)
            if kind in (_rate_or_auto, _mix_or_auto) and value is not None:
                try:
                    setattr(self, field.name, kind(value))
                except (TypeError, ValueError):
                    problem = "must be auto or a number" + (" in [0, 1]" if kind is _mix_or_auto else "")
                    raise _bad(field.name, problem, value) from None
            if kind in (int, float) and field.metadata.get("nargs") is None and value is not None:
                setattr(self, field.name, _number(value, kind, field.name))
            if field.metadata.get("type") is None and value is not None and not isinstance(value, bool):
                raise _bad(field.name, "must be true or false", value)
            choices = field.metadata.get("choices")
            if choices and value not in choices:
                raise _bad(field.name, f"must be one of {', '.join(map(str, choices))}", value)
        if self.learning_rate is None:  # not given: the default of this kind of fine-tuning, recorded as such
            self.learning_rate = fine_tuning_learning_rate(lora=self.lora_rank is not None)
        for name in ("learning_rate", "head_learning_rate"):
            if name == "learning_rate" and self.learning_rate == "auto":
                continue
            if not 0 < getattr(self, name) < math.inf:
                raise _bad(name, "must be a positive number (e.g. 1e-4)", getattr(self, name))
        for name in ("alpha", "beta"):
            if not 0 <= getattr(self, name) < math.inf:
                raise _bad(name, "must be a number, 0 or more", getattr(self, name))
        if not 0 <= self.seed < 2**32:
            raise _bad("seed", "must be a whole number from 0 to 2**32 - 1", self.seed)
        if self.name is not None:
            self.name = str(self.name)
            check_plain_name(self.name)
        if not 0.0 <= self.dropout < 1.0:
            raise _bad("dropout", "must be in [0, 1)", self.dropout)
        for name in ("epochs", "batch_size", "steps_per_execution", "unfreeze_top", "sequence_length", "lora_rank"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise _bad(name, "must be at least 1", getattr(self, name))
        # The recipe's own checks (tfxfer.recipes imports TensorFlow: not at --help time).
        from tfxfer.recipes.recipe import recipe_named

        recipe_named(self.recipe).check_config(self)
        if self.lora_targets is not None and self.lora_rank is None:
            raise OptionValueError(
                "{lora_targets} chooses where LoRA adapters go; give {lora_rank} too.",
                lora_targets=option("lora_targets"),
                lora_rank=option("lora_rank"),
            )
        if self.delta_layers is not None and self.regularizer != "delta":
            raise OptionValueError(
                f"{{delta_layers}} applies to {{regularizer}} delta, not {self.regularizer!r}.",
                delta_layers=option("delta_layers"),
                regularizer=option("regularizer"),
            )
        if self.head_epochs < 0:
            raise _bad("head_epochs", "must be 0 or more", self.head_epochs)
        if self.layer_decay is not None and not 0.0 < self.layer_decay <= 1.0:
            raise _bad("layer_decay", "must be in (0, 1] (e.g. 0.8)", self.layer_decay)
        if self.validation_split is not None and not 0.0 < self.validation_split < 1.0:
            raise _bad("validation_split", "must be in (0, 1) (e.g. 0.2)", self.validation_split)
        self.image_size = _pair(self.image_size, int, "image_size", "224 224", square=True)
        self.value_range = _pair(self.value_range, float, "value_range", "-1 1")
        if min(self.image_size) < 1:
            raise _bad(
                "image_size", "must be two positive whole numbers (height width, e.g. 224 224)", list(self.image_size)
            )
        if max(self.image_size) > MAX_IMAGE_SIDE and not self.allow_large_images:
            raise OptionValueError(
                f"{{image_size}} {self.image_size[0]} {self.image_size[1]} is above {MAX_IMAGE_SIDE} pixels a side; "
                "pretrained backbones take 224 to 600. Pass {allow} if you mean it.",
                image_size=option("image_size"),
                allow=("allow_large_images=True", "--allow-large-images"),
            )
        if not self.value_range[0] < self.value_range[1]:
            raise _bad("value_range", "must be low < high (e.g. 0 1 or -1 1)", list(self.value_range))
        if self.class_names is not None:
            if isinstance(self.class_names, str) or len(set(map(str, self.class_names))) < 2:
                raise _bad("class_names", "must be at least two distinct names (e.g. neg pos)", self.class_names)
            self.class_names = [str(name) for name in self.class_names]

    def to_dict(self, absolute_paths=False):
        """The options as plain values; `absolute_paths` makes local paths absolute,
        so a saved config means the same from any folder."""
        values = {field.name: _plain(getattr(self, field.name)) for field in dataclasses.fields(self)}
        if absolute_paths:
            for key in PATH_OPTIONS + ("runs_dir", "export_dir", "run_folder"):
                value = values[key]
                if isinstance(value, str) and "://" not in value and pathlib.Path(value).expanduser().exists():
                    values[key] = str(pathlib.Path(value).expanduser().resolve())
        return values

    @property
    def run_name(self):
        if self.name:
            return self.name
        source = self.data.split(":", 1)[1] if self.data.startswith("tfds:") else self.data
        return pathlib.Path(source.rstrip("/")).stem.replace(".", "_") or "run"


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


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


def option_fields():
    """The fields that become command-line flags and config-file keys."""
    return dataclasses.fields(TrainConfig)


def read_config_file(path):
    """A YAML or JSON config file as a dict with underscore keys."""
    file = pathlib.Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"Config file not found: {file}.")
    text = file.read_text()
    try:
        if file.suffix.lower() == ".json":
            values = json.loads(text)
        else:
            import yaml

            values = yaml.safe_load(text)
    except (json.JSONDecodeError, Exception) as error:  # yaml.YAMLError has no common base here
        raise ValueError(
            f"{file} is not valid {'JSON' if file.suffix == '.json' else 'YAML'}: {_parse_problem(error)}"
        ) from None
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ValueError(f"{file} must hold a mapping of option names to values, not {type(values).__name__}.")
    values = {str(key).replace("-", "_"): value for key, value in values.items()}
    known = {field.name for field in option_fields()}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{file}: unknown option(s) {', '.join(unknown)}. Known options: {', '.join(sorted(known))}.")
    return values


def _parse_problem(error):
    """A parser's error as one line with its line number."""
    mark = getattr(error, "problem_mark", None)
    if mark is not None:
        return f"{getattr(error, 'problem', None) or 'cannot parse'} at line {mark.line + 1}, column {mark.column + 1}"
    return " ".join(str(error).split())


def load_config(path=None, **overrides):
    """A `TrainConfig` from a config file, with `overrides` taking precedence.

    Relative paths in a config file are relative to the file's folder.

    Example:

    >>> config = load_config("examples/configs/ants_bees.yaml", epochs=1)
    """
    values = {}
    if path is not None:
        values = read_config_file(path)
        base = pathlib.Path(path).expanduser().resolve().parent
        for key in PATH_OPTIONS:
            if isinstance(values.get(key), str):
                values[key] = _relative_to(base, values[key])
    values.update({key: value for key, value in overrides.items() if value is not None})
    return TrainConfig(**values)


def _relative_to(base, value):
    if "://" in value or value.startswith("tfds:") or pathlib.Path(value).expanduser().is_absolute():
        return value
    candidate = base / value
    # A preset name like "bert_tiny_en_uncased" is not a path.
    return str(candidate) if candidate.exists() or "/" in value else value
