"""Quốc ngữ readings of Nôm / Hán-Nôm characters (resources/nom_readings.tsv), and search
by reading with or without diacritics. No Qt here."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from pathlib import Path


def fold(text: str) -> str:
    """Lower case without diacritics: 'Trời' -> 'troi', 'đá' -> 'da'."""
    text = text.lower().replace("đ", "d")
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


class Readings:
    """char -> readings, and the reverse index for search."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self._exact: dict[str, set[str]] = {}
        self._folded: dict[str, set[str]] = {}
        for char, readings in table.items():
            for r in readings:
                self._exact.setdefault(unicodedata.normalize("NFC", r.lower()), set()).add(char)
                self._folded.setdefault(fold(r), set()).add(char)

    @classmethod
    def load(cls, path: Path) -> Readings:
        """Read the TSV; a missing or unreadable file gives an empty table (no readings
        shown), never an error at start-up."""
        table: dict[str, list[str]] = {}
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except OSError:
            return cls({})
        for line in lines:
            if line.startswith("#") or not line.strip():
                continue
            parts = line.split("\t")
            if len(parts) >= 3:
                table[parts[1]] = parts[2].split()
        return cls(table)

    def of(self, char: str) -> list[str]:
        return self.table.get(char, [])

    def chars_for(self, query: str) -> set[str]:
        """Characters read as ``query``: with diacritics typed, they must match; without,
        any tone or mark matches."""
        q = unicodedata.normalize("NFC", query.strip().lower())
        if not q:
            return set()
        if fold(q) != q:
            return set(self._exact.get(q, set()))
        return set(self._folded.get(q, set()))

    def matches(self, query: str, name: str, char: str) -> bool:
        """Does a class (name, char) match what the user typed: its character, part of its
        name, or one of its character's readings?"""
        return self.matcher(query)(name, char)

    def matcher(self, query: str) -> Callable[..., bool]:
        """:meth:`matches` for one query, prepared once (a list of 13,000 classes is
        filtered at every key): ``match(name, char, folded_name=None)``."""
        q = query.strip()
        if not q:
            return lambda name, char, folded_name=None: True
        folded, chars = fold(q), self.chars_for(q)

        def match(name: str, char: str, folded_name: str | None = None) -> bool:
            if char and (q == char or char in chars):
                return True
            return folded in (fold(name) if folded_name is None else folded_name)
        return match
