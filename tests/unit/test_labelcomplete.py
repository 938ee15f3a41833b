"""The label box's candidates (Qt-free): readings with or without diacritics, a character
by itself, class labels."""

from __future__ import annotations

from pathlib import Path

from nomgui.labelcomplete import LabelCompletions
from nomgui.readings import Readings

READINGS = Readings.load(Path(__file__).resolve().parents[2] / "resources" /
                         "nom_readings.tsv")


def test_readings_without_diacritics_offer_every_tone_exact_ones_first():
    c = LabelCompletions(READINGS)
    found = c.candidates("sau")
    chars = [x.char for x in found]
    assert "𡢐" in chars and "𦒹" in chars  # sau and sáu
    exact = [x for x in found if x.reading.lower() in ("sau", "sáu", "sâu", "sàu")]
    assert found[: len(exact)] == exact  # whole readings before longer ones
    assert all(x.reading for x in found)


def test_diacritics_typed_must_match_and_known_classes_come_first():
    c = LabelCompletions(READINGS)
    assert [x.char for x in c.candidates("sáu")] == ["𦒹"]
    plain = [x.char for x in c.candidates("sau")]
    known = [x.char for x in c.candidates("sau", labels=[plain[-1]])]
    assert known[0] == plain[-1]


def test_a_character_a_label_and_nothing():
    c = LabelCompletions(READINGS)
    first = c.candidates("𡢐")[0]
    assert first.char == "𡢐" and "sau" in first.readings and "𡢐" in first.text()
    assert c.candidates("a new", labels=["a new glyph"])[0].char == "a new glyph"
    assert c.candidates("   ") == []
    assert LabelCompletions(None).candidates("sau") == []
    assert len(c.candidates("a", limit=7)) == 7
