"""Entry point ``nomgui``: the window appears before torch is imported (that happens in the
recogniser's worker thread)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import appdirs
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication, QMessageBox

from nomgui import errors
from nomgui.bindingcheck import binding_problem
from nomgui.datalock import DataFolderError, DataFolderLock

RESOURCES = Path(__file__).resolve().parent.parent / "resources"
DEFAULT_DATA_DIR = Path(appdirs.user_data_dir("nomgui"))


def open_settings(data_dir: Path) -> QSettings:
    """The window's settings live in the data folder (``settings.ini``), so ``--data-dir``
    keeps everything of a session together and out of the user's home. Settings an older
    nomgui kept in the platform's place are taken over once, for the default folder."""
    path = data_dir / "settings.ini"
    settings = QSettings(str(path), QSettings.IniFormat)
    if not path.exists() and data_dir == DEFAULT_DATA_DIR:
        old = QSettings(QSettings.IniFormat, QSettings.UserScope, "nomgui", "nomgui")
        for key in old.allKeys():
            settings.setValue(key, old.value(key))
    return settings


def create_window(data_dir: Path, settings: QSettings, resources: Path = RESOURCES):
    from nomgui.mainwindow import MainWindow

    return MainWindow(data_dir, resources, settings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nomgui", description="Few-shot glyph recognition")
    parser.add_argument("--data-dir", type=Path,
                        default=DEFAULT_DATA_DIR,
                        help="class sets and your models (default: %(default)s)")
    args, qt_args = parser.parse_known_args(argv if argv is not None else sys.argv[1:])
    problem = binding_problem()
    if problem:  # refuse now rather than abort mid-drawing and lose the user's work
        print(problem, file=sys.stderr)
        return 2
    app = QApplication([sys.argv[0], *qt_args])
    app.setApplicationName("nomgui")
    app.setOrganizationName("nomgui")
    # One app per data folder (a second one would lose the first one's renames), and a
    # folder that cannot be written is said at once, not a traceback.
    lock = DataFolderLock(args.data_dir)
    try:
        lock.acquire()
    except DataFolderError as exc:
        print(f"nomgui: {exc}", file=sys.stderr)
        QMessageBox.critical(None, "nomgui", str(exc))
        return 2
    settings = open_settings(Path(args.data_dir))
    window = None
    hook = errors.install(Path(args.data_dir) / "logs",
                          save_work=lambda: window.save_work() if window is not None else None)
    window = create_window(args.data_dir, settings)
    window.show()
    code = app.exec()
    hook.uninstall()
    # A worker still inside a torch call is waited for at exit (nomgui.recognizer), or
    # left behind by run()'s os._exit: Qt never destroys a running thread.
    return code


def run() -> None:
    """The ``nomgui`` command: :func:`main`, then leave at once.

    Everything of the user's is written (atomically) and the settings are synced when the
    window closes; the interpreter's own teardown of torch and Qt then takes seconds, during
    which the data folder stays locked and a relaunch would be refused.
    """
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
