"""Deliberate break: MAML's inner gradients always detached (second order silently lost)."""
from trainer.learners import maml

orig = maml.MAML._adapt_params
def _adapt_params(self, body, sx, sy, way, steps, first_order):
    return orig(self, body, sx, sy, way, steps, True)
maml.MAML._adapt_params = _adapt_params
