"""Exporting a run's model for TF Serving and checking the export in a fresh process."""

import pathlib

VERIFY_EXAMPLES = 8


def export_run_model(model, config, data):
    """Exports for TF Serving and checks the export in a fresh process.

    Example:

    >>> export_run_model(model, config, data)["path"]
    'saved_models/ants_bees/1'
    """
    from tfxfer.export import export_for_serving

    path = export_for_serving(model, pathlib.Path(config.export_dir) / config.run_name)
    return {"path": path, **verify_on_examples(model, path, data)}


def verify_on_examples(model, path, data):
    """`verify_export` on a few raw validation (else training) examples."""
    from tfxfer.export import verify_export

    samples, _ = data.raw_inputs("validation", limit=VERIFY_EXAMPLES)
    if not samples:
        samples, _ = data.raw_inputs("train", limit=VERIFY_EXAMPLES)
    if not samples:
        return {"max_abs_difference": None, "verified_examples": 0}
    check = verify_export(path, samples, model)
    return {"max_abs_difference": check["max_abs_difference"], "verified_examples": check["examples"]}
