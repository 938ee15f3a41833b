"""The candidates list: the model's top answers for the glyph, best first.

Rank, character (large), class name with quốc ngữ readings, and a probability bar. A click
or double click only highlights a row; Enter (or the window's Teach button) teaches the
highlighted one, so a stray click never writes to the class set.

In the Nôm lookup (:meth:`CandidateTable.set_lookup`) the character is larger, Enter and
a double click *accept* a candidate (the window appends it to the transcription) and
teaching is the Teach button or Shift+1-5: accepting writes nothing to the class set.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QProgressBar,
    QTableWidget,
    QTableWidgetItem,
)

from nomgui.readings import Readings

UNSURE_TIP = ("Below this model's calibrated confidence: the glyph is far from every class. "
              "The percentage only compares the classes with each other.")

# The line shown above the buttons when the best match is below the calibrated confidence:
# for a class set of the user's, and for the lookup, whose classes are fixed code points
# (a new class cannot be made there; a character is found by its reading instead). Two
# lines at most in the default window: its room is kept while hidden, and the candidates
# above it need the rows.
NONE_OF_THESE_SET = ("<b>None of these?</b> The glyph is far from every class: probably "
                     "one you have not taught. Ctrl+Shift+N makes it a new class.")
NONE_OF_THESE_LOOKUP = ("<b>None of these?</b> The glyph is far from every character's "
                        "renderings: find it by its reading (Ctrl+F).")


class CandidateTable(QTableWidget):
    """Top-k candidates: rank, character, label, probability bar."""

    picked = Signal(int)  # Enter: teach this row (a class set)
    accepted = Signal(int)  # Enter or double click in the lookup: take this row's character

    def __init__(self) -> None:
        super().__init__(0, 4)
        self.setHorizontalHeaderLabels(["#", "", "class", "probability"])
        self.verticalHeader().hide()
        self.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.setSelectionMode(QAbstractItemView.SingleSelection)
        hh = self.horizontalHeader()
        hh.setSectionResizeMode(0, QHeaderView.ResizeToContents)
        hh.setSectionResizeMode(1, QHeaderView.ResizeToContents)
        hh.setSectionResizeMode(2, QHeaderView.Stretch)
        hh.setSectionResizeMode(3, QHeaderView.Fixed)
        self.setColumnWidth(3, 130)
        self.setToolTip("Click or double-click to highlight a candidate; Enter teaches it (the "
                        "glyph becomes an example of that class). 1-5 copy, Shift+1-5 teach.")
        # A double click only highlights: teaching writes to the class set, so it takes a
        # deliberate key or button, never a stray click.
        self.labels: list[str] = []
        self.lookup = False
        self._scale = 1.8
        self._tip = self.toolTip()
        self.cellDoubleClicked.connect(self._double_clicked)

    def set_lookup(self, on: bool) -> None:
        """The Nôm lookup's way: large characters; Enter / double click accept."""
        if on == self.lookup:
            return
        self.lookup = on
        self._scale = 2.6 if on else 1.8
        big = QFont(self.font())
        big.setPointSizeF(big.pointSizeF() * self._scale)
        for i in range(self.rowCount()):
            self.item(i, 1).setFont(big)
        self.setToolTip(
            "Enter or a double click appends the candidate's character to the "
            "transcription; Teach (Shift+1-5) makes the glyph an example of it. 1-5 copy."
            if on else self._tip)
        self.resizeRowsToContents()

    def _double_clicked(self, row: int, _col: int) -> None:
        if self.lookup and 0 <= row < len(self.labels):
            self.accepted.emit(row)

    def keyPressEvent(self, event) -> None:
        if event.key() in (Qt.Key_Return, Qt.Key_Enter) and self.currentRow() >= 0:
            (self.accepted if self.lookup else self.picked).emit(self.currentRow())
            event.accept()
            return
        super().keyPressEvent(event)

    def highlighted(self) -> int | None:
        """The candidate row the user sees highlighted, if any."""
        rows = self.selectionModel().selectedRows()
        return rows[0].row() if rows and rows[0].row() < len(self.labels) else None

    def show_candidates(self, top: list[tuple[str, float]], chars: dict[str, str],
                        readings: Readings | None = None, unsure: bool = False) -> None:
        """Fill the rows in place: the items and probability bars of earlier answers are
        reused (rows beyond the answer are hidden), so an answer per stroke creates no
        widgets (creating and destroying them cost time and, in PySide6 6.11, references).

        ``unsure``: the best match is below the model's calibrated confidence. The
        percentages only compare the classes with each other (they sum to 100 whatever the
        glyph), so a far glyph can still read 99%: the bars are greyed then, and say why."""
        self.labels = [label for label, _ in top]
        big = QFont(self.font())
        big.setPointSizeF(big.pointSizeF() * self._scale)
        if self.rowCount() < len(top):
            for i in range(self.rowCount(), len(top)):
                self.insertRow(i)
                for col in range(3):
                    self.setItem(i, col, QTableWidgetItem())
                self.item(i, 0).setText(str(i + 1))
                self.item(i, 1).setFont(big)
                bar = QProgressBar()
                bar.setRange(0, 1000)
                bar.setTextVisible(True)
                self.setCellWidget(i, 3, bar)
        for i, (label, prob) in enumerate(top):
            self.item(i, 1).setText(chars.get(label, ""))
            said = readings.of(chars.get(label, "")) if readings else []
            # The lookup's label is the character itself, shown large beside: its code point.
            name = f"U+{ord(label):04X}" if self.lookup and len(label) == 1 else label
            self.item(i, 2).setText(f"{name}  ·  {', '.join(said)}" if said else name)
            bar = self.cellWidget(i, 3)
            bar.setValue(round(prob * 1000))
            bar.setFormat(f"{100 * prob:.1f}%")
            bar.setEnabled(not unsure)
            bar.setToolTip(UNSURE_TIP if unsure else "")
        for i in range(self.rowCount()):
            self.setRowHidden(i, i >= len(top))
        self.resizeRowsToContents()
        if top:
            self.selectRow(0)
        else:
            self.clearSelection()
