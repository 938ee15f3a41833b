from __future__ import annotations

from pathlib import Path

from nomgui.readings import Readings, fold

RESOURCES = Path(__file__).resolve().parents[2] / "resources"


def test_fold():
    assert fold("Trời") == "troi" and fold("ĐÁ") == "da" and fold("người") == "nguoi"


def test_search_with_and_without_diacritics():
    r = Readings({"𡗶": ["trời"], "𤾓": ["trăm"], "田": ["điền", "ruộng"]})
    assert r.chars_for("trời") == {"𡗶"} and r.chars_for("troi") == {"𡗶"}
    assert r.chars_for("trơi") == set()  # a typed mark must match
    assert r.chars_for("dien") == {"田"} and r.chars_for("Ruộng") == {"田"}
    assert r.matches("troi", "heaven", "𡗶") and r.matches("𡗶", "x", "𡗶")
    assert r.matches("hea", "heaven", "𡗶") and not r.matches("tram", "heaven", "𡗶")


def test_bundled_table():
    r = Readings.load(RESOURCES / "nom_readings.tsv")
    assert len(r.table) > 8000
    assert "người" in r.of("𠊛")
    assert "𠊛" in r.chars_for("nguoi")
    assert Readings.load(RESOURCES / "missing.tsv").table == {}
