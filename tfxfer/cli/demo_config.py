"""The embedded default job: EfficientNet-Lite0 fine-tuned on ants/bees, then exported."""

import os
import pathlib

MODULE = "models/tfhub/efficientnet_lite0_feature_vector"
IMAGES = "data/images/hymenoptera"
MODULE_URL = "https://tfhub.dev/tensorflow/efficientnet/lite0/feature-vector/2"
IMAGES_URL = "https://download.pytorch.org/tutorial/hymenoptera_data.zip"


def find_shared(shared=None):
    """The folder of local models and data: the argument, `$TFXFER_SHARED`,
    `../shared` from here, or `../shared` beside the tfxfer checkout."""

    def holds_both(folder):
        return (pathlib.Path(folder) / MODULE).is_dir() and (pathlib.Path(folder) / IMAGES).is_dir()

    if shared:
        if not holds_both(shared):
            raise FileNotFoundError(f"{shared} does not hold {MODULE} and {IMAGES} (see ../shared/DATA.md).")
        return pathlib.Path(shared).resolve()
    candidates = [
        os.environ.get("TFXFER_SHARED"),
        pathlib.Path.cwd().parent / "shared",
        pathlib.Path(__file__).resolve().parents[2].parent / "shared",
    ]
    for candidate in candidates:
        if candidate and holds_both(candidate):
            return pathlib.Path(candidate).resolve()
    return None


def demo_config(shared=None, epochs=None, runs_dir="runs", export_dir="saved_models"):
    """The `TrainConfig` of `tfxfer demo` (`make demo`).

    Offline it needs the local copies (see ../shared/DATA.md); without them it
    falls back to tfhub.dev and the PyTorch tutorial's download of the same
    images.

    Example:

    >>> config = demo_config("../shared")
    >>> config.recipe
    'two_phase'
    """
    from tfxfer.runs import TrainConfig

    root = find_shared(shared)
    if root is not None:
        backbone, data = str(root / MODULE), str(root / IMAGES)
    else:
        backbone, data = MODULE_URL, _download_images()
    return TrainConfig(
        name="ants_bees",
        backbone=backbone,
        data=data,
        recipe="two_phase",
        head_epochs=2,
        epochs=epochs or 2,
        unfreeze_top=3,
        head_learning_rate=1e-3,
        learning_rate=1e-4,
        regularizer="l2_sp",
        alpha=0.01,
        beta=0.01,
        dropout=0.2,
        batch_size=32,
        runs_dir=runs_dir,
        export_dir=export_dir,
    )


def _download_images():
    import keras

    try:
        archive = keras.utils.get_file("hymenoptera_data.zip", IMAGES_URL, extract=True)
    except Exception as error:  # network errors come in many types
        raise RuntimeError(
            "The demo needs EfficientNet-Lite0 and the ants/bees images: no local copy was found "
            f"(pass --shared or set TFXFER_SHARED) and downloading {IMAGES_URL} failed "
            f"({type(error).__name__}: {error})."
        ) from None
    folder = pathlib.Path(archive)
    found = [p for p in ([folder] + list(folder.rglob("hymenoptera_data"))) if (p / "train").is_dir()]
    if not found:
        raise RuntimeError(f"The download at {folder} has no hymenoptera_data/train folder.")
    return str(found[0])
