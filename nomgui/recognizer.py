"""All torch work of the app, in one worker thread around :mod:`trainer.api`.

The GUI thread never imports torch: :class:`Recognizer` lives on the GUI thread and only
emits requests; :class:`RecognizerWorker` lives in a QThread, imports ``trainer.api`` there
on first use, and answers with typed signals. Predict requests carry an id and stale ones
are dropped, so fast drawing never queues up work.

Fits of big class sets take seconds. A fit polls a cancel flag between glyphs and between
adaptation steps, so a newer fit, a model switch or closing the app drops it at once
instead of waiting behind it; closing waits at most :data:`SHUTDOWN_WAIT_MS`.
"""

from __future__ import annotations

import atexit
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal, Slot

SHUTDOWN_WAIT_MS = 2000
# Worker threads still inside an uncancellable torch call at shutdown: kept referenced so
# Qt never destroys a running QThread (that aborts the process). The ``nomgui`` command
# then leaves with os._exit; any other program (a script, a test) waits for them at exit,
# before the interpreter would destroy them.
_LEFT_RUNNING: list[tuple[QThread, QObject]] = []


@atexit.register
def _wait_for_left_threads() -> None:
    for thread, _worker in _LEFT_RUNNING:
        thread.wait(120_000)  # a closing worker stops at its next cancel poll or import


# What the recognizer says of a glyph without ink (the window words it for a loaded image).
NO_INK = "The canvas is empty: draw or load a glyph."


@dataclass(frozen=True)
class ModelSummary:
    """Plain description of a model file, for menus (built in the worker)."""

    path: Path
    algo: str
    description: str
    accuracy: str
    image_size: int
    bundled: bool
    name: str = ""  # as a person names it: "maml (first order)"
    names_vocabulary: bool = False  # can name the Nôm lookup's whole vocabulary
    lookup_zooms: tuple[float, ...] = (1.0,)  # the lookup embeds a glyph at these zooms

    @property
    def title(self) -> str:
        return self.name or self.algo


