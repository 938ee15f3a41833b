"""The personal few-shot class set: a plain model plus its on-disk store. No Qt here.

On disk (under the user data folder)::

    classsets/<set id>/manifest.json          {"schema": 1, "name": ..., "classes": [...]}
    classsets/<set id>/<class id>/<example>.png   dark ink on white, as drawn or loaded

Every write is atomic (temp file + rename) and examples are written before the manifest
that lists them, so a kill at any moment leaves either the old or the new state. On load,
a damaged manifest is moved aside and the set is rebuilt from the example files, and
example files the manifest does not list are taken back in: no drawing is ever lost.

Names read from a manifest are data, possibly from someone else's shared set: a class id
or example name that is not one plain file name inside the set's folder is refused (kept
aside in ``manifest.refused-*.json``, with a warning), never joined into a path. A change
that cannot be written (read-only folder, full disk) raises :class:`ClassSetError` and
leaves the in-memory set as it was, so the window only ever shows what is on disk.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import stat
import tempfile
import time
import uuid
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from nomgui.glyph import Glyph, GlyphLoadError, glyph_from_bytes, load_glyph_file
from nomgui.safepath import UnsafePathError, check_name, inside, is_regular_file

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
TRASH = ".trash-"  # a class folder being deleted: <set>/.trash-<class id>

# Zip import limits, checked on the zip's directory before any member is read (a 1 MB zip
# can declare a 1 GiB member) and again while reading (a header can lie).
ZIP_MAX_MEMBERS = 50_000
ZIP_MAX_MEMBER_BYTES = 32 * 2**20  # one glyph image
ZIP_MAX_TOTAL_BYTES = 1 * 2**30
ZIP_MAX_MANIFEST_BYTES = 8 * 2**20


class ClassSetError(RuntimeError):
    """A class set cannot be opened or written; the message is for the user."""


class ClassSetWriteError(ClassSetError):
    """A change could not be written (read-only folder, full disk); nothing was changed."""


def _write_error(exc: OSError, what: str) -> ClassSetWriteError:
    """The one-line message for a change that could not be written (read-only, full disk)."""
    reason = exc.strerror or exc.__class__.__name__
    where = f" ({exc.filename})" if exc.filename else ""
    return ClassSetWriteError(f"{what} was not saved: {reason}{where}")


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
    remove_stale_temps(path)


STALE_TEMP_S = 120  # no write takes this long: an older temp file is a kill's leftover


def remove_stale_temps(path: Path) -> None:
    """Remove temp files of ``path`` that a kill during an earlier write left behind
    (``.<name>.*.tmp`` older than :data:`STALE_TEMP_S`; a younger one may be another
    process's write in progress)."""
    now = time.time()
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        try:
            st = tmp.lstat()
            if stat.S_ISREG(st.st_mode) and now - st.st_mtime > STALE_TEMP_S:
                tmp.unlink()
        except OSError:
            continue  # gone meanwhile, or not ours to remove: the next write tries again


def _new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def safe_folder_name(name: str) -> str:
    cleaned = re.sub(r'[\\/:*?"<>|\x00-\x1f]', "_", name).strip(" .")
    return cleaned or "class"


class ClassSet:
    """One class set, bound to its folder. Methods write through to disk at once; a method
    that raises has changed nothing in memory (and nothing that matters on disk)."""

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
        existed = folder.exists()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            cs = cls(folder, name, [])
            cs.save()
        except OSError as exc:
            if not existed:
                shutil.rmtree(folder, ignore_errors=True)  # nothing of ours is in it yet
            raise _write_error(exc, f"the new class set '{name}'") from exc
        return cs

    @classmethod
    def open(cls, folder: Path) -> ClassSet:
        folder = Path(folder)
        if not folder.is_dir():
            raise ClassSetError(f"class set folder {folder} does not exist")
        warnings: list[str] = []
        refused: list[object] = []
        path = folder / MANIFEST
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            if data.get("schema") != SCHEMA_VERSION:
                raise ClassSetError(
                    f"{folder.name} was written by another nomgui version (schema "
                    f"{data.get('schema')}, this one reads {SCHEMA_VERSION}); it was left as is")
            entries = data.get("classes", [])
            if not isinstance(entries, list):
                raise ValueError("'classes' is not a list")
            classes = []
            for entry in entries:
                try:
                    classes.append(_class_entry(folder, entry))
                except (UnsafePathError, ValueError, KeyError, TypeError) as exc:
                    refused.append(entry)
                    warnings.append(f"a class entry was refused: {exc}")
            name = str(data.get("name", folder.name))
        except ClassSetError:
            raise
        except FileNotFoundError:
            classes, name = [], folder.name
            warnings.append("the class list (manifest.json) was missing; the classes were "
                            "rebuilt from the example files")
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            backup = folder / f"{MANIFEST}.damaged-{time.strftime('%Y%m%d-%H%M%S')}"
            try:
                shutil.copy2(path, backup)
            except OSError as copy_exc:
                raise _write_error(copy_exc, "a copy of the damaged class list") from exc
            classes, name = [], folder.name
            warnings.append(f"the class list (manifest.json) was damaged ({exc}); it was kept "
                            f"as {backup.name} and the classes were rebuilt from the example "
                            "files, so class names may need fixing")
        except OSError as exc:
            raise ClassSetError(f"the class list of {folder.name} cannot be read: "
                                f"{exc.strerror or exc}") from exc
        cs = cls(folder, name, classes, warnings)
        try:
            if refused:
                # Kept aside, not dropped: the entries are the user's to look at.
                aside = folder / f"manifest.refused-{time.strftime('%Y%m%d-%H%M%S')}.json"
                atomic_write(aside, json.dumps(refused, ensure_ascii=False, indent=1,
                                               default=repr).encode("utf-8"))
                cs.warnings.append(f"{len(refused)} class entr{'y' if len(refused) == 1 else 'ies'}"
                                   f" pointed outside the set or were malformed; kept aside "
                                   f"in {aside.name}")
            cs._finish_deletions()
            cs._remove_stale_temps()
            if cs._recover_files() or warnings:
                cs.save()
        except OSError as exc:
            # A read-only set still opens (to look at, export or save as); say why repairs
            # were not written.
            cs.warnings.append(f"repairs could not be written: {exc.strerror or exc}")
        return cs

    def _class_dirs(self) -> list[Path]:
        """Class folders on disk: visible, real folders (not links to elsewhere)."""
        return sorted(p for p in self.folder.iterdir()
                      if not p.name.startswith(".") and p.is_dir() and not p.is_symlink())

    def _finish_deletions(self) -> None:
        """Complete or undo a *Delete class* a kill interrupted (see :meth:`delete_class`)."""
        ids = {c.id for c in self.classes}
        for trash in self.folder.glob(f"{TRASH}*"):
            cid = trash.name[len(TRASH):]
            if trash.is_symlink() or not trash.is_dir():
                continue
            if cid in ids and not (self.folder / cid).exists():
                os.replace(trash, self.folder / cid)  # killed before the manifest: undo
            else:
                shutil.rmtree(trash)  # the manifest no longer lists it: finish deleting

    def _remove_stale_temps(self) -> None:
        """Temp files of writes a kill interrupted (atomic_write's ``.<name>.*.tmp``)."""
        for d in [self.folder, *self._class_dirs()]:
            for tmp in d.glob(".*.tmp"):
                if is_regular_file(tmp, follow_links=False):
                    tmp.unlink()

    def _recover_files(self) -> bool:
        """Take back example files the manifest does not list; drop listed files that are
        gone. Returns whether anything changed."""
        changed = False
        known = {c.id: c for c in self.classes}
        for c in self.classes:
            present = [e for e in c.examples
                       if is_regular_file(self.folder / c.id / e, follow_links=False)]
            if len(present) != len(c.examples):
                self.warnings.append(f"{len(c.examples) - len(present)} example file(s) of "
                                     f"'{c.name}' were missing")
                c.examples, changed = present, True
        for sub in self._class_dirs():
            try:
                check_name(sub.name)
            except UnsafePathError:
                continue
            files = sorted(f.name for f in sub.glob("*.png")
                           if not f.name.startswith(".")
                           and is_regular_file(f, follow_links=False))
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
        """Write the manifest (OSError if it cannot be written; callers roll back)."""
        data = {"schema": SCHEMA_VERSION, "name": self.name,
                "classes": [{"id": c.id, "name": c.name, "char": c.char,
                             "examples": c.examples} for c in self.classes]}
        atomic_write(self.folder / MANIFEST,
                     json.dumps(data, ensure_ascii=False, indent=1).encode("utf-8"))

    def _commit(self, what: str, undo) -> None:
        """Save the manifest; if it cannot be written, ``undo()`` the in-memory change and
        raise the user's message, so the window never shows what is not on disk."""
        try:
            self.save()
        except OSError as exc:
            undo()
            raise _write_error(exc, what) from exc

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
        """A new class with ``examples``: all of them or none (a blank one refuses all)."""
        name = name.strip()
        if not name:
            raise ClassSetError("a class needs a name")
        if self.find_by_name(name) is not None:
            raise ClassSetError(f"there is already a class named '{name}'")
        examples = list(examples or [])
        blank = [g.source for g in examples if not g.has_ink()]
        if blank:
            raise ClassSetError(f"{blank[0]} is empty (no ink): nothing was added")
        cls = GlyphClass(_new_id("c"), name, char.strip())
        folder = self.folder / cls.id
        try:
            folder.mkdir(parents=True)
            for g in examples:
                self._write_example(cls, g)
        except OSError as exc:
            shutil.rmtree(folder, ignore_errors=True)  # ours, just made: nothing to keep
            raise _write_error(exc, f"the class '{name}'") from exc
        self.classes.append(cls)

        def undo() -> None:
            self.classes.remove(cls)
            shutil.rmtree(folder, ignore_errors=True)
        self._commit(f"the class '{name}'", undo)
        return cls

    def _write_example(self, cls: GlyphClass, glyph: Glyph) -> str:
        if not glyph.has_ink():
            raise ClassSetError("the glyph is empty: draw or load something first")
        fname = f"{_new_id('e')}.png"
        atomic_write(self.folder / cls.id / fname, glyph.to_png())
        cls.examples.append(fname)
        return fname

    def add_example(self, class_id: str, glyph: Glyph) -> str:
        cls = self.get(class_id)
        try:
            fname = self._write_example(cls, glyph)
        except OSError as exc:
            raise _write_error(exc, f"the example of '{cls.name}'") from exc

        def undo() -> None:
            cls.examples.remove(fname)
            (self.folder / cls.id / fname).unlink(missing_ok=True)
        self._commit(f"the example of '{cls.name}'", undo)
        return fname

    def remove_example(self, class_id: str, fname: str) -> None:
        cls = self.get(class_id)
        path = self.example_path(class_id, fname)  # checked before anything changes
        index = cls.examples.index(fname)
        cls.examples.remove(fname)
        # Manifest first: a kill now leaves an orphan file, which is recovered (not lost).
        self._commit(f"removing the example of '{cls.name}'",
                     lambda: cls.examples.insert(index, fname))
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            self.warnings.append(f"{fname} could not be deleted ({exc.strerror}); it comes "
                                 "back at the next launch")

    def rename_class(self, class_id: str, name: str, char: str | None = None) -> None:
        name = name.strip()
        if not name:
            raise ClassSetError("a class needs a name")
        other = self.find_by_name(name)
        if other is not None and other.id != class_id:
            raise ClassSetError(f"there is already a class named '{name}'")
        cls = self.get(class_id)
        old = (cls.name, cls.char)
        cls.name = name
        if char is not None:
            cls.char = char.strip()

        def undo() -> None:
            cls.name, cls.char = old
        self._commit(f"renaming '{old[0]}'", undo)

    def delete_class(self, class_id: str) -> None:
        """Delete a class and its examples, all or nothing even under ``kill -9``: the
        folder is first renamed to ``.trash-<id>`` (one atomic step), then the manifest
        drops the class, then the trash is removed; :meth:`open` completes (or undoes,
        if the manifest still lists it) whatever a kill interrupted."""
        cls = self.get(class_id)
        folder = inside(self.folder, cls.id, what="class id")
        trash = self.folder / f"{TRASH}{cls.id}"
        moved = False
        try:
            if folder.exists():
                if trash.exists():
                    shutil.rmtree(trash)
                os.replace(folder, trash)
                moved = True
        except OSError as exc:
            raise _write_error(exc, f"deleting '{cls.name}'") from exc
        index = self.classes.index(cls)
        self.classes.remove(cls)

        def undo() -> None:
            self.classes.insert(index, cls)
            if moved:
                os.replace(trash, folder)
        self._commit(f"deleting '{cls.name}'", undo)
        # What is left of the trash after a failure here is removed at the next open.
        shutil.rmtree(trash, ignore_errors=True)

    # -- reading ------------------------------------------------------------------------
    def example_path(self, class_id: str, fname: str) -> Path:
        """The example's file, always inside this set's folder (else ClassSetError)."""
        try:
            return inside(self.folder, class_id, fname, what="example")
        except UnsafePathError as exc:
            raise ClassSetError(str(exc)) from exc

    def examples(self) -> list[tuple[str, Path]]:
        """(label, file) of every example: what the recogniser fits on."""
        return [(c.label, self.example_path(c.id, e)) for c in self.classes for e in c.examples]

    def usable_classes(self) -> int:
        return sum(1 for c in self.classes if c.examples)

    # -- zip import / export ------------------------------------------------------------
    def export_zip(self, path: Path) -> None:
        """One folder per class of PNGs (a data set the trainer reads), plus the manifest.
        Only regular files inside the set's folder go in (no links to elsewhere)."""
        used: set[str] = set()
        path = Path(path)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp",
                                        dir=path.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
                zf.writestr(MANIFEST, (self.folder / MANIFEST).read_bytes())
                for c in self.classes:
                    folder = safe_folder_name(c.name)
                    while folder in used:
                        folder += "_"
                    used.add(folder)
                    for e in c.examples:
                        src = self.example_path(c.id, e)
                        if not is_regular_file(src, follow_links=False):
                            raise ClassSetError(f"example {c.id}/{e} is not a plain file "
                                                "in the class set; nothing was exported")
                        zf.write(src, f"{folder}/{check_name(e)}")
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    @classmethod
    def import_zip(cls, path: Path, folder: Path, name: str | None = None) -> ClassSet:
        """A new class set from a zip of class folders (ours or any data set's).

        Member counts and sizes are checked on the zip's directory before anything is read,
        each member is read with a bound, and on any failure the new set's folder is
        removed: a bad zip leaves nothing behind."""
        path, folder = Path(path), Path(folder)
        if folder.exists():
            raise ClassSetError(f"{folder} already exists")
        try:
            zf = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise ClassSetError(f"{path.name} is not a readable zip file") from exc
        try:
            with zf:
                return cls._import_members(zf, path, folder, name)
        except BaseException as exc:
            shutil.rmtree(folder, ignore_errors=True)  # made by this import: leave nothing
            if isinstance(exc, OSError):
                raise _write_error(exc, f"the class set from {path.name}") from exc
            if isinstance(exc, (zipfile.BadZipFile, NotImplementedError, RuntimeError,
                                EOFError, ValueError, zlib.error)) \
                    and not isinstance(exc, ClassSetError):
                raise ClassSetError(f"{path.name} cannot be read: {exc}") from exc
            raise

    @classmethod
    def _import_members(cls, zf: zipfile.ZipFile, path: Path, folder: Path,
                        name: str | None) -> ClassSet:
        infos = zf.infolist()
        if len(infos) > ZIP_MAX_MEMBERS:
            raise ClassSetError(f"{path.name} holds {len(infos):,} files; at most "
                                f"{ZIP_MAX_MEMBERS:,} are imported")
        if any(i.flag_bits & 0x1 for i in infos):
            raise ClassSetError(f"{path.name} is encrypted (password-protected); nomgui "
                                "imports only plain zips")
        total = sum(i.file_size for i in infos if not i.is_dir())
        if total > ZIP_MAX_TOTAL_BYTES:
            raise ClassSetError(f"{path.name} unpacks to more than "
                                f"{ZIP_MAX_TOTAL_BYTES // 2**20:,} MB (it declares "
                                f"{total:,} bytes); nothing was imported")
        meta: dict[str, dict] = {}
        manifest = next((i for i in infos if i.filename == MANIFEST), None)
        if manifest is not None:
            try:
                data = json.loads(_read_member(zf, manifest, ZIP_MAX_MANIFEST_BYTES))
                entries = data.get("classes", []) if isinstance(data, dict) else []
                meta = {safe_folder_name(str(c["name"])): c for c in entries
                        if isinstance(c, dict) and "name" in c}
            except (ValueError, TypeError, ClassSetError):
                meta = {}  # the folders alone still make a class set
        groups: dict[str, list[zipfile.ZipInfo]] = {}
        for info in infos:
            member = info.filename
            if info.is_dir() or "/" not in member or "__MACOSX" in member:
                continue
            groups.setdefault(member.rsplit("/", 1)[0], []).append(info)
        if not groups:
            raise ClassSetError(f"{path.name} holds no class folders of images")
        cs = cls.create(folder, name or path.stem)
        skipped = 0
        for cname, members in sorted(groups.items()):
            glyphs = []
            for info in sorted(members, key=lambda i: i.filename):
                if info.file_size > ZIP_MAX_MEMBER_BYTES:
                    skipped += 1
                    continue
                try:
                    glyphs.append(glyph_from_bytes(
                        _read_member(zf, info, ZIP_MAX_MEMBER_BYTES), info.filename))
                except (GlyphLoadError, ClassSetError):
                    skipped += 1
            inked = [g for g in glyphs if g.has_ink()]
            skipped += len(glyphs) - len(inked)
            glyphs = inked
            if not glyphs:
                continue
            info_meta = meta.get(cname.split("/")[-1], {})
            label = str(info_meta.get("name", cname))
            try:
                cs.add_class(label, str(info_meta.get("char", "")), glyphs)
            except ClassSetWriteError:
                raise
            except ClassSetError as exc:  # e.g. two folders with one name
                cs.warnings.append(str(exc))
        if skipped:
            cs.warnings.append(f"{skipped} file(s) in the zip were not images, were blank "
                               "or were too large, and were skipped")
        return cs


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    """A member's bytes, never more than ``limit`` (streamed: a lying header or a
    decompression bomb stops at the bound instead of filling memory)."""
    with zf.open(info) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ClassSetError(f"{info.filename} is larger than {limit // 2**20} MB")
    return data


def _class_entry(folder: Path, entry: object) -> GlyphClass:
    """One class of a manifest, its id and example names checked to stay inside ``folder``."""
    if not isinstance(entry, dict):
        raise TypeError(f"{entry!r:.60} is not an object")
    cid = entry["id"]
    inside(folder, cid, what="class id")
    examples = entry.get("examples", [])
    if not isinstance(examples, list):
        raise TypeError(f"examples of class {cid!r} are not a list")
    for e in examples:
        inside(folder, cid, e, what="example")
    return GlyphClass(cid, str(entry["name"]), str(entry.get("char", "")), list(examples))


class ClassSetStore:
    """All class sets of the user, one folder each, under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ClassSetError(f"the class sets folder {self.root} cannot be made: "
                                f"{exc.strerror or exc}") from exc

    def list(self) -> list[tuple[Path, str]]:
        out = []
        for sub in sorted(p for p in self.root.iterdir()
                          if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")):
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
        try:
            # Links are not followed (a link to elsewhere is not the set's to copy), and
            # temp and trash files stay behind.
            shutil.copytree(source.folder, folder, symlinks=True,
                            ignore=shutil.ignore_patterns(".*"))
            cs = ClassSet.open(folder)
            cs.name = name
            cs.save()
        except OSError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            raise _write_error(exc, f"the copy '{name}'") from exc
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
