"""One app per data folder. No Qt here.

Two windows on one data folder each keep their own copy of a class set in memory, so the
second one's save overwrites the first one's rename. The data folder is therefore locked
(``flock`` on ``<data dir>/.nomgui.lock``, released by the OS when the process ends, even
after ``kill -9``) for as long as the app runs; a second app is told which folder is in use.
Taking the lock also proves the folder is writable, so a read-only or unusable
``--data-dir`` is one clear message at launch instead of a traceback.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

LOCK_NAME = ".nomgui.lock"


class DataFolderError(RuntimeError):
    """The data folder cannot be used (in use by another nomgui, or not writable)."""


class DataFolderLock:
    """Holds the data folder's lock until :meth:`release` or the process ends."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock, or raise :class:`DataFolderError` saying why not."""
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            f = open(self.data_dir / LOCK_NAME, "a+", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise DataFolderError(f"the data folder {self.data_dir} cannot be used: "
                                  f"{exc.strerror or exc}") from exc
        try:
            import fcntl
        except ImportError:  # Windows: no flock; one app per folder is then not enforced
            self._file = f
            return
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            f.close()
            raise DataFolderError(f"another nomgui already uses the data folder "
                                  f"{self.data_dir}; use that window, or start this one "
                                  "with another --data-dir") from exc
        except OSError as exc:
            f.close()
            raise DataFolderError(f"the data folder {self.data_dir} cannot be locked: "
                                  f"{exc.strerror or exc}") from exc
        try:  # the holder's pid, for a person looking at the folder; the lock is the flock
            f.seek(0)
            f.truncate()
            f.write(f"{os.getpid()}\n")
            f.flush()
        except OSError as exc:  # e.g. a read-only folder with an old lock file in it
            f.close()
            raise DataFolderError(f"the data folder {self.data_dir} is not writable: "
                                  f"{exc.strerror or exc}") from exc
        self._file = f

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing drops the flock
            self._file = None
