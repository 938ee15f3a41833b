"""Few-shot assisted annotation: sessions of unlabelled glyphs, saved as you go. No Qt here.

A session is a folder under ``<data dir>/annotations/``:

    session.json   the items (glyph file, source image, box, the model's proposal, the
                   decision and label), and the undo history; rewritten atomically after
                   every decision, so closing the app mid-way loses nothing
    glyphs/        one PNG per item: a copy of each loaded image, or a box cut from a page

Export writes a labelled data set the trainer reads (``--dataset folder``): one folder per
label of PNGs, and ``manifest.csv`` (file, label, source image, box, decision).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from nomgui.classset import atomic_write, safe_folder_name
from nomgui.safepath import UnsafePathError, check_name, inside, is_regular_file

SESSION_FILE = "session.json"
SCHEMA = 1
PENDING = "pending"
NOT_A_GLYPH = "not a glyph"  # a box of noise (a stain, a fragment): decided, never labelled
DECISIONS = ("accepted", "corrected", "skipped", NOT_A_GLYPH)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


class AnnotationError(RuntimeError):
    """A session cannot be created, opened or written; the message is for the user."""


@dataclass
class Item:
    """One glyph to label."""

    id: str
    file: str  # inside the session's glyphs/ folder
    source: str  # the image it came from (a file, or the page it was cut from)
    box: list[int] | None = None  # x, y, w, h in the source page, for cut glyphs
    proposals: list[list[Any]] = field(default_factory=list)  # [[label, p], ...] best first
    decision: str = PENDING  # pending | accepted | corrected | skipped | not a glyph
    label: str = ""
    in_classset: bool = False  # already added to the class set as an example
    problem: str = ""  # why the model could not propose anything (e.g. an empty image)

    @property
    def confidence(self) -> float:
        return float(self.proposals[0][1]) if self.proposals else 0.0


def _item(folder: Path, raw: object) -> Item:
    """One item of session.json, its names checked to stay inside the session's folder."""
    if not isinstance(raw, dict):
        raise TypeError(f"{raw!r:.60} is not an object")
    item = Item(**raw)
    check_name(item.id, "glyph id")
    inside(folder / "glyphs", item.file, what="glyph file")
    if item.decision not in (PENDING, *DECISIONS):
        raise ValueError(f"unknown decision {item.decision!r}")
    if not isinstance(item.proposals, list) or not isinstance(item.label, str):
        raise TypeError(f"glyph {item.id}: malformed proposals or label")
    return item


