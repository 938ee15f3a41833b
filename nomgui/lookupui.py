"""Widgets of the Nôm lookup: the transcription line, the recent characters, and the
characters of the whole vocabulary found by a reading (:class:`CharStrip`).

The panel holds no state of its own at rest: the text and the recent characters are a
:class:`~nomgui.lookupset.LookupNotes`, written at every change.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from nomgui.flowlayout import FlowLayout
from nomgui.lookupset import LookupNotes
from nomgui.readings import Readings


class CharStrip(QWidget):
    """A wrapping row of character buttons; a click emits ``clicked(char)``."""

    clicked = Signal(str)

    def __init__(self, readings: Readings, scale: float = 1.6, parent: QWidget | None = None
                 ) -> None:
        super().__init__(parent)
        self.readings, self.scale = readings, scale
        self.flow = FlowLayout(self, spacing=2)
        self.chars: list[str] = []

    def set_chars(self, chars: list[str]) -> None:
        if chars == self.chars:
            return
        self.chars = list(chars)
        while self.flow.count():
            item = self.flow.takeAt(0)
            if item is not None and item.widget() is not None:
                item.widget().deleteLater()
        font = QFont(self.font())
        font.setPointSizeF(font.pointSizeF() * self.scale)
        for ch in self.chars:
            b = QToolButton(self)
            b.setText(ch)
            b.setFont(font)
            b.setAutoRaise(True)
            said = self.readings.of(ch)
            cp = f"U+{ord(ch):04X}" if len(ch) == 1 else ""
            b.setToolTip(f"{ch} {cp}  {', '.join(said)}".strip())
            b.clicked.connect(lambda _=False, c=ch: self.clicked.emit(c))
            self.flow.addWidget(b)
        self.updateGeometry()

    def buttons(self) -> list[QToolButton]:
        return [self.flow.itemAt(i).widget() for i in range(self.flow.count())]


class TranscriptionEdit(QLineEdit):
    """The transcription line. Ctrl+C with nothing selected copies the whole line (the
    window's Ctrl+C copies the best candidate; here the line is what the user means)."""

    copied = Signal(str)

    def keyPressEvent(self, event) -> None:
        if event.matches(QKeySequence.Copy) and not self.hasSelectedText():
            self.copy_all()
            event.accept()
            return
        super().keyPressEvent(event)

    def copy_all(self) -> None:
        QApplication.clipboard().setText(self.text())
        self.copied.emit(self.text())


class LookupPanel(QWidget):
    """Which model and fonts the lookup uses, recent characters, the transcription."""

    charClicked = Signal(str)  # a recent character: append it
    copied = Signal(str)  # the transcription was copied
    changed = Signal()  # the notes changed (written already)

    def __init__(self, notes: LookupNotes, readings: Readings, parent: QWidget | None = None
                 ) -> None:
        super().__init__(parent)
        self.notes = notes
        self.title = QLabel()
        self.title.setObjectName("lookupTitle")
        self.title.setWordWrap(True)
        self.fonts = QLabel()
        self.fonts.setObjectName("lookupFonts")
        self.fonts.setWordWrap(True)
        self.fonts.hide()
        self.recent = CharStrip(readings, 1.5)
        self.recent.setToolTip("Characters you appended or copied recently: click one to "
                               "append it")
        self.recent.clicked.connect(self.charClicked)
        self.edit = TranscriptionEdit()
        self.edit.setObjectName("transcription")
        big = QFont(self.edit.font())
        big.setPointSizeF(big.pointSizeF() * 1.6)
        self.edit.setFont(big)
        self.edit.setPlaceholderText("Transcription: Enter or a double click on a candidate "
                                     "appends its character")
        self.edit.setText(notes.transcription)
        self.edit.textChanged.connect(self._text_changed)
        self.edit.copied.connect(self.copied)
        self.copy_button = QPushButton("Copy")
        self.copy_button.setToolTip("Copy the whole transcription (Ctrl+C in the line)")
        self.copy_button.clicked.connect(lambda: self.edit.copy_all())
        self.back_button = QToolButton()
        self.back_button.setText("⌫")
        self.back_button.setToolTip("Remove the last character")
        self.back_button.clicked.connect(lambda: self.edit.setText(self.edit.text()[:-1]))
        self.clear_button = QToolButton()
        self.clear_button.setText("Clear")
        self.clear_button.setToolTip("Empty the transcription (Ctrl+Z in the line undoes)")
        self.clear_button.clicked.connect(self._clear)

        recent_row = QHBoxLayout()
        recent_label = QLabel("Recent:")
        recent_label.setAlignment(Qt.AlignLeft | Qt.AlignVCenter)
        recent_row.addWidget(recent_label)
        recent_row.addWidget(self.recent, 1)
        line_row = QHBoxLayout()
        line_row.addWidget(self.edit, 1)
        line_row.addWidget(self.back_button)
        line_row.addWidget(self.clear_button)
        line_row.addWidget(self.copy_button)
        v = QVBoxLayout(self)
        v.setContentsMargins(6, 0, 6, 0)
        v.addWidget(self.title)
        v.addWidget(self.fonts)
        v.addLayout(recent_row)
        v.addLayout(line_row)
        self.recent.set_chars(notes.recent)

    def _clear(self) -> None:
        self.edit.selectAll()
        self.edit.del_()  # through the line's own undo, unlike setText

    def _text_changed(self, text: str) -> None:
        self.notes.transcription = text
        self._save()

    def _save(self) -> None:
        try:
            self.notes.save()
        except OSError as exc:
            self.title.setText(f"The transcription could not be saved: {exc.strerror or exc}")
        self.changed.emit()

    def append(self, text: str) -> None:
        """``text`` goes at the end of the line (where the user types next) and becomes
        the most recent character."""
        self.edit.end(False)
        self.edit.insert(text)  # on the line's undo history
        self.remember(text)

    def remember(self, text: str) -> None:
        self.notes.remember(text)
        self.recent.set_chars(self.notes.recent)
        self._save()

    def set_model(self, text: str) -> None:
        self.title.setText(text)

    def set_missing_fonts(self, lines: list[str]) -> None:
        self.fonts.setText("<b>Fonts not installed</b> (their renderings are missing from "
                           "the lookup): " + "; ".join(lines) if lines else "")
        self.fonts.setVisible(bool(lines))
