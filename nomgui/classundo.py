"""Undoable class-set edits: teach, add and remove examples, new, rename and delete class.

Each edit is done first, outside the undo stack, so that a failure (a read-only folder, a
name taken) reaches the user as a message and nothing is pushed. The command pushed
afterwards only knows how to undo and redo it, through the class set's own methods, so
undo restores the files as well as the window: a removed example's pixels are kept in
memory and written back, a deleted class comes back with its name, character and every
example. A class brought back gets a new id; :class:`IdMap` lets older commands find it.

An undo or redo that fails (the folder became read-only) reports through ``on_error`` and
marks the command obsolete, so the stack drops it instead of claiming a state that is not
on disk.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtGui import QUndoCommand

from nomgui.classset import ClassSet, ClassSetError
from nomgui.glyph import Glyph, GlyphLoadError, load_glyph_file

OnError = Callable[[str, str], None]  # (title, message)
OnChange = Callable[[str | None], None]  # class id to select, or None


class IdMap:
    """Class ids of one class set, old -> current, for classes deleted and brought back."""

    def __init__(self) -> None:
        self._alias: dict[str, str] = {}

    def __call__(self, class_id: str) -> str:
        seen = set()
        while class_id in self._alias and class_id not in seen:
            seen.add(class_id)
            class_id = self._alias[class_id]
        return class_id

    def moved(self, old: str, new: str) -> None:
        if old != new:
            self._alias[old] = new


def snapshot_examples(cs: ClassSet, class_id: str, fnames: list[str]) -> list[Glyph]:
    """The example files' pixels, read before they are removed (so undo can write them)."""
    return [load_glyph_file(cs.example_path(class_id, f)) for f in fnames]


class _ClassSetCommand(QUndoCommand):
    def __init__(self, text: str, cs: ClassSet, ids: IdMap, on_change: OnChange,
                 on_error: OnError) -> None:
        super().__init__(text)
        self.cs, self.ids, self.on_change, self.on_error = cs, ids, on_change, on_error
        self._first = True  # the edit itself was done before the push

    def redo(self) -> None:
        if self._first:
            self._first = False
            return
        self._guard(self._redo, "Redo")

    def undo(self) -> None:
        self._guard(self._undo, "Undo")

    def _guard(self, action: Callable[[], str | None], what: str) -> None:
        try:
            select = action()
        except (ClassSetError, GlyphLoadError, OSError, KeyError) as exc:
            self.setObsolete(True)  # the stack drops it: it no longer describes the disk
            self.on_error(what, f"{what} of '{self.text()}' failed, nothing was changed: "
                          f"{exc}")
            self.on_change(None)
            return
        self.on_change(select)

    def _redo(self) -> str | None:
        raise NotImplementedError

    def _undo(self) -> str | None:
        raise NotImplementedError


class AddExamples(_ClassSetCommand):
    """Glyphs added to a class (teach, add to class, several images at once)."""

    def __init__(self, cs: ClassSet, ids: IdMap, class_id: str, glyphs: list[Glyph],
                 fnames: list[str], on_change: OnChange, on_error: OnError,
                 text: str | None = None) -> None:
        name = cs.get(class_id).name
        super().__init__(text or f"add {len(glyphs)} example(s) to '{name}'", cs, ids,
                         on_change, on_error)
        self.class_id, self.glyphs, self.fnames = class_id, list(glyphs), list(fnames)

    def _undo(self) -> str | None:
        cid = self.ids(self.class_id)
        for f in reversed(self.fnames):
            self.cs.remove_example(cid, f)
        return cid

    def _redo(self) -> str | None:
        cid = self.ids(self.class_id)
        self.fnames = [self.cs.add_example(cid, g) for g in self.glyphs]
        return cid


class RemoveExample(_ClassSetCommand):
    def __init__(self, cs: ClassSet, ids: IdMap, class_id: str, fname: str, glyph: Glyph,
                 on_change: OnChange, on_error: OnError) -> None:
        super().__init__(f"remove an example of '{cs.get(class_id).name}'", cs, ids,
                         on_change, on_error)
        self.class_id, self.fname, self.glyph = class_id, fname, glyph

    def _undo(self) -> str | None:
        cid = self.ids(self.class_id)
        self.fname = self.cs.add_example(cid, self.glyph)
        return cid

    def _redo(self) -> str | None:
        cid = self.ids(self.class_id)
        self.cs.remove_example(cid, self.fname)
        return cid


class NewClass(_ClassSetCommand):
    """A class made with its first examples (new class from glyph, images as a class)."""

    def __init__(self, cs: ClassSet, ids: IdMap, class_id: str, glyphs: list[Glyph],
                 on_change: OnChange, on_error: OnError) -> None:
        cls = cs.get(class_id)
        super().__init__(f"new class '{cls.name}'", cs, ids, on_change, on_error)
        self.class_id, self.name, self.char, self.glyphs = class_id, cls.name, cls.char, glyphs

    def _undo(self) -> str | None:
        self.cs.delete_class(self.ids(self.class_id))
        return None

    def _redo(self) -> str | None:
        cls = self.cs.add_class(self.name, self.char, self.glyphs)
        self.ids.moved(self.ids(self.class_id), cls.id)
        return cls.id


class DeleteClass(_ClassSetCommand):
    """A deleted class: its name, character and every example are kept to bring it back."""

    def __init__(self, cs: ClassSet, ids: IdMap, class_id: str, name: str, char: str,
                 glyphs: list[Glyph], on_change: OnChange, on_error: OnError) -> None:
        super().__init__(f"delete class '{name}'", cs, ids, on_change, on_error)
        self.class_id, self.name, self.char, self.glyphs = class_id, name, char, glyphs

    def _undo(self) -> str | None:
        cls = self.cs.add_class(self.name, self.char, self.glyphs)
        self.ids.moved(self.ids(self.class_id), cls.id)
        return cls.id

    def _redo(self) -> str | None:
        self.cs.delete_class(self.ids(self.class_id))
        return None


class RenameClass(_ClassSetCommand):
    def __init__(self, cs: ClassSet, ids: IdMap, class_id: str, before: tuple[str, str],
                 after: tuple[str, str], on_change: OnChange, on_error: OnError) -> None:
        super().__init__(f"rename '{before[0]}' to '{after[0]}'", cs, ids, on_change, on_error)
        self.class_id, self.before, self.after = class_id, before, after

    def _undo(self) -> str | None:
        cid = self.ids(self.class_id)
        self.cs.rename_class(cid, *self.before)
        return cid

    def _redo(self) -> str | None:
        cid = self.ids(self.class_id)
        self.cs.rename_class(cid, *self.after)
        return cid


def example_glyph(cs: ClassSet, class_id: str, fname: str) -> Glyph:
    """One example's pixels (to keep before removing it)."""
    return load_glyph_file(Path(cs.example_path(class_id, fname)))
