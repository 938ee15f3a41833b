"""Entry point ``nomgui``: the window appears before torch is imported (that happens in the
recogniser's worker thread)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import appdirs
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

RESOURCES = Path(__file__).resolve().parent.parent / "resources"


def create_window(data_dir: Path, settings: QSettings, resources: Path = RESOURCES):
    from nomgui.mainwindow import MainWindow

    return MainWindow(data_dir, resources, settings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nomgui", description="Few-shot glyph recognition")
    parser.add_argument("--data-dir", type=Path,
                        default=Path(appdirs.user_data_dir("nomgui")),
                        help="class sets and your models (default: %(default)s)")
    args, qt_args = parser.parse_known_args(argv if argv is not None else sys.argv[1:])
    app = QApplication([sys.argv[0], *qt_args])
    app.setApplicationName("nomgui")
    app.setOrganizationName("nomgui")
    settings = QSettings(QSettings.IniFormat, QSettings.UserScope, "nomgui", "nomgui")
    window = create_window(args.data_dir, settings)
    window.show()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
