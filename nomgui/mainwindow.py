"""The main window: canvas, candidates, class set, menus. Torch never runs here."""

from __future__ import annotations

import time
import unicodedata
from collections import Counter
from pathlib import Path

import numpy as np
from PySide6.QtCore import QByteArray, QSettings, QSize, Qt, QTimer
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QDragEnterEvent,
    QDropEvent,
    QFont,
    QIcon,
    QImage,
    QKeySequence,
    QPixmap,
    QUndoStack,
)
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSlider,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from nomgui import __version__, classundo
from nomgui.annotateui import AnnotateWindow
from nomgui.annotation import SessionStore
from nomgui.candidates import (
    NONE_OF_THESE_LOOKUP,
    NONE_OF_THESE_SET,
    UNSURE_TIP,
    CandidateTable,
)
from nomgui.canvas import DrawingCanvas
from nomgui.classset import ClassSet, ClassSetError, ClassSetStore, example_image
from nomgui.glyph import Glyph, GlyphLoadError, glyph_from_array, load_glyph_file
from nomgui.lookupset import (
    LOOKUP_MODELS,
    LOOKUP_NAME,
    READ_ONLY,
    LookupNotes,
    LookupSet,
    is_lookup_folder,
    lookup_folder,
)
from nomgui.lookupui import CharStrip, LookupPanel
from nomgui.readings import Readings, fold
from nomgui.recognizer import NO_INK, ModelSummary, Recognizer
from nomgui.screenfit import available, resize_to_fit
from nomgui.theme import THEMES, apply_theme
from nomgui.training import Run, RunError, RunStore
from nomgui.trainingui import RunsWindow, TrainingDialog

TOP_K = 5
LOOKUP_TOP_K = 30  # the Nôm lookup asks for 30 candidates and shows them 10 at a time
LOOKUP_PAGE = 10
VOCAB_HITS_MAX = 40  # characters of the whole vocabulary shown for a reading
DEFAULT_MODEL = "protonet-omniglot.pt"  # for drawings
NOM_MODEL = "protonet-nom.pt"  # chosen for class sets of CJK characters
STARTER_SETS = {"digits": "Starter: digits", "nom": "Starter: Nôm"}
# Recognition starts as soon as control returns to the event loop after a change: a request
# costs milliseconds and stale ones are dropped by the worker, so a fixed delay would only
# make the user wait. The zero-interval timer still merges changes made in one go.
DEBOUNCE_MS = 0
UNDO_LIMIT = 2000  # strokes and class edits kept for undo; bounds a long session's memory
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.gif *.tif *.tiff *.webp);;All files (*)"
LOOKUP_PREPARING = ("The Nôm lookup is still being prepared (progress in the status bar); "
                    "the glyph is named when it is ready.")


def pixmap_from_gray(gray: np.ndarray, size: int | None = None, invert: bool = False
                     ) -> QPixmap:
    arr = np.ascontiguousarray(255 - gray if invert else gray, dtype=np.uint8)
    h, w = arr.shape
    img = QImage(arr.data, w, h, arr.strides[0], QImage.Format_Grayscale8).copy()
    pix = QPixmap.fromImage(img)
    if size:
        pix = pix.scaled(size, size, Qt.KeepAspectRatio, Qt.FastTransformation
                         if max(h, w) < size else Qt.SmoothTransformation)
    return pix


def _code_point_query(text: str) -> int | None:
    """The code point a search names as ``U+XXXX`` (4-6 hex digits, any case), or as bare
    hex digits with at least one digit (so that a reading like "cafe" stays a reading)."""
    q = text.strip().upper()
    if q.startswith("U+"):
        q = q[2:]
    elif not any(c.isdigit() for c in q):
        return None
    if not 4 <= len(q) <= 6 or any(c not in "0123456789ABCDEF" for c in q):
        return None
    value = int(q, 16)
    return value if value <= 0x10FFFF else None


