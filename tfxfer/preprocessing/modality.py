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


def data_modality(x):
    """`"text"` for strings, `"image"` for numbers, None when unknown, for `fit`-style `x`.

    Reads a `tf.data.Dataset`'s element spec (its inputs part) or the
    values of an array or list, without iterating data.

    Example:

    >>> data_modality(["a film"]), data_modality(np.zeros((1, 8, 8, 3)))
    ('text', 'image')
    """
    import numpy as np
    import tensorflow as tf

    if isinstance(x, tf.data.Dataset):
        spec = x.element_spec
        spec = spec[0] if isinstance(spec, tuple) else spec
        if not isinstance(spec, tf.TensorSpec):
            return None
        return TEXT if spec.dtype == tf.string else IMAGE if spec.dtype.is_floating or spec.dtype.is_integer else None
    if isinstance(x, tf.Tensor):
        return TEXT if x.dtype == tf.string else IMAGE
    if isinstance(x, (str, bytes)) or (isinstance(x, np.ndarray) and x.ndim == 0 and x.dtype.kind in "USO"):
        return TEXT  # one text
    sequence = isinstance(x, (list, tuple)) or (isinstance(x, np.ndarray) and x.ndim > 0)
    if sequence and len(x):
        kind = np.asarray(x[0]).dtype.kind
        return TEXT if kind in "USO" else IMAGE if kind in "fiub" else None
    return None
