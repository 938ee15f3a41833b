"""The personal few-shot class set: a plain model plus its on-disk store. No Qt here.

On disk (under the user data folder)::

    classsets/<set id>/manifest.json          {"schema": 1, "name": ..., "classes": [...]}
    classsets/<set id>/<class id>/<example>.png   dark ink on white, as drawn or loaded

Every write is atomic (temp file + rename) and examples are written before the manifest
that lists them, so a kill at any moment leaves either the old or the new state. On load,
a damaged manifest is moved aside and the set is rebuilt from the example files, and
example files the manifest does not list are taken back in: no drawing is ever lost.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from nomgui.glyph import Glyph, GlyphLoadError, glyph_from_bytes, load_glyph_file

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"


class ClassSetError(RuntimeError):
    """A class set cannot be opened or written; the message is for the user."""


@dataclass
class GlyphClass:
    id: str
    name: str
    char: str = ""
    examples: list[str] = field(default_factory=list)  # file names inside the class folder

    @property
    def label(self) -> str:
        """What the recogniser reports: the name, with the character when there is one."""
        return f"{self.char} {self.name}" if self.char and self.char != self.name else self.name


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a kill leaves the old file or the new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; these are ordinary user files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def safe_folder_name(name: str) -> str:
    cleaned = re.sub(r'[\\/:*?"<>|\x00-\x1f]', "_", name).strip(" .")
    return cleaned or "class"


class ClassSet:
    """One class set, bound to its folder. Methods write through to disk at once."""

    def __init__(self, folder: Path, name: str, classes: list[GlyphClass],
                 warnings: list[str] | None = None) -> None:
        self.folder, self.name, self.classes = Path(folder), name, classes
        self.warnings = warnings or []  # problems found (and repaired) when opening

    # -- creating and opening -----------------------------------------------------------
    @classmethod
    def create(cls, folder: Path, name: str) -> ClassSet:
        folder = Path(folder)
        if (folder / MANIFEST).exists():
            raise ClassSetError(f"a class set already exists in {folder}")
        folder.mkdir(parents=True, exist_ok=True)
        cs = cls(folder, name, [])
        cs.save()
        return cs

    @classmethod
    def open(cls, folder: Path) -> ClassSet:
        folder = Path(folder)
        if not folder.is_dir():
            raise ClassSetError(f"class set folder {folder} does not exist")
        warnings: list[str] = []
        path = folder / MANIFEST
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            if data.get("schema") != SCHEMA_VERSION:
                raise ClassSetError(
                    f"{folder.name} was written by another nomgui version (schema "
                    f"{data.get('schema')}, this one reads {SCHEMA_VERSION}); it was left as is")
            classes = [GlyphClass(str(c["id"]), str(c["name"]), str(c.get("char", "")),
                                  [str(e) for e in c.get("examples", [])])
                       for c in data.get("classes", [])]
            name = str(data.get("name", folder.name))
        except ClassSetError:
            raise
        except FileNotFoundError:
            classes, name = [], folder.name
            warnings.append("the class list (manifest.json) was missing; the classes were "
                            "rebuilt from the example files")
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            backup = folder / f"{MANIFEST}.damaged-{time.strftime('%Y%m%d-%H%M%S')}"
            shutil.copy2(path, backup)
            classes, name = [], folder.name
            warnings.append(f"the class list (manifest.json) was damaged ({exc}); it was kept "
                            f"as {backup.name} and the classes were rebuilt from the example "
                            "files, so class names may need fixing")
        cs = cls(folder, name, classes, warnings)
        if cs._recover_files() or warnings:
            cs.save()
        return cs

    def _recover_files(self) -> bool:
        """Take back example files the manifest does not list; drop listed files that are
        gone. Returns whether anything changed."""
        changed = False
        known = {c.id: c for c in self.classes}
        for c in self.classes:
            present = [e for e in c.examples if (self.folder / c.id / e).is_file()]
            if len(present) != len(c.examples):
                self.warnings.append(f"{len(c.examples) - len(present)} example file(s) of "
                                     f"'{c.name}' were missing")
                c.examples, changed = present, True
        for sub in sorted(p for p in self.folder.iterdir() if p.is_dir()):
            files = sorted(f.name for f in sub.glob("*.png") if not f.name.startswith("."))
            if not files:
                continue
            cls = known.get(sub.name)
            if cls is None:
                cls = GlyphClass(sub.name, sub.name)
                self.classes.append(cls)
                known[sub.name] = cls
            extra = [f for f in files if f not in cls.examples]
            if extra:
                cls.examples.extend(extra)
                changed = True
        return changed

    def save(self) -> None:
        data = {"schema": SCHEMA_VERSION, "name": self.name,
                "classes": [{"id": c.id, "name": c.name, "char": c.char,
                             "examples": c.examples} for c in self.classes]}
        atomic_write(self.folder / MANIFEST,
                      json.dumps(data, ensure_ascii=False, indent=1).encode("utf-8"))

    # -- editing -----------------------------------------------------------------------
    def get(self, class_id: str) -> GlyphClass:
        for c in self.classes:
            if c.id == class_id:
                return c
        raise KeyError(class_id)

    def find_by_name(self, name: str) -> GlyphClass | None:
        return next((c for c in self.classes if c.name == name), None)

    def add_class(self, name: str, char: str = "", examples: list[Glyph] | None = None
                  ) -> GlyphClass:
        name = name.strip()
        if not name:
            raise ClassSetError("a class needs a name")
        if self.find_by_name(name) is not None:
            raise ClassSetError(f"there is already a class named '{name}'")
        cls = GlyphClass(_new_id("c"), name, char.strip())
        (self.folder / cls.id).mkdir(parents=True, exist_ok=True)
        for g in examples or []:
            self._write_example(cls, g)
        self.classes.append(cls)
        self.save()
        return cls

    def _write_example(self, cls: GlyphClass, glyph: Glyph) -> str:
        if not glyph.has_ink():
            raise ClassSetError("the glyph is empty: draw or load something first")
        fname = f"{_new_id('e')}.png"
        atomic_write(self.folder / cls.id / fname, glyph.to_png())
        cls.examples.append(fname)
        return fname

    def add_example(self, class_id: str, glyph: Glyph) -> str:
        fname = self._write_example(self.get(class_id), glyph)
        self.save()
        return fname

    def remove_example(self, class_id: str, fname: str) -> None:
        cls = self.get(class_id)
        cls.examples.remove(fname)
        self.save()  # manifest first: a kill now leaves an orphan file, which is recovered
        (self.folder / cls.id / fname).unlink(missing_ok=True)

    def rename_class(self, class_id: str, name: str, char: str | None = None) -> None:
        name = name.strip()
        if not name:
            raise ClassSetError("a class needs a name")
        other = self.find_by_name(name)
        if other is not None and other.id != class_id:
            raise ClassSetError(f"there is already a class named '{name}'")
        cls = self.get(class_id)
        cls.name = name
        if char is not None:
            cls.char = char.strip()
        self.save()

    def delete_class(self, class_id: str) -> None:
        cls = self.get(class_id)
        self.classes.remove(cls)
        self.save()
        shutil.rmtree(self.folder / cls.id, ignore_errors=True)

    # -- reading ------------------------------------------------------------------------
    def example_path(self, class_id: str, fname: str) -> Path:
        return self.folder / class_id / fname

    def examples(self) -> list[tuple[str, Path]]:
        """(label, file) of every example: what the recogniser fits on."""
        return [(c.label, self.example_path(c.id, e)) for c in self.classes for e in c.examples]

    def usable_classes(self) -> int:
        return sum(1 for c in self.classes if c.examples)

    # -- zip import / export ------------------------------------------------------------
    def export_zip(self, path: Path) -> None:
        """One folder per class of PNGs (a data set the trainer reads), plus the manifest."""
        used: set[str] = set()
        tmp = Path(path).with_suffix(".zip.tmp")
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
            zf.writestr(MANIFEST, (self.folder / MANIFEST).read_bytes())
            for c in self.classes:
                folder = safe_folder_name(c.name)
                while folder in used:
                    folder += "_"
                used.add(folder)
                for e in c.examples:
                    zf.write(self.example_path(c.id, e), f"{folder}/{e}")
        os.replace(tmp, path)

    @classmethod
    def import_zip(cls, path: Path, folder: Path, name: str | None = None) -> ClassSet:
        """A new class set from a zip of class folders (ours or any data set's)."""
        try:
            zf = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise ClassSetError(f"{Path(path).name} is not a readable zip file") from exc
        with zf:
            meta: dict[str, dict] = {}
            if MANIFEST in zf.namelist():
                try:
                    data = json.loads(zf.read(MANIFEST))
                    meta = {safe_folder_name(c["name"]): c for c in data.get("classes", [])}
                except (ValueError, KeyError, TypeError):
                    meta = {}
            groups: dict[str, list[str]] = {}
            for member in zf.namelist():
                if member.endswith("/") or "/" not in member or "__MACOSX" in member:
                    continue
                groups.setdefault(member.rsplit("/", 1)[0], []).append(member)
            if not groups:
                raise ClassSetError(f"{Path(path).name} holds no class folders of images")
            cs = cls.create(folder, name or Path(path).stem)
            skipped = 0
            for cname, members in sorted(groups.items()):
                glyphs = []
                for m in sorted(members):
                    try:
                        glyphs.append(glyph_from_bytes(zf.read(m), m))
                    except GlyphLoadError:
                        skipped += 1
                if not glyphs:
                    continue
                info = meta.get(cname.split("/")[-1], {})
                label = str(info.get("name", cname))
                try:
                    cs.add_class(label, str(info.get("char", "")), glyphs)
                except ClassSetError as exc:
                    cs.warnings.append(str(exc))
            if skipped:
                cs.warnings.append(f"{skipped} file(s) in the zip were not images and were "
                                   "skipped")
        return cs


class ClassSetStore:
    """All class sets of the user, one folder each, under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def list(self) -> list[tuple[Path, str]]:
        out = []
        for sub in sorted(p for p in self.root.iterdir() if p.is_dir()):
            try:
                name = json.loads((sub / MANIFEST).read_text(encoding="utf-8"))["name"]
            except (OSError, ValueError, KeyError, TypeError):
                name = sub.name
            out.append((sub, str(name)))
        return out

    def new_folder(self, name: str) -> Path:
        base = safe_folder_name(name).lower().replace(" ", "-")
        folder = self.root / base
        n = 2
        while folder.exists():
            folder = self.root / f"{base}-{n}"
            n += 1
        return folder

    def create(self, name: str) -> ClassSet:
        return ClassSet.create(self.new_folder(name), name)

    def save_as(self, source: ClassSet, name: str) -> ClassSet:
        folder = self.new_folder(name)
        shutil.copytree(source.folder, folder)
        cs = ClassSet.open(folder)
        cs.name = name
        cs.save()
        return cs

    def import_folder_tree(self, tree: Path, name: str) -> ClassSet:
        """A class set from a folder of class folders of images (e.g. bundled samples)."""
        cs = self.create(name)
        for sub in sorted(p for p in Path(tree).iterdir() if p.is_dir()):
            glyphs = []
            for f in sorted(sub.iterdir()):
                try:
                    glyphs.append(load_glyph_file(f))
                except GlyphLoadError:
                    continue
            if glyphs:
                char = sub.name if len(sub.name) == 1 else ""
                cs.add_class(sub.name, char, glyphs)
        return cs


def example_image(path: Path) -> np.ndarray:
    """uint8 (H, W) of a stored example (for thumbnails)."""
    with Image.open(path) as img:
        return np.asarray(img.convert("L"), dtype=np.uint8)
