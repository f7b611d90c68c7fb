"""`TrainConfig`: every option of a training run, from a file, flags or Python."""

import dataclasses
import pathlib

from tfxfer.choices import (
    CO_TUNING_TRADE_OFF,
    FINE_TUNING_LEARNING_RATE,
    HEAD_LEARNING_RATE,
    LORA_LEARNING_RATE,
    MIXED_PRECISION_NAMES,
    RECIPE_NAMES,
    REGULARIZER_NAMES,
    STRATEGY_NAMES,
)
from tfxfer.runs.config_checks import MAX_IMAGE_SIDE, check_options, mix_or_auto, rate_or_auto

# How a data file is read: `tfxfer evaluate` takes these too.
EVALUATION_DATA_OPTIONS = ("data_format", "text_column", "label_column", "label_base", "encoding_errors", "on_bad_data")
PATH_OPTIONS = ("backbone", "preset", "preprocessor", "data", "validation_data", "source_classifier")


def _option(default, help, type=None, choices=None, nargs=None):
    return dataclasses.field(default=default, metadata={"help": help, "type": type, "choices": choices, "nargs": nargs})


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
        rate_or_auto,
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
    trade_off: float = _option(
        CO_TUNING_TRADE_OFF, "with --regularizer co_tuning: weight of the source classifier's term", float
    )
    source_classifier: str = _option(
        None,
        "with --regularizer co_tuning: the pretrained model's own classifier, a TF Hub classification module "
        "of the --backbone's network (e.g. efficientnet_lite0_classification beside ..._feature_vector)",
        str,
    )
    source_class_names: str = _option(
        None,
        "names of the source classes for the run report: a file with one name a line, or imagenet "
        "(ImageNet-2012 WordNet IDs) (default: their indices)",
        str,
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
        mix_or_auto,
    )
    beta: float = _option(0.01, "strength on the new head", float)
    batch_size: int = _option(32, "global batch size", int)
    mixed_precision: str = _option(
        "auto",
        "dtype policy (auto: the fastest format the hardware computes natively: bfloat16 on TPUs, on GPUs of "
        "compute capability 8.0+ and, for text models on a --preset, on CPUs with avx512_bf16 or AMX; float16 on "
        "GPUs of compute capability 7.x; else float32. off: float32)",
        str,
        MIXED_PRECISION_NAMES,
    )
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
        """Checks every option by type and range, coercing values given as text or lists (`config_checks`)."""
        check_options(self)

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


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


def option_fields():
    """The fields that become command-line flags and config-file keys."""
    return dataclasses.fields(TrainConfig)
