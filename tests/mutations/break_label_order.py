"""Deliberate break: MAML's head rows tied to label positions."""
import torch

from trainer.learners import maml


def _init_task_params(self, body, sx, sy, way):
    return {**body, "head.weight": self.head_weight.expand(way, -1),
            "head.bias": self.head_bias.expand(way) + 0.5 * torch.arange(way, dtype=sx.dtype)}
maml.MAML._init_task_params = _init_task_params
