"""No exception disappears: a global hook logs the traceback and shows it to the user.

Exceptions raised in Qt slots never reach a ``try`` of ours: PySide6 hands them to
``sys.excepthook`` and carries on, so without this hook they go to a terminal the user
does not see. :func:`install` replaces the hook with one that

1. saves the work in progress first (a callable the window provides: the drawing),
2. appends the traceback to ``<data dir>/logs/nomgui.log`` (rotated at 1 MB),
3. shows a dialog with the message, where the log is, and a "Copy details" button.

Dialogs are rate-limited: an exception that repeats on every mouse move must not bury the
window under dialogs (later ones go to the log and the status bar only).
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

LOG_NAME = "nomgui.log"
MAX_LOG_BYTES = 1_000_000
DIALOG_GAP_S = 5.0  # at most one dialog per this many seconds


class ExceptionHook:
    """The installed hook; keeps what it needs to save work and tell the user."""

    def __init__(self, log_dir: Path, save_work: Callable[[], str | None] | None = None,
                 show: Callable[[str, str], None] | None = None) -> None:
        self.log_dir = Path(log_dir)
        self.save_work = save_work
        self.show = show if show is not None else show_dialog
        self.count = 0
        self._last_dialog = 0.0
        self._busy = False
        self._previous = sys.excepthook

    @property
    def log_path(self) -> Path:
        return self.log_dir / LOG_NAME

    def write_log(self, text: str) -> Path | None:
        """Append ``text`` to the log; None when even that cannot be written."""
        try:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            if self.log_path.exists() and self.log_path.stat().st_size > MAX_LOG_BYTES:
                self.log_path.replace(self.log_path.with_suffix(".log.1"))
            with self.log_path.open("a", encoding="utf-8") as f:
                f.write(text)
            return self.log_path
        except OSError:
            return None

    def __call__(self, kind: type[BaseException], exc: BaseException,
                 tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            self._previous(kind, exc, tb)
            return
        self.count += 1
        details = "".join(traceback.format_exception(kind, exc, tb))
        if self._busy:  # an exception while reporting one: log it, never recurse
            self.write_log(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} (while reporting)\n"
                           f"{details}\n")
            return
        self._busy = True
        try:
            saved = None
            if self.save_work is not None:
                try:
                    saved = self.save_work()
                except Exception as save_exc:  # reported in the log below, never lost
                    details += f"\nSaving the work in progress failed too: {save_exc!r}\n"
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            where = self.write_log(f"--- {stamp}\n{details}\n")
            sys.stderr.write(details)
            message = f"{kind.__name__}: {exc}".strip()
            text = ("Something went wrong inside nomgui, and the action did not complete:\n\n"
                    f"{message}\n\n")
            if saved:
                text += f"Your drawing was saved to {saved}.\n"
            text += (f"The details are in {where}." if where else
                     "The details could not be written to the log folder.")
            now = time.monotonic()
            if now - self._last_dialog >= DIALOG_GAP_S:
                self._last_dialog = now
                self.show(text, details)
        finally:
            self._busy = False

    def uninstall(self) -> None:
        if sys.excepthook is self:
            sys.excepthook = self._previous


def install(log_dir: Path, save_work: Callable[[], str | None] | None = None,
            show: Callable[[str, str], None] | None = None) -> ExceptionHook:
    """Make :class:`ExceptionHook` the process's ``sys.excepthook`` and return it."""
    hook = ExceptionHook(log_dir, save_work, show)
    sys.excepthook = hook
    return hook


def show_dialog(text: str, details: str) -> None:
    """A warning box with the message and a button that copies the traceback."""
    from PySide6.QtWidgets import QApplication, QMessageBox

    app = QApplication.instance()
    if app is None:
        return
    box = QMessageBox(QMessageBox.Warning, "nomgui: an error occurred", text)
    box.setDetailedText(details)
    copy = box.addButton("Copy details", QMessageBox.ActionRole)
    box.addButton(QMessageBox.Close)
    # Copying must not close the box: disconnect the default "clicked closes" behaviour
    # by re-opening it when the copy button was the one pressed.
    while True:
        box.exec()
        if box.clickedButton() is copy:
            QApplication.clipboard().setText(details)
            box.setInformativeText("The details were copied to the clipboard.")
            continue
        break
