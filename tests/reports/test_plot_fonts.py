"""Issue 24, item 14: class names outside the default font do not flood stderr with glyph warnings."""

import warnings

from matplotlib import font_manager
from matplotlib.ft2font import FT2Font

from tfxfer.reports import plot_confusion_matrix, plot_training_curves


def _glyph_warnings(draw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        draw()
    return [str(w.message) for w in caught if "missing from font" in str(w.message)]


def test_cjk_and_emoji_class_names_draw_without_glyph_warnings(tmp_path):
    names = ["猫", "犬", "🐱"]
    assert not _glyph_warnings(
        lambda: plot_confusion_matrix([[1, 0, 0], [0, 1, 0], [0, 0, 1]], names, tmp_path / "a.png")
    )
    history = {"loss": [0.5, 0.4], "accuracy": [0.6, 0.7]}
    assert not _glyph_warnings(lambda: plot_training_curves(history, tmp_path / "b.png", title="猫 vs 犬 🐱"))


def test_an_installed_font_that_has_the_characters_is_used():
    from tfxfer.reports.figure_files import fonts_covering

    def has(font, character):
        return ord(character) in FT2Font(font_manager.findfont(font)).get_charmap()

    # ᶁ is in matplotlib's STIX fonts but not in DejaVu Sans, its default.
    (found,) = fonts_covering("ᶁ")
    assert has(found, "ᶁ")
    assert fonts_covering("plain ascii") == []  # nothing missing: nothing changes
    # A CJK font where one is installed, else none (and the warning is silenced).
    assert all(has(font, "猫") for font in fonts_covering("猫"))


def test_names_no_installed_font_can_draw_become_class_numbers_with_a_note(tmp_path):
    from tfxfer.reports.figure_files import drawable, drawable_labels

    # U+10FFFD (private use) is in no font: it would be a box.
    labels, note = drawable_labels(["ants", "\U0010fffd"])
    assert labels == ["ants", "#1"] and "#1" in note and "report.md" in note
    assert drawable("ants") and not drawable("\U0010fffd")
    assert drawable_labels(["ants", "bees"]) == (["ants", "bees"], None)
    plot_confusion_matrix([[1, 0], [0, 1]], ["ants", "\U0010fffd"], tmp_path / "c.png")
    assert (tmp_path / "c.png").stat().st_size > 0
