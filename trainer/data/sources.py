"""Reading glyph images from folders and zips into a :class:`GlyphSet`, with an on-disk cache.

A *class-folder tree* is any folder (or zip) whose leaf folders hold the images of one class
each; the class name is the leaf's path relative to the root, e.g. ``Latin/character01``.
Decoding happens once; the result is cached as a ``.pt`` file of uint8 tensors keyed by the
source files' sizes and times, the image size and :data:`trainer.glyphs.PREPROCESS_VERSION`.
"""

from __future__ import annotations

import glob
import hashlib
import io
import os
import stat
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from trainer.data.glyphset import GlyphSet
from trainer.glyphs import PREPROCESS_VERSION, EmptyGlyphError, InkPolarity, normalize

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
Progress = Callable[[float, str], None]

# Bounds checked before anything is decoded: a 1 MB zip can declare a 1 GiB member, and a
# small PNG 20,000 x 20,000 pixels. Scans of single glyphs are far below both.
MAX_MEMBER_BYTES = 64 * 2**20
MAX_MEMBERS = 2_000_000
MAX_PIXELS = 40_000_000


class DataError(RuntimeError):
    """A data source is missing, incomplete or unreadable; the message says how to fix it."""


@dataclass(frozen=True)
class ImageRef:
    """One image inside a folder or a zip."""

    container: Path  # the folder, or the .zip file
    member: str  # path relative to the folder, or the zip member name

    def read(self, zf: zipfile.ZipFile | None = None) -> Image.Image:
        """The image, opened (not decoded); its pixel count is checked before decoding."""
        if zf is not None:
            with zf.open(self.member) as f:  # streamed with a bound: a header can lie
                data = f.read(MAX_MEMBER_BYTES + 1)
            if len(data) > MAX_MEMBER_BYTES:
                raise DataError(f"{self.container}/{self.member} is larger than "
                                f"{MAX_MEMBER_BYTES // 2**20} MB: not a glyph image")
            im = Image.open(io.BytesIO(data))
        else:
            path = self.container / self.member
            if not os.path.isfile(path):  # a FIFO would block, a dangling link fail later
                raise DataError(f"{path} is not a regular file")
            im = Image.open(path)  # PIL itself refuses above 2 x MAX_IMAGE_PIXELS
        if im.width * im.height > MAX_PIXELS:
            im.close()
            raise DataError(f"{self.container}/{self.member} is {im.width} x {im.height} "
                            f"pixels (at most {MAX_PIXELS // 1_000_000} megapixels are read)")
        return im


def scan_tree(container: Path, prefix: str = "") -> dict[str, list[ImageRef]]:
    """Class name -> sorted image refs, for a folder or a zip, below ``prefix``.

    ``prefix`` ("images_background/" say) is removed from the class names.
    """
    classes: dict[str, list[ImageRef]] = {}
    if container.suffix.lower() == ".zip":
        names = _zip_names(container)
    else:
        base = container / prefix if prefix else container
        # Regular files only (os.path.isfile follows links): a dangling link or a FIFO
        # named x.png is not an image, and opening a FIFO blocks.
        names = [
            str(Path(dirpath, f).relative_to(container)).replace(os.sep, "/")
            for dirpath, _, files in os.walk(base)
            for f in files
            if os.path.isfile(os.path.join(dirpath, f))
        ]
    for name in names:
        if not name.lower().endswith(IMAGE_SUFFIXES) or not name.startswith(prefix):
            continue
        rel = name[len(prefix):]
        if "/" not in rel or "__MACOSX" in rel or rel.split("/")[-1].startswith("."):
            continue
        cls = rel.rsplit("/", 1)[0]
        classes.setdefault(cls, []).append(ImageRef(container, name))
    return {c: sorted(refs, key=lambda r: r.member) for c, refs in sorted(classes.items())}


def _zip_names(path: Path) -> list[str]:
    """Member names of a zip whose directory is sane; else a :class:`DataError`."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise DataError(f"{path} is not a readable zip file (truncated or damaged?): "
                        f"{exc or exc.__class__.__name__}") from exc
    if len(infos) > MAX_MEMBERS:
        raise DataError(f"{path} holds {len(infos):,} members; at most {MAX_MEMBERS:,}")
    if any(i.flag_bits & 0x1 for i in infos):
        raise DataError(f"{path} is encrypted (password-protected); unpack it or give an "
                        "unencrypted zip")
    big = next((i for i in infos if i.file_size > MAX_MEMBER_BYTES), None)
    if big is not None and big.filename.lower().endswith(IMAGE_SUFFIXES):
        raise DataError(f"{path}: {big.filename} unpacks to {big.file_size / 2**20:,.0f} MB; "
                        "not a glyph image")
    return [i.filename for i in infos]


def signature(paths: list[Path], *parts: object) -> str:
    """A short hash of files' sizes and modification times plus ``parts``."""
    h = hashlib.sha1()
    for p in sorted(paths):
        st = p.stat()
        h.update(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}|".encode())
    for part in parts:
        h.update(f"{part}|".encode())
    return h.hexdigest()[:16]


