"""The annotation window: the current model proposes a label for each unlabelled glyph,
least confident first; the user accepts (Enter), picks another candidate (1-5), types the
right label or a reading to complete (a new label makes a new class), skips (Space), marks
a box as not a glyph (Delete), accepts all proposals above a confidence at once, or undoes
(Ctrl+Z). Every decision is saved at once (:mod:`nomgui.annotation`). Accepted glyphs can
join the class set; the session exports as a labelled data set, a page session with the
page export of :mod:`nomgui.export`. Pages are cut into glyphs in :class:`PageDialog`, whose
page view is :mod:`nomgui.pageview`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from PySide6.QtCore import QEvent, QModelIndex, Qt, QTimer
from PySide6.QtGui import (
    QFont,
    QFontMetrics,
    QIcon,
    QImage,
    QKeySequence,
    QPixmap,
    QShortcut,
    QStandardItem,
    QStandardItemModel,
)
from PySide6.QtWidgets import (
    QComboBox,
    QCompleter,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from nomgui.annotation import (
    NOT_A_GLYPH,
    PENDING,
    AnnotationError,
    Item,
    Session,
    SessionStore,
)
from nomgui.classset import atomic_write
from nomgui.export import ExportError, export_pages, pages_from_items
from nomgui.flowlayout import FlowLayout
from nomgui.labelcomplete import LabelCompletions
from nomgui.pages import ORDERS, cut_page, load_gray
from nomgui.pageview import PageView
from nomgui.readings import Readings
from nomgui.recognizer import Recognizer
from nomgui.safepath import is_regular_file
from nomgui.screenfit import resize_to_fit

TOP_K = 5
PAGE_NOTES = "page-notes.json"


def _pixmap(path: Path, size: int) -> QPixmap:
    pm = QPixmap(str(path))
    return pm.scaled(size, size, Qt.KeepAspectRatio, Qt.SmoothTransformation) if not \
        pm.isNull() else pm


class PageDialog(QDialog):
    """Cut glyphs out of a page: automatic boxes first, then the user corrects them."""

    ORDER_NAMES: ClassVar[dict[str, str]] = {
        "columns-rtl": "Columns, right to left (Nôm, Hán)", "rows": "Rows, left to right"}

    def __init__(self, page: Path, parent: QWidget | None = None,
                 order: str = "columns-rtl") -> None:
        super().__init__(parent)
        self.page = page
        self.setWindowTitle(f"Cut glyphs from {page.name}")
        self.gray = load_gray(page)
        h, w = self.gray.shape
        qimg = QImage(self.gray.tobytes(), w, h, w, QImage.Format_Grayscale8).copy()
        self.view = PageView(QPixmap.fromImage(qimg), self.gray,
                             cut_page(self.gray, order=order), order)
        self.order_box = QComboBox()
        for key, name in self.ORDER_NAMES.items():
            self.order_box.addItem(name, key)
        self.order_box.setCurrentIndex(list(self.ORDER_NAMES).index(order))
        self.order_box.setToolTip("How the page reads: the boxes are numbered and cut in "
                                  "this order")
        self.order_box.currentIndexChanged.connect(lambda _i: self._order_changed())
        self.hint = QLabel()
        self.hint.setWordWrap(True)
        self.count = QLabel()

        def button(text: str, tip: str, slot) -> QPushButton:
            b = QPushButton(text)
            b.setToolTip(tip)
            b.setFocusPolicy(Qt.NoFocus)  # the keys stay with the page
            b.clicked.connect(lambda: slot())
            return b

        v = self.view
        self.fit_button = button("Fit (0)", "Show the whole page (key 0; + and - or "
                                 "Ctrl+wheel zoom)", v.fit)
        self.zoom_in_button = button("+", "Zoom in (+, Ctrl+wheel)", lambda: v.zoom_by(1.25))
        self.zoom_out_button = button("−", "Zoom out (-, Ctrl+wheel)",
                                      lambda: v.zoom_by(1 / 1.25))
        self.merge_button = button("Merge (M)", "One box covering the selected boxes "
                                   "(Ctrl+click or Shift+drag to select several)",
                                   v.merge_selected)
        self.split_button = button("Split (S)", "Split the selected box in two at its "
                                   "lightest ink gap, across its longer side (Shift+S: across "
                                   "the shorter side)", v.split_selected)
        self.delete_button = button("Delete", "Remove the selected boxes (Delete)",
                                    v.delete_selected)
        self.undo_button = button("Undo", "Undo the last box edit (Ctrl+Z)", v.undo)
        self.redo_button = button("Redo", "Redo (Ctrl+Shift+Z)", v.redo)
        self.again_button = button("Find boxes again", "Cut the page again in the chosen "
                                   "order (undoable)",
                                   lambda: v.set_boxes(cut_page(self.gray, order=v.order)))
        self.clear_button = button("Remove all boxes", "Remove every box (undoable)",
                                   lambda: v.set_boxes([]))
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.button(QDialogButtonBox.Ok).setText("Cut glyphs")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        for b in buttons.buttons():
            b.setFocusPolicy(Qt.NoFocus)
        # the tools wrap onto more lines, so the dialog fits a small screen or a large
        # QT_SCALE_FACTOR
        tools = FlowLayout()
        order = QWidget()
        order_row = QHBoxLayout(order)
        order_row.setContentsMargins(0, 0, 0, 0)
        order_row.addWidget(QLabel("Reading order:"))
        order_row.addWidget(self.order_box)
        tools.addWidget(order)
        for b in (self.fit_button, self.zoom_in_button, self.zoom_out_button,
                  self.merge_button, self.split_button, self.delete_button,
                  self.undo_button, self.redo_button, self.again_button, self.clear_button):
            tools.addWidget(b)
        row = QHBoxLayout()
        row.addWidget(self.count, 1)
        row.addWidget(buttons)
        layout = QVBoxLayout(self)
        layout.addWidget(self.hint)
        layout.addLayout(tools)
        layout.addWidget(self.view, 1)
        layout.addLayout(row)
        v.changed.connect(self._changed)
        self._changed()
        # fit the screen whatever its size and QT_SCALE_FACTOR (geometry is in logical
        # pixels, which already hold the scale factor)
        resize_to_fit(self, 1000, 800, parent)
        v.setFocus()

    def _order_changed(self) -> None:
        self.view.set_order(self.order_box.currentData())
        self.view.setFocus()

    def _changed(self) -> None:
        v = self.view
        if v.order == "columns-rtl":
            how = ("in vertical columns, right to left, each top to bottom (numbered on the "
                   "page)")
        else:
            how = "in horizontal rows, top to bottom, each left to right (numbered on the page)"
        self.hint.setText(f"Boxes are cut {how}. Drag on the paper: add a box; click: "
                          "select; Delete, M merge, S split, Ctrl+Z undo (more: hover here).")
        self.hint.setToolTip(
            "Drag on the paper to add a box. Click a box to select it (Ctrl+click, "
            "Shift+drag: several); drag it to move it, drag its edge or corner to resize "
            "it. Delete removes the selected boxes, M merges them into one, S splits the "
            "selected box at its lightest ink gap (across its longer side; Shift+S across "
            "the shorter). Tab / Shift+Tab and the arrows go through the boxes in reading "
            "order. Ctrl+Z / Ctrl+Shift+Z undo / redo, Ctrl+A selects all. Ctrl+wheel or + "
            "and - zoom, 0 fits the page; the middle button or Space+drag pans.")
        if self.order_box.currentData() != v.order:  # undo went back over an order change
            self.order_box.blockSignals(True)
            self.order_box.setCurrentIndex(list(self.ORDER_NAMES).index(v.order))
            self.order_box.blockSignals(False)
        n, k = len(v.edit.boxes), len(v.selected)
        self.count.setText(f"{n} boxes" + (f", {k} selected" if k else ""))
        self.merge_button.setEnabled(k >= 2)
        self.split_button.setEnabled(k == 1 or (k == 0 and v.current is not None))
        self.delete_button.setEnabled(k >= 1)
        self.undo_button.setEnabled(v.edit.can_undo())
        self.redo_button.setEnabled(v.edit.can_redo())


class ProposalButton(QPushButton):
    """A proposal: its key, the character large (at least twice the body text), its
    readings and the model's confidence."""

    def __init__(self, index: int) -> None:
        super().__init__()
        self.index = index
        self.key = QLabel(f"{index + 1}")
        self.glyph = QLabel()
        big = QFont(self.font())
        big.setPointSizeF(max(2.2 * self.font().pointSizeF(), 20.0))
        self.glyph.setFont(big)
        self.detail = QLabel()
        row = QHBoxLayout(self)
        row.setContentsMargins(8, 2, 8, 2)
        row.addWidget(self.key)
        row.addWidget(self.glyph)
        row.addWidget(self.detail, 1)
        for label in (self.key, self.glyph, self.detail):
            label.setAttribute(Qt.WA_TransparentForMouseEvents)
        self.setMinimumHeight(QFontMetrics(big).height() + 8)
        self.setToolTip(f"Key {index + 1} (in the list): this glyph is this class")
        self.show_proposal(None)

    def show_proposal(self, proposal: tuple[str, float, list[str]] | None) -> None:
        if proposal is None:
            self.glyph.setText("")
            self.detail.setText("")
            self.setAccessibleName(f"proposal {self.index + 1}")
            self.setEnabled(False)
            return
        label, p, said = proposal
        self.glyph.setText(label if len(label) <= 2 else "")
        name = "" if len(label) <= 2 else label
        self.detail.setText("   ".join(t for t in (name, " · ".join(said[:4]),
                                                    f"{100 * p:.1f}%") if t))
        self.setAccessibleName(f"{self.index + 1} {label} {100 * p:.1f}%")
        self.setEnabled(True)