class RecognizerWorker(QObject):
    modelsListed = Signal(object)  # list[ModelSummary], list[str] errors
    modelLoaded = Signal(object)  # ModelSummary
    modelFailed = Signal(str)
    fitted = Signal(int, int, float)  # generation, classes, seconds
    fitFailed = Signal(int, str)
    fitProgress = Signal(int, int, int, str)  # generation, done, total, what is happening
    # id, [(label, p)], normalised glyph, seconds, "none of these" (best below threshold)
    predicted = Signal(int, object, object, float, bool)
    predictFailed = Signal(int, str)
    proposed = Signal(int, object, object)  # request, {item id: [(label, p)]}, {id: error}
    # [(code point, char)] of the Nôm lookup, [missing font lines], error text ("" if none)
    vocabularyLoaded = Signal(object, object, str)

    def __init__(self) -> None:
        super().__init__()
        self.latest_request = 0  # written by the GUI thread; an int store is atomic
        self.wanted_fit = 0  # the one fit generation still wanted (GUI thread writes it)
        self.closing = False  # set by the GUI thread on shutdown: drop everything
        self._model: Any = None
        self._summary: ModelSummary | None = None
        self._classifier: Any = None
        self._cache: dict[tuple[Path, float, int, bool], np.ndarray] = {}

    @staticmethod
    def _api():
        from trainer import api  # first use happens here, in the worker thread

        return api

    @Slot(object, object)
    def list_models(self, bundled: list[Path], user: list[Path]) -> None:
        api = self._api()
        found, errors = [], []
        for paths, is_bundled in ((bundled, True), (user, False)):
            for path in paths:
                try:
                    info = api.model_info(path)
                except api.ModelFileError as exc:
                    errors.append(str(exc))
                    continue
                found.append(ModelSummary(path, info.algo, info.description,
                                          info.headline_accuracy, info.image_size, is_bundled,
                                          info.name, info.names_vocabulary,
                                          info.lookup_zooms))
        self.modelsListed.emit((found, errors))

    @Slot(object)
    def load_model(self, summary: ModelSummary) -> None:
        if self.closing:
            return
        api = self._api()
        try:
            self._model = api.load_model(summary.path)
        except api.ModelFileError as exc:
            self.modelFailed.emit(str(exc))
            return
        self._summary, self._classifier = summary, None
        self.modelLoaded.emit(summary)

    def _normalized(self, path: Path, size: int) -> np.ndarray:
        api = self._api()
        key = (path, path.stat().st_mtime, size, self._model.info.clean_print)
        if key not in self._cache:
            from PIL import Image

            with Image.open(path) as img:
                self._cache[key] = api.normalize_glyph(
                    img, size, clean_print=self._model.info.clean_print)
        return self._cache[key]

    def _fit_wanted(self, generation: int) -> Callable[[], bool] | None:
        """The cancel test of fit ``generation`` (True once a newer fit or closing makes it
        unwanted), or None when it is already unwanted or no model is loaded (said)."""

        def cancel() -> bool:
            return self.closing or self.wanted_fit != generation

        if cancel():
            return None
        if self._model is None:
            self.fitFailed.emit(generation, "no model is loaded")
            return None
        return cancel

    @Slot(int, object)
    def fit(self, generation: int, examples: list[tuple[str, Path]]) -> None:
        """Adapt the model to the class set: examples are (label, png path). Emits
        ``fitProgress`` as it goes; a fit no longer wanted stops without an answer."""

        cancel = self._fit_wanted(generation)
        if cancel is None:
            return
        api = self._api()
        t0 = time.perf_counter()
        prepared = self._prepared(generation, examples, cancel)
        if prepared is None:
            return
        glyphs, labels = prepared
        total = len(examples)
        n_classes = len(set(labels))
        if len(set(labels)) < 2:
            self._classifier = None
            self.fitFailed.emit(generation, "The class set needs at least two classes with "
                                "examples before anything can be recognised.")
            return
        self.fitProgress.emit(generation, total, 2 * total,
                              f"fitting the model to {n_classes} classes")
        try:
            self._classifier = self._model.fit(glyphs, labels, cancel=cancel)
        except api.Cancelled:
            return  # a newer fit, another model or closing the app took over
        except (ValueError, RuntimeError) as exc:
            self._classifier = None
            self.fitFailed.emit(generation, f"fitting the class set failed: {exc}")
            return
        self.fitted.emit(generation, len(self._classifier.classes), time.perf_counter() - t0)

    def _prepared(self, generation: int, examples: list[tuple[str, Path]], cancel
                  ) -> tuple[list[np.ndarray], list[str]] | None:
        """The examples' normalised glyphs and labels (unreadable files skipped), with
        progress; None when cancelled."""
        api = self._api()
        size = self._model.info.image_size
        glyphs, labels = [], []
        total = len(examples)
        n_classes = len({label for label, _ in examples})
        last_report = 0.0
        for i, (label, path) in enumerate(examples):
            if i % 32 == 0:
                if cancel():
                    return None
                now = time.perf_counter()
                if now - last_report > 0.1:  # a few updates a second, not one per glyph
                    last_report = now
                    self.fitProgress.emit(generation, i, 2 * total,
                                          f"preparing {total} examples of {n_classes} classes")
            try:
                glyphs.append(self._normalized(path, size))
                labels.append(label)
            except (OSError, api.EmptyGlyphError, ValueError):
                pass
        return glyphs, labels

    @Slot()
    def load_vocabulary(self) -> None:
        """The Nôm lookup's code points and the fonts missing to render them."""
        api = self._api()
        try:
            vocab = api.nom_vocabulary()
        except api.DataError as exc:
            self.vocabularyLoaded.emit([], [], str(exc))
            return
        self.vocabularyLoaded.emit(vocab, api.missing_nom_fonts(), "")

    @Slot(int, object, object)
    def fit_lookup(self, generation: int, examples: list[tuple[str, Path]],
                   cache_dir: Path) -> None:
        """The whole Nôm vocabulary as the class set: font renderings (made and embedded
        once, cached in ``cache_dir``) plus the user's examples, labelled with their
        characters. Progress, cancellation and answers as :meth:`fit`."""

        cancel = self._fit_wanted(generation)
        if cancel is None:
            return
        api = self._api()
        t0 = time.perf_counter()
        prepared = self._prepared(generation, examples, cancel) if examples else ([], [])
        if prepared is None:
            return
        glyphs, labels = prepared
        steps = 1000

        def progress(fraction: float, text: str) -> None:
            self.fitProgress.emit(generation, round(steps * min(max(fraction, 0.0), 1.0)),
                                  steps, f"Nôm lookup: {text} ({fraction:.0%})")

        progress(0.0, "loading the font renderings")
        try:
            self._classifier = self._model.fit_lookup(glyphs, labels, cache_dir=cache_dir,
                                                      progress=progress, cancel=cancel)
        except api.Cancelled:
            return
        except api.DataError as exc:  # no font at all: nothing to name the glyph with
            self._classifier = None
            self.fitFailed.emit(generation, f"The Nôm lookup cannot be built: {exc}")
            return
        except (ValueError, RuntimeError, NotImplementedError, AttributeError, OSError,
                KeyError) as exc:
            self._classifier = None
            self.fitFailed.emit(generation, "The Nôm lookup could not be fitted with this "
                                f"model ({exc}); it needs a cosine or ProtoNet model such "
                                "as lookup-nom.pt or protonet-nom.pt (Model menu).")
            return
        self.fitted.emit(generation, len(self._classifier.classes), time.perf_counter() - t0)

    @Slot(int, object, int)
    def predict(self, request: int, image: np.ndarray, k: int) -> None:
        if self.closing or request < self.latest_request:
            return  # a newer drawing is waiting: skip this one
        api = self._api()
        t0 = time.perf_counter()
        if self._classifier is None:
            self.predictFailed.emit(request, "Nothing to recognise against yet: the class set "
                                    "needs at least two classes with examples.")
            return
        try:
            glyph = api.normalize_glyph(image, self._classifier.image_size,
                                        clean_print=self._classifier.clean_print)
        except api.EmptyGlyphError:
            self.predictFailed.emit(request, NO_INK)
            return
        top, unsure = self._classifier.assess(glyph, k)
        self.predicted.emit(request, top, glyph, time.perf_counter() - t0, unsure)


    @Slot(int, object, int)
    def propose(self, request: int, items: list[tuple[str, Path]], k: int) -> None:
        """Top-k proposals for many glyph files at once (annotation), in chunks of 256."""
        api = self._api()
        if self._classifier is None:
            self.proposed.emit(request, {}, {i: "no class set is fitted" for i, _ in items})
            return
        size, clean = self._classifier.image_size, self._classifier.clean_print
        out: dict[str, list[tuple[str, float]]] = {}
        errors: dict[str, str] = {}
        ready: list[tuple[str, np.ndarray]] = []
        for item_id, path in items:
            try:
                from PIL import Image

                with Image.open(path) as img:
                    ready.append((item_id, api.normalize_glyph(img, size, clean_print=clean)))
            except (OSError, ValueError, api.EmptyGlyphError) as exc:
                errors[item_id] = str(exc) or exc.__class__.__name__
        for start in range(0, len(ready), 256):
            chunk = ready[start:start + 256]
            probs = self._classifier.predict_proba([g for _, g in chunk])
            for (item_id, _), row in zip(chunk, probs, strict=True):
                order = np.argsort(-row)[:k]
                out[item_id] = [(self._classifier.classes[i], float(row[i])) for i in order]
        self.proposed.emit(request, out, errors)


