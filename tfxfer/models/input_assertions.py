"""Input checks that raise at once on eager values and assert inside a graph, and the errors they become.

`required(value, ok, message, examples)` raises a `ValueError` when `ok` is
false on eager values; in a `tf.data` pipeline or a traced function it puts
`value` behind an assertion whose message is marked, and
`readable_errors()` turns the `InvalidArgumentError` that assertion raises
into the same `ValueError`, without TensorFlow's stack.

Example:

>>> import tensorflow as tf
>>> required(tf.constant([1, 2]), tf.constant(True), "labels are wrong", None).numpy()
array([1, 2], dtype=int32)
"""

import codecs
import contextlib
import re

import tensorflow as tf

_MARK = "<<tfxfer-input>>"
_MARKED = re.compile(re.escape(_MARK) + "(.*?)" + re.escape(_MARK), re.DOTALL)
_EXAMPLES = 5


def required(value, ok, message, examples, after=""):
    """`value` when `ok`: eagerly, a `ValueError` otherwise; in a graph, `value` behind an assertion.

    The message is `message`, a few of `examples` (the offending values, or
    None), then `after`.
    """
    if tf.executing_eagerly():
        if not bool(ok):
            shown = "" if examples is None else f": {_examples(examples).numpy().decode()}"
            raise ValueError(f"{message}{shown}{after}.")
        return value
    parts = [_MARK, message]
    if examples is not None:
        parts += [": ", _examples(examples)]
    parts += [after + ".", _MARK]
    assertion = tf.debugging.Assert(ok, [tf.strings.join(parts)])
    with tf.control_dependencies([assertion]):
        return tf.identity(value)


def _examples(values):
    """A few of `values` as one string: `['moths']` or `[0.5, 3]`."""
    values = tf.reshape(values, [-1])[:_EXAMPLES]
    if values.dtype == tf.string:
        text = tf.strings.join(["'", values, "'"])
    elif values.dtype.is_floating:
        text = tf.strings.regex_replace(tf.strings.as_string(values, shortest=True), r"\.0$", "")
    else:
        text = tf.strings.as_string(values)
    return tf.strings.join(["[", tf.strings.reduce_join(text, separator=", "), "]"])


def _unescaped(text):
    """The message as written: TensorFlow C-escapes an assertion's data."""
    try:
        return codecs.escape_decode(text.encode("utf-8"))[0].decode("utf-8", "replace")
    except ValueError:
        return text


@contextlib.contextmanager
def readable_errors():
    """Turns a failed input check of a dataset's pipeline into the `ValueError` it stands for."""
    try:
        yield
    except tf.errors.InvalidArgumentError as error:
        found = _MARKED.search(str(error))
        if found is None:
            raise
        raise ValueError(_unescaped(found.group(1))) from None


def shown_shape(shape):
    """A shape as a message shows it: `(32, 10)`."""
    return tuple(shape.as_list()) if isinstance(shape, tf.TensorShape) else tuple(shape)
