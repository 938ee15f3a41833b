"""Light and dark palettes on the Fusion style (both complete, so every widget is legible)."""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

THEMES = ("light", "dark")


def apply_theme(app: QApplication, name: str) -> None:
    app.setStyle("Fusion")
    if name == "dark":
        p = QPalette()
        base, window, text = QColor(35, 35, 38), QColor(48, 48, 52), QColor(230, 230, 230)
        for role, color in [
            (QPalette.Window, window), (QPalette.WindowText, text), (QPalette.Base, base),
            (QPalette.AlternateBase, window), (QPalette.ToolTipBase, window),
            (QPalette.ToolTipText, text), (QPalette.Text, text), (QPalette.Button, window),
            (QPalette.ButtonText, text), (QPalette.BrightText, QColor(255, 90, 90)),
            (QPalette.Highlight, QColor(64, 128, 200)), (QPalette.HighlightedText, text),
            (QPalette.Link, QColor(110, 170, 255)), (QPalette.Mid, QColor(90, 90, 96)),
            (QPalette.PlaceholderText, QColor(150, 150, 150)),
        ]:
            p.setColor(role, color)
        p.setColor(QPalette.Disabled, QPalette.Text, QColor(120, 120, 120))
        p.setColor(QPalette.Disabled, QPalette.ButtonText, QColor(120, 120, 120))
        app.setPalette(p)
    else:
        app.setPalette(app.style().standardPalette())