class Recognizer(QObject):
    """GUI-thread handle: owns the worker thread and forwards requests as queued signals."""

    _listModels = Signal(object, object)
    _loadModel = Signal(object)
    _fit = Signal(int, object)
    _predict = Signal(int, object, int)
    _propose = Signal(int, object, int)
    _loadVocabulary = Signal()
    _fitLookup = Signal(int, object, object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.thread = QThread()
        self.thread.setObjectName("recognizer")
        self.worker = RecognizerWorker()
        self.worker.moveToThread(self.thread)
        self._listModels.connect(self.worker.list_models)
        self._loadModel.connect(self.worker.load_model)
        self._fit.connect(self.worker.fit)
        self._predict.connect(self.worker.predict)
        self._propose.connect(self.worker.propose)
        self._loadVocabulary.connect(self.worker.load_vocabulary)
        self._fitLookup.connect(self.worker.fit_lookup)
        self.thread.start()
        self._request = 0
        self.fit_generation = 0

    def list_models(self, bundled: list[Path], user: list[Path]) -> None:
        self._listModels.emit(bundled, user)

    def load_model(self, summary: ModelSummary) -> None:
        self._cancel_fit()  # a fit for the old model must not hold the new one up
        self._loadModel.emit(summary)

    def _cancel_fit(self) -> None:
        self.fit_generation += 1
        self.worker.wanted_fit = self.fit_generation

    def fit(self, examples: list[tuple[str, Path]]) -> int:
        """Fit the class set; any fit still running or queued is dropped."""
        self._cancel_fit()
        self._fit.emit(self.fit_generation, examples)
        return self.fit_generation

    def fit_lookup(self, examples: list[tuple[str, Path]], cache_dir: Path) -> int:
        """Fit the Nôm lookup (see :meth:`RecognizerWorker.fit_lookup`); any fit still
        running or queued is dropped."""
        self._cancel_fit()
        self._fitLookup.emit(self.fit_generation, examples, Path(cache_dir))
        return self.fit_generation

    def load_vocabulary(self) -> None:
        """Answered by the worker's ``vocabularyLoaded``."""
        self._loadVocabulary.emit()

    @property
    def latest_request(self) -> int:
        return self._request

    def predict(self, image: np.ndarray, k: int = 5) -> int:
        self._request += 1
        self.worker.latest_request = self._request
        self._predict.emit(self._request, image, k)
        return self._request

    def propose(self, items: list[tuple[str, Path]], k: int = 5) -> int:
        """Ask for proposals for (item id, glyph file) pairs; answered by ``proposed``."""
        self._request += 1
        self._propose.emit(self._request, items, k)
        return self._request

    def shutdown(self, wait_ms: int = SHUTDOWN_WAIT_MS) -> bool:
        """Cancel the running fit, stop the thread; True when it stopped within ``wait_ms``.

        A worker stuck in a long uncancellable call is left running (and referenced, so
        Qt does not abort on destroying a running thread); the app exits around it."""
        self.worker.closing = True
        self._cancel_fit()
        self.thread.quit()
        if self.thread.wait(wait_ms):
            return True
        _LEFT_RUNNING.append((self.thread, self.worker))
        return False
