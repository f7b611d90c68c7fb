"""What kind of raw input a model takes, read off its preprocessor."""

IMAGE = "image"
TEXT = "text"


def preprocessor_modality(preprocessor):
    """`"image"` for an `ImagePreprocessor`, `"text"` for other preprocessors, else None.

    Example:

    >>> preprocessor_modality(None) is None
    True
    """
    if preprocessor is None:
        return None
    from tfxfer.preprocessing.image_preprocessor import ImagePreprocessor

    return IMAGE if isinstance(preprocessor, ImagePreprocessor) else TEXT
