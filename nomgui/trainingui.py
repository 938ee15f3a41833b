"""The Training menu's windows: the dialog that sets up a run, and the runs window that
follows runs live (progress, ETA, loss and validation plot, log) and stops, resumes,
deletes and registers them. The processes themselves are :mod:`nomgui.training`'s."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QPointF, QRectF, QSettings, Qt, QUrl, Signal
from PySide6.QtGui import (
    QColor,
    QDesktopServices,
    QKeySequence,
    QPainter,
    QPainterPath,
    QPalette,
    QPen,
    QShortcut,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from nomgui.recognizer import ModelSummary
from nomgui.screenfit import resize_to_fit
from nomgui.training import (
    ALGORITHMS,
    DATA_ZIP,
    DATASETS,
    SPLITS,
    Run,
    RunError,
    RunMonitor,
    RunStore,
    TrainRequest,
    held_out_text,
)

KINDS = {
    "meta-train": "Meta-train a few-shot learner",
    "pretrain": "Pre-train for transfer learning",
    "finetune": "Fine-tune the current model on this class set",
    "evaluate": "Evaluate a model",
}


def _spin(lo: int, hi: int, value: int, tip: str) -> QSpinBox:
    box = QSpinBox()
    box.setRange(lo, hi)
    box.setValue(value)
    box.setToolTip(tip)
    return box


class TrainingDialog(QDialog):
    """Sets up one run. ``request()`` gives the :class:`TrainRequest` once accepted.

    ``classset`` is (name, classes, classes with at least 2 examples) of the open set;
    ``counts`` its examples per class, when known (to check what is left after Hold out).
    """

    def __init__(self, kind: str, models: list[ModelSummary], current: ModelSummary | None,
                 classset: tuple[str, int, int] | None, settings: QSettings,
                 parent: QWidget | None = None, counts: list[int] | None = None) -> None:
        super().__init__(parent)
        self.kind, self.settings, self.classset = kind, settings, classset
        self.counts = counts
        self.setWindowTitle(KINDS[kind])
        form = QFormLayout()
        self.algo = QComboBox()
        for name in ALGORITHMS:
            if (kind == "pretrain") == (name == "transfer"):
                self.algo.addItem(name, name)
        self.model = QComboBox()
        for m in models:
            self.model.addItem(f"{m.algo}: {m.path.name} ({m.accuracy})", str(m.path))
        if current is not None:
            self.model.setCurrentIndex(max(0, self.model.findData(str(current.path))))
        self.dataset = QComboBox()
        for name in DATASETS:
            if name != "classset" or classset is not None:
                self.dataset.addItem(name if name != "classset" else
                                     f"this class set ({classset[0]})", name)
        self.data_root = QLineEdit()
        self.data_root.setPlaceholderText("folder holding the data set")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        self.download = QCheckBox("Download Omniglot into this folder (torchvision)")
        root_row = QHBoxLayout()
        root_row.addWidget(self.data_root, 1)
        root_row.addWidget(browse)
        self.split = QComboBox()
        for name in SPLITS:
            self.split.addItem(name, name)
        self.way = _spin(2, 1000, 5, "N: classes per episode")
        self.shot = _spin(1, 100, 1, "K: labelled examples per class")
        self.query = _spin(1, 100, 15, "Q: examples per class to classify in each episode")
        self.steps = _spin(1, 10_000_000, 2000, "training steps (each a batch of tasks)")
        self.batch = _spin(1, 100_000, 16, "tasks per step (images per step for pre-training)")
        self.episodes = _spin(10, 100_000, 1000, "test episodes (mean ± 95% CI)")
        self.holdout = _spin(0, 1000, 1, "split all (a class set): examples of each class kept "
                             "out of training and validation, on which the model is "
                             "measured when the run ends (never more than half a class; "
                             "a class of one example trains on it). 0: none, and the "
                             "model stays 'not evaluated'. Your examples are not changed.")
        self.device = QComboBox()
        for name in ("auto", "cpu", "cuda"):
            self.device.addItem(name, name)
        self.device.setToolTip("auto: the GPU when torch sees one, else the CPU")
        self.title = QLineEdit()
        self.title.setPlaceholderText("(optional) a name for the runs list")
        self.help = QLabel()
        self.help.setWordWrap(True)
        self.help.setMinimumWidth(420)
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #c0392b")
        self.error.hide()

        if kind in ("meta-train", "pretrain"):
            form.addRow("Algorithm", self.algo)
        if kind in ("finetune", "evaluate"):
            form.addRow("Model" if kind == "evaluate" else "Start from", self.model)
        if kind != "finetune":
            form.addRow("Data set", self.dataset)
            form.addRow("Data folder", root_row)
            form.addRow("", self.download)
            form.addRow("Split", self.split)
        if kind != "pretrain":
            form.addRow("Way (N)", self.way)
            form.addRow("Shot (K)", self.shot)
            form.addRow("Query (Q)", self.query)
        if kind == "evaluate":
            form.addRow("Episodes", self.episodes)
        else:
            form.addRow("Steps", self.steps)
            form.addRow("Batch", self.batch)
            form.addRow("Hold out", self.holdout)
        form.addRow("Device", self.device)
        form.addRow("Title", self.title)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.button(QDialogButtonBox.Ok).setText("Evaluate" if kind == "evaluate"
                                                    else "Start training")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.help)
        layout.addWidget(self.error)
        layout.addWidget(buttons)

        for combo in (self.algo, self.dataset, self.split, self.model):
            combo.currentIndexChanged.connect(self._update)
        # An error speaks of the fields as they were at the last Start: any change retires it.
        for combo in (self.algo, self.dataset, self.split, self.model, self.device):
            combo.currentIndexChanged.connect(self.error.hide)
        for spin in (self.way, self.shot, self.query, self.steps, self.batch, self.episodes,
                     self.holdout):
            spin.valueChanged.connect(self.error.hide)
        self.data_root.textChanged.connect(self.error.hide)
        self.download.toggled.connect(self.error.hide)
        self.dataset.currentIndexChanged.connect(self._dataset_changed)
        self._defaults()
        self._update()

    # -- defaults and help -----------------------------------------------------------------
    def _defaults(self) -> None:
        if self.kind == "pretrain":
            self.steps.setValue(3000)
            self.batch.setValue(128)
        if self.kind == "finetune" and self.classset is not None:
            usable = self.classset[2]
            if self.counts is not None:
                # Hold one example of each class out where enough classes keep the two
                # (shot + query) an episode takes; else none (the Model menu then says why).
                left = sum(1 for n in self.counts if n - min(1, n // 2) >= 2)
                if left >= 2:
                    usable = left
                else:
                    self.holdout.setValue(0)
            self.way.setValue(max(2, min(5, usable)))
            self.query.setValue(1)
            self.steps.setValue(200)
            self.batch.setValue(4)
            self.dataset.setCurrentIndex(self.dataset.findData("classset"))
        self._dataset_changed()

    def _dataset_changed(self) -> None:
        name = self.dataset.currentData()
        saved = self.settings.value(f"training/root/{name}", "")
        self.data_root.setText(str(saved) if saved else "")
        self.download.setVisible(name == "omniglot")
        if name == "classset":
            self.split.setCurrentIndex(self.split.findData("all"))
        elif name == "nom" and self.split.currentData() == "all":
            self.split.setCurrentIndex(self.split.findData("seed"))
        if name in ("nom", "nom-fonts"):
            self.query.setValue(min(self.query.value(), 5))  # 5-20 crops a class

    def _update(self) -> None:
        parts = []
        if self.kind in ("meta-train", "pretrain"):
            parts.append(ALGORITHMS.get(self.algo.currentData(), ""))
        elif self.kind == "finetune":
            parts.append("Continues training the chosen model on the classes of the open "
                         "class set (episodes drawn from your examples; at least Shot + Query "
                         "examples per class). Validation is on the same classes, so it shows "
                         "fit to your glyphs, not generalisation.")
        else:
            parts.append("Measures a model on test episodes it has never seen: mean accuracy "
                         "with its 95% confidence interval.")
        if self.kind != "finetune":
            parts.append(DATASETS.get(self.dataset.currentData(), ""))
            parts.append("Split: " + SPLITS.get(self.split.currentData(), ""))
        all_split = self.kind == "finetune" or self.split.currentData() == "all"
        self.holdout.setEnabled(all_split)
        if all_split and self.kind != "evaluate":
            parts.append("Hold out: that many examples of each class (at most half of it) "
                         "are kept out of training; the model's accuracy on them, among all "
                         "your classes, is what the Model menu shows.")
        self.help.setText("\n\n".join(p for p in parts if p))
        self._fit_text()

    def _fit_text(self) -> None:
        """Grow to the help text and error line: the layout would otherwise squeeze the
        number fields until their digits are cut (found in a real window). Before the
        dialog is shown, showing sizes it."""
        if not self.isVisible() or self.layout() is None:
            return
        self.layout().activate()
        need = max(self.heightForWidth(self.width()), self.sizeHint().height())
        if self.height() < need:  # within the screen (a laptop's 768 px)
            resize_to_fit(self, self.width(), need, self.parentWidget(), fraction=0.95)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Data folder", self.data_root.text())
        if folder:
            self.data_root.setText(folder)

    # -- result ----------------------------------------------------------------------------
    def request(self) -> TrainRequest:
        dataset = "classset" if self.kind == "finetune" else self.dataset.currentData()
        command = {"finetune": "meta-train", "evaluate": "evaluate"}.get(self.kind, self.kind)
        algo = self.algo.currentData() or "protonet"
        init_from = ""
        if self.kind in ("finetune", "evaluate"):
            init_from = self.model.currentData() or ""
        if self.kind == "finetune":
            chosen = self.model.currentText().split(":")[0]
            algo = chosen if chosen in ALGORITHMS else "protonet"
            if algo == "transfer":
                command = "pretrain"
        return TrainRequest(
            command=command, algo=algo, dataset=dataset,
            data_root=self.data_root.text().strip(), split=self.split.currentData(),
            way=self.way.value(), shot=self.shot.value(), query=self.query.value(),
            steps=self.steps.value(), batch=self.batch.value(),
            device=self.device.currentData(), download=self.download.isChecked()
            and dataset == "omniglot", init_from=init_from, episodes=self.episodes.value(),
            title=self.title.text().strip(),
            holdout=self.holdout.value() if self.kind != "evaluate"
            and self.split.currentData() == "all" else 0)

    def problem(self) -> str:
        """Why the request cannot run as set, or ''."""
        req = self.request()
        if req.dataset == "classset":
            if self.classset is None:
                return "No class set is open."
            _, _, usable = self.classset
            if req.command == "meta-train" and usable < req.way:
                return (f"{req.way}-way episodes need {req.way} classes with at least two "
                        f"examples each; this class set has {usable}. Add examples or lower "
                        "the way.")
            held = req.holdout if req.split == "all" else 0
            if req.command == "meta-train" and held and self.counts is not None:
                need = req.shot + req.query
                left = sum(1 for n in self.counts if n - min(held, n // 2) >= need)
                if left < req.way:
                    return (f"With {held} example(s) of each class held out, {left} classes "
                            f"keep the {need} examples a {req.way}-way {req.shot}-shot "
                            f"{req.query}-query episode needs. Add examples, lower the way, "
                            "Shot or Query, or set Hold out to 0.")
        elif not req.download:
            if not req.data_root:
                return "Choose the data folder."
            if not Path(req.data_root).exists():
                return f"{req.data_root} does not exist."
        if (req.command == "evaluate" or self.kind == "finetune") and not req.init_from:
            return "There is no model to start from."
        return ""

    def accept(self) -> None:
        problem = self.problem()
        if problem:
            self.error.setText(problem)
            self.error.show()
            self._fit_text()
            return
        req = self.request()
        if req.data_root:
            self.settings.setValue(f"training/root/{req.dataset}", req.data_root)
        super().accept()


class LossPlot(QWidget):
    """Training loss (left axis) and validation accuracy (right axis, %) against steps."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(320, 160)
        self.loss: list[tuple[int, float]] = []
        self.val: list[tuple[int, float]] = []
        self.total = 1

    def set_data(self, loss: list[tuple[int, float]], val: list[tuple[int, float]],
                 total: int) -> None:
        self.loss, self.val, self.total = loss, val, max(total, 1)
        self.update()

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing)
        pal = self.palette()
        p.fillRect(self.rect(), pal.color(QPalette.Base))
        fm = p.fontMetrics()
        left = fm.horizontalAdvance("0.000") + 10
        box = QRectF(left, 8, self.width() - left - fm.horizontalAdvance("100%") - 12,
                     self.height() - fm.height() - 20)
        p.setPen(QPen(pal.color(QPalette.Mid)))
        p.drawRect(box)
        top_loss = max((v for _, v in self.loss), default=1.0) or 1.0
        text = pal.color(QPalette.Text)
        p.setPen(text)
        p.drawText(QPointF(2, box.top() + fm.ascent()), f"{top_loss:.3f}")
        p.drawText(QPointF(2, box.bottom()), "0")
        p.drawText(QPointF(box.right() + 4, box.top() + fm.ascent()), "100%")
        p.drawText(QPointF(box.right() + 4, box.bottom()), "0%")
        p.drawText(QPointF(box.left(), self.height() - 4), "step 0")
        end = f"{self.total}"
        p.drawText(QPointF(box.right() - fm.horizontalAdvance(end), self.height() - 4), end)

        def point(step: int, frac: float) -> QPointF:
            return QPointF(box.left() + box.width() * step / self.total,
                           box.bottom() - box.height() * min(max(frac, 0.0), 1.0))

        for series, scale, colour in ((self.loss, top_loss, QColor("#2e86de")),
                                      (self.val, 100.0, QColor("#e67e22"))):
            if not series:
                continue
            path = QPainterPath(point(series[0][0], series[0][1] / scale))
            for step, v in series[1:]:
                path.lineTo(point(step, v / scale))
            p.setPen(QPen(colour, 2))
            p.drawPath(path)
            if series is self.val:
                for step, v in series:
                    p.drawEllipse(point(step, v / scale), 3, 3)
        p.setPen(QColor("#2e86de"))
        p.drawText(QPointF(box.left() + 6, box.top() + fm.ascent() + 2), "training loss")
        p.setPen(QColor("#e67e22"))
        label = "validation accuracy"
        p.drawText(QPointF(box.right() - fm.horizontalAdvance(label) - 6,
                           box.top() + fm.ascent() + 2), label)
        p.end()


