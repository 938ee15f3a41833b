"""nomgui's trainer: few-shot glyph data, meta-learners, one training loop, evaluation, CLI.

A pure library (no Qt). The GUI reaches it only through :mod:`trainer.api`.
"""

__version__ = "0.1.0"
