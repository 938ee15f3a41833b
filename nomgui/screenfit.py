"""Window sizes that fit the screen, whatever its size and QT_SCALE_FACTOR."""

from __future__ import annotations

from PySide6.QtCore import QRect
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QWidget


def available(widget: QWidget, parent: QWidget | None = None) -> QRect | None:
    """The usable area of the screen the window is (or will be) on, in logical pixels
    (which already hold the scale factor); None without a screen."""
    screen = (parent.screen() if parent is not None else widget.screen()) or \
        QGuiApplication.primaryScreen()
    rect = screen.availableGeometry() if screen is not None else None
    return rect if rect is not None and rect.width() > 0 else None


def resize_to_fit(widget: QWidget, width: int, height: int, parent: QWidget | None = None,
                  fraction: float = 0.9) -> None:
    """Resize to ``width`` x ``height``, or to ``fraction`` of the screen if that is less."""
    rect = available(widget, parent)
    if rect is None:
        widget.resize(width, height)
        return
    widget.resize(min(width, int(rect.width() * fraction)),
                  min(height, int(rect.height() * fraction)))