def _started(events: list[dict]) -> bool:
    """Whether the trainer has begun its steps (its "start" line), past the data."""
    return any(e.get("event") == "start" for e in events)


def _fmt_eta(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class RunsWindow(QWidget):
    """Every run with its status; the selected one in detail, live while it runs."""

    modelsChanged = Signal()
    COLUMNS = ("Status", "Run", "Data", "Algorithm", "Accuracy", "Started")

    def __init__(self, store: RunStore, models_dir: Path, parent: QWidget | None = None):
        super().__init__(parent, Qt.Window)
        self.store, self.models_dir = store, models_dir
        self.setWindowTitle("Training runs — nomgui")
        self.resize(1000, 620)
        self.runs: list[Run] = []
        self.monitors: dict[str, RunMonitor] = {}
        self.selected: Run | None = None
        self._events: list[dict] = []  # the selected run's progress events

        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.Stretch)
        self.table.itemSelectionChanged.connect(self._selection_changed)

        self.heading = QLabel("No run selected")
        self.heading.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m steps")
        self.eta = QLabel()
        self.plot = LossPlot()
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(2000)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop after the current step; a checkpoint is saved and "
                                     "the run can be resumed")
        self.resume_button = QPushButton("Resume")
        self.register_button = QPushButton("Add to models")
        self.register_button.setToolTip("Copy the best model into your models (Model menu) "
                                        "and evaluate it on test episodes; a class-set "
                                        "model brings its figure on the examples it held "
                                        "out")
        self.folder_button = QPushButton("Open folder")
        self.delete_button = QPushButton("Delete")
        self.stop_button.clicked.connect(self.stop_selected)
        self.resume_button.clicked.connect(self.resume_selected)
        self.register_button.clicked.connect(self.register_selected)
        self.folder_button.clicked.connect(self._open_folder)
        self.delete_button.clicked.connect(self.delete_selected)

        row = QHBoxLayout()
        row.addWidget(self.progress, 1)
        row.addWidget(self.eta)
        # The window's own Close (runs go on): without a window manager's title bar, or
        # for the keyboard, there was no way to put it away (found in a real window).
        self.close_button = QPushButton("Close")
        self.close_button.setToolTip("Close this window; runs go on (Training > Training "
                                     "runs, Ctrl+T, shows it again)  Esc, Ctrl+W")
        self.close_button.clicked.connect(self.close)
        for keys in (QKeySequence(Qt.Key_Escape), QKeySequence(QKeySequence.Close)):
            QShortcut(keys, self, self.close)
        buttons = QHBoxLayout()
        for b in (self.stop_button, self.resume_button, self.register_button,
                  self.folder_button, self.delete_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.close_button)
        detail = QWidget()
        dl = QVBoxLayout(detail)
        dl.addWidget(self.heading)
        dl.addLayout(row)
        dl.addWidget(self.plot, 2)
        dl.addWidget(self.log, 1)
        dl.addLayout(buttons)
        split = QSplitter(Qt.Vertical)
        split.addWidget(self.table)
        split.addWidget(detail)
        split.setSizes([200, 420])
        layout = QVBoxLayout(self)
        layout.addWidget(split)
        self.refresh()

    # -- list ------------------------------------------------------------------------------
    def refresh(self, select: str | None = None) -> None:
        keep = select or (self.selected.info.id if self.selected else None)
        self.runs, errors = self.store.list()
        self._link_evaluations()
        self.table.blockSignals(True)
        self.table.setRowCount(len(self.runs))
        for r, run in enumerate(self.runs):
            req = run.request
            cells = (run.status(), run.info.title, f"{req.dataset} / {req.split}",
                     req.algo if req.command != "evaluate" else "evaluate",
                     run.accuracy_text(),
                     time.strftime("%Y-%m-%d %H:%M", time.localtime(run.info.created)))
            for c, text in enumerate(cells):
                self.table.setItem(r, c, QTableWidgetItem(text))
            if run.running() and run.info.id not in self.monitors:
                self._follow(run)
        self.table.resizeColumnToContents(0)
        self.table.blockSignals(False)
        ids = [r.info.id for r in self.runs]
        self.table.blockSignals(True)
        self.table.clearSelection()
        if self.runs:
            self.table.selectRow(ids.index(keep) if keep in ids else 0)
        self.table.blockSignals(False)
        self._selection_changed()  # the new Run objects, even if the same row stays selected
        if errors:
            self.log.appendPlainText("\n".join(errors))

    def _link_evaluations(self) -> None:
        """An evaluation started by "Add to models" reports back to its training run."""
        by_id = {r.info.id: r for r in self.runs}
        for run in self.runs:
            parent = by_id.get(run.info.parent or "")
            if parent is None or run.status() != "evaluated":
                continue
            found = [e for e in run.all_events() if "mean" in e]
            if found and parent.info.evaluation != found[-1]:
                parent.info.evaluation = found[-1]
                parent.save()

    def _follow(self, run: Run) -> None:
        mon = RunMonitor(run, parent=self)
        mon.event.connect(lambda e, rid=run.info.id: self._on_event(rid, e))
        mon.stderr.connect(lambda t, rid=run.info.id: self._on_stderr(rid, t))
        mon.ended.connect(lambda status, rid=run.info.id: self._on_ended(rid, status))
        self.monitors[run.info.id] = mon
        mon.start()

    def _selection_changed(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        self.selected = self.runs[rows[0].row()] if rows else None
        self._show(self.selected)

    def _show(self, run: Run | None) -> None:
        self.log.clear()
        if run is None:
            self.heading.setText("No run selected")
            self.plot.set_data([], [], 1)
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
            self.eta.clear()
        else:
            req, status = run.request, run.status()
            self.heading.setText(f"<b>{run.info.title}</b> — {status}<br>"
                                 f"<small>python -m trainer {' '.join(run.info.argv)}</small>")
            mon = self.monitors.get(run.info.id)
            # A followed run's events live in its monitor (extended as lines arrive, never
            # re-read); a finished run's are read once here.
            events = mon.events if mon is not None else run.all_events()
            self._events = events
            self._draw(events)
            for e in events:
                self._log_event(e)
            if req.command != "evaluate" and not _started(events):
                # Reading, rendering and caching the data takes a minute or more for the
                # Nôm sets before the trainer's first line: said, and said again when the
                # list is re-read (the trainer's own line is shown live only).
                if status == "running":
                    self.log.appendPlainText("starting: the trainer reads and prepares the "
                                             "data before its first step…")
                elif status == "stopped":
                    self.log.appendPlainText("stopped while preparing the data, before the "
                                             "first step: nothing was saved")
            if status == "failed":
                msg = run.error_text() or "the trainer process ended without a message"
                self.log.appendPlainText(
                    f"The run failed or was killed. {msg}"
                    + ("\nIts last checkpoint can be resumed." if run.can_resume() else ""))
            if req.command == "evaluate":
                self.progress.setRange(0, 1)
                self.progress.setValue(1 if status == "evaluated" else 0)
        self._update_buttons()

    def _draw(self, events: list[dict]) -> None:
        steps = [e for e in events if e.get("event") == "step"]
        vals = [e for e in events if e.get("event") == "val"]
        # Before the trainer's first line, the steps asked for (not "0 / 1").
        req = self.selected.request if self.selected is not None else None
        asked = req.steps if req is not None and req.command != "evaluate" else 1
        total = max([e.get("steps", 1) for e in events if "steps" in e], default=asked)
        self.plot.set_data([(e["step"], e["loss"]) for e in steps],
                           [(e["step"], e["val_acc"]) for e in vals], total)
        done = max([e.get("step", 0) for e in events if "step" in e], default=0)
        self.progress.setRange(0, total)
        self.progress.setValue(done)
        last = steps[-1] if steps else None
        running = self.selected is not None and self.selected.running()
        self.eta.setText(f"ETA {_fmt_eta(last.get('eta_s'))}" if last and running else "")

    def _log_event(self, e: dict) -> None:
        kind = e.get("event")
        if kind == "preparing":
            self.log.appendPlainText("preparing the data (read, rendered and cached once); "
                                     "Stop now ends the run at once")
        elif kind == "start":
            self.log.appendPlainText(f"started at step {e['step']} of {e['steps']}")
        elif kind == "step":
            rate = e.get("tasks_per_s")
            self.log.appendPlainText(
                f"step {e['step']}: loss {e['loss']:.4f}, train acc {e['acc']:.1f}%"
                + (f", {rate:.1f} per s" if rate else ""))
        elif kind == "val":
            self.log.appendPlainText(f"step {e['step']}: validation {e['val_acc']:.2f}% "
                                     f"(best {e['best_val']:.2f}%)")
        elif kind == "done":
            self.log.appendPlainText(f"{e['status']} at step {e['step']}")
        elif kind == "held_out":
            self.log.appendPlainText(f"held-out examples of your class set: "
                                     f"{held_out_text(e)}")
        elif "mean" in e:
            self.log.appendPlainText(f"test accuracy {e['mean']:.2f} ± {e['ci95']:.2f}% over "
                                     f"{e['episodes']} episodes")

    def _on_event(self, run_id: str, event: dict) -> None:
        if self.selected is not None and self.selected.info.id == run_id:
            self._draw(self._events)  # the monitor's list already holds ``event``
            self._log_event(event)

    def _on_stderr(self, run_id: str, text: str) -> None:
        if self.selected is not None and self.selected.info.id == run_id:
            lines = [x for x in text.splitlines() if x.strip() and "%|" not in x]
            if lines:
                self.log.appendPlainText("\n".join(lines))

    def _on_ended(self, run_id: str, status: str) -> None:
        mon = self.monitors.pop(run_id, None)
        if mon is not None:
            mon.deleteLater()
        self.refresh()  # shows the failure message when the ended run is the selected one
        run = next((r for r in self.runs if r.info.id == run_id), None)
        if run is not None and run.request.command == "evaluate":
            self.modelsChanged.emit()  # the model file now carries its evaluation

    def _update_buttons(self) -> None:
        run = self.selected
        running = run is not None and run.running()
        self.stop_button.setEnabled(running)
        self.resume_button.setEnabled(run is not None and run.can_resume())
        # Once only: a registered run (its evaluation running or done) cannot be added
        # again, so a second click can neither overwrite the model nor start a second
        # evaluation beside the first.
        registered = run is not None and bool(run.info.registered)
        self.register_button.setEnabled(run is not None and not running and not registered
                                        and run.request.command != "evaluate"
                                        and run.model_path.exists())
        self.register_button.setText("Added to models" if registered else "Add to models")
        self.folder_button.setEnabled(run is not None)
        self.delete_button.setEnabled(run is not None and not running)

    # -- actions ---------------------------------------------------------------------------
    def start(self, run: Run, resume: bool = False) -> None:
        try:
            self.store.start(run, resume=resume)
        except RunError as exc:
            QMessageBox.warning(self, "Training", str(exc))
            return
        self._follow(run)
        self.refresh(select=run.info.id)

    def stop_selected(self) -> None:
        if self.selected is not None and self.store.stop(self.selected):
            self.log.appendPlainText(
                "stopping after the current step…" if _started(self._events) else
                "stopping (still preparing the data: nothing to save yet)…")

    def resume_selected(self) -> None:
        if self.selected is not None and self.selected.can_resume():
            self.start(self.selected, resume=True)

    def register_selected(self) -> None:
        run = self.selected
        if run is None or run.info.registered:
            return
        self.register_button.setEnabled(False)  # at once: a double click registers once
        try:
            target = self.store.register(run, self.models_dir)
            req = self.store.evaluation_request(run, target)
            evaluation = None if req is None else self.store.create(
                req, classset_zip=run.folder / DATA_ZIP if req.dataset == "classset" else None,
                parent=run)
        except (RunError, OSError) as exc:
            QMessageBox.warning(self, "Add to models", str(exc))
            self._update_buttons()
            return
        self.modelsChanged.emit()
        if evaluation is not None:  # a class-set model already holds its held-out figure
            self.start(evaluation)
        self.refresh(select=run.info.id)

    def delete_selected(self) -> None:
        run = self.selected
        if run is None:
            return
        if QMessageBox.question(self, "Delete run", f"Delete the run '{run.info.title}' "
                                "and its files? A model already added to your models "
                                "stays.") != QMessageBox.Yes:
            return
        try:
            self.store.delete(run)
        except (RunError, OSError) as exc:
            QMessageBox.warning(self, "Delete run", str(exc))
        self.selected = None
        self.refresh()

    def _open_folder(self) -> None:
        if self.selected is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.selected.folder)))
