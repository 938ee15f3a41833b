"""Screenshots of the training runs window and the annotation window, on a real X server.

    xvfb-run -a -s "-screen 0 1280x800x24" python scripts/screenshot_training.py DATA_ROOT \
        docs/training.png docs/annotate.png

Starts a real ProtoNet run on Omniglot (DATA_ROOT) from a fresh data folder, grabs the runs
window after a few validations and stops the run; then cuts a generated page of glyphs in
the annotation window and grabs it with the model's proposals.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    data_root, shot_runs, shot_annotate = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    app = QApplication(sys.argv[:1])
    from nomgui.app import RESOURCES
    from nomgui.mainwindow import MainWindow
    from nomgui.training import Run, TrainRequest
    from tests.unit.test_annotation import make_page

    tmp = Path(tempfile.mkdtemp())
    settings = QSettings(str(tmp / "s.ini"), QSettings.IniFormat)
    w = MainWindow(tmp / "data", RESOURCES, settings)
    w.resize(900, 600)
    w.show()
    req = TrainRequest(command="meta-train", algo="protonet", dataset="omniglot",
                       data_root=data_root, way=5, shot=1, query=15, steps=240, batch=8)
    run = w.run_store.create(req)
    runs = w.show_runs()
    runs.resize(1000, 680)
    runs.move(20, 20)
    runs.start(run)

    def wait_runs() -> None:
        current = Run.open(run.folder)
        vals = [e for e in current.events() if e.get("event") == "val"]
        if not current.running() and len(vals) < 3:
            print(f"the run ended early: {current.error_text()}")
            app.quit()
            return
        if len(vals) < 3:
            QTimer.singleShot(500, wait_runs)
            return
        QTimer.singleShot(300, grab_runs)

    def grab_runs() -> None:
        app.primaryScreen().grabWindow(0).save(str(shot_runs))
        print(f"wrote {shot_runs}")
        w.run_store.stop(Run.open(run.folder))
        runs.hide()
        page = tmp / "page.png"
        make_page(page, rows=2, cols=5)
        win = w.show_annotate()
        win.resize(1000, 680)
        win.move(20, 20)
        import numpy as np
        from PIL import Image

        from nomgui.annotation import segment_page

        session = win.store.create("page")
        session.add_boxes(page, segment_page(np.asarray(Image.open(page).convert("L"))))
        win.set_session(session)
        QTimer.singleShot(3000, grab_annotate)

    def grab_annotate() -> None:
        app.primaryScreen().grabWindow(0).save(str(shot_annotate))
        print(f"wrote {shot_annotate}")
        w.run_store.wait([Run.open(run.folder)], timeout=30)
        app.quit()

    QTimer.singleShot(1000, wait_runs)
    app.exec()


if __name__ == "__main__":
    main()
