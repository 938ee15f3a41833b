"""nomgui: the PySide6 desktop app. The only package that imports Qt."""

__version__ = "0.1.0"
