"""What the annotation window's label box offers as the user types: characters by their
quốc ngữ reading (with or without diacritics: ``sau`` or ``sáu``), a character by itself,
and class labels. No Qt here."""

from __future__ import annotations

import bisect
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from nomgui.readings import Readings, fold


@dataclass(frozen=True)
class Candidate:
    char: str  # what labels the glyph: a character, or a class label
    reading: str  # the reading that matched ("" for a class label matched by name)
    readings: tuple[str, ...]  # all readings of the character, for the list

    def text(self) -> str:
        said = " · ".join(self.readings[:6])
        return f"{self.char}    {said}" if said else self.char


class LabelCompletions:
    """Candidates for a typed prefix, best first: exact readings before longer ones,
    characters of the class set before the others, then by reading and code point."""

    def __init__(self, readings: Readings | None) -> None:
        self.readings = readings or Readings({})
        pairs = sorted({(r, c) for c, rs in self.readings.table.items() for r in rs})
        # (folded reading, NFC lower reading, char), sorted for prefix search
        self._index = sorted((fold(r), unicodedata.normalize("NFC", r.lower()), c)
                             for r, c in pairs)

    def candidates(self, typed: str, labels: Sequence[str] = (), limit: int = 40
                   ) -> list[Candidate]:
        q = unicodedata.normalize("NFC", typed.strip().lower())
        if not q:
            return []
        known = set(labels)
        out: dict[tuple[str, str], tuple[tuple, Candidate]] = {}

        def add(rank: tuple, char: str, reading: str) -> None:
            key = (char, reading)
            cand = Candidate(char, reading, tuple(self.readings.of(char)))
            if key not in out or rank < out[key][0]:
                out[key] = (rank, cand)

        if len(typed.strip()) == 1 and not typed.strip().isascii():  # a character itself
            add((0, 0, 0, "", 0), typed.strip(), "")
        folded, exact_marks = fold(q), fold(q) != q
        lo = bisect.bisect_left(self._index, (folded,))
        for f, r, c in self._index[lo:]:
            if not f.startswith(folded):
                break
            if exact_marks and not r.startswith(q):
                continue  # diacritics typed: they must match
            add((1 if f != folded else 0, int(c not in known), len(r), r, ord(c[0])), c, r)
            if len(out) > 20 * limit:
                break
        for label in known:
            if fold(label).startswith(folded) and (len(label) > 1 or label.isascii()):
                add((0, 0, len(label), label, 0), label, "")
        ranked = sorted(out.values(), key=lambda rc: rc[0])
        return [c for _r, c in ranked[:limit]]
