"""Deliberate break: MAML normalises the queries with their own batch statistics."""
from trainer.learners import maml


def _task_logits(self, body, sx, sy, qx, way, steps, first_order):
    params = self._adapt_params(body, sx, sy, way, steps, first_order)
    logits, _ = self._forward(params, qx, None)
    return logits
maml.MAML._task_logits = _task_logits
