"""Deliberate break: ProtoNet's prototypes taken in sample order, not from labels."""
from trainer.learners import protonet
from trainer.models.conv4 import sq_distances


def _logits(self, ep):
    support, query = self._embed_episode(ep)
    b, nk, d = support.shape
    protos = support.view(b, ep.way, nk // ep.way, d).mean(2)  # assumes sorted samples
    return -sq_distances(query, protos)
protonet.ProtoNet._logits = _logits
