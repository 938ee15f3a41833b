from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPointF, QSettings, Qt
from PySide6.QtGui import QAction, QMouseEvent
from PySide6.QtWidgets import QApplication, QInputDialog, QMessageBox

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def resources(tmp_path_factory) -> Path:
    """A copy of the bundled resources (models + starter set)."""
    dest = tmp_path_factory.mktemp("resources")
    shutil.copytree(REPO / "resources", dest, dirs_exist_ok=True)
    assert list((dest / "models").glob("*.pt")), "no bundled model in resources/models"
    return dest


class Dialogs:
    """Stands in for modal dialogs: answers queued in advance, messages recorded."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.items: list[str] = []
        self.offered: list[str] = []  # the choices the last item dialog listed
        self.current = 0  # and the one it opened on
        self.warnings: list[str] = []
        self.question = QMessageBox.Yes


@pytest.fixture
def dialogs(monkeypatch) -> Dialogs:
    d = Dialogs()
    monkeypatch.setattr(QInputDialog, "getText",
                        staticmethod(lambda *a, **k: (d.texts.pop(0), True)))

    def get_item(_parent, _title, _label, items, *a, **k):
        d.offered = list(items)
        d.current = a[0] if a else k.get("current", 0)  # the choice it opened on
        return d.items.pop(0), True

    monkeypatch.setattr(QInputDialog, "getItem", staticmethod(get_item))
    monkeypatch.setattr(QMessageBox, "warning",
                        staticmethod(lambda _p, title, text, *a: d.warnings.append(
                            f"{title}: {text}")))
    monkeypatch.setattr(QMessageBox, "question", staticmethod(lambda *a, **k: d.question))
    return d


@pytest.fixture
def make_window(qtbot, tmp_path, resources):
    """Build a MainWindow on a per-test data folder and settings file; waits until the
    model is loaded and the class set fitted (or failed to)."""
    from nomgui.mainwindow import MainWindow

    def make(data_dir: Path | None = None, wait: bool = True) -> MainWindow:
        settings = QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat)
        w = MainWindow(data_dir or tmp_path / "data", resources, settings)
        qtbot.addWidget(w)
        w.show()
        if wait:
            qtbot.waitUntil(lambda: w.model is not None, timeout=60000)
            qtbot.waitUntil(lambda: w.fitted or w.message.isVisible(), timeout=60000)
        return w

    return make


def menu_action(window, text: str) -> QAction:
    """A window's action by its menu text ('&' ignored); Undo and Redo by their prefix,
    since their text names the step ("Undo teach: ...")."""
    def plain(a: QAction) -> str:
        return a.text().replace("&", "")
    if text in ("Undo", "Redo"):
        return next(a for a in window.findChildren(QAction)
                    if plain(a).startswith(text) and a.shortcut().toString())
    return next(a for a in window.findChildren(QAction) if plain(a) == text)


def draw_stroke(canvas, points: list[tuple[float, float]]) -> None:
    """Real mouse press / move / release events, in paper coordinates (0..256)."""
    r = canvas._paper_rect()

    def widget_pos(x: float, y: float) -> QPointF:
        return QPointF(r.x() + x * r.width() / 256, r.y() + y * r.height() / 256)

    def send(kind, pos, button, buttons) -> None:
        ev = QMouseEvent(kind, pos, canvas.mapToGlobal(pos), button, buttons,
                         Qt.NoModifier)
        QApplication.sendEvent(canvas, ev)

    first = widget_pos(*points[0])
    send(QEvent.MouseButtonPress, first, Qt.LeftButton, Qt.LeftButton)
    for x, y in points[1:]:
        send(QEvent.MouseMove, widget_pos(x, y), Qt.NoButton, Qt.LeftButton)
    send(QEvent.MouseButtonRelease, widget_pos(*points[-1]), Qt.LeftButton, Qt.NoButton)


def line(x0, y0, x1, y1, n=12) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in zip(np.linspace(x0, x1, n), np.linspace(y0, y1, n),
                                                 strict=True)]