def decode_classes(
    classes: dict[str, list[ImageRef]],
    size: int,
    *,
    ink: InkPolarity = "auto",
    clean: bool = False,
    groups: dict[str, str] | None = None,
    progress: Progress | None = None,
) -> GlyphSet:
    """Decode and normalise every image; unreadable or empty images are reported, not skipped
    silently: a data set with a broken file is a :class:`DataError` naming it."""
    total = sum(len(v) for v in classes.values())
    images = np.zeros((total, size, size), dtype=np.uint8)
    labels = np.zeros(total, dtype=np.int64)
    open_zips: dict[Path, zipfile.ZipFile] = {}
    row = 0
    try:
        for label, (_cls, refs) in enumerate(classes.items()):
            for ref in refs:
                zf = None
                if ref.container.suffix.lower() == ".zip":
                    zf = open_zips.get(ref.container)
                    if zf is None:
                        zf = open_zips[ref.container] = zipfile.ZipFile(ref.container)
                try:
                    with ref.read(zf) as im:
                        images[row] = normalize(im, size, ink=ink, clean=clean)
                except (UnidentifiedImageError, OSError, EmptyGlyphError, ValueError,
                        EOFError, NotImplementedError, zipfile.BadZipFile, zlib.error,
                        Image.DecompressionBombError) as exc:
                    raise DataError(f"cannot use image {ref.container}/{ref.member}: "
                                    f"{exc or exc.__class__.__name__}") from exc
                labels[row] = label
                row += 1
            if progress is not None and label % 50 == 0:
                progress(row / max(total, 1), f"decoded {row}/{total} images")
    finally:
        for zf in open_zips.values():
            zf.close()
    names = list(classes)
    return GlyphSet(
        torch.from_numpy(images),
        torch.from_numpy(labels),
        names,
        [groups.get(n, "") for n in names] if groups else [],
    )


def cached(cache_dir: Path | None, key: str, build: Callable[[], GlyphSet]) -> GlyphSet:
    """Load ``key`` from the cache, or build it and write it atomically."""
    if cache_dir is None:
        return build()
    path = Path(cache_dir) / f"{key}.pt"
    if path.exists():
        try:
            return GlyphSet.from_state(torch.load(path, weights_only=True))
        except Exception:
            path.unlink(missing_ok=True)
    glyphs = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_torch_save(glyphs.to_state(), path)
    return glyphs


def atomic_torch_save(obj: object, path: Path) -> None:
    """``torch.save`` to a temp file in the same folder, then rename: a reader (or a kill)
    never sees a half-written file."""
    path = Path(path)
    # Serialised in memory first: torch's writer turns a failed write (full disk) into
    # an opaque RuntimeError; a plain write raises the OSError that says why.
    buf = io.BytesIO()
    torch.save(obj, buf)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(buf.getbuffer())
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; these are ordinary user files
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if exc.filename is None:  # a failed f.write names no file: say which one
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _remove_stale_temps(path)


STALE_TEMP_S = 600  # no checkpoint write takes this long: an older temp is a kill's leftover


def _remove_stale_temps(path: Path) -> None:
    """Remove ``.<name>.*.tmp`` files of ``path`` that a kill during an earlier write left
    behind (older than :data:`STALE_TEMP_S`; a younger one may be a write in progress)."""
    now = time.time()
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        try:
            st = tmp.lstat()
            if stat.S_ISREG(st.st_mode) and now - st.st_mtime > STALE_TEMP_S:
                tmp.unlink()
        except OSError:
            continue  # gone meanwhile, or not ours to remove: the next write tries again


def load_folder(
    root: Path,
    size: int = 28,
    *,
    cache_dir: Path | None = None,
    ink: InkPolarity = "auto",
    min_per_class: int = 1,
    progress: Progress | None = None,
) -> GlyphSet:
    """Any class-folder tree (folder or .zip) as a GlyphSet."""
    root = Path(root)
    if not root.exists():
        raise DataError(f"data folder {root} does not exist")
    classes = scan_tree(root)
    classes = {c: r for c, r in classes.items() if len(r) >= min_per_class}
    if len(classes) < 2:
        raise DataError(
            f"{root} holds {len(classes)} class folder(s) with images; a data set needs at "
            "least 2 (one sub-folder of images per class)"
        )
    files = [root] if root.is_file() else [r.container / r.member for v in classes.values()
                                           for r in v]
    key = f"folder-{size}px-v{PREPROCESS_VERSION}-{signature(files, ink, min_per_class)}"
    return cached(cache_dir, key, lambda: decode_classes(classes, size, ink=ink,
                                                         progress=progress))
