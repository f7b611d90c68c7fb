"""LoRA's own default learning rate (issue 24): the CLI, the recipes and compile("auto") agree."""

import keras
import pytest

from tfxfer.choices import FINE_TUNING_LEARNING_RATE, LORA_LEARNING_RATE
from tfxfer.cli.main import build_parser
from tfxfer.runs import load_config


def cli_config(*flags):
    """The `TrainConfig` that `tfxfer train FLAGS` would run with (parsed as the CLI does, not run)."""
    args = build_parser().parse_args(["train", "--preset", "some_preset", "--data", "texts.txt", *flags])
    overrides = {
        key: value
        for key, value in vars(args).items()
        if key not in ("command", "config", "quiet", "verbose", "resume")
    }
    return load_config(args.config, **overrides)


def test_lora_without_a_learning_rate_gets_the_lora_default():
    assert LORA_LEARNING_RATE != FINE_TUNING_LEARNING_RATE
    config = cli_config("--lora-rank", "8")
    assert config.learning_rate == LORA_LEARNING_RATE
    # config.yaml records the rate actually used, not "default".
    assert config.to_dict()["learning_rate"] == LORA_LEARNING_RATE
    assert cli_config().learning_rate == FINE_TUNING_LEARNING_RATE


@pytest.mark.parametrize("given", ["3e-4", "1e-4", "auto"])
def test_an_explicit_learning_rate_still_wins_with_lora(given):
    config = cli_config("--lora-rank", "8", "--learning-rate", given)
    assert config.learning_rate == (given if given == "auto" else float(given))


def test_a_config_file_with_lora_rank_gets_the_lora_default(tmp_path):
    file = tmp_path / "run.yaml"
    file.write_text("preset: some_preset\ndata: texts.txt\nlora_rank: 4\n")
    assert load_config(file).learning_rate == LORA_LEARNING_RATE
    file.write_text("preset: some_preset\ndata: texts.txt\nlora_rank: 4\nlearning_rate: 2e-4\n")
    assert load_config(file).learning_rate == 2e-4


def test_the_flag_help_names_both_defaults():
    help_text = " ".join(build_parser()._subparsers._group_actions[0].choices["train"].format_help().split())
    assert f"{LORA_LEARNING_RATE:g} with --lora-rank" in help_text
    assert f"default: {FINE_TUNING_LEARNING_RATE:g}" in help_text


def tiny_lora_model():
    import tfxfer
    from tests.conftest import WORDS, tiny_bert

    keras.utils.set_random_seed(0)
    backbone, preprocessor = tiny_bert(WORDS[2:], sequence_length=8, max_sequence_length=16)
    return tfxfer.TransferModel(backbone, 2, preprocessor=preprocessor)


def test_compile_auto_and_the_recipe_default_follow_lora(monkeypatch):
    import importlib

    fine_tune_module = importlib.import_module("tfxfer.recipes.fine_tune")  # the package exports the function

    model = tiny_lora_model()
    model.unfreeze()
    model.compile()
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(FINE_TUNING_LEARNING_RATE)
    model.enable_lora(rank=2)
    model.compile()
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(LORA_LEARNING_RATE)

    # The fine_tune / two_phase recipes take the same default; stop before any training step.
    peaks = []

    def recorded(learning_rate, *args, **kwargs):
        peaks.append(learning_rate)
        raise StopIteration

    monkeypatch.setattr(fine_tune_module, "fine_tuning_rate", recorded)
    for rate in (None, 5e-5):
        with pytest.raises(StopIteration):
            fine_tune_module.fine_tune(
                model, ["good film"] * 4, [1, 0, 1, 0], epochs=1, **({} if rate is None else {"learning_rate": rate})
            )
    assert peaks == [LORA_LEARNING_RATE, 5e-5]
