"""Runs the real ``nomgui`` entry point and quits it at a chosen moment (for test_quit.py).

    python -m tests.gui.quit_driver DATA_DIR fit|training [GLYPH_TREE]

``fit``: the Quit action is triggered while the worker is inside a fit that would never
end by itself (the model file's fine-tuning takes 10^8 steps). ``training``: a trainer
process is started from the app, and Quit is triggered once it has started its steps; the
"runs are going" question is answered "Stop them". Prints ``quit at T`` before quitting;
the exit code is the app's.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtGui import QAction

import nomgui.app as app_module
from nomgui.mainwindow import MainWindow
from nomgui.training import Run, TrainRequest


def main() -> int:
    data_dir, mode = Path(sys.argv[1]), sys.argv[2]
    original = app_module.create_window

    def create_window(data: Path, settings, resources=app_module.RESOURCES):
        window = original(data, settings, resources)
        state: dict = {}

        def quit_now() -> None:
            print(f"quit at {time.monotonic():.3f}", flush=True)
            next(a for a in window.findChildren(QAction) if a.text() == "&Quit").trigger()

        def poll() -> None:
            if mode == "fit":
                text = window.statusBar().currentMessage()
                if window.fit_progress.isVisible() and "fitting the model" in text:
                    QTimer.singleShot(300, quit_now)  # well inside the endless fine-tuning
                    return
            elif mode == "training":
                if "run" not in state and window.model is not None:
                    req = TrainRequest(command="meta-train", algo="protonet", dataset="folder",
                                       data_root=sys.argv[3], way=5, shot=1, query=3,
                                       steps=100_000, batch=2, device="cpu")
                    state["run"] = window.run_store.create(req)
                    window.show_runs().start(state["run"])
                elif "run" in state and any(e.get("event") == "start" for e in
                                            Run.open(state["run"].folder).events()):
                    MainWindow._ask_about_runs = lambda self, n: "stop"
                    quit_now()
                    return
            QTimer.singleShot(50, poll)

        QTimer.singleShot(50, poll)
        return window

    app_module.create_window = create_window
    return app_module.main(["--data-dir", str(data_dir)])


if __name__ == "__main__":
    code = main()
    print(f"exited at {time.monotonic():.3f}", flush=True)
    sys.exit(code)