class Session:
    """An annotation session bound to its folder; every change is written at once."""

    def __init__(self, folder: Path, name: str, items: list[Item],
                 history: list[dict[str, Any]], created: float) -> None:
        self.folder, self.name, self.items, self.history = folder, name, items, history
        self.created = created
        self.warnings: list[str] = []  # problems found when opening (refused entries)

    # -- files -----------------------------------------------------------------------------
    @classmethod
    def create(cls, folder: Path, name: str) -> Session:
        if (folder / SESSION_FILE).exists():
            raise AnnotationError(f"an annotation session already exists in {folder}")
        (folder / "glyphs").mkdir(parents=True, exist_ok=True)
        s = cls(folder, name, [], [], time.time())
        s.save()
        return s

    @classmethod
    def open(cls, folder: Path) -> Session:
        try:
            data = json.loads((folder / SESSION_FILE).read_text(encoding="utf-8"))
            if data.get("schema") != SCHEMA:
                raise AnnotationError(f"{folder.name}: session format {data.get('schema')} "
                                      f"is not this nomgui's ({SCHEMA})")
            if not isinstance(data["items"], list):
                raise TypeError("'items' is not a list")
            items, refused, reasons = [], [], []
            for raw in data["items"]:
                try:
                    items.append(_item(folder, raw))
                except (UnsafePathError, ValueError, KeyError, TypeError) as exc:
                    refused.append(raw)
                    reasons.append(str(exc))
            history = data.get("history", [])
            # Undo steps of another shape would fail at Ctrl+Z: only well-formed ones stay.
            history = [h for h in (history if isinstance(history, list) else [])
                       if isinstance(h, dict) and isinstance(h.get("id"), str)
                       and h.get("decision") in (PENDING, *DECISIONS)
                       and isinstance(h.get("label"), str)]
            session = cls(folder, str(data["name"]), items, history, float(data["created"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise AnnotationError(f"the annotation session in {folder} cannot be read "
                                  f"({exc}); its glyph files are kept in {folder / 'glyphs'}"
                                  ) from exc
        if refused:
            # Kept aside, not dropped: a shared session may point outside its folder.
            aside = folder / f"session.refused-{time.strftime('%Y%m%d-%H%M%S')}.json"
            try:
                atomic_write(aside, json.dumps(refused, ensure_ascii=False, indent=1,
                                               default=repr).encode("utf-8"))
                kept = f"kept aside in {aside.name}"
            except OSError as exc:
                kept = f"not kept aside ({exc.strerror or exc}); session.json still has them"
            session.warnings.append(f"{len(refused)} glyph entr"
                                    f"{'y was' if len(refused) == 1 else 'ies were'} refused "
                                    f"({reasons[0]}), {kept}")
        return session

    def save(self) -> None:
        atomic_write(self.folder / SESSION_FILE, json.dumps({
            "schema": SCHEMA, "name": self.name, "created": self.created,
            "items": [asdict(i) for i in self.items], "history": self.history[-500:]},
            ensure_ascii=False, indent=1).encode("utf-8"))

    def path(self, item: Item) -> Path:
        """The item's glyph file, always inside the session's glyphs/ folder."""
        try:
            return inside(self.folder / "glyphs", item.file, what="glyph file")
        except UnsafePathError as exc:
            raise AnnotationError(str(exc)) from exc

    # -- adding glyphs ---------------------------------------------------------------------
    def _next_id(self) -> str:
        return f"g{len(self.items) + 1:05d}"

    def add_images(self, paths: list[Path]) -> list[str]:
        """Copy each image in as an item (as PNG). Returns messages for files skipped."""
        problems = []
        for path in paths:
            if not is_regular_file(path):  # a FIFO would block here until written to
                problems.append(f"{Path(path).name}: not a regular file")
                continue
            try:
                with Image.open(path) as img:
                    img.load()
                    rgba = img.convert("RGBA")
            except (OSError, UnidentifiedImageError, ValueError) as exc:
                problems.append(f"{path.name}: not an image ({exc.__class__.__name__})")
                continue
            item = Item(self._next_id(), "", str(path))
            item.file = f"{item.id}.png"
            rgba.save(self.path(item))
            self.items.append(item)
        self.save()
        return problems

    def add_folder(self, folder: Path) -> list[str]:
        files = sorted(p for p in Path(folder).rglob("*")
                       if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise AnnotationError(f"{folder} holds no images")
        return self.add_images(files)

    def add_boxes(self, page: Path, boxes: list[tuple[int, int, int, int]]) -> int:
        """Cut the boxes (x, y, w, h) out of the page image; each becomes an item."""
        with Image.open(page) as img:
            gray = img.convert("L")
        for x, y, w, h in boxes:
            item = Item(self._next_id(), "", str(page), box=[int(x), int(y), int(w), int(h)])
            item.file = f"{item.id}.png"
            gray.crop((x, y, x + w, y + h)).save(self.path(item))
            self.items.append(item)
        self.save()
        return len(boxes)

    # -- the model's proposals and the user's decisions ------------------------------------
    def set_proposals(self, proposals: dict[str, list[list[Any]]],
                      problems: dict[str, str] | None = None) -> None:
        for item in self.items:
            if item.id in proposals:
                item.proposals = [[str(lab), float(p)] for lab, p in proposals[item.id]]
                item.problem = ""
            elif problems and item.id in problems:
                item.proposals, item.problem = [], problems[item.id]
        self.save()

    def queue(self) -> list[Item]:
        """Pending items, least confident first (where the model needs a person most);
        those without a proposal (yet, or ever: an empty image) last."""
        return sorted((i for i in self.items if i.decision == PENDING),
                      key=lambda i: (not i.proposals, i.confidence, i.id))

    def get(self, item_id: str) -> Item:
        for item in self.items:
            if item.id == item_id:
                return item
        raise KeyError(item_id)

    def decide(self, item_id: str, decision: str, label: str = "") -> Item:
        """Accept the proposal, correct it to ``label``, or skip. Undoable."""
        if decision not in DECISIONS:
            raise ValueError(f"unknown decision {decision!r}")
        item = self.get(item_id)
        if item.in_classset:
            raise AnnotationError("this glyph is already an example in the class set; "
                                  "remove it there first")
        if decision == "accepted":
            if not item.proposals:
                raise AnnotationError("there is no proposal to accept yet")
            label = str(item.proposals[0][0])
        if decision == "corrected":
            label = label.strip()
            if not label:
                raise AnnotationError("type or pick the right label")
            if item.proposals and label == item.proposals[0][0]:
                decision = "accepted"
        before = (item.decision, item.label)
        self.history.append({"id": item.id, "decision": item.decision, "label": item.label})
        item.decision, item.label = decision, (label if decision in ("accepted", "corrected")
                                               else "")

        def rollback() -> None:
            self.history.pop()
            item.decision, item.label = before
        self._commit("the decision", rollback)
        return item

    def _commit(self, what: str, rollback) -> None:
        """Save; if it cannot be written (read-only, full disk), ``rollback()`` the change
        in memory and say so: the window shows only what is on disk."""
        try:
            self.save()
        except OSError as exc:
            rollback()
            raise AnnotationError(f"{what} was not saved: {exc.strerror or exc}") from exc

    def undo(self) -> Item | None:
        """Take back the last decision; returns the item it concerned."""
        while self.history:
            last = self.history.pop()
            try:
                item = self.get(last["id"])
            except KeyError:
                continue
            if item.in_classset:
                self.history.append(last)
                raise AnnotationError("the last decision's glyph is already in the class "
                                      "set; remove it there first")
            before = (item.decision, item.label)
            item.decision, item.label = last["decision"], last["label"]

            def rollback(item=item, last=last, before=before) -> None:
                item.decision, item.label = before
                self.history.append(last)
            self._commit("undoing the decision", rollback)
            return item
        return None

    def labelled(self) -> list[Item]:
        return [i for i in self.items if i.decision in ("accepted", "corrected") and i.label]

    def counts(self) -> dict[str, int]:
        out = {PENDING: 0, **{d: 0 for d in DECISIONS}}
        for i in self.items:
            out[i.decision] += 1
        return out

    # -- export ----------------------------------------------------------------------------
    def export(self, target: Path) -> int:
        """Class folders of PNGs plus manifest.csv; returns the number of glyphs written.
        ``target`` must be empty or new; it is written beside and moved in whole."""
        target = Path(target)
        if target.exists() and any(target.iterdir()):
            raise AnnotationError(f"{target} is not empty; choose a new folder")
        items = self.labelled()
        if not items:
            raise AnnotationError("nothing is labelled yet")
        tmp = target.with_name(target.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        folders: dict[str, str] = {}
        with (tmp / "manifest.csv").open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["file", "label", "source_image", "box", "decision"])
            for item in items:
                if item.label not in folders:
                    base = safe_folder_name(item.label) or "class"
                    name, n = base, 1
                    while name in folders.values():
                        n += 1
                        name = f"{base}_{n}"
                    folders[item.label] = name
                rel = f"{folders[item.label]}/{item.id}.png"
                (tmp / folders[item.label]).mkdir(exist_ok=True)
                shutil.copyfile(self.path(item), tmp / rel)
                box = " ".join(str(v) for v in item.box) if item.box else ""
                w.writerow([rel, item.label, item.source, box, item.decision])
        if target.exists():
            target.rmdir()
        os.replace(tmp, target)
        return len(items)


class SessionStore:
    """All annotation sessions under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def list(self) -> list[tuple[Path, str]]:
        out = []
        if self.root.is_dir():
            # A link to a folder elsewhere is not a session of this store.
            for sub in sorted(p for p in self.root.iterdir()
                              if p.is_dir() and not p.is_symlink()):
                try:
                    name = json.loads((sub / SESSION_FILE).read_text(encoding="utf-8"))["name"]
                except (OSError, ValueError, KeyError, TypeError):
                    name = f"{sub.name} (unreadable)"
                out.append((sub, name))
        return out

    def create(self, name: str) -> Session:
        base = safe_folder_name(name) or "session"
        folder, n = self.root / base, 1
        while folder.exists():
            n += 1
            folder = self.root / f"{base}_{n}"
        return Session.create(folder, name)


def segment_page(gray: np.ndarray, min_size: int = 6, order: str = "rows"
                 ) -> list[tuple[int, int, int, int]]:
    """Glyph boxes (x, y, w, h) on a page of dark ink on light paper, in reading order.

    Kept for existing callers: the cutter is ``nomgui.pages.cut_page`` (Nôm pages want
    ``order="columns-rtl"``: vertical columns, right to left); the default here is still
    horizontal rows, left to right, as before.
    """
    from nomgui.pages import cut_page

    return cut_page(gray, order=order, min_size=min_size)
