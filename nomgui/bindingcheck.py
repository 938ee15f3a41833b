"""Start-up probe: refuse a Qt binding that loses references to None, True and False.

PySide6 6.12.0 on Python 3.11 drops one reference to ``None`` on every void Qt call (and to
``True``/``False`` on bool-returning ones). The canvas makes thousands of such calls while
the user draws, so the interpreter aborts with ``none_dealloc`` within a minute and the
drawing is lost. Python 3.12+ makes these objects immortal, so the probe can only fire on
3.10/3.11; it costs about a millisecond.
"""

from __future__ import annotations

import sys

CALLS = 200  # enough to see a leak of one per call, far too few to hurt a healthy binding
# References the probe itself made a broken binding lose, given back, so that refusing to
# start exits cleanly instead of aborting at interpreter shutdown.
_GIVEN_BACK: list[object] = []


def leaked_references(calls: int = CALLS) -> dict[str, int]:
    """How many references to None, True and False ``calls`` void and bool Qt calls lost.

    Healthy bindings give zeros (a few references may come and go with caches, so the
    caller compares against a tolerance, not zero).
    """
    from PySide6.QtCore import QPointF, QRectF
    from PySide6.QtGui import QPainterPath

    path = QPainterPath(QPointF(0, 0))
    rect = QRectF(0, 0, 1, 1)
    before = {name: sys.getrefcount(obj) for name, obj in
              (("None", None), ("True", True), ("False", False))}
    for _ in range(calls):
        path.lineTo(QPointF(1, 2))  # void
        rect.isEmpty()  # bool: False
        rect.contains(QPointF(0.5, 0.5))  # bool: True
    after = {name: sys.getrefcount(obj) for name, obj in
             (("None", None), ("True", True), ("False", False))}
    lost = {name: before[name] - after[name] for name in before}
    for name, obj in (("None", None), ("True", True), ("False", False)):
        _GIVEN_BACK.extend([obj] * max(lost[name], 0))
    return lost


def binding_problem(calls: int = CALLS) -> str | None:
    """A one-line message naming the fix when the binding loses references, else None."""
    if sys.version_info >= (3, 12):
        return None  # None/True/False are immortal: a lost reference cannot free them
    lost = leaked_references(calls)
    bad = {name: n for name, n in lost.items() if n >= calls // 2}
    if not bad:
        return None
    import PySide6

    which = ", ".join(f"{n} references to {name}" for name, n in bad.items())
    return (f"nomgui cannot run on PySide6 {PySide6.__version__} with Python "
            f"{sys.version_info.major}.{sys.version_info.minor}: {calls} Qt calls lost {which}, "
            "so the app would crash while you draw. Fix: pip install 'PySide6==6.11.3' "
            "(or use Python 3.12 or newer).")
