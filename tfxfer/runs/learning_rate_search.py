"""`--learning-rate auto` and `tfxfer lr-find`: the learning-rate finder on a run's model and data."""

import json
import pathlib

from tfxfer.recipes.recipe import recipe_named
from tfxfer.utils.atomic_files import write_text_atomically

FINDER_STEPS = 100


def find_fine_tuning_rate(model, config, train_data, steps=FINDER_STEPS, start=1e-7, end=1.0):
    """The finder's curve for the rate the config's recipe trains with.

    The backbone is as that training has it: unfrozen (fine-tuning's
    `--learning-rate`), or frozen for `linear_probe`, whose only rate is
    the head's (`--head-learning-rate`). The model's weights and trainable
    state are as before afterwards.
    """
    from tfxfer.recipes import lr_find

    state = model.trainable_backbone
    if recipe_named(config.recipe).trains_backbone:
        model.unfreeze(config.unfreeze_top)
    else:
        model.freeze_backbone()
    try:
        return lr_find(model, train_data, steps=steps, start=start, end=end)
    finally:
        model.set_trainable_backbone(state)


def write_learning_rate_curve(curve, folder, title):
    """`lr_find.png` and `lr_find.json` in `folder` (each written atomically); returns the PNG's path."""
    from tfxfer.reports import plot_learning_rate_curve

    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    png = plot_learning_rate_curve(curve, folder / "lr_find.png", title=title)
    write_text_atomically(folder / "lr_find.json", json.dumps(curve.as_dict(), indent=2))
    return png


def lr_find_run(config, output_dir=None, steps=FINDER_STEPS, verbose=1):
    """`tfxfer lr-find`: builds the run's model and data, runs the finder, writes the curve.

    Nothing trains for real: the finder works on a copy of the weights.

    Args:
        config: a `TrainConfig` (as for `tfxfer train`).
        output_dir: where `lr_find.png` and `lr_find.json` go (each written
            atomically); default a new folder `<name>-lr-find-<time>` under
            `config.runs_dir`, beside the runs.
        steps: how many rates to try (one training step each).
        verbose: 0 silent, 1 messages.

    Returns:
        The curve as a dict (rates, losses, smoothed losses, suggestion).

    Example:

    >>> lr_find_run(TrainConfig(preset="bert_tiny_en_uncased", data="reviews.csv"))["suggestion"]
    """
    import keras

    from tfxfer.distribute import select_strategy
    from tfxfer.runs.progress import speaker
    from tfxfer.runs.run_data import load_run_data
    from tfxfer.runs.run_model import build_run_model

    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 5:
        from tfxfer.option_errors import OptionValueError

        raise OptionValueError(
            f"{{steps}} must be a whole number of at least 5, got {steps!r}.", steps=("steps", "--steps")
        )
    from tfxfer.runs.output_folders import check_output_folder
    from tfxfer.runs.run_folder import new_stamped_folder

    if output_dir is None:
        check_output_folder(config.runs_dir, "runs_dir")  # before anything slow
    else:
        check_output_folder(output_dir, "output_dir", spelling=("output_dir", "--output"))
    say = speaker(verbose)
    keras.utils.set_random_seed(config.seed)
    choice = select_strategy(config.strategy)
    say(f"Loading data from {config.data} ...")
    data = load_run_data(config, drop_remainder=choice.fixed_shapes)
    with choice.strategy.scope():
        say(f"Building the model on {config.backbone or config.preset} ...")
        model = build_run_model(config, data)
        say(f"Trying {steps} learning rates from 1e-7 to 1, one training step each ...")
        curve = find_fine_tuning_rate(model, config, data.train, steps=steps)
    if output_dir is None:
        output_dir = new_stamped_folder(config.runs_dir, f"{config.run_name}-lr-find")
    png = write_learning_rate_curve(curve, output_dir, title=f"{config.run_name}: learning-rate finder")
    say(f"Suggested learning rate: {curve.suggestion:.2e} (the steepest fall of the loss); curve in {png}.")
    if curve.caveat:
        say(f"Careful: {curve.caveat}")
        return curve.as_dict()
    if recipe_named(config.recipe).trains_backbone:
        say(f"Use it with: tfxfer train ... --learning-rate {curve.suggestion:.2e}  (or --learning-rate auto)")
    else:
        say(f"Use it with: tfxfer train ... --recipe {config.recipe} --head-learning-rate {curve.suggestion:.2e}")
    return curve.as_dict()
