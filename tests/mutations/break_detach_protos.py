"""Deliberate break: Proto-MAML's prototypes detached from the body."""
from trainer.learners import protomaml
from trainer.models.conv4 import prototypes


def _init_task_params(self, body, sx, sy, way):
    emb, _ = self._embed(body, sx)
    c = prototypes(emb, sy, way).detach()
    return {**body, "head.weight": 2 * c, "head.bias": -(c * c).sum(-1)}
protomaml.ProtoMAML._init_task_params = _init_task_params