class AnnotateWindow(QWidget):
    """One annotation session at a time; opened from File > Annotate.

    Keys while the list has focus: Enter accepts the proposal, 1-5 pick proposal N, Space
    skips, Delete marks the box as not a glyph, Ctrl+Z undoes; any other printable key
    starts typing in the label box (digits there are part of the label). In the label box
    Enter labels the glyph with what is typed (empty: accepts the proposal), Esc goes back
    to the list."""

    def __init__(self, store: SessionStore, recognizer: Recognizer,
                 class_labels: Callable[[], list[str]],
                 add_to_classset: Callable[[list[tuple[str, Path]]], int],
                 parent: QWidget | None = None, readings: Readings | None = None) -> None:
        super().__init__(parent, Qt.Window)
        self.store, self.recognizer = store, recognizer
        self.class_labels, self.add_to_classset = class_labels, add_to_classset
        self.readings = readings or Readings({})
        self.completions = LabelCompletions(self.readings)
        self.session: Session | None = None
        self.current: Item | None = None
        self.page_order = "columns-rtl"  # the reading order chosen for the last page cut
        # the open session's page notes (PAGE_NOTES beside its session.json): how its page
        # reads, and the reading picked for a glyph from the reading list
        self.session_order = "columns-rtl"
        self.chosen_readings: dict[str, str] = {}  # item id -> the reading picked for it
        self._batches: list[tuple[int, int]] = []  # (history length after, decisions)
        self._request = -1
        self.setWindowTitle("Annotate — nomgui")
        resize_to_fit(self, 980, 640, parent)

        self.open_folder_button = QPushButton("Open folder of glyphs…")
        self.open_page_button = QPushButton("Cut glyphs from a page…")
        self.open_page_button.setToolTip("Each page becomes a new annotation session")
        self.sessions_button = QPushButton("Sessions…")
        self.propose_button = QPushButton("Propose again")
        self.propose_button.setToolTip("Ask the current model again (done by itself when "
                                       "the class set or the model changes)")
        self.join_button = QPushButton("Add labelled glyphs to the class set")
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip(
            "Pages: transcription (Nôm and quốc ngữ), COCO JSON, YOLO, manifest.csv and "
            "U+XXXX class folders of the original pixels. Folders of glyphs: class folders "
            "and manifest.csv")
        top = FlowLayout()  # wraps on a narrow screen or a large QT_SCALE_FACTOR
        for b in (self.open_folder_button, self.open_page_button, self.sessions_button,
                  self.propose_button, self.join_button, self.export_button):
            top.addWidget(b)

        self.queue = QListWidget()
        self.queue.setIconSize(QPixmap(40, 40).size())
        self.queue.setMinimumWidth(160)
        self.queue.setToolTip("Enter accepts, 1-5 pick a proposal, Space skips, Delete: not "
                              "a glyph; typing a letter goes to the label box")
        self.image = QLabel()
        self.image.setAlignment(Qt.AlignCenter)
        self.image.setMinimumSize(120, 120)
        self.image.setStyleSheet("background: white; border: 1px solid #aaa")
        self.proposal_buttons: list[ProposalButton] = []
        props = QVBoxLayout()
        for i in range(TOP_K):
            b = ProposalButton(i)
            b.clicked.connect(lambda _=False, i=i: self.pick(i))
            self.proposal_buttons.append(b)
            props.addWidget(b)
        self.label_edit = QLineEdit()
        self.label_edit.setPlaceholderText("type a reading (sau, sáu), a character or a "
                                           "label, Enter")
        self.label_edit.setToolTip(
            "Type a quốc ngữ reading with or without diacritics and pick the character from "
            "the list, or type a character or a label; Enter labels the glyph (a new label "
            "makes a new class; empty: accepts the proposal). Digits typed here are part of "
            "the label: 1-5 pick proposals only from the list. Esc: back to the list.")
        self.label_edit.returnPressed.connect(self.correct_typed)
        self.label_edit.textEdited.connect(self._complete)
        self.label_edit.installEventFilter(self)
        self.completer_model = QStandardItemModel(self)
        self.completer = QCompleter(self.completer_model, self)
        self.completer.setCompletionMode(QCompleter.UnfilteredPopupCompletion)
        self.completer.setCompletionRole(Qt.UserRole)  # the character goes into the box
        self.completer.setMaxVisibleItems(12)
        self.completer.activated[QModelIndex].connect(self._completion_chosen)
        self.completer.highlighted[QModelIndex].connect(self._completion_chosen)
        self._picked: tuple[str, str] = ("", "")  # (character, reading) from the list
        self._labelled_last = ""  # id of the glyph the label box labelled last
        self.label_edit.setCompleter(self.completer)
        # Enter on a character of the list labels the glyph with it at once (installed after
        # the completer's own filter, so it runs first)
        self.completer.popup().installEventFilter(self)
        self.accept_button = QPushButton("Accept (Enter)")
        self.skip_button = QPushButton("Skip (Space)")
        self.noise_button = QPushButton("Not a glyph (Delete)")
        self.noise_button.setToolTip("This box holds no character (a stain, a fragment, a "
                                     "line): decided, never labelled or exported; Ctrl+Z "
                                     "takes it back")
        self.undo_button = QPushButton("Undo (Ctrl+Z)")
        self.accept_button.clicked.connect(lambda: self.accept_current())
        self.skip_button.clicked.connect(lambda: self.skip_current())
        self.noise_button.clicked.connect(lambda: self.not_a_glyph())
        self.undo_button.clicked.connect(lambda: self.undo())
        actions = FlowLayout()
        for b in (self.accept_button, self.skip_button, self.noise_button, self.undo_button):
            actions.addWidget(b)
        self.threshold = QSpinBox()
        self.threshold.setRange(1, 100)
        self.threshold.setValue(95)
        self.threshold.setSuffix("%")
        self.threshold.setToolTip("Confidence at or above which 'Accept all' accepts")
        self.accept_all_button = QPushButton()
        self.accept_all_button.setToolTip("Accept every glyph still to do whose proposal is "
                                          "this sure; one Ctrl+Z takes them all back")
        self.accept_all_button.clicked.connect(lambda: self.accept_all())
        self.threshold.valueChanged.connect(lambda _v: self._update())
        bulk = QHBoxLayout()
        bulk.addWidget(self.accept_all_button)
        bulk.addWidget(self.threshold)
        bulk.addStretch(1)
        self.info = QLabel()
        self.info.setWordWrap(True)
        panel = QWidget()
        right = QVBoxLayout(panel)
        right.setContentsMargins(0, 0, 0, 0)
        right.addWidget(self.image, 2)
        right.addLayout(props)
        right.addWidget(self.label_edit)
        right.addLayout(actions)
        right.addLayout(bulk)
        right.addWidget(self.info)
        # the panel scrolls rather than pushing the window past a small screen (or a large
        # QT_SCALE_FACTOR): large glyphs take room
        scroll = QScrollArea()
        scroll.setWidget(panel)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.NoFrame)
        body = QHBoxLayout()
        body.addWidget(self.queue, 1)
        body.addWidget(scroll, 2)
        self.status = QLabel("Open a folder of glyph images or cut glyphs from a page.")
        self.status.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(body, 1)
        layout.addWidget(self.status)

        # clicked(bool) would pass False into the optional path arguments: wrap every slot
        # that takes arguments so a click always means "ask the user".
        self.open_folder_button.clicked.connect(lambda: self.open_folder())
        self.open_page_button.clicked.connect(lambda: self.open_page())
        self.sessions_button.clicked.connect(lambda: self.choose_session())
        self.propose_button.clicked.connect(lambda: self.propose())
        self.join_button.clicked.connect(lambda: self.join_classset())
        self.export_button.clicked.connect(lambda: self.export())
        self.queue.currentItemChanged.connect(self._queue_selected)
        recognizer.worker.proposed.connect(self._on_proposed)
        # the class set (or the model) changed and was fitted again: propose again
        # (a bound method, so it runs in this thread, queued from the worker's)
        recognizer.worker.fitted.connect(self._class_set_changed)
        # Enter, Space, Delete and typing on the queue: see eventFilter. The shortcuts do not
        # fire while the label box has focus, since a line edit takes printable keys.
        self.queue.installEventFilter(self)
        self.queue.itemDoubleClicked.connect(lambda _item: self.accept_current())
        keys = [(QKeySequence.Undo, self.undo)]
        keys += [(QKeySequence(str(i + 1)), lambda i=i: self.pick(i)) for i in range(TOP_K)]
        for seq, slot in keys:
            sc = QShortcut(seq, self)
            sc.setContext(Qt.WidgetWithChildrenShortcut)
            sc.activated.connect(slot)
        self._update()

    def eventFilter(self, obj, event) -> bool:
        if obj is self.queue and event.type() == QEvent.InputMethod \
                and event.commitString():
            # text composed by an input method (Telex, VNI) while the list has focus
            self.label_edit.setFocus()
            self.label_edit.insert(event.commitString())
            self._complete(self.label_edit.text())
            return True
        if event.type() != QEvent.KeyPress:
            return super().eventFilter(obj, event)
        key, mods = event.key(), event.modifiers()
        popup = self.completer.popup()
        if obj is popup and key in (Qt.Key_Return, Qt.Key_Enter):
            index = popup.currentIndex()
            if not index.isValid():
                return super().eventFilter(obj, event)
            self._picked = (index.data(Qt.UserRole), index.data(Qt.UserRole + 1) or "")
            popup.hide()
            self.label_edit.setText(self._picked[0])
            self.correct_typed()
            return True
        if obj is self.label_edit:
            if key == Qt.Key_Escape and not self.completer.popup().isVisible():
                self.label_edit.clear()
                self.queue.setFocus()
                return True
            return super().eventFilter(obj, event)
        if obj is self.queue:
            if key in (Qt.Key_Return, Qt.Key_Enter):
                self.accept_current()
                return True
            if key == Qt.Key_Space and not mods & ~Qt.KeypadModifier:
                self.skip_current()
                return True
            if key in (Qt.Key_Delete, Qt.Key_Backspace):
                self.not_a_glyph()
                return True
            text = event.text()
            if (text and text.isprintable() and not text.isspace()
                    and not mods & (Qt.ControlModifier | Qt.AltModifier | Qt.MetaModifier)):
                # typing starts a label: the key is not lost
                self.label_edit.setFocus()
                self.label_edit.insert(text)
                self._complete(self.label_edit.text())
                return True
        return super().eventFilter(obj, event)

    # -- sessions --------------------------------------------------------------------------
    def set_session(self, session: Session) -> None:
        self.session = session
        self._batches.clear()
        self._load_notes()
        self.setWindowTitle(f"Annotate: {session.name} — nomgui")
        self._rebuild()
        if any(not i.proposals for i in session.items if i.decision == PENDING):
            self.propose()

    def _new_session(self, default: str) -> Session | None:
        name, ok = QInputDialog.getText(self, "New annotation session",
                                        "Name of the new annotation session:", text=default)
        if not ok or not name.strip():
            return None
        try:
            return self.store.create(name.strip())
        except (AnnotationError, OSError) as exc:
            QMessageBox.warning(self, "Annotate", str(exc))
            return None

    def open_folder(self, folder: Path | None = None) -> None:
        if folder is None:
            chosen = QFileDialog.getExistingDirectory(self, "Folder of unlabelled glyphs")
            if not chosen:
                return
            folder = Path(chosen)
        session = self._new_session(Path(folder).name)
        if session is None:
            return
        try:
            problems = session.add_folder(Path(folder))
        except (AnnotationError, OSError) as exc:
            QMessageBox.warning(self, "Annotate", str(exc))
            return
        if problems:
            QMessageBox.warning(self, "Annotate", f"{len(problems)} file(s) skipped:\n"
                                + "\n".join(problems[:10]))
        self.set_session(session)

    def open_page(self, page: Path | None = None) -> PageDialog | None:
        """Cut a page into glyphs; they go to a new session of their own (one per page),
        not into the session that is open."""
        if page is None:
            chosen, _ = QFileDialog.getOpenFileName(
                self, "Page image", "", "Images (*.png *.jpg *.jpeg *.tif *.tiff *.bmp)")
            if not chosen:
                return None
            page = Path(chosen)
        try:
            dialog = PageDialog(Path(page), self, self.page_order)
        except (OSError, ValueError) as exc:
            QMessageBox.warning(self, "Annotate", f"{Path(page).name} is not an image nomgui "
                                f"can read ({exc.__class__.__name__})")
            return None
        if dialog.exec() != QDialog.Accepted:
            return dialog
        self.page_order = dialog.view.order
        boxes = dialog.view.boxes()
        if not boxes:
            QMessageBox.warning(self, "Annotate", "No boxes: nothing was cut.")
            return dialog
        session = self._new_session(Path(page).stem)
        if session is None:
            return dialog
        try:
            session.add_boxes(Path(page), boxes)
        except (AnnotationError, OSError) as exc:
            QMessageBox.warning(self, "Annotate", str(exc))
            return dialog
        self.set_session(session)
        self.session_order = dialog.view.order
        self._save_notes()
        return dialog

    def _load_notes(self) -> None:
        """The session's page notes; missing or malformed ones are defaults (they only
        refine the export)."""
        self.session_order, self.chosen_readings = "columns-rtl", {}
        notes = self.session.folder / PAGE_NOTES
        try:
            # a FIFO would block the read, a huge file is not notes
            if not is_regular_file(notes) or notes.stat().st_size > 4_000_000:
                return
            data = json.loads(notes.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if not isinstance(data, dict):
            return
        if data.get("order") in ORDERS:
            self.session_order = data["order"]
        picked = data.get("readings")
        if isinstance(picked, dict):
            self.chosen_readings = {k: v for k, v in picked.items()
                                    if isinstance(k, str) and isinstance(v, str)}

    def _save_notes(self) -> None:
        if self.session is None:
            return
        try:
            atomic_write(self.session.folder / PAGE_NOTES, json.dumps(
                {"order": self.session_order, "readings": self.chosen_readings},
                ensure_ascii=False, indent=1).encode("utf-8"))
        except OSError as exc:
            self.info.setText(f"The page notes were not saved: {exc.strerror or exc}")

    def choose_session(self) -> None:
        sessions = self.store.list()
        if not sessions:
            QMessageBox.warning(self, "Annotate", "There are no annotation sessions yet.")
            return
        names = [f"{name}  ({folder.name})" for folder, name in sessions]
        choice, ok = QInputDialog.getItem(self, "Annotation sessions", "Continue:", names, 0,
                                          False)
        if not ok:
            return
        folder = sessions[names.index(choice)][0]
        try:
            session = Session.open(folder)
        except AnnotationError as exc:
            QMessageBox.warning(self, "Annotate", str(exc))
            return
        self.set_session(session)
        if session.warnings:  # entries refused on opening (e.g. paths leading outside)
            QMessageBox.warning(self, "Annotate", "\n".join(session.warnings))

    # -- proposals -------------------------------------------------------------------------
    def propose(self) -> None:
        if self.session is None:
            return
        items = [(i.id, self.session.path(i)) for i in self.session.items
                 if i.decision == PENDING]
        if not items:
            return
        self.status.setText(f"asking the model about {len(items)} glyphs…")
        self._request = self.recognizer.propose(items, TOP_K)

    def _class_set_changed(self, *_: object) -> None:
        if self.session is not None and self.isVisible():
            self.propose()
        else:
            self._stale = True  # propose again when the window is shown

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if getattr(self, "_stale", False) and self.session is not None:
            self._stale = False
            self.propose()

    def _on_proposed(self, request: int, proposals: dict, errors: dict) -> None:
        if request != self._request or self.session is None:
            return
        # proposed again (the class set changed): the user stays on the glyph they were on;
        # first proposals: the least confident comes first
        keep = self.current.id if (self.current is not None and self.current.proposals
                                   and self.current.decision == PENDING) else None
        self.session.set_proposals({k: [list(p) for p in v] for k, v in proposals.items()},
                                   {k: str(v) for k, v in errors.items()})
        if errors and not proposals:
            self.status.setText("No proposals: " + next(iter(errors.values())))
        self._rebuild(select=keep)

    # -- the label box ---------------------------------------------------------------------
    def _complete(self, text: str) -> None:
        """Offer characters whose reading starts with what is typed, and class labels."""
        self._picked = ("", "")
        self.completer_model.clear()
        for c in self.completions.candidates(text, self.class_labels()):
            row = QStandardItem(c.text())
            row.setData(c.char, Qt.UserRole)
            row.setData(c.reading, Qt.UserRole + 1)
            self.completer_model.appendRow(row)
        if self.completer_model.rowCount() and self.label_edit.hasFocus():
            self.completer.complete()
        else:
            self.completer.popup().hide()

    def _completion_chosen(self, index: QModelIndex) -> None:
        """Remember which reading the chosen character was found by (Enter in the list may
        label the glyph before or after this)."""
        if index.isValid():
            self._picked = (index.data(Qt.UserRole), index.data(Qt.UserRole + 1) or "")
            last = self._labelled_last
            if last and self._picked[1] and self.session is not None:
                item = next((i for i in self.session.items if i.id == last), None)
                if item is not None and item.label == self._picked[0]:
                    self.chosen_readings.setdefault(last, self._picked[1])
                    self._save_notes()

    # -- decisions -------------------------------------------------------------------------
    def _decide(self, decision: str, label: str = "") -> None:
        if self.session is None or self.current is None:
            return
        try:
            self.session.decide(self.current.id, decision, label)
        except AnnotationError as exc:
            self.info.setText(str(exc))
            return
        self.label_edit.clear()
        self._rebuild()

    def accept_current(self) -> None:
        self._decide("accepted")

    def pick(self, index: int) -> None:
        if self.current is not None and index < len(self.current.proposals):
            self._decide("corrected", str(self.current.proposals[index][0]))

    def correct_typed(self) -> None:
        text = self.label_edit.text().strip()
        if not text:
            self.accept_current()
            return
        item = self.current
        self._decide("corrected", text)
        if item is not None and item.label == text:
            self._labelled_last = item.id
            if self._picked[0] == text and self._picked[1]:
                self.chosen_readings[item.id] = self._picked[1]
                self._save_notes()

    def skip_current(self) -> None:
        self._decide("skipped")

    def not_a_glyph(self) -> None:
        self._decide(NOT_A_GLYPH)

    def accept_all(self) -> int:
        """Accept every pending glyph whose best proposal is at least the threshold sure;
        one undo takes them all back."""
        if self.session is None:
            return 0
        level = self.threshold.value() / 100
        todo = [i for i in self.session.queue()
                if i.proposals and i.confidence >= level and not i.in_classset]
        done = 0
        for item in todo:
            try:
                self.session.decide(item.id, "accepted")
            except AnnotationError as exc:
                self.info.setText(str(exc))
                break
            done += 1
        if done:
            self._batches.append((len(self.session.history), done))
        self.info.setText(f"Accepted {done} glyph(s) at {self.threshold.value()}% or more"
                          + (" (Ctrl+Z takes them all back)" if done else ""))
        self._rebuild()
        return done

    def undo(self) -> None:
        if self.session is None:
            return
        n = 1
        if self._batches and self._batches[-1][0] == len(self.session.history):
            n = self._batches.pop()[1]
        item = None
        try:
            for _ in range(n):
                item = self.session.undo() or item
        except AnnotationError as exc:
            self.info.setText(str(exc))
        self._rebuild(select=item.id if item else None)

    def join_classset(self) -> None:
        if self.session is None:
            return
        todo = [i for i in self.session.labelled() if not i.in_classset]
        if not todo:
            self.info.setText("No new labelled glyphs to add.")
            return
        added = self.add_to_classset([(i.label, self.session.path(i)) for i in todo])
        if added:
            for i in todo[:added]:
                i.in_classset = True
            self.session.save()
        self.info.setText(f"{added} glyph(s) added to the class set.")

    # -- export ----------------------------------------------------------------------------
    def export(self, target: Path | None = None) -> int:
        """Pages (glyphs cut from page images): the page export of :mod:`nomgui.export`
        (transcription, COCO, YOLO, CSV, U+XXXX class folders of the original pixels).
        Folders of glyph images: class folders and manifest.csv. Returns the number of
        labelled glyphs written."""
        if self.session is None:
            return 0
        if target is None:
            chosen = QFileDialog.getExistingDirectory(self, "Export into (an empty folder)")
            if not chosen:
                return 0
            target = Path(chosen)
        items = [i for i in self.session.items if i.decision != NOT_A_GLYPH]
        if any(i.box for i in items):
            # a reading picked for a glyph counts while the glyph still has that character
            picked = {i.id: self.chosen_readings[i.id] for i in items
                      if self.chosen_readings.get(i.id) in self.readings.of(i.label)}
            pages = pages_from_items(items, self.session_order, picked)
            try:
                summary = export_pages(Path(target), pages, self.readings)
            except (ExportError, OSError) as exc:
                QMessageBox.warning(self, "Export", str(exc))
                return 0
            self.info.setText(
                f"Exported {summary.pages} page(s) to {target}: {summary.glyphs} labelled "
                f"glyphs in {summary.classes} U+XXXX class folders ({summary.unlabelled} not "
                "labelled yet), transcription, COCO, YOLO and manifest.csv.")
            return summary.glyphs
        try:
            n = self.session.export(Path(target))
        except (AnnotationError, OSError) as exc:
            QMessageBox.warning(self, "Export", str(exc))
            return 0
        self.info.setText(f"Exported {n} labelled glyphs to {target} (class folders and "
                          "manifest.csv; the trainer reads it with --dataset folder).")
        return n

    # -- view ------------------------------------------------------------------------------
    def _rebuild(self, select: str | None = None) -> None:
        self.queue.blockSignals(True)
        self.queue.clear()
        ordered: list[Item] = []
        if self.session is not None:
            done = [i for i in self.session.items if i.decision != PENDING]
            ordered = self.session.queue() + done
        for item in ordered:
            if item.decision == PENDING:
                text = (f"{item.proposals[0][0]}?  {100 * item.confidence:.0f}%"
                        if item.proposals else f"(no proposal: {item.problem})"
                        if item.problem else "(no proposal yet)")
            else:
                text = f"{item.decision}: {item.label}" if item.label else item.decision
            row = QListWidgetItem(QIcon(_pixmap(self.session.path(item), 40)), text)
            row.setData(Qt.UserRole, item.id)
            self.queue.addItem(row)
        self.queue.blockSignals(False)
        target = select or (self.session.queue()[0].id if self.session and
                            self.session.queue() else None)
        for r in range(self.queue.count()):
            if self.queue.item(r).data(Qt.UserRole) == target:
                self.queue.setCurrentRow(r)
                break
        else:
            self.current = None
        self._queue_selected()
        self._update()

    def _queue_selected(self, *_: object) -> None:
        row = self.queue.currentItem()
        self.current = (self.session.get(row.data(Qt.UserRole))
                        if row is not None and self.session is not None else None)
        item = self.current
        self.image.setPixmap(_pixmap(self.session.path(item), 200) if item else QPixmap())
        for i, b in enumerate(self.proposal_buttons):
            if item is not None and i < len(item.proposals):
                label, p = item.proposals[i]
                label = str(label)
                b.show_proposal((label, float(p), self.readings.of(label)))
            else:
                b.show_proposal(None)
        if item is not None:
            where = f"{Path(item.source).name}" + (f", box {item.box}" if item.box else "")
            state = item.decision + (f" as {item.label}" if item.label else "")
            self.info.setText(f"{item.id} from {where}: {state}")
        if not self.label_edit.hasFocus():
            QTimer.singleShot(0, self.queue.setFocus)

    def _update(self) -> None:
        has = self.session is not None
        for b in (self.propose_button, self.join_button, self.export_button,
                  self.accept_button, self.skip_button, self.noise_button, self.undo_button):
            b.setEnabled(has)
        level = self.threshold.value() / 100
        sure = [i for i in self.session.queue() if i.proposals and i.confidence >= level] \
            if has else []
        self.accept_all_button.setText(f"Accept all ≥ {self.threshold.value()}% "
                                       f"({len(sure)})")
        self.accept_all_button.setEnabled(bool(sure))
        if has:
            c = self.session.counts()
            self.status.setText(f"{self.session.name}: {c['pending']} to do, "
                                f"{c['accepted']} accepted, {c['corrected']} corrected, "
                                f"{c['skipped']} skipped, {c[NOT_A_GLYPH]} not glyphs — "
                                "saved as you go")
