"""`load_model`: a saved `.keras` model back, with errors that say what to do."""

import pathlib


def load_model(filepath, *, hub_handles=None, compile=True):
    """Loads a `.keras` file saved from a `TransferModel` (or any Keras model).

    Plain `keras.models.load_model` works as well after `import tfxfer`;
    this adds `hub_handles` for TF Hub modules that have moved since the
    model was saved, and clear errors for missing or foreign files.

    Args:
        filepath: the `.keras` file.
        hub_handles: `{handle recorded in the file: where the module is now}`.
        compile: restore the training configuration too.

    Example:

    >>> model = tfxfer.load_model("runs/ants_bees-20261123-101500/checkpoints/best.keras")
    >>> model.class_names
    ['ants', 'bees']
    """
    import keras

    from tfxfer.backbones.hub_module import relocated_hub_modules
    from tfxfer.registration import register_keras_objects

    register_keras_objects()
    path = pathlib.Path(filepath).expanduser()
    if path.suffix != ".keras":
        raise ValueError(f"{path} is not a .keras model file (the name must end in .keras).")
    if not path.is_file():
        raise FileNotFoundError(f"Model file not found: {path} (absolute: {path.resolve()}).")
    with relocated_hub_modules(hub_handles):
        try:
            return keras.saving.load_model(str(path), compile=compile)
        except FileNotFoundError:
            raise
        except (ValueError, OSError, TypeError) as error:
            raise ValueError(f"{path} could not be loaded as a Keras model: {error}") from None
