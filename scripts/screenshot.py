"""Screenshot of the running app for the README: a real window on an X server.

    xvfb-run -a -s "-screen 0 1280x800x24" python scripts/screenshot.py docs/screenshot.png

Starts the app with a fresh data folder (bundled model, starter class set), draws a "7"
with simulated mouse events, waits for the candidates and grabs the whole screen.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshot.png")
    theme = sys.argv[2] if len(sys.argv) > 2 else "light"
    app = QApplication(sys.argv[:1])
    from nomgui.app import RESOURCES
    from nomgui.mainwindow import MainWindow
    from tests.gui.conftest import draw_stroke, line

    tmp = Path(tempfile.mkdtemp())
    settings = QSettings(str(tmp / "s.ini"), QSettings.IniFormat)
    settings.setValue("view/theme", theme)
    w = MainWindow(tmp / "data", RESOURCES, settings)
    w.resize(1200, 760)
    w.move(40, 20)
    w.show()

    def draw() -> None:
        if not w.fitted:
            QTimer.singleShot(200, draw)
            return
        draw_stroke(w.canvas, line(70, 60, 190, 60))
        draw_stroke(w.canvas, line(190, 60, 110, 210))
        QTimer.singleShot(1500, grab)

    def grab() -> None:
        out.parent.mkdir(parents=True, exist_ok=True)
        app.primaryScreen().grabWindow(0).save(str(out))
        print(f"wrote {out}; candidates: {w.candidates.labels}")
        w.close()
        app.quit()

    QTimer.singleShot(500, draw)
    app.exec()


if __name__ == "__main__":
    main()
