"""Item 5 (and the zip part of 6): zip import and the trainer's zip data sets. Member
sizes and counts are checked before reading, members are streamed with a bound, an
encrypted or damaged zip is one message, and a failed import leaves nothing behind."""

from __future__ import annotations

import json
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from nomgui import classset as classset_module
from nomgui.classset import ClassSet, ClassSetError
from tests.hostile.conftest import inked


def _zip(path: Path, members: dict[str, bytes], *, encrypt: bool = False) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    if encrypt:  # set the "encrypted" flag bit in every local and central header
        raw = bytearray(path.read_bytes())
        for sig, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
            i = raw.find(sig)
            while i >= 0:
                raw[i + flag_at] |= 0x1
                i = raw.find(sig, i + 4)
        path.write_bytes(bytes(raw))
        with zipfile.ZipFile(path) as zf:
            assert all(i.flag_bits & 0x1 for i in zf.infolist())
    return path


def _classes(n: int = 2) -> dict[str, bytes]:
    return {f"c{i}/e{j}.png": inked(i * 10 + j).to_png() for i in range(n) for j in range(2)}


def test_big_member_is_not_read_into_memory(tmp_path, monkeypatch):
    """Before: a 1 MB zip holding a 1 GiB member took memory from 0.7 to 2.8 GB. Here the
    bound is lowered to 4 MB and the member is 64 MB of zeros (64 KB compressed)."""
    monkeypatch.setattr(classset_module, "ZIP_MAX_MEMBER_BYTES", 4 * 2**20)
    members = _classes()
    members["c0/huge.png"] = bytes(64 * 2**20)
    path = _zip(tmp_path / "bomb.zip", members)
    assert path.stat().st_size < 2**20
    tracemalloc.start()
    cs = ClassSet.import_zip(path, tmp_path / "sets" / "bomb")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 16 * 2**20, f"peak {peak / 2**20:.0f} MB"
    assert sorted(len(c.examples) for c in cs.classes) == [2, 2]
    assert any("too large, and were skipped" in w for w in cs.warnings)


def test_lying_header_is_bounded_while_streaming(tmp_path):
    """A member whose header declares 10 bytes but holds 50 KB: reading stops at the
    declared size (zipfile's bound, kept by streaming instead of trusting the data) and
    the damaged zip is one message with nothing left behind."""
    path = _zip(tmp_path / "z.zip", {**_classes(), "c0/a.png": bytes(50_000)})
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("c0/a.png")
    # patch the uncompressed size in the local header and the central directory
    central = raw.find(info.filename.encode(), raw.find(b"PK\x01\x02")) - 46
    raw[info.header_offset + 22: info.header_offset + 26] = (10).to_bytes(4, "little")
    raw[central + 24: central + 28] = (10).to_bytes(4, "little")
    path.write_bytes(bytes(raw))
    target = tmp_path / "sets" / "z"
    with pytest.raises(ClassSetError) as exc:
        ClassSet.import_zip(path, target)
    assert "\n" not in str(exc.value) and not target.exists()


def corrupt_stream(path: Path) -> Path:
    """Overwrite the middle of every member's compressed data (headers intact)."""
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
    for info in infos:
        start = info.header_offset + 30 + len(info.filename.encode())
        for k in range(start + info.compress_size // 3, start + info.compress_size // 2):
            raw[k] ^= 0x5A
    path.write_bytes(bytes(raw))
    return path


@pytest.mark.parametrize("case", ["encrypted", "garbage", "truncated", "manifest_list",
                                  "too_many", "too_big_total", "no_classes", "corrupt"])
def test_bad_zip_is_one_message_and_leaves_nothing(tmp_path, monkeypatch, case):
    target = tmp_path / "sets" / "new"
    path = tmp_path / f"{case}.zip"
    if case == "encrypted":
        _zip(path, _classes(), encrypt=True)
    elif case == "garbage":
        path.write_bytes(b"PK\x03\x04" + bytes(range(256)) * 10)
    elif case == "truncated":
        _zip(path, _classes(3))
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif case == "manifest_list":  # must import from the folders alone, no exception
        _zip(path, {**_classes(), "manifest.json": json.dumps([1, 2]).encode()})
        cs = ClassSet.import_zip(path, target)
        assert len(cs.classes) == 2
        return
    elif case == "too_many":
        monkeypatch.setattr(classset_module, "ZIP_MAX_MEMBERS", 3)
        _zip(path, _classes())
    elif case == "too_big_total":
        monkeypatch.setattr(classset_module, "ZIP_MAX_TOTAL_BYTES", 100)
        _zip(path, _classes())
    elif case == "no_classes":
        _zip(path, {"readme.txt": b"hi"})
    elif case == "corrupt":
        corrupt_stream(_zip(path, _classes()))
    with pytest.raises(ClassSetError) as exc:
        ClassSet.import_zip(path, target)
    assert "\n" not in str(exc.value)
    assert not target.exists()  # before: an encrypted zip left an empty class set


def test_import_failing_midway_removes_the_new_set(tmp_path, monkeypatch):
    path = _zip(tmp_path / "ok.zip", _classes(3))
    real = ClassSet.add_class
    calls = []

    def fail_second(self, *a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(self, *a, **k)
    monkeypatch.setattr(ClassSet, "add_class", fail_second)
    with pytest.raises(ClassSetError, match="No space"):
        ClassSet.import_zip(path, tmp_path / "sets" / "ok")
    assert not (tmp_path / "sets" / "ok").exists()