class MainWindow(QMainWindow):
    """The application window. ``data_dir`` holds class sets and user models."""

    def __init__(self, data_dir: Path, resources: Path, settings: QSettings) -> None:
        super().__init__()
        self.data_dir, self.resources, self.settings = Path(data_dir), Path(resources), settings
        self.store = ClassSetStore(self.data_dir / "classsets")
        self.classset: ClassSet | None = None
        self.model: ModelSummary | None = None
        self.models: list[ModelSummary] = []
        self.fitted = False
        self.last_glyph: Glyph | None = None
        self.last_latency: float | None = None
        self._stroke_time = 0.0
        self.answered_request = 0  # the newest recognition request answered (or failed)
        self._icons: dict[tuple[Path, int], QIcon] = {}
        self._chars: dict[str, str] = {}  # label -> character of the open class set
        # The class list's rows: (item, name, char, folded name), and row by class id.
        self._rows: list[tuple[QListWidgetItem, str, str, str]] = []
        self._row_of: dict[str, int] = {}
        # The Nôm lookup: its vocabulary [(code point, char)] once the worker has read it,
        # the fonts missing to render it, and its candidates beyond the ones shown.
        self.lookup_vocab: list[tuple[str, str]] | None = None
        self.missing_fonts: list[str] = []
        self._open_lookup_when_loaded = False
        self._top_all: list[tuple[str, float]] = []
        self._fit_error = ""  # why the latest fit failed, if it did
        self._top_shown = 0
        self.lookup_notes = LookupNotes.load(self.data_dir / "lookup" / "notes.json")

        # One history for strokes and class-set edits (cleared when another set is opened).
        self.undo_stack = QUndoStack(self)
        self.undo_stack.setUndoLimit(UNDO_LIMIT)
        self.class_ids = classundo.IdMap()
        self.readings = Readings.load(self.resources / "nom_readings.tsv")
        self.setWindowTitle("nomgui")
        self.setAcceptDrops(True)
        self.recognizer = Recognizer(self)
        self.run_store = RunStore(self.data_dir / "runs", self.data_dir / "cache")
        self.runs_window: RunsWindow | None = None
        self.annotate_window: AnnotateWindow | None = None
        self._build_ui()
        self._build_menus()
        self._connect()
        self._restore_settings()

        self.debounce = QTimer(self, singleShot=True, interval=DEBOUNCE_MS)
        self.debounce.timeout.connect(self.recognize_now)
        self.refit_timer = QTimer(self, singleShot=True, interval=50)
        self.refit_timer.timeout.connect(self._refit)

        self._open_initial_classset()
        self.refresh_models()
        if self.lookup_notes.warning:
            self.statusBar().showMessage(self.lookup_notes.warning, 15000)

    # -- building ------------------------------------------------------------------------
    def _build_ui(self) -> None:
        self.canvas = DrawingCanvas(undo_stack=self.undo_stack)
        self.pen_slider = QSlider(Qt.Horizontal)
        self.pen_slider.setRange(2, 40)
        self.pen_slider.setValue(int(self.canvas.pen_width))
        self.pen_slider.setToolTip("Pen width (about 12 looks like Omniglot's ink)")
        self.pen_slider.valueChanged.connect(lambda v: setattr(self.canvas, "pen_width", float(v)))

        def tool(text: str, tip: str, slot) -> QToolButton:
            b = QToolButton()
            b.setText(text)
            b.setToolTip(tip)
            b.clicked.connect(lambda _=False: slot())  # never pass clicked's bool on
            return b

        tools = QHBoxLayout()
        tools.addWidget(QLabel("Pen"))
        tools.addWidget(self.pen_slider, 1)
        tools.addWidget(tool("Undo", "Undo the last stroke or class edit (Ctrl+Z)",
                             self.undo_stack.undo))
        tools.addWidget(tool("Redo", "Redo (Ctrl+Shift+Z)", self.undo_stack.redo))
        tools.addWidget(tool("Clear", "Clear the canvas (Esc)", self.canvas.clear))

        self.model_sees = QLabel()
        self.model_sees.setFixedSize(118, 118)  # 112 px image inside the panel's frame
        self.model_sees.setAlignment(Qt.AlignCenter)
        self.model_sees.setFrameShape(QLabel.StyledPanel)
        self.model_sees.setToolTip("What the model receives: the glyph after preprocessing")
        sees = QHBoxLayout()
        sees_text = QLabel("What the model sees:")
        sees_text.setAlignment(Qt.AlignRight | Qt.AlignVCenter)
        sees.addWidget(sees_text, 1)
        sees.addWidget(self.model_sees)

        left = QWidget()
        lv = QVBoxLayout(left)
        lv.addWidget(self.canvas, 1)
        lv.addLayout(tools)
        lv.addLayout(sees)

        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setObjectName("message")
        self.message.hide()
        self.candidates = CandidateTable()
        self.new_class_button = QPushButton("New class…")
        self.new_class_button.setToolTip("Make a new class with this glyph as its first "
                                         "example (Ctrl+Shift+N)")
        self.teach_button = QPushButton("Teach")
        self.teach_button.setToolTip("The glyph becomes an example of the candidate "
                                     "highlighted above (Enter in the list, Shift+1-5)")
        self.add_example_button = QPushButton("Add to a class")
        self.add_example_button.setToolTip("The glyph becomes an example of the class "
                                           "highlighted in the list below (Ctrl+Shift+A)")

        self.class_list = QListWidget()
        self.class_list.setViewMode(QListWidget.ListMode)
        self.class_list.setIconSize(QSize(40, 40))
        self.class_list.setToolTip("Your classes. F2 renames, Delete removes a class.")
        self.example_list = QListWidget()
        self.example_list.setViewMode(QListWidget.IconMode)
        self.example_list.setIconSize(QSize(56, 56))
        self.example_list.setMaximumHeight(96)
        self.example_list.setFlow(QListWidget.LeftToRight)
        self.example_list.setWrapping(False)
        self.example_list.setToolTip("Examples of the selected class; Delete removes one")
        self.find_box = QLineEdit()
        self.find_box.setPlaceholderText("Find a class: name, character, reading (with or "
                                         "without diacritics) or U+ code point  Ctrl+F")
        self.find_box.setClearButtonEnabled(True)
        self.find_box.textChanged.connect(self._filter_classes)
        self.find_box.returnPressed.connect(self._select_first_match)
        self.classset_title = QLabel()
        title_font = QFont(self.classset_title.font())
        title_font.setBold(True)
        self.classset_title.setFont(title_font)
        self.classset_title.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)

        right = QWidget()
        rv = self._right_layout = QVBoxLayout(right)
        rv.addWidget(QLabel("Candidates"))
        rv.addWidget(self.message)
        self.none_of_these = QLabel(NONE_OF_THESE_SET)
        self.none_of_these.setToolTip(UNSURE_TIP)
        self.none_of_these.setObjectName("noneOfThese")
        self.none_of_these.setWordWrap(True)
        self.none_of_these.hide()
        # Its line is kept when hidden: a line that comes and goes would move the buttons
        # below it between a user's aim and click.
        policy = self.none_of_these.sizePolicy()
        policy.setRetainSizeWhenHidden(True)
        self.none_of_these.setSizePolicy(policy)
        rv.addWidget(self.candidates, 2)
        # The lookup's row under its candidates: accept the highlighted one, show more.
        self.append_button = QPushButton("Append")
        self.append_button.setToolTip("Append the highlighted candidate's character to the "
                                      "transcription (Enter or a double click in the list)")
        self.more_button = QPushButton("More candidates")
        self.more_button.setToolTip("Show the next 10 candidates (up to 30)")
        for b in (self.append_button, self.more_button):
            b.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Fixed)
            b.setMinimumWidth(120)
        self.lookup_row = QWidget()
        lr = QHBoxLayout(self.lookup_row)
        lr.setContentsMargins(0, 0, 0, 0)
        lr.addWidget(self.append_button)
        lr.addWidget(self.more_button)
        self.lookup_row.hide()
        rv.addWidget(self.lookup_row)
        rv.addWidget(self.none_of_these)
        # These buttons name the class they act on, so their text changes with every answer;
        # their width must not, or the splitter re-flows and the canvas jumps under the pen.
        for b in (self.teach_button, self.new_class_button, self.add_example_button):
            b.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Fixed)
            b.setMinimumWidth(120)
        rv.addWidget(self.teach_button)  # a row of its own: it names the candidate
        buttons = QHBoxLayout()
        buttons.addWidget(self.new_class_button)
        buttons.addWidget(self.add_example_button)
        rv.addLayout(buttons)
        rv.addWidget(self.classset_title)
        rv.addWidget(self.find_box)
        # Characters of the whole Nôm vocabulary read as typed, beyond the open class set.
        self.vocab_hits = CharStrip(self.readings, 1.4)
        self.vocab_hits.setToolTip("Characters of the whole Nôm vocabulary read so (not in "
                                   "this class set): click to copy one")
        self.vocab_hits_row = QWidget()
        hv = QVBoxLayout(self.vocab_hits_row)
        hv.setContentsMargins(0, 0, 0, 0)
        self.vocab_hits_label = QLabel("Also in the Nôm vocabulary (click to copy):")
        hv.addWidget(self.vocab_hits_label)
        hv.addWidget(self.vocab_hits)
        self.vocab_hits_row.hide()
        rv.addWidget(self.vocab_hits_row)
        rv.addWidget(self.class_list, 3)
        rv.addWidget(self.example_list)

        self.splitter = QSplitter(Qt.Horizontal)
        self.splitter.addWidget(left)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.lookup_panel = LookupPanel(self.lookup_notes, self.readings)
        self.lookup_panel.hide()
        central = QWidget()
        cv = QVBoxLayout(central)
        cv.setContentsMargins(0, 0, 0, 4)
        cv.addWidget(self.splitter, 1)
        cv.addWidget(self.lookup_panel)
        self.setCentralWidget(central)

        self.fit_progress = QProgressBar()
        self.fit_progress.setMaximumWidth(160)
        self.fit_progress.setTextVisible(False)
        self.fit_progress.hide()
        self.statusBar().addPermanentWidget(self.fit_progress)
        self.model_status = QLabel("loading models…")
        self.class_status = QLabel()
        self.latency_status = QLabel()
        for w in (self.model_status, self.class_status, self.latency_status):
            self.statusBar().addPermanentWidget(w)

    def _action(self, menu, text: str, slot, shortcut=None, tip: str = "") -> QAction:
        act = QAction(text, self)
        if shortcut is not None:
            act.setShortcuts(shortcut if isinstance(shortcut, list) else [shortcut])
        if tip:
            act.setStatusTip(tip)
            act.setToolTip(tip)
        # triggered(bool) would pass False into a slot's optional argument: call it bare.
        act.triggered.connect(lambda _=False: slot())
        menu.addAction(act)
        return act

    def _build_menus(self) -> None:
        mb = self.menuBar()
        f = mb.addMenu("&File")
        self._action(f, "&New class set…", self.new_classset, QKeySequence.New)
        self._action(f, "&Open class set…", self.open_classset, QKeySequence.Open)
        self._action(f, f"Open {LOOKUP_NAME} (built in)", self.open_lookup,
                     QKeySequence("Ctrl+Shift+O"),
                     "Name any of the Nôm code points: a built-in class set made from the "
                     "fonts, which learns from the glyphs you teach it")
        self._action(f, "Save class set &as…", self.save_classset_as, QKeySequence("Ctrl+Shift+S"))
        f.addSeparator()
        self._action(f, "&Import class set from zip…", self.import_zip)
        self._action(f, "&Export class set as zip…", self.export_zip, QKeySequence("Ctrl+E"),
                     "A zip of class folders of PNGs: a data set the trainer reads")
        f.addSeparator()
        self._action(f, "&Load glyph images…", self.load_images, QKeySequence("Ctrl+L"))
        self._action(f, "&Annotate glyphs…", self.show_annotate, QKeySequence("Ctrl+Shift+L"),
                     "Label a folder of glyphs or a page with the model's proposals")
        f.addSeparator()
        self._action(f, "&Quit", self.close, QKeySequence.Quit)

        e = mb.addMenu("&Edit")
        undo = self.undo_stack.createUndoAction(self, "&Undo")
        undo.setShortcut(QKeySequence.Undo)
        redo = self.undo_stack.createRedoAction(self, "&Redo")
        redo.setShortcuts([QKeySequence.Redo, QKeySequence("Ctrl+Y")])
        e.addAction(undo)
        e.addAction(redo)
        self._action(e, "&Clear canvas", self.canvas.clear, QKeySequence(Qt.Key_Escape))
        e.addSeparator()
        self._action(e, "&Paste glyph", self.paste_glyph, QKeySequence.Paste)
        self._action(e, "&Copy", self.copy_selection, QKeySequence.Copy,
                     "The highlighted class's character when the class list has the focus "
                     "(e.g. one found by its reading), else the best candidate's")
        self._action(e, "Copy &transcription", self.copy_transcription,
                     QKeySequence("Ctrl+Shift+C"), "The Nôm lookup's transcription line")
        self._action(e, "&Recognise now", self.recognize_now, [QKeySequence("Ctrl+R"),
                                                                QKeySequence(Qt.Key_F5)])

        c = mb.addMenu("&Classes")
        self._action(c, "&New class from glyph…", self.new_class_from_glyph,
                     QKeySequence("Ctrl+Shift+N"))
        self._action(c, "&Add glyph to selected class", self.add_glyph_to_selected,
                     QKeySequence("Ctrl+Shift+A"))
        self._action(c, "&Find class…", self.find_box.setFocus, QKeySequence.Find)
        self._action(c, "&Rename class…", self.rename_class, QKeySequence(Qt.Key_F2))
        self._action(c, "&Delete class", self.delete_class, QKeySequence("Ctrl+Delete"))
        self._action(c, "Remove selected &example", self.remove_example,
                     QKeySequence(Qt.Key_Delete))
        c.addSeparator()
        for i in range(TOP_K):
            self._action(c, f"Copy candidate {i + 1}", lambda _=False, i=i: self.copy_candidate(i),
                         QKeySequence(str(i + 1)))
            self._action(c, f"Teach: glyph is candidate {i + 1}",
                         lambda _=False, i=i: self.teach(i), QKeySequence(f"Shift+{i + 1}"))

        self.model_menu = mb.addMenu("&Model")
        self.model_group = QActionGroup(self)
        self.model_group.setExclusive(True)

        t = mb.addMenu("&Training")
        for kind, text in (("meta-train", "&Meta-train (ProtoNet, MAML, Proto-MAML)…"),
                           ("pretrain", "&Pre-train (transfer learning)…"),
                           ("finetune", "&Fine-tune the model on this class set…"),
                           ("evaluate", "&Evaluate a model…")):
            self._action(t, text, lambda _=False, k=kind: self.open_training_dialog(k))
        t.addSeparator()
        self._action(t, "Training &runs…", self.show_runs, QKeySequence("Ctrl+T"),
                     "Runs with their progress: stop, resume, add a model to the Model menu")

        v = mb.addMenu("&View")
        self.theme_group = QActionGroup(self)
        for name in THEMES:
            act = QAction(f"{name.title()} theme", self, checkable=True)
            act.setData(name)
            act.triggered.connect(lambda _=False, n=name: self.set_theme(n))
            self.theme_group.addAction(act)
            v.addAction(act)

        h = mb.addMenu("&Help")
        self._action(h, "&About nomgui", self.about)

    def _connect(self) -> None:
        self.canvas.strokeFinished.connect(self._on_stroke)
        self.canvas.contentChanged.connect(self._on_canvas_changed)
        self.candidates.picked.connect(self.teach)
        self.candidates.accepted.connect(self.accept_candidate)
        self.append_button.clicked.connect(lambda: self._accept_highlighted())
        self.more_button.clicked.connect(lambda: self.show_more_candidates())
        self.lookup_panel.charClicked.connect(self.append_text)
        self.lookup_panel.copied.connect(
            lambda text: self.statusBar().showMessage(
                f"copied the transcription: {text if len(text) <= 24 else text[:23] + '…'}",
                3000))
        self.vocab_hits.clicked.connect(self._copy_vocabulary_hit)
        self.teach_button.clicked.connect(lambda: self.teach_highlighted())
        self.new_class_button.clicked.connect(lambda: self.new_class_from_glyph())
        self.add_example_button.clicked.connect(lambda: self.add_glyph_to_selected())
        self.class_list.currentItemChanged.connect(lambda *_: self._show_examples())
        self.class_list.itemSelectionChanged.connect(self._update_edit_buttons)
        self.candidates.itemSelectionChanged.connect(self._update_edit_buttons)
        w = self.recognizer.worker
        w.modelsListed.connect(self._on_models_listed)
        w.modelLoaded.connect(self._on_model_loaded)
        w.modelFailed.connect(self._on_model_failed)
        w.fitted.connect(self._on_fitted)
        w.fitFailed.connect(self._on_fit_failed)
        w.fitProgress.connect(self._on_fit_progress)
        w.predicted.connect(self._on_predicted)
        w.predictFailed.connect(self._on_predict_failed)
        w.vocabularyLoaded.connect(self._on_vocabulary)

    # -- settings ------------------------------------------------------------------------
    def _restore_settings(self) -> None:
        geometry = self.settings.value("window/geometry")
        screen = available(self)
        if not (isinstance(geometry, QByteArray) and self.restoreGeometry(geometry)
                and (screen is None or screen.intersected(self.frameGeometry()).width() >= 200)):
            # First launch, or a geometry from another screen or scale factor that would
            # leave the window off-screen or larger than the screen: a size that fits.
            resize_to_fit(self, 1100, 720, fraction=1.0)
            if screen is not None:
                self.move(screen.topLeft())
        state = self.settings.value("window/splitter")
        if isinstance(state, QByteArray):
            self.splitter.restoreState(state)
        pen = self.settings.value("canvas/pen", type=float)
        if pen:
            self.pen_slider.setValue(int(pen))
        self.set_theme(str(self.settings.value("view/theme", "light")))

    def closeEvent(self, event) -> None:
        if not self._close_runs():
            event.ignore()
            return
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/splitter", self.splitter.saveState())
        self.settings.setValue("canvas/pen", self.canvas.pen_width)
        if self.classset is not None:
            self.settings.setValue("classset/folder", str(self.classset.folder))
        if self.model is not None:
            self.settings.setValue("model/path", str(self.model.path))
        self.settings.sync()
        self.recognizer.shutdown()
        super().closeEvent(event)

    # -- annotation ----------------------------------------------------------------------
    def show_annotate(self) -> AnnotateWindow:
        if self.annotate_window is None:
            self.annotate_window = AnnotateWindow(
                SessionStore(self.data_dir / "annotations"), self.recognizer,
                lambda: [c.label for c in self.classset.classes] if self.classset else [],
                self.add_labelled_glyphs, self, readings=self.readings)
        self.annotate_window.show()
        self.annotate_window.raise_()
        return self.annotate_window

    def add_labelled_glyphs(self, pairs: list[tuple[str, Path]]) -> int:
        """Annotated glyphs join the class set: (label, image file) each; a label no class
        has yet makes a new class. Returns how many were added (they are added in order,
        so the first N of ``pairs`` made it)."""
        if self.classset is None:
            self.warn("Annotate", "Open a class set first.")
            return 0
        added = 0
        try:
            for label, path in pairs:
                cls = next((c for c in self.classset.classes if c.label == label), None)
                glyph = load_glyph_file(path)
                if cls is None:
                    char = label if len(label) == 1 else ""
                    self.classset.add_class(label, char, [glyph])
                else:
                    self.classset.add_example(cls.id, glyph)
                added += 1
        except (ClassSetError, GlyphLoadError, OSError) as exc:
            self.warn("Annotate", f"{added} glyph(s) added; then: {exc}")
        self._reload_class_list()
        self.schedule_refit()
        return added

    # -- training ------------------------------------------------------------------------
    def show_runs(self) -> RunsWindow:
        if self.runs_window is None:
            self.runs_window = RunsWindow(self.run_store, self.data_dir / "models", self)
            self.runs_window.modelsChanged.connect(self.refresh_models)
        else:
            self.runs_window.refresh()
        self.runs_window.show()
        self.runs_window.raise_()
        return self.runs_window

    def open_training_dialog(self, kind: str) -> Run | None:
        """Set up a run in the dialog and start it; the runs window follows it."""
        cs = self.classset
        info, counts = None, None
        if cs is not None:
            counts = [len(c.examples) for c in cs.classes]
            usable = sum(1 for n in counts if n >= 2)
            info = (cs.name, len(cs.classes), usable)
        if kind == "finetune" and (cs is None or self.model is None):
            self.warn("Fine-tune", "Open a class set and choose a model first.")
            return None
        dialog = TrainingDialog(kind, self.models, self.model, info, self.settings, self,
                                counts=counts)
        if dialog.exec() != QDialog.Accepted:
            return None
        request = dialog.request()
        try:
            zip_path = None
            if request.dataset == "classset":
                zip_path = self.data_dir / "runs" / ".classset-snapshot.zip"
                zip_path.parent.mkdir(parents=True, exist_ok=True)
                cs.export_zip(zip_path)
            run = self.run_store.create(request, classset_zip=zip_path)
        except (RunError, ClassSetError, OSError) as exc:
            self.warn("Training", str(exc))
            return None
        self.show_runs().start(run)
        return run

    def _close_runs(self) -> bool:
        """Runs still going when the window closes: stop them, or let them finish (they run
        on; the runs window finds them at the next launch). False: do not close."""
        running = [r for r in self.run_store.list()[0] if r.running()]
        if not running:
            return True
        answer = self._ask_about_runs(len(running))
        if answer == "cancel":
            return False
        if answer == "stop":
            for run in running:
                self.run_store.stop(run)
            if not self.run_store.wait(running, timeout=30):
                self.warn("Training", "A run did not stop within 30 s; it is still "
                          "running and will checkpoint when it ends.")
        return True

    def _ask_about_runs(self, n: int) -> str:
        """'stop', 'finish' or 'cancel'."""
        box = QMessageBox(QMessageBox.Question, "Training is running",
                          f"{n} training run(s) are still going.", parent=self)
        box.setInformativeText("Stop them (a checkpoint is saved; resume later from "
                               "Training > Training runs), or let them finish in the "
                               "background?")
        stop = box.addButton("Stop them", QMessageBox.DestructiveRole)
        finish = box.addButton("Let them finish", QMessageBox.AcceptRole)
        box.addButton(QMessageBox.Cancel)
        box.exec()
        return {stop: "stop", finish: "finish"}.get(box.clickedButton(), "cancel")

    def set_theme(self, name: str) -> None:
        name = name if name in THEMES else "light"
        apply_theme(QApplication.instance(), name)
        self.settings.setValue("view/theme", name)
        for act in self.theme_group.actions():
            act.setChecked(act.data() == name)
        self.canvas.update()

    def save_work(self) -> str | None:
        """Save the drawing in progress (before an error dialog); returns where, if any.
        Class-set edits need nothing here: each is written when it is made."""
        if self.canvas.is_empty():
            return None
        from PIL import Image

        folder = self.data_dir / "recovered"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"drawing-{time.strftime('%Y%m%d-%H%M%S')}.png"
        Image.fromarray(self.canvas.render_image()).save(path)
        return str(path)

    # -- messages ------------------------------------------------------------------------
    def show_message(self, text: str) -> None:
        """A plain message in the window (not a dialog): the state the user must fix."""
        self.message.setText(text)
        self.message.setVisible(bool(text))

    def warn(self, title: str, text: str) -> None:
        QMessageBox.warning(self, title, text)

    # -- models --------------------------------------------------------------------------
    def model_dirs(self) -> tuple[list[Path], list[Path]]:
        bundled = sorted((self.resources / "models").glob("*.pt"))
        user = sorted((self.data_dir / "models").glob("*.pt"))
        return bundled, user

    def refresh_models(self) -> None:
        self.recognizer.list_models(*self.model_dirs())

    def _on_models_listed(self, result) -> None:
        models, errors = result
        self.models = models
        self.model_menu.clear()
        for act in self.model_group.actions():
            self.model_group.removeAction(act)
        for m in models:
            where = "bundled" if m.bundled else "yours"
            act = QAction(f"{m.title} — {m.accuracy} ({where}: {m.path.name})", self,
                          checkable=True)
            act.setToolTip(m.description)
            act.setData(str(m.path))
            act.triggered.connect(lambda _=False, m=m: self._user_selects_model(m))
            self.model_group.addAction(act)
            self.model_menu.addAction(act)
        if not models:
            empty = self.model_menu.addAction("(no models found)")
            empty.setEnabled(False)
        for text in errors:  # each refused file on its own line, with the reason
            refused = self.model_menu.addAction(f"refused: {text}")
            refused.setEnabled(False)
        self.model_menu.addSeparator()
        self._action(self.model_menu, "Refresh model list", self.refresh_models)
        if errors:
            self.statusBar().showMessage(f"{len(errors)} model file(s) could not be read: "
                                         f"{errors[0]}", 10000)
        if not models:
            self.model_status.setText("no model")
            self.show_message("No model file was found. Put a model in "
                              f"{self.data_dir / 'models'} or reinstall nomgui.")
            return
        wanted = str(self.settings.value("model/path", ""))
        default = next((m for m in models if m.path.name == DEFAULT_MODEL), models[0])
        chosen = next((m for m in models if str(m.path) == wanted), default)
        if isinstance(self.classset, LookupSet):
            chosen = self._model_for_classset(self.classset) or chosen
        if self.model is None or self.model.path != chosen.path:
            self.select_model(chosen)

    def _user_selects_model(self, summary: ModelSummary) -> None:
        if isinstance(self.classset, LookupSet):  # the lookup keeps a model the user chose
            self.settings.setValue("lookup/model", str(summary.path))
        self.select_model(summary)

    def select_model(self, summary: ModelSummary) -> None:
        self.model_status.setText(f"loading {summary.path.name}…")
        self.recognizer.load_model(summary)

    def _on_model_loaded(self, summary: ModelSummary) -> None:
        self.model = summary
        self.settings.setValue("model/path", str(summary.path))
        if self.classset is not None and not isinstance(self.classset, LookupSet):
            # remembered per class set, chosen again on opening it
            self.settings.setValue(f"classset-model/{self.classset.folder.name}",
                                   str(summary.path))
        for act in self.model_group.actions():
            act.setChecked(act.data() == str(summary.path))
        self.model_status.setText(f"model: {summary.title} ({summary.accuracy})")
        self._update_lookup_title()
        self.fitted = False
        self._refit()

    def _on_model_failed(self, text: str) -> None:
        self.model_status.setText("model failed to load")
        self.show_message(f"The model could not be loaded: {text}")

    # -- class sets ----------------------------------------------------------------------
    def _open_initial_classset(self) -> None:
        wanted = self.settings.value("classset/folder", "")
        if wanted and is_lookup_folder(Path(str(wanted)), self.data_dir):
            self.open_lookup()  # opened when the worker has read the vocabulary
            return
        if wanted and Path(str(wanted)).is_dir() and self._open_folder(Path(str(wanted))):
            return
        self._open_fallback_classset()

    def _open_fallback_classset(self) -> None:
        existing = self.store.list()
        if existing and self._open_folder(existing[0][0]):
            return
        # First launch: the bundled starter sets become the user's own, digits opened.
        first: ClassSet | None = None
        try:
            for folder, name in STARTER_SETS.items():
                tree = self.resources / "starter" / folder
                if tree.is_dir():
                    cs = self.store.import_folder_tree(tree, name)
                    first = first or cs
            self.set_classset(first or self.store.create("My glyphs"))
        except (ClassSetError, OSError) as exc:
            self.warn("Class set", str(exc))

    def _open_folder(self, folder: Path) -> bool:
        try:
            cs = ClassSet.open(folder)
        except (ClassSetError, OSError) as exc:
            self.warn("Class set could not be opened", str(exc))
            return False
        self.set_classset(cs)
        if cs.warnings:
            self.warn("Class set repaired", "\n".join(cs.warnings))
        return True

    def set_classset(self, cs: ClassSet) -> None:
        if cs is not self.classset:
            # The history's commands belong to the set they edited.
            self.undo_stack.clear()
            self.class_ids = classundo.IdMap()
            # The old set's rows go first: until the list is rebuilt, a signal (the lookup
            # mode clearing the candidates) would look their ids up in the new set.
            self.class_list.blockSignals(True)
            self.class_list.clear()
            self.class_list.blockSignals(False)
        self.classset = cs
        self.settings.setValue("classset/folder", str(cs.folder))
        self._set_lookup_mode(isinstance(cs, LookupSet))
        self._reload_class_list()
        self.schedule_refit()
        wanted = self._model_for_classset(cs)
        if wanted is not None and (self.model is None or wanted.path != self.model.path):
            self.refit_timer.stop()  # a fit with the old model would only be cancelled
            self.select_model(wanted)  # its load refits the class set

    def _model_for_classset(self, cs: ClassSet) -> ModelSummary | None:
        """The model this class set was last used with; for a set never used before whose
        classes are mostly CJK characters (Nôm, Hán), the bundled Nôm model."""
        if isinstance(cs, LookupSet):
            return self._lookup_model()
        remembered = str(self.settings.value(f"classset-model/{cs.folder.name}", ""))
        found = next((m for m in self.models if str(m.path) == remembered), None)
        if found is not None or remembered:
            return found
        cjk = sum(1 for c in cs.classes
                  if c.char and unicodedata.name(c.char[0], "").startswith("CJK"))
        if cs.classes and 2 * cjk >= len(cs.classes):
            return next((m for m in self.models if m.bundled and m.path.name == NOM_MODEL),
                        None)
        return None

    def _reload_class_list(self, select_id: str | None = None) -> None:
        cs = self.classset
        current = select_id or self._selected_class_id()
        self.class_list.blockSignals(True)
        self.class_list.clear()
        if cs is None:
            self.class_list.blockSignals(False)
            return
        self.classset_title.setText(f"Class set: {cs.name}")
        self._chars = {c.label: c.char for c in cs.classes}
        self._rows, self._row_of = [], {}
        self.class_list.setUpdatesEnabled(False)  # 13,000 rows for the lookup
        for c in cs.classes:
            item = QListWidgetItem()
            item.setData(Qt.UserRole, c.id)
            self._set_class_item(item, c)
            self._row_of[c.id] = len(self._rows)
            self._rows.append((item, c.name, c.char, fold(c.name)))
            self.class_list.addItem(item)
            if c.id == current:
                self.class_list.setCurrentItem(item)
        # No class is highlighted unless the user chose it: a selection made for them would
        # be where "Add glyph" writes, unseen.
        self.class_list.setUpdatesEnabled(True)
        self.class_list.blockSignals(False)
        if self.class_list.currentItem() is not None:
            self.class_list.scrollToItem(self.class_list.currentItem())
        self._filter_classes(self.find_box.text())
        self._show_class_status()
        self._show_examples()
        self._update_edit_buttons()

    def _set_class_item(self, item: QListWidgetItem, c) -> None:
        """A class's row: label (the lookup: character and code point), readings, number
        of examples, and the first example as its icon."""
        said = self.readings.of(c.char)
        reading = f"  ·  {', '.join(said[:3])}" if said else ""
        label = f"{c.char}  {c.id}" if isinstance(self.classset, LookupSet) else c.label
        item.setText(f"{label}{reading}   ({len(c.examples)})")
        icon = (self._icon(self.classset.example_path(c.id, c.examples[0]), 40)
                if c.examples else None)
        item.setIcon(icon if icon is not None else QIcon())

    def _show_class_status(self) -> None:
        """The status bar's count of classes and examples."""
        classes = self.classset.classes
        n = sum(len(c.examples) for c in classes)
        self.class_status.setText(f"{len(classes):,} class{'' if len(classes) == 1 else 'es'}"
                                  f", {n:,} example{'' if n == 1 else 's'}")

    def _class_row_changed(self, cid: str) -> None:
        """The lookup after a teach, an added or removed example, or their undo: only that
        code point's row changes (rebuilding 13,000 rows took a third of a second)."""
        cls = self.classset.get(cid)
        item = self._rows[self._row_of[cid]][0]
        self._set_class_item(item, cls)
        self.class_list.setCurrentItem(item)
        self._show_class_status()
        self._show_examples()
        # Scrolled once the example strip that may come with the row has taken its room
        # (scrolled before, the row was left cut off under it; found in a real window).
        self.class_list.scrollToItem(item)
        QTimer.singleShot(0, lambda: self._scroll_to_code_point(cid))
        self._update_edit_buttons()
        self._update_lookup_title()

    def _scroll_to_code_point(self, cid: str) -> None:
        """The lookup's row of ``cid`` into view, if the lookup is still open."""
        row = self._row_of.get(cid) if isinstance(self.classset, LookupSet) else None
        if row is not None and row < len(self._rows):
            self.class_list.scrollToItem(self._rows[row][0])

    def _icon(self, path: Path, size: int) -> QIcon | None:
        """Thumbnail of an example file; cached, since example files never change."""
        key = (path, size)
        if key not in self._icons:
            try:
                self._icons[key] = QIcon(pixmap_from_gray(example_image(path), size))
            except OSError:
                return None
        return self._icons[key]

    def _filter_classes(self, text: str) -> None:
        if self.classset is None:
            return
        match = self.readings.matcher(text)
        code = _code_point_query(text)  # "U+5974" or "5974": the row that shows it
        self.class_list.setUpdatesEnabled(False)
        for item, name, char, folded in self._rows:
            hide = not (match(name, char, folded)
                        or (code is not None and bool(char) and ord(char[0]) == code))
            if item.isHidden() != hide:  # most rows keep their state from key to key
                item.setHidden(hide)
        self.class_list.setUpdatesEnabled(True)
        if isinstance(self.classset, LookupSet):  # searching: the found characters get room
            searching = bool(text.strip())
            self._right_layout.setStretchFactor(self.candidates, 2 if searching else 6)
            self._right_layout.setStretchFactor(self.class_list, 6 if searching else 2)
        self._show_vocabulary_hits(text)
        self._update_edit_buttons()

    def _select_first_match(self) -> None:
        for i in range(self.class_list.count()):
            item = self.class_list.item(i)
            if not item.isHidden():
                self.class_list.setCurrentItem(item)
                self.class_list.setFocus()
                return

    def _selected_class_id(self) -> str | None:
        item = self.class_list.currentItem()
        return item.data(Qt.UserRole) if item else None

    def _visible_selected_class(self) -> str | None:
        """The class the user sees highlighted: selected, and not hidden by the filter."""
        item = self.class_list.currentItem()
        if item is None or not item.isSelected() or item.isHidden():
            return None
        return item.data(Qt.UserRole)

    def _class_or_none(self, cid: str | None):
        """The current set's class ``cid``; None for no id or an id it does not hold."""
        if cid is None or self.classset is None:
            return None
        try:
            return self.classset.get(cid)
        except KeyError:
            return None

    def _update_edit_buttons(self) -> None:
        """The buttons say which class they act on, and are off when there is none."""
        cls = self._class_or_none(self._visible_selected_class())
        name = cls.name if cls is not None else None
        self.add_example_button.setEnabled(name is not None)
        def short(text: str) -> str:
            return text if len(text) <= 12 else text[:11] + "…"  # the button keeps its width

        self.add_example_button.setText(f"Add to '{short(name)}'" if name else
                                        "Add to a class")
        self.add_example_button.setToolTip(
            f"The glyph becomes an example of '{name}', highlighted in the list below "
            "(Ctrl+Shift+A)" if name else "Highlight a class in the list below first")
        row = self.candidates.highlighted()
        self.append_button.setEnabled(row is not None)
        self.append_button.setText(
            f"Append '{short(self._char_text(self.candidates.labels[row]))}'"
            if row is not None else "Append")
        self.teach_button.setEnabled(row is not None)
        self.teach_button.setText(
            f"Teach: it is '{short(self.candidates.labels[row])}'" if row is not None else
            "Teach")

    def _show_examples(self) -> None:
        self.example_list.clear()
        cls = self._class_or_none(self._selected_class_id())
        # The lookup's code points mostly have no example of the user's: no empty strip.
        self.example_list.setVisible(not isinstance(self.classset, LookupSet) or (
            cls is not None and bool(cls.examples)))
        if cls is None:
            return
        for fname in cls.examples:
            item = QListWidgetItem()
            item.setData(Qt.UserRole, fname)
            icon = self._icon(self.classset.example_path(cls.id, fname), 56)
            if icon is None:
                item.setText("?")
            else:
                item.setIcon(icon)
            self.example_list.addItem(item)

    def schedule_refit(self) -> None:
        self.fitted = False
        self._fit_error = ""
        self.refit_timer.start()

    def _refit(self) -> None:
        if self.classset is None or self.model is None:
            return
        if isinstance(self.classset, LookupSet):
            self.recognizer.fit_lookup(self.classset.examples(),
                                       self.data_dir / "cache" / "lookup")
            return
        self.recognizer.fit(self.classset.examples())

    def _current_fit(self, generation: int) -> bool:
        """Is this the answer to the latest fit, with no newer one waiting to be sent?"""
        return generation == self.recognizer.fit_generation and not self.refit_timer.isActive()

    def _on_fit_progress(self, generation: int, done: int, total: int, text: str) -> None:
        if generation != self.recognizer.fit_generation:
            return
        self.fit_progress.setRange(0, max(total, 1))
        self.fit_progress.setValue(done)
        self.fit_progress.show()
        self.statusBar().showMessage(f"{text}…")

    def _on_fitted(self, generation: int, n_classes: int, seconds: float) -> None:
        if not self._current_fit(generation):
            return
        self.fit_progress.hide()
        self.fitted = True
        self.show_message("")
        self.statusBar().showMessage(f"fitted {n_classes:,} classes in {seconds * 1000:.0f} ms",
                                     4000)
        if not self.canvas.is_empty():
            # The latency shown is the answer's, not the wait for the fit (a glyph drawn
            # during the lookup's first build read "95466 ms").
            self._stroke_time = time.perf_counter()
            self.recognize_now()

    def _on_fit_failed(self, generation: int, text: str) -> None:
        if self._current_fit(generation):
            self._fit_error = text
            self.fit_progress.hide()
            self.statusBar().clearMessage()
            self.fitted = False
            self._clear_candidates()
            self.show_message(text)

    def new_classset(self) -> None:
        name, ok = QInputDialog.getText(self, "New class set", "Name of the new class set:")
        if ok and name.strip():
            try:
                self.set_classset(self.store.create(name.strip()))
            except (ClassSetError, OSError) as exc:
                self.warn("New class set", str(exc))

    def open_classset(self) -> None:
        sets = self.store.list()
        builtin = f"{LOOKUP_NAME}  (built in)"
        # A set by its name; its folder only beside a name that two sets share.
        counts = Counter(name for _, name in sets)
        names = [f"{name}  [{folder.name}]" if counts[name] > 1 else name
                 for folder, name in sets] + [builtin]
        choice, ok = QInputDialog.getItem(self, "Open class set", "Class set:", names, 0, False)
        if ok and choice == builtin:
            self.open_lookup()
        elif ok and choice in names:
            self._open_folder(sets[names.index(choice)][0])

    def save_classset_as(self) -> None:
        if self.classset is None:
            return
        name, ok = QInputDialog.getText(self, "Save class set as", "Name of the copy:",
                                        text=f"{self.classset.name} (copy)")
        if ok and name.strip():
            try:
                self.set_classset(self.store.save_as(self.classset, name.strip()))
            except (ClassSetError, OSError) as exc:
                self.warn("Save class set as", str(exc))

    def import_zip(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import class set", "", "Zip files (*.zip)")
        if not path:
            return
        try:
            cs = ClassSet.import_zip(Path(path), self.store.new_folder(Path(path).stem))
        except (ClassSetError, OSError) as exc:
            self.warn("Import class set", str(exc))
            return
        self.set_classset(cs)
        if cs.warnings:
            self.warn("Import class set", "\n".join(cs.warnings))

    def export_zip(self) -> None:
        if self.classset is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export class set",
                                              f"{self.classset.name}.zip", "Zip files (*.zip)")
        if path:
            try:
                self.classset.export_zip(Path(path))
                self.statusBar().showMessage(f"exported to {path}", 5000)
            except OSError as exc:
                self.warn("Export class set", f"Could not write {path}: {exc}")

    # -- editing classes -----------------------------------------------------------------
    def current_glyph(self) -> Glyph | None:
        if self.canvas.is_empty():
            return None
        return self.canvas.glyph()

    def _need_glyph(self) -> Glyph | None:
        glyph = self.current_glyph()
        if glyph is None or not glyph.has_ink():
            self.show_message("The canvas is empty: draw or load a glyph first.")
            return None
        return glyph

    # Every edit is done first (a failure is a message and changes nothing), then pushed
    # as an undoable command that knows how to take it back, files included.
    def _class_changed(self, select: str | None) -> None:
        if isinstance(self.classset, LookupSet) and select in self._row_of:
            self._class_row_changed(select)  # its classes never change, only examples
        else:
            self._reload_class_list(select)
        self.schedule_refit()

    def _push(self, command_type, *args, **kwargs) -> None:
        self.undo_stack.push(command_type(self.classset, self.class_ids, *args,
                                          on_change=self._class_changed,
                                          on_error=self.warn, **kwargs))

    def _read_only(self) -> bool:
        """The lookup's classes are code points: say how to teach it instead."""
        if isinstance(self.classset, LookupSet):
            self.show_message(READ_ONLY)
            return True
        return False

    def new_class_from_glyph(self) -> None:
        if self._read_only():
            return
        glyph = self._need_glyph()
        if glyph is None or self.classset is None:
            return
        text, ok = QInputDialog.getText(
            self, "New class", "Name of the class (a single character becomes its Unicode "
            "character too):")
        if not ok:
            return
        name = text.strip()
        char = name if len(name) == 1 else ""
        try:
            cls = self.classset.add_class(name, char, [glyph])
        except (ClassSetError, OSError) as exc:
            self.warn("New class", str(exc))
            return
        self.undo_stack.beginMacro(f"new class '{cls.name}'")
        self._push(classundo.NewClass, cls.id, [glyph])
        self.canvas.clear()
        self.undo_stack.endMacro()
        self._class_changed(cls.id)

    def add_glyph_to_selected(self) -> None:
        cid = self._visible_selected_class()
        if cid is None:
            self.show_message("Highlight a class in the list first (the glyph is added to "
                              "the class you see highlighted).")
            return
        self._add_example(cid)

    def _add_example(self, cid: str, what: str = "add") -> None:
        glyph = self._need_glyph()
        if glyph is None or self.classset is None:
            return
        try:
            fname = self.classset.add_example(cid, glyph)
        except (ClassSetError, OSError) as exc:
            self.warn("Add example", str(exc))
            return
        name = self.classset.get(cid).name
        text = f"{what}: glyph is '{name}'" if what == "teach" else f"add glyph to '{name}'"
        self.undo_stack.beginMacro(text)
        self._push(classundo.AddExamples, cid, [glyph], [fname], text=text)
        self.canvas.clear()
        self.undo_stack.endMacro()
        self._class_changed(cid)
        self.statusBar().showMessage(f"added to '{name}' (Ctrl+Z undoes)", 4000)

    def teach(self, index: int) -> None:
        """The glyph is candidate ``index``: it becomes an example of that class."""
        if self.classset is None or index < 0 or index >= len(self.candidates.labels):
            return
        label = self.candidates.labels[index]
        cls = next((c for c in self.classset.classes if c.label == label), None)
        if cls is not None:
            self._add_example(cls.id, "teach")

    def teach_highlighted(self) -> None:
        row = self.candidates.highlighted()
        if row is None:
            self.show_message("Highlight a candidate first (click it), then teach.")
            return
        self.teach(row)

    def rename_class(self) -> None:
        cid = self._visible_selected_class()
        if cid is None or self.classset is None or self._read_only():
            return
        cls = self.classset.get(cid)
        before = (cls.name, cls.char)
        name, ok = QInputDialog.getText(self, "Rename class", "Name:", text=cls.name)
        if not ok:
            return
        char, ok = QInputDialog.getText(self, "Rename class", "Unicode character (optional):",
                                        text=cls.char)
        if not ok:
            return
        try:
            self.classset.rename_class(cid, name, char)
        except (ClassSetError, OSError) as exc:
            self.warn("Rename class", str(exc))
            return
        after = (cls.name, cls.char)
        if after != before:
            self._push(classundo.RenameClass, cid, before, after)
        self._class_changed(cid)

    def delete_class(self) -> None:
        cid = self._visible_selected_class()
        if cid is None or self.classset is None or self._read_only():
            return
        cls = self.classset.get(cid)
        answer = QMessageBox.question(
            self, "Delete class", f"Delete the class '{cls.name}' and its "
            f"{len(cls.examples)} example(s)? (Ctrl+Z brings it back.)")
        if answer != QMessageBox.Yes:
            return
        try:
            glyphs = classundo.snapshot_examples(self.classset, cid, list(cls.examples))
            name, char = cls.name, cls.char
            self.classset.delete_class(cid)
        except (ClassSetError, GlyphLoadError, OSError) as exc:
            self.warn("Delete class", f"The class was not deleted: {exc}")
            self._class_changed(cid)
            return
        self._push(classundo.DeleteClass, cid, name, char, glyphs)
        self._class_changed(None)

    def remove_example(self) -> None:
        cid, item = self._visible_selected_class(), self.example_list.currentItem()
        if cid is None or item is None or self.classset is None:
            return
        fname = item.data(Qt.UserRole)
        try:
            glyph = classundo.example_glyph(self.classset, cid, fname)
            self.classset.remove_example(cid, fname)
        except (ClassSetError, GlyphLoadError, OSError) as exc:
            self.warn("Remove example", f"The example was not removed: {exc}")
            return
        self._push(classundo.RemoveExample, cid, fname, glyph)
        self._class_changed(cid)

    # -- loading glyphs ------------------------------------------------------------------
    def load_images(self) -> None:
        # The folder of the last images loaded: glyphs come in batches from one place.
        start = str(self.settings.value("files/images", "") or "")
        paths, _ = QFileDialog.getOpenFileNames(self, "Load glyph images", start,
                                                IMAGE_FILTER)
        if paths:
            self.settings.setValue("files/images", str(Path(paths[0]).parent))
            self.load_files([Path(p) for p in paths])

    def load_files(self, paths: list[Path]) -> None:
        glyphs, errors = [], []
        for p in paths:
            try:
                glyphs.append(load_glyph_file(p))
            except GlyphLoadError as exc:
                errors.append(str(exc))
        if errors:
            self.warn("Some files could not be loaded", "\n".join(errors))
        if len(glyphs) == 1:
            self.show_loaded(glyphs[0])
        elif len(glyphs) > 1:
            self._add_many(glyphs)

    def show_loaded(self, glyph: Glyph) -> None:
        """A loaded image becomes the canvas content and is recognised at once."""
        self.canvas.set_glyph_image(glyph.image)
        self.debounce.stop()  # the change signal started it; no second request needed
        self.recognize_now()

    def _add_many(self, glyphs: list[Glyph]) -> None:
        """Several images at once: they become examples of one class (new or existing)."""
        if self.classset is None:
            return
        names = [c.name for c in self.classset.classes]
        # The class highlighted in the list is offered; with none, an empty choice: the
        # first class of the set, offered before, took every image of a careless OK.
        chosen = self._class_or_none(self._visible_selected_class())
        if chosen is not None:
            current = names.index(chosen.name)
        else:
            names, current = ["", *names], 0
        name, ok = QInputDialog.getItem(
            self, "Add images", f"Add {len(glyphs)} images as examples of the class "
            "(pick one, or type a new name):", names, current, True)
        if not ok:
            return
        if not name.strip():
            self.statusBar().showMessage("No class chosen: no image was added.", 6000)
            return
        name = name.strip()
        cls = self.classset.find_by_name(name)
        fnames: list[str] = []
        created = False
        try:
            if cls is None:
                cls = self.classset.add_class(name, name if len(name) == 1 else "", glyphs)
                self._push(classundo.NewClass, cls.id, glyphs)
                created = True
            else:
                try:
                    for g in glyphs:
                        fnames.append(self.classset.add_example(cls.id, g))
                finally:
                    if fnames:  # what was written is on the stack, even after a failure
                        self._push(classundo.AddExamples, cls.id, glyphs[:len(fnames)],
                                   fnames)
        except (ClassSetError, OSError) as exc:
            self.warn("Add images", str(exc))
        if created or fnames:  # a refusal wrote nothing: no list rebuild, no refit
            self._class_changed(cls.id)

    def paste_glyph(self) -> None:
        mime = QApplication.clipboard().mimeData()
        if mime is None:  # an empty clipboard (or none on this platform) has no mime data
            self.statusBar().showMessage("The clipboard holds no image.", 4000)
            return
        if mime.hasImage():
            img = QImage(mime.imageData()).convertToFormat(QImage.Format_Grayscale8)
            if img.isNull():
                self.warn("Paste", "The clipboard holds an image nomgui cannot read.")
                return
            arr = np.frombuffer(img.constBits(), np.uint8, count=img.sizeInBytes())
            gray = arr.reshape(img.height(), img.bytesPerLine())[:, :img.width()].copy()
            try:
                glyph = glyph_from_array(gray, "clipboard")
            except GlyphLoadError as exc:
                self.warn("Paste", str(exc))
                return
            self.show_loaded(glyph)
        elif mime.hasUrls():
            self.load_files([Path(u.toLocalFile()) for u in mime.urls() if u.isLocalFile()])
        else:
            self.statusBar().showMessage("The clipboard holds no image.", 4000)

    def dragEnterEvent(self, e: QDragEnterEvent) -> None:
        if e.mimeData().hasUrls() or e.mimeData().hasImage():
            e.acceptProposedAction()

    def dropEvent(self, e: QDropEvent) -> None:
        urls = [Path(u.toLocalFile()) for u in e.mimeData().urls() if u.isLocalFile()]
        if urls:
            self.load_files(urls)
            e.acceptProposedAction()

    # -- recognition ---------------------------------------------------------------------
    def _on_stroke(self) -> None:
        self._stroke_time = time.perf_counter()
        self.debounce.start()

    def _on_canvas_changed(self) -> None:
        if self.canvas.is_empty():
            self._clear_candidates()
            self.model_sees.clear()
        elif not self.debounce.isActive():
            self.debounce.start()

    def recognize_now(self) -> None:
        if self.canvas.is_empty():
            return
        if (isinstance(self.classset, LookupSet) and not self.fitted
                and not self._fit_error):
            # The request waits behind the first build (a minute or two): said at once,
            # not after it (found in a real window: a stroke got no word for minutes).
            self.show_message(LOOKUP_PREPARING)
        if self._stroke_time == 0.0:
            self._stroke_time = time.perf_counter()
        k = LOOKUP_TOP_K if isinstance(self.classset, LookupSet) else TOP_K
        self.recognizer.predict(self.canvas.render_image(), k)

    def _on_predicted(self, request: int, top, glyph: np.ndarray, seconds: float,
                      unsure: bool = False) -> None:
        self.answered_request = max(self.answered_request, request)
        if request != self.recognizer.latest_request or self.canvas.is_empty():
            return  # an answer for a drawing that has changed since
        self.show_message("")
        self._top_all = list(top)
        if self.candidates.lookup:  # the lookup shows 10 of its 30; More shows the rest
            self._top_shown = min(LOOKUP_PAGE, len(top))
            top = top[:self._top_shown]
            self._update_more_button()
        self.candidates.show_candidates(top, self._chars, self.readings, unsure)
        self.candidates.scrollToTop()  # a new answer: its rank 1 in view, wherever More left it
        self.none_of_these.setVisible(unsure)
        # Rows are reused: row 0 may stay selected with new content and no selection
        # signal, so the Teach button is told the new label here.
        self._update_edit_buttons()
        self.model_sees.setPixmap(pixmap_from_gray(glyph, 112, invert=True))
        if self._stroke_time:
            self.last_latency = time.perf_counter() - self._stroke_time
            self._stroke_time = 0.0
            self.latency_status.setText(f"{self.last_latency * 1000:.0f} ms")

    def _on_predict_failed(self, request: int, text: str) -> None:
        self.answered_request = max(self.answered_request, request)
        if request != self.recognizer.latest_request:
            return
        self._clear_candidates()
        self.model_sees.clear()  # not the previous glyph beside a failure
        self._stroke_time = 0.0
        if text == NO_INK and self.canvas.holds_image() and not self.canvas.strokes():
            text = ("This image has no ink: it is blank or of one colour. Load another "
                    "image, or draw the glyph.")
        if isinstance(self.classset, LookupSet) and not self.fitted:
            # Not "needs two classes": the lookup is still being made, or cannot be.
            text = self._fit_error or LOOKUP_PREPARING
        self.show_message(text)

    def _clear_candidates(self) -> None:
        self._top_all, self._top_shown = [], 0
        self._update_more_button()
        self.candidates.show_candidates([], {})
        self.none_of_these.hide()
        self._update_edit_buttons()

    def copy_selection(self) -> None:
        """Ctrl+C: a class found in the list (by name, character or reading) when the list
        has the focus, else the best candidate."""
        cid = self._visible_selected_class() if self.class_list.hasFocus() else None
        if cid is None or self.classset is None:
            self.copy_candidate(0)
            return
        cls = self.classset.get(cid)
        self._copy_text(cls.char or cls.name)

    def copy_candidate(self, index: int) -> None:
        labels = self.candidates.labels
        if index >= len(labels):
            return
        self._copy_text(self._char_text(labels[index]))

    def _copy_text(self, text: str) -> None:
        QApplication.clipboard().setText(text)
        self.statusBar().showMessage(f"copied '{text}'", 3000)
        if isinstance(self.classset, LookupSet):
            self.lookup_panel.remember(text)

    def _char_text(self, label: str) -> str:
        """What copying or appending a candidate gives: its character, else its label."""
        return self._chars.get(label) or label

    # -- the Nôm lookup ------------------------------------------------------------------
    def open_lookup(self) -> None:
        """Open the built-in set of every Nôm code point (its vocabulary is read by the
        worker first; the fit renders the fonts on first use, with progress)."""
        if isinstance(self.classset, LookupSet):
            return
        if self.lookup_vocab is not None:
            self._open_lookup_set()
            return
        self._open_lookup_when_loaded = True
        self.statusBar().showMessage("reading the Nôm vocabulary…")
        self.recognizer.load_vocabulary()

    def _on_vocabulary(self, vocab, missing, error: str) -> None:
        wanted, self._open_lookup_when_loaded = self._open_lookup_when_loaded, False
        if error or not vocab:
            self.warn("Nôm lookup", f"The Nôm vocabulary cannot be read: {error or 'empty'}")
            if self.classset is None:
                self._open_fallback_classset()
            return
        self.lookup_vocab, self.missing_fonts = list(vocab), list(missing)
        self.lookup_panel.set_missing_fonts(self.missing_fonts)
        if wanted:
            self._open_lookup_set()

    def _open_lookup_set(self) -> None:
        try:
            cs = LookupSet.open_vocabulary(lookup_folder(self.data_dir), self.lookup_vocab or [])
        except (ClassSetError, OSError) as exc:
            self.warn("Nôm lookup", str(exc))
            if self.classset is None:
                self._open_fallback_classset()
            return
        self.set_classset(cs)
        self.statusBar().showMessage(f"{LOOKUP_NAME}: {len(self.lookup_vocab or []):,} code "
                                     "points", 4000)
        if cs.warnings:
            self.warn("Nôm lookup repaired", "\n".join(cs.warnings))

    def _lookup_model(self) -> ModelSummary | None:
        """The model the user chose for the lookup, else lookup-nom.pt, else
        protonet-nom.pt (only learners whose classes are embedding means can)."""
        usable = [m for m in self.models if m.names_vocabulary]
        remembered = str(self.settings.value("lookup/model", ""))
        found = next((m for m in usable if str(m.path) == remembered), None)
        if found is not None:
            return found
        for name in LOOKUP_MODELS:
            found = next((m for m in usable if m.path.name == name), None)
            if found is not None:
                return found
        return usable[0] if usable else None

    def _set_lookup_mode(self, on: bool) -> None:
        """Show or hide the lookup's widgets; called before the class list is rebuilt."""
        if on != self.candidates.lookup:  # 5 answers of a set, or 30 of the lookup: stale
            self._top_all, self._top_shown = [], 0
            self.candidates.show_candidates([], {})
            self.none_of_these.hide()
        self.lookup_panel.setVisible(on)
        self.lookup_row.setVisible(on)
        self.none_of_these.setText(NONE_OF_THESE_LOOKUP if on else NONE_OF_THESE_SET)
        # Among 13,590 classes one is always near: the line almost never shows there
        # (calibrated on 5- and 20-way episodes; a scribble, a box or a blob all stay above
        # the threshold), so its kept room would only take two candidate rows. Its own
        # buttons, Append and More, are above it and do not move.
        policy = self.none_of_these.sizePolicy()
        policy.setRetainSizeWhenHidden(not on)
        self.none_of_these.setSizePolicy(policy)
        self.candidates.set_lookup(on)
        self.new_class_button.setEnabled(not on)
        self.class_list.setUniformItemSizes(on)
        # The lookup's answer is read among 10 candidates: they get the room; the list
        # of 13,000 code points is for finding one by its reading.
        self._right_layout.setStretchFactor(self.candidates, 6 if on else 2)
        self._right_layout.setStretchFactor(self.class_list, 2 if on else 3)
        font = QFont(self.candidates.font())
        if on:  # the characters are what the user reads in this list
            font.setPointSizeF(font.pointSizeF() * 1.5)
        self.class_list.setFont(font)
        self.class_list.setToolTip(
            "Every Nôm code point; find one by its reading (Ctrl+F) to copy it (Ctrl+C) or "
            "add the glyph to it" if on else "Your classes. F2 renames, Delete removes a class.")
        self._update_more_button()
        self._update_lookup_title()

    def _update_lookup_title(self) -> None:
        if not isinstance(self.classset, LookupSet):
            return
        n = len(self.lookup_vocab or [])
        m = self.model
        if m is None:
            self.lookup_panel.set_model(f"<b>{LOOKUP_NAME}</b> ({n:,}): loading the model…")
            return
        note = ""
        if not m.names_vocabulary:
            note = (" — this model cannot name the whole vocabulary; choose a cosine or "
                    "ProtoNet model in the Model menu")
        taught = sum(len(c.examples) for c in self.classset.classes)
        zooms = ""
        if len(m.lookup_zooms) > 1:  # chosen on validation crops (nomgui-train lookup-zooms)
            zooms = f", each glyph seen at {' and '.join(f'{z:g}x' for z in m.lookup_zooms)}"
        self.lookup_panel.set_model(
            f"<b>{LOOKUP_NAME}</b>: {n:,} characters, named by <b>{m.path.name}</b> "
            f"({m.title}, {m.image_size} px{zooms}){note}; {taught} example(s) of yours")

    def accept_candidate(self, row: int) -> None:
        """Enter or a double click in the lookup: the character joins the transcription and
        the canvas is cleared for the next glyph (Ctrl+Z brings it back)."""
        if row < 0 or row >= len(self.candidates.labels):
            return
        text = self._char_text(self.candidates.labels[row])
        self.append_text(text)
        self.canvas.clear()

    def _accept_highlighted(self) -> None:
        row = self.candidates.highlighted()
        if row is not None:
            self.accept_candidate(row)

    def append_text(self, text: str) -> None:
        self.lookup_panel.append(text)
        self.statusBar().showMessage(f"appended '{text}' to the transcription", 3000)

    def copy_transcription(self) -> None:
        self.lookup_panel.edit.copy_all()

    def show_more_candidates(self) -> None:
        """The next 10 of the lookup's 30 candidates; the first new one is highlighted."""
        start = self._top_shown
        n = min(len(self._top_all), start + LOOKUP_PAGE)
        if n <= start:
            return
        self._top_shown = n
        self.candidates.show_candidates(self._top_all[:n], self._chars, self.readings)
        self.candidates.selectRow(start)
        self.candidates.scrollToItem(self.candidates.item(start, 0))
        self._update_more_button()
        self._update_edit_buttons()

    def _update_more_button(self) -> None:
        left = len(self._top_all) - self._top_shown
        self.more_button.setEnabled(left > 0)
        self.more_button.setText(
            f"More ({self._top_shown + 1}–{self._top_shown + min(left, LOOKUP_PAGE)})"
            if left > 0 else "More candidates")

    def _show_vocabulary_hits(self, text: str) -> None:
        """Characters of the whole vocabulary read as typed that the open set lacks (the
        lookup's own list already holds them all)."""
        q = text.strip()
        hits: list[str] = []
        if q and self.classset is not None and not isinstance(self.classset, LookupSet):
            found = self.readings.chars_for(q)
            if self.lookup_vocab is not None:
                found &= {ch for _, ch in self.lookup_vocab}
            found -= set(self._chars.values())
            hits = sorted(found)[:VOCAB_HITS_MAX]
        self.vocab_hits.set_chars(hits)
        self.vocab_hits_row.setVisible(bool(hits))

    def _copy_vocabulary_hit(self, char: str) -> None:
        QApplication.clipboard().setText(char)
        said = ", ".join(self.readings.of(char))
        self.statusBar().showMessage(f"copied '{char}' U+{ord(char):04X} {said}", 4000)
        self.lookup_panel.remember(char)

    # -- help ----------------------------------------------------------------------------
    def about(self) -> None:
        model = self.model
        model_text = (f"{model.algo} from {model.path.name}: {model.description}; "
                      f"{model.accuracy}" if model else "none loaded")
        QMessageBox.about(self, "About nomgui", (
            f"<h3>nomgui {__version__}</h3>"
            "<p>Few-shot glyph recognition: draw or load glyphs, define classes from a few "
            "examples, recognise with a meta-learned model.</p>"
            f"<p><b>Model:</b> {model_text}</p>"
            "<p><b>Data the bundled models learned from:</b> Omniglot (Lake, Salakhutdinov "
            "&amp; Tenenbaum 2015), MIT licence; Nôm woodblock crops from the NomNaOCR pages "
            "(ds4v/NomNaOCR, Vietnamese Nôm Preservation Foundation), research use, not "
            "redistributed.</p>"
            "<p><b>Starter class sets:</b> digits rendered with the DejaVu fonts (Bitstream "
            "Vera licence); Nôm characters rendered with HanaMin (Hanazono Font licence / "
            "OFL), TW-Sung (OGDL-TW-1.0) and BabelStone Han (Arphic Public License, "
            "CC BY-SA).</p>"
            "<p><b>Readings:</b> Unihan kVietnamese, Unicode License v3.</p>"
            "<p><b>Methods:</b> Prototypical Networks (Snell et al. 2017), MAML (Finn et al. "
            "2017), Proto-MAML (Triantafillou et al. 2020), transfer baseline (Chen et al. "
            "2019). Built with PySide6 (LGPL) and PyTorch (BSD).</p>"))
