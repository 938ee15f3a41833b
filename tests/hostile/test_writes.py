"""Item 4: a read-only data folder or a full disk. A change that cannot be written raises
one clear message and leaves the set as it was, in memory and on disk; the window shows
only what was written. Mocked OSErrors always run (CI runs as root, where chmod does not
stop writes); a real full disk (RLIMIT_FSIZE) and a real read-only folder run too."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from nomgui import classset as classset_module
from nomgui.classset import ClassSet, ClassSetError, ClassSetStore
from tests.hostile.conftest import inked


def _state(cs: ClassSet) -> list:
    return [(c.id, c.name, c.char, list(c.examples)) for c in cs.classes]


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture()
def cs(tmp_path: Path) -> ClassSet:
    s = ClassSetStore(tmp_path / "classsets").create("mine")
    s.add_class("a", "", [inked(1), inked(2)])
    s.add_class("b", "", [inked(3)])
    return s


def _full_disk(monkeypatch) -> None:
    """Every write of the store fails as on a full disk."""
    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(args[0]))
    monkeypatch.setattr(classset_module, "atomic_write", no_space)
    monkeypatch.setattr(os, "replace", no_space)
    monkeypatch.setattr(Path, "mkdir", no_space)


OPERATIONS = {
    "new class": lambda cs: cs.add_class("new", "", [inked(5)]),
    "several images as a class": lambda cs: cs.add_class("many", "", [inked(6), inked(7)]),
    "add example": lambda cs: cs.add_example(cs.classes[0].id, inked(8)),
    "rename": lambda cs: cs.rename_class(cs.classes[0].id, "renamed", "R"),
    "delete class": lambda cs: cs.delete_class(cs.classes[0].id),
    "remove example": lambda cs: cs.remove_example(cs.classes[0].id,
                                                   cs.classes[0].examples[0]),
}


@pytest.mark.parametrize("op", OPERATIONS)
def test_failed_write_changes_nothing_and_says_why(cs, monkeypatch, op):
    before, files = _state(cs), _files(cs.folder)
    with monkeypatch.context() as m:
        _full_disk(m)
        with pytest.raises(ClassSetError) as exc:
            OPERATIONS[op](cs)
    assert "No space left on device" in str(exc.value) and "\n" not in str(exc.value)
    assert _state(cs) == before  # the window shows what is on disk
    assert _state(ClassSet.open(cs.folder)) == before  # and the next launch agrees
    assert _files(cs.folder) == files  # no temp file, no half-made class folder


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only folders anyway")
@pytest.mark.parametrize("op", OPERATIONS)
def test_read_only_folder(cs, op):
    before = _state(cs)
    for p in [cs.folder, *cs.folder.iterdir()]:
        if p.is_dir():
            p.chmod(0o555)
    try:
        with pytest.raises(ClassSetError):
            OPERATIONS[op](cs)
        assert _state(cs) == before and _state(ClassSet.open(cs.folder)) == before
    finally:
        for p in [cs.folder, *cs.folder.iterdir()]:
            if p.is_dir():
                p.chmod(0o755)


def test_real_full_disk_in_a_subprocess(cs):
    """RLIMIT_FSIZE makes every write beyond 40 bytes fail with EFBIG, as a full disk
    does (also for root)."""
    before = _state(cs)
    script = textwrap.dedent(f"""
        import resource, signal, sys
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        from nomgui.classset import ClassSet, ClassSetError
        from tests.hostile.conftest import inked
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        cs = ClassSet.open({str(cs.folder)!r})
        resource.setrlimit(resource.RLIMIT_FSIZE, (40, 40))
        failed = 0
        for op in (lambda: cs.add_class("big", "", [inked(9)]),
                   lambda: cs.rename_class(cs.classes[0].id, "renamed"),
                   lambda: cs.delete_class(cs.classes[1].id)):
            try:
                op()
            except ClassSetError as exc:
                print(exc)
                failed += 1
        sys.exit(0 if failed == 3 else 1)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert _state(ClassSet.open(cs.folder)) == before


def test_unusable_data_folder_is_one_message(tmp_path):
    """A fresh --data-dir that cannot be made: a ClassSetError / DataFolderError with one
    line, not a traceback."""
    from nomgui.datalock import DataFolderError, DataFolderLock

    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ClassSetError):
        ClassSetStore(blocker / "classsets")
    with pytest.raises(DataFolderError, match="cannot be used"):
        DataFolderLock(blocker / "data").acquire()


def test_nomgui_on_an_unusable_data_dir_says_why_and_exits(tmp_path):
    """Before: a fresh read-only --data-dir made `nomgui` exit with a traceback. A file in
    the way stands for the read-only folder (root can write to those anyway)."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        from PySide6.QtWidgets import QMessageBox
        shown = []
        QMessageBox.critical = staticmethod(lambda *a, **k: shown.append(a[2]))
        import nomgui.app
        code = nomgui.app.main(["--data-dir", {str(blocker / "data")!r}])
        print("dialog:", shown[0] if shown else None)
        sys.exit(code)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr and "cannot be used" in out.stderr
    assert "dialog: the data folder" in out.stdout


def test_annotation_decisions_on_a_full_disk(tmp_path, monkeypatch):
    from nomgui import annotation
    from nomgui.annotation import PENDING, AnnotationError, Session

    img = tmp_path / "a.png"
    img.write_bytes(inked(1).to_png())
    s = Session.create(tmp_path / "s", "s")
    s.add_images([img])
    s.decide("g00001", "corrected", "x")
    with monkeypatch.context() as m:
        m.setattr(annotation, "atomic_write", lambda *a, **k: (_ for _ in ()).throw(
            OSError(errno.ENOSPC, "No space left on device")))
        with pytest.raises(AnnotationError, match="No space"):
            s.decide("g00001", "skipped")
        with pytest.raises(AnnotationError, match="No space"):
            s.undo()
    assert (s.items[0].decision, s.items[0].label) == ("corrected", "x")
    assert len(s.history) == 1
    again = Session.open(s.folder)
    assert (again.items[0].decision, again.items[0].label) == ("corrected", "x")
    assert again.undo() is not None and again.items[0].decision == PENDING
