"""Saving report figures: written atomically, so a reader never sees half a PNG.

Class names in any script: characters the default font lacks (CJK, emoji)
are drawn with an installed font that has them, and where none does,
matplotlib's "Glyph ... missing from font(s)" warning, one per character
and draw, is silenced (the character shows as a box).
"""

import functools
import warnings

from tfxfer.utils.atomic_files import replaced_atomically

# Fonts that cover everything only with placeholder boxes, or that FreeType cannot scale (colour bitmaps).
_NOT_FALLBACKS = ("Last Resort", "Color Emoji")


def save_figure_atomically(figure, path):
    """Lays out `figure`, writes it to `path` as a PNG (temporary name, then rename) and closes it.

    Example:

    >>> figure, axis = plt.subplots()
    >>> save_figure_atomically(figure, "curve.png")
    'curve.png'
    """
    import matplotlib.pyplot as plt

    try:
        _add_fallback_fonts(figure)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from font")
            figure.tight_layout()
            with replaced_atomically(path) as temporary:
                figure.savefig(temporary, dpi=110, format="png")
    finally:
        plt.close(figure)
    return str(path)


def fonts_covering(text):
    """Installed fonts (names) that have the characters of `text` the default font lacks; [] when it lacks none.

    Chosen greedily: the font with most of the missing characters first.
    Characters no installed font has are left out.

    Example:

    >>> fonts_covering("ants")
    []
    """
    from matplotlib import font_manager

    missing = {ord(c) for c in text if not c.isspace()} - _characters(
        font_manager.findfont(font_manager.FontProperties())
    )
    chosen = []
    while missing:
        best, covered = None, set()
        for entry in font_manager.fontManager.ttflist:
            if entry.name in chosen or any(word in entry.name for word in _NOT_FALLBACKS):
                continue
            has = missing & _characters(entry.fname)
            if len(has) > len(covered):
                best, covered = entry.name, has
        if best is None:
            break
        chosen.append(best)
        missing -= covered
    return chosen


def drawable(text):
    """Whether the installed fonts have every character of `text` (else it would be drawn as boxes).

    Example:

    >>> drawable("ants"), drawable("\U0010fffd")  # a private-use character: in no font
    (True, False)
    """
    from matplotlib import font_manager

    missing = {ord(c) for c in text if not c.isspace()} - _characters(
        font_manager.findfont(font_manager.FontProperties())
    )
    for name in fonts_covering(text):
        missing -= _characters(font_manager.findfont(font_manager.FontProperties(family=name)))
    return not missing


def drawable_labels(names):
    """`names` for a plot's ticks: a name no installed font can draw becomes `#<index>`, and a note says so.

    Returns `(labels, note)`, the note None when every name can be drawn.

    Example:

    >>> drawable_labels(["ants", "bees"])
    (['ants', 'bees'], None)
    """
    labels = [str(name) if drawable(str(name)) else f"#{index}" for index, name in enumerate(names)]
    replaced = [label for label, name in zip(labels, names) if label != str(name)]
    if not replaced:
        return labels, None
    return labels, (
        f"{', '.join(replaced)}: class numbers, for names no installed font can draw (their names are in "
        "report.md; install a font that has them, e.g. Noto Sans CJK, to see them here)"
    )


@functools.cache
def _characters(font_file):
    from matplotlib.ft2font import FT2Font

    try:
        return frozenset(FT2Font(font_file).get_charmap())
    except (OSError, RuntimeError, ValueError):
        return frozenset()


def _add_fallback_fonts(figure):
    """Each text with characters its font lacks gets fonts that have them, after its own."""
    from matplotlib.text import Text

    for text in figure.findobj(Text):
        content = text.get_text()
        if not content or content.isascii():
            continue
        fallbacks = fonts_covering(content)
        if fallbacks:
            families = list(text.get_fontfamily())
            text.set_fontfamily(families + [name for name in fallbacks if name not in families])
