"""Path containment for everything the app reads from its own stores. No Qt here.

Class ids and example names in a class set's ``manifest.json``, glyph files of an
annotation session and the run folders' records are data, and data can come from someone
else (a shared class set, a copied data folder): before any such name is joined into a
path it must be one plain file name, and the joined path must resolve (symbolic links
followed) inside the store's folder. Every store goes through :func:`inside`.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

# Names a store may hold: one path component, not hidden (the stores keep their own
# temp and trash files hidden), no control characters, of a length any file system takes.
_MAX_NAME = 200


class UnsafePathError(ValueError):
    """A name read from a store would lead outside its folder; the message names it."""


def check_name(name: object, what: str = "name") -> str:
    """``name`` if it is one plain, visible file name; otherwise :class:`UnsafePathError`."""
    if not isinstance(name, str):
        raise UnsafePathError(f"{what} {name!r} is not a text")
    if not name or name in (".", "..") or name.startswith("."):
        raise UnsafePathError(f"{what} {name!r} is not a plain file name")
    if "/" in name or "\\" in name or os.sep in name or (os.altsep and os.altsep in name):
        raise UnsafePathError(f"{what} {name!r} contains a path separator")
    if any(ord(ch) < 32 for ch in name) or len(name) > _MAX_NAME:
        raise UnsafePathError(f"{what} {name[:40]!r} is not a plain file name")
    if Path(name).is_absolute() or (len(name) > 1 and name[1] == ":"):  # C:foo on Windows
        raise UnsafePathError(f"{what} {name!r} is an absolute path")
    return name


def inside(base: Path, *names: object, what: str = "name") -> Path:
    """``base / names...``, each name checked by :func:`check_name`, resolved (links
    followed) and required to stay inside ``base``; else :class:`UnsafePathError`."""
    path = Path(base)
    for name in names:
        path = path / check_name(name, what)
    root = Path(base).resolve()
    real = path.resolve()
    if real != root and root not in real.parents:
        raise UnsafePathError(f"{what} {'/'.join(map(str, names))!r} leads outside "
                              f"{Path(base).name} (to {real})")
    return path


def is_regular_file(path: Path, follow_links: bool = True) -> bool:
    """Whether ``path`` is a regular file (a FIFO, a device or a dangling link is not:
    opening a FIFO blocks until someone writes to it). ``follow_links=False``: a symbolic
    link is not one either (store contents, which must not point elsewhere)."""
    try:
        st = os.stat(path) if follow_links else os.lstat(path)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode)
