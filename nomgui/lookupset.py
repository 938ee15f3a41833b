"""The built-in class set "Nôm: all code points" and the lookup's notes. No Qt here.

The set's classes are the code points of the Nôm vocabulary (``trainer.api.nom_vocabulary``,
read in the worker thread and handed over as plain (code point, character) pairs); its
supports are font renderings made and cached by the trainer (``Model.fit_lookup``). The
code points are fixed: no class can be made, renamed or deleted. What the user teaches it
is stored like any class set's examples, in its own folder under the data folder::

    lookup/nom-all/manifest.json              the classes that have examples, only
    lookup/nom-all/U+XXXX/<example>.png       the user's glyphs of that character
    lookup/notes.json                         transcription line and recent characters

so the writes are the class set's own (atomic, examples before the manifest, a damaged
manifest rebuilt from the files), and every example joins its character's renderings at
the next fit.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from nomgui.classset import (
    MANIFEST,
    SCHEMA_VERSION,
    ClassSet,
    ClassSetError,
    GlyphClass,
    atomic_write,
)
from nomgui.glyph import Glyph

LOOKUP_NAME = "Nôm: all code points"
LOOKUP_FOLDER = "nom-all"  # under <data>/lookup/
LOOKUP_MODELS = ("lookup-nom.pt", "protonet-nom.pt")  # preferred first
RECENT_MAX = 24
NOTES_SCHEMA = 1
READ_ONLY = ("The Nôm lookup's classes are the Unicode code points; they cannot be "
             "added, renamed or deleted. To teach it a glyph, highlight its character (find "
             "it by reading) and add the glyph to it, or Teach a candidate.")


def lookup_folder(data_dir: Path) -> Path:
    return Path(data_dir) / "lookup" / LOOKUP_FOLDER


def is_lookup_folder(folder: Path, data_dir: Path) -> bool:
    try:
        return Path(folder).resolve() == lookup_folder(data_dir).resolve()
    except OSError:
        return False


class LookupSet(ClassSet):
    """Every vocabulary code point as a class (id ``U+XXXX``, name and character the
    character itself, so its label is the character ``fit_lookup`` reports); examples
    are the user's, stored as a class set's are."""

    read_only_classes = True

    def __init__(self, folder: Path, classes: list[GlyphClass],
                 warnings: list[str] | None = None) -> None:
        super().__init__(folder, LOOKUP_NAME, classes, warnings)
        self._by_id = {c.id: c for c in classes}

    @classmethod
    def open_vocabulary(cls, folder: Path, vocabulary: Sequence[tuple[str, str]]
                        ) -> LookupSet:
        """The set over ``vocabulary`` [(code point, char)], with the examples stored in
        ``folder`` (made on first use). Examples of a code point no longer in the
        vocabulary stay on disk and in the manifest, and still join the fit under their
        character."""
        folder = Path(folder)
        try:
            if not (folder / MANIFEST).exists():
                ClassSet.create(folder, LOOKUP_NAME)
            stored = ClassSet.open(folder)  # repairs, recovery, refused entries
        except OSError as exc:
            raise ClassSetError(f"the Nôm lookup's folder {folder} cannot be used: "
                                f"{exc.strerror or exc}") from exc
        classes = [GlyphClass(cp, ch, ch) for cp, ch in vocabulary]
        by_id = {c.id: c for c in classes}
        for c in stored.classes:
            known = by_id.get(c.id)
            if known is not None:
                known.examples = list(c.examples)
            else:  # a code point gone from the vocabulary: kept, never dropped
                char = c.char or _char_of(c.id)
                extra = GlyphClass(c.id, char or c.name, char, list(c.examples))
                classes.append(extra)
                by_id[c.id] = extra
        return cls(folder, classes, stored.warnings)

    # -- lookups: 13,000 classes, so by index, not by scanning ----------------------------
    def get(self, class_id: str) -> GlyphClass:
        return self._by_id[class_id]

    def find_by_name(self, name: str) -> GlyphClass | None:
        cp = f"U+{ord(name):04X}" if len(name) == 1 else name
        return self._by_id.get(cp)

    def save(self) -> None:
        """The manifest lists only the classes with examples (not 13,000 empty ones)."""
        data = {"schema": SCHEMA_VERSION, "name": self.name, "builtin": "nom-lookup",
                "classes": [{"id": c.id, "name": c.name, "char": c.char,
                             "examples": c.examples} for c in self.classes if c.examples]}
        atomic_write(self.folder / MANIFEST,
                     json.dumps(data, ensure_ascii=False, indent=1).encode("utf-8"))

    def examples(self) -> list[tuple[str, Path]]:
        return [(c.label, self.example_path(c.id, e)) for c in self.classes if c.examples
                for e in c.examples]

    # -- the code points are fixed --------------------------------------------------------
    def add_class(self, name: str, char: str = "", examples: list[Glyph] | None = None
                  ) -> GlyphClass:
        raise ClassSetError(READ_ONLY)

    def rename_class(self, class_id: str, name: str, char: str | None = None) -> None:
        raise ClassSetError(READ_ONLY)

    def delete_class(self, class_id: str) -> None:
        raise ClassSetError(READ_ONLY)


def _char_of(codepoint: str) -> str:
    try:
        return chr(int(codepoint.removeprefix("U+"), 16))
    except (ValueError, OverflowError):
        return ""


@dataclass
class LookupNotes:
    """The transcription line and the recently accepted characters (newest first),
    written atomically at every change, so a killed app loses nothing."""

    path: Path
    transcription: str = ""
    recent: list[str] = field(default_factory=list)
    warning: str = ""  # a damaged file, kept aside

    @classmethod
    def load(cls, path: Path) -> LookupNotes:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            text = data.get("transcription", "")
            recent = data.get("recent", [])
            if not isinstance(text, str) or not isinstance(recent, list):
                raise ValueError("unexpected contents")
            return cls(path, text, [str(r) for r in recent if isinstance(r, str) and r]
                       [:RECENT_MAX])
        except FileNotFoundError:
            return cls(path)
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
            try:
                path.replace(aside)
                where = f"; it was kept as {aside.name}"
            except OSError:
                where = ""
            return cls(path, warning=f"The lookup's transcription file could not be read "
                       f"({exc}){where}.")

    def save(self) -> None:
        data = {"schema": NOTES_SCHEMA, "transcription": self.transcription,
                "recent": self.recent}
        atomic_write(self.path, json.dumps(data, ensure_ascii=False, indent=1)
                     .encode("utf-8"))

    def remember(self, text: str) -> None:
        """``text`` (a character, or a class's name) becomes the most recent, once."""
        text = text.strip()
        if not text:
            return
        if text in self.recent:
            self.recent.remove(text)
        self.recent.insert(0, text)
        del self.recent[RECENT_MAX:]
