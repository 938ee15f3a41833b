"""Conv4: the few-shot backbone of Vinyals et al. 2016, used by ProtoNet and MAML papers.

Four blocks of [3x3 conv (64), batch norm, ReLU, 2x2 max-pool]; on 28x28 input the
embedding is 64 x 1 x 1 = 64 numbers. About 113 thousand parameters. ``last_pool=False``
leaves the last block unpooled: the embedding is its whole map, 64 x 3 x 3 = 576 numbers
at 28 px (the pooled 1 x 1 reads only the top-left 2 x 2 of that 3 x 3 map), the same
weights; for a lookup among thousands of classes, where 64 numbers crowd.

Batch-norm policy (one per model, fixed at construction, recorded in the checkpoint):

* ``bn="running"``: standard BN. Training normalises with the batch's statistics and keeps
  running averages; evaluation and the GUI use the running averages, so a single glyph is
  embedded the same way as in a batch. Used by ProtoNet and transfer learning.
* ``bn="support"``: no running averages. Each task is normalised with the statistics of its
  *support* set, and the query images of that task reuse them (MetaBN, Bronskill et al. 2020,
  "TaskNorm"). Never transductive, so one query glyph in the GUI gets the same answer as in a
  batch, and training, evaluation and the GUI do exactly the same. Used by the MAML family.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch._C._functorch import is_batchedtensor

BNStats = list[tuple[torch.Tensor, torch.Tensor]]  # per block: mean (C,), var (C,)
CPU_CHUNK = 64  # images per pass of an inference without autograd on a CPU (see below)


class Conv4(nn.Module):
    def __init__(self, in_channels: int = 1, hidden: int = 64, depth: int = 4,
                 image_size: int = 28, bn: Literal["running", "support"] = "running",
                 last_pool: bool = True) -> None:
        super().__init__()
        self.args = {"in_channels": in_channels, "hidden": hidden, "depth": depth,
                     "image_size": image_size, "bn": bn}
        if not last_pool:  # recorded only when off: older model files stay as they were
            self.args["last_pool"] = False
        self.last_pool = last_pool
        self.bn_mode = bn
        # Training forward on a CPU in channels_last (NHWC); a speed switch, not a model
        # argument: the same weights and numbers to float rounding either way.
        self.channels_last = True
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        ch = in_channels
        for _ in range(depth):
            self.convs.append(nn.Conv2d(ch, hidden, 3, padding=1))
            self.norms.append(nn.BatchNorm2d(hidden, track_running_stats=(bn == "running")))
            ch = hidden
        side = image_size
        for _ in range(depth if last_pool else depth - 1):
            side //= 2
        if side < 1:
            raise ValueError(f"image_size {image_size} is too small for {depth} pooling blocks")
        self.embed_dim = hidden * side * side

    def _pool(self, i: int, pool: Callable[[torch.Tensor], torch.Tensor]
              ) -> Callable[[torch.Tensor], torch.Tensor]:
        """Block ``i``'s pooling: ``pool`` (a 2 x 2 max), or none for an unpooled last."""
        return pool if self.last_pool or i < len(self.convs) - 1 else _identity

    def forward(self, x: torch.Tensor, stats: BNStats | None = None,
                return_stats: bool = False) -> torch.Tensor | tuple[torch.Tensor, BNStats]:
        """(B, C, H, W) -> (B, D) [, stats]. See :meth:`forward_with_stats`."""
        emb, used = self.forward_with_stats(x, stats)
        return (emb, used) if return_stats else emb

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The embedding (B, D) of images (B, C, H, W)."""
        return self.forward_with_stats(x)[0]

    def forward_with_stats(self, x: torch.Tensor, stats: BNStats | None = None
                           ) -> tuple[torch.Tensor, BNStats]:
        """Embed x (B, C, H, W) -> (B, D), plus the BN statistics used (support mode).

        In ``support`` mode, ``stats=None`` normalises with x's own statistics (x is a support
        set) and returns them; passing them back normalises a query set the same way.
        Works under ``torch.func.functional_call`` and ``vmap`` (no in-place buffer updates).
        Without autograd (``torch.no_grad``: fitting a class set, classifying, evaluating)
        it takes :meth:`_forward_no_grad`, the same function with less memory traffic.
        """
        if not torch.is_grad_enabled() and not (self.bn_mode == "running" and self.training):
            return self._forward_no_grad(x, stats)
        used: BNStats = []
        # NHWC on a CPU: oneDNN's convolutions, batch norm and pooling run faster on
        # channels_last maps (benchmarks/peers.py). Not under vmap, which cannot query it.
        nhwc = self.channels_last and x.device.type == "cpu" and not is_batchedtensor(x)
        if nhwc:
            x = x.contiguous(memory_format=torch.channels_last)
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms, strict=True)):
            weight, bias = conv.weight, conv.bias
            if self.bn_mode == "support":
                # Multiplied by sign(gamma), the convolution makes batch norm's scale
                # positive, so it commutes with max-pooling and runs on a quarter of the
                # values, forward and backward (the same numbers exactly: rounding is
                # monotone). The statistics come from the full-size map, as before.
                sign = _bn_sign(norm, weight.dtype)
                weight, bias = weight * sign[:, None, None, None], bias * sign
            if nhwc and x.shape[1] == 1:
                # A one-channel image batch is NCHW and NHWC at once, and the convolution
                # then returns an NCHW map, on which pooling with indices is ten times
                # slower. An all-zero second channel makes the layout unambiguous (cheaper
                # than converting the 64-channel output, forward and backward).
                x = torch.cat([x, torch.zeros_like(x)], 1)
                weight = torch.cat([weight, torch.zeros_like(weight)], 1)
            if nhwc:
                x = x.contiguous(memory_format=torch.channels_last)
                weight = weight.contiguous(memory_format=torch.channels_last)
            x = F.conv2d(x, weight, bias, padding=1)
            pool = self._pool(i, _max_pool2)
            if self.bn_mode == "running":
                x = pool(norm(x))
            else:
                x = _support_norm_pooled(x, sign, norm,
                                         None if stats is None else stats[i], used, pool)
            x = F.relu(x)  # after pooling: max and ReLU commute, and ReLU sees a quarter
        return x.flatten(1), used

    def _forward_no_grad(self, x: torch.Tensor, stats: BNStats | None = None
                         ) -> tuple[torch.Tensor, BNStats]:
        """:meth:`forward_with_stats` for inference, equal to float rounding (README, app
        fits: on a CPU, passes over the first block's full-size maps took most of the time,
        not the convolutions).

        * Whenever the statistics are known (``running``, or ``support`` with ``stats``
          given: a query set) each image's embedding is its own, so batch norm is folded
          into the convolution's weights and bias (one pass fewer) and, on a CPU, images go
          in chunks of :data:`CPU_CHUNK`: their maps stay in cache and their memory is
          reused, where 2,000 images at once allocate and fault in 400 MB maps.
        * ``support`` with ``stats=None`` (a support set normalised by its own statistics):
          on a CPU, :meth:`_support_no_grad`, chunked too.
        * ReLU after pooling instead of before: max and ReLU commute exactly (ReLU is
          monotone), and the ReLU then touches a quarter of the values.
        * 2 x 2 max-pooling as the maximum of four strided views (:func:`_pool2`, the same
          values): ``max_pool2d`` without autograd on an NCHW map computes indices too and
          took as long as the convolution before it on a CPU.
        """
        cpu = x.device.type == "cpu" and not (is_batchedtensor(x)
                                              or is_batchedtensor(self.convs[0].weight))
        if self.bn_mode == "support" and stats is None:
            if cpu:
                return self._support_no_grad(x)
            used: BNStats = []
            for i, (conv, norm) in enumerate(zip(self.convs, self.norms, strict=True)):
                sign = _bn_sign(norm, x.dtype)
                y = F.conv2d(x, conv.weight * sign[:, None, None, None], conv.bias * sign,
                             padding=1)
                x = F.relu(_support_norm_pooled(y, sign, norm, None, used,
                                                self._pool(i, _pool2)))
            return x.flatten(1), used
        given = stats if self.bn_mode == "support" else None  # running: its averages
        folded = []
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms, strict=True)):
            mean, var = (norm.running_mean, norm.running_var) if given is None else given[i]
            scale = norm.weight * torch.rsqrt(var + norm.eps)  # (C,)
            weight = conv.weight * scale[:, None, None, None]
            folded.append((weight, (conv.bias - mean) * scale + norm.bias))
        used = [] if given is None else list(given)
        out = []
        pools = [self._pool(i, _pool2) for i in range(len(folded))]
        for h in (x.split(CPU_CHUNK) if cpu else (x,)):
            for (weight, bias), pool in zip(folded, pools, strict=True):
                h = F.relu(pool(F.conv2d(h, weight, bias, padding=1)))
            out.append(h.flatten(1))
        return (torch.cat(out) if len(out) != 1 else out[0]), used

    def _support_no_grad(self, x: torch.Tensor) -> tuple[torch.Tensor, BNStats]:
        """Support-mode inference on a CPU in chunks of :data:`CPU_CHUNK` images,
        block by block: each chunk's convolution adds to the block's sums and is pooled at
        once, so no full-size map of the whole set is kept (2,000 images: 400 MB).

        Pooling before the statistics are known is exact: batch norm is ``a * y + b`` per
        channel with ``a = gamma / sqrt(var + eps)``, whose sign is gamma's, so with the
        convolution multiplied by sign(gamma) the scale is positive and max-pooling commutes
        with it. The sums are taken about the first chunk's mean (folded into the bias) so
        that ``E[y^2] - E[y]^2`` does not cancel, and added up in float64.
        """
        used: BNStats = []
        # Each block's output, chunk by chunk, before its batch norm and ReLU: pooled maps
        # and the (scale, offset) that finish them once the block's statistics are known.
        chunks = list(x.split(CPU_CHUNK))
        finish: tuple[torch.Tensor, torch.Tensor] | None = None
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms, strict=True)):
            pool = self._pool(i, _pool2)
            sign = _bn_sign(norm, x.dtype)
            weight = conv.weight * sign[:, None, None, None]
            bias = conv.bias * sign
            shift: torch.Tensor | None = None
            total = torch.zeros(2, weight.shape[0], dtype=torch.float64)
            pixels = 0  # values per channel
            pooled = []
            for h in chunks:
                if finish is not None:
                    h = F.relu(torch.addcmul(finish[1][:, None, None], h,
                                             finish[0][:, None, None]))
                y = F.conv2d(h, weight, bias if shift is None else bias - shift, padding=1)
                if shift is None:  # the first chunk's mean: later chunks start centred
                    shift = y.mean(dim=(0, 2, 3))
                    y = y - shift[:, None, None]
                total[0] += y.sum(dim=(0, 2, 3)).double()
                total[1] += y.square().sum(dim=(0, 2, 3)).double()
                pooled.append(pool(y))
                pixels += y.shape[0] * y.shape[2] * y.shape[3]
            assert shift is not None  # x holds at least one image
            centred = total[0] / pixels  # E[y - shift] per channel
            var = (total[1] / pixels - centred.square()).clamp_min(0.0).to(x.dtype)
            used.append(((shift + centred.to(x.dtype)) * sign, var))
            scale = norm.weight.abs() * torch.rsqrt(var + norm.eps)  # positive
            finish = scale, norm.bias - centred.to(x.dtype) * scale
            chunks = pooled
        assert finish is not None
        out = torch.cat(chunks)
        return F.relu(torch.addcmul(finish[1][:, None, None], out, finish[0][:, None, None])
                      ).flatten(1), used


def _max_pool2(x: torch.Tensor) -> torch.Tensor:
    """2 x 2 max-pooling with autograd (the training forward)."""
    return F.max_pool2d(x, 2)


def _identity(x: torch.Tensor) -> torch.Tensor:
    """An unpooled block's "pooling" (``last_pool=False``)."""
    return x


def _pool2(x: torch.Tensor) -> torch.Tensor:
    """2 x 2 max-pooling of (..., H, W) without indices: ``F.max_pool2d(x, 2)``'s values (an
    odd last row or column is dropped the same way), for inference only."""
    h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2
    return torch.maximum(torch.maximum(x[..., 0:h:2, 0:w:2], x[..., 0:h:2, 1:w:2]),
                         torch.maximum(x[..., 1:h:2, 0:w:2], x[..., 1:h:2, 1:w:2]))


def _bn_sign(norm: nn.BatchNorm2d, dtype: torch.dtype) -> torch.Tensor:
    """sign(gamma) (C,) as +-1 (+1 at 0): a convolution multiplied by it makes the batch
    norm's scale positive, so that the norm commutes with max-pooling. A constant to
    autograd (its derivative is zero almost everywhere)."""
    return torch.where(norm.weight < 0, -1.0, 1.0).to(dtype).detach()


def _support_norm_pooled(y: torch.Tensor, sign: torch.Tensor, norm: nn.BatchNorm2d,
                         stats: tuple[torch.Tensor, torch.Tensor] | None, used: BNStats,
                         pool: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Support-mode batch norm of a sign-folded convolution's map y (B, C, H, W), then
    ``pool`` (2 x 2 max), computed pooled first: with ``sign`` = :func:`_bn_sign` the scale
    |gamma| / sqrt(var + eps) is positive, so the per-channel ``a * y + b`` commutes with
    the max exactly (rounding is monotone) and runs on a quarter of the values.

    With y's own statistics when ``stats`` is None (y is a support set), else with
    ``stats`` (a query set); appends the (mean, var) used to ``used``, in the unfolded
    sign. Written out rather than native batch_norm, which refuses statistics that carry
    gradients, and these must (they depend on the adapted weights)."""
    if stats is None:
        var, mean = torch.var_mean(y, dim=(0, 2, 3), unbiased=False)  # one pass
        used.append((mean * sign, var))
    else:
        mean, var = stats
        used.append((mean, var))
        mean = mean * sign
    scale = norm.weight.abs() * torch.rsqrt(var + norm.eps)  # (C,), >= 0
    shift = norm.bias - mean * scale
    return torch.addcmul(shift[:, None, None], pool(y), scale[:, None, None])


def sq_distances(a: torch.Tensor, b: torch.Tensor, b_sq: torch.Tensor | None = None
                 ) -> torch.Tensor:
    """Squared Euclidean distances (..., M, D) x (..., N, D) -> (..., M, N). ``b_sq``
    (..., N): the rows' squared norms, when the caller keeps them (the lookup's 13,590
    prototypes: recomputing them was most of a prediction's time)."""
    # |a|^2 - 2ab + |b|^2 uses one matmul; clamp guards the tiny negatives of cancellation.
    if b_sq is None:
        b_sq = (b * b).sum(-1)
    d = (a * a).sum(-1, keepdim=True) - 2 * a @ b.transpose(-1, -2) + b_sq[..., None, :]
    return d.clamp_min(0.0)


def prototypes(emb: torch.Tensor, labels: torch.Tensor, way: int) -> torch.Tensor:
    """Class means from labels, not sample order.

    emb (..., S, D), labels (..., S) in 0..way-1 -> (..., N, D).
    """
    if emb.dim() == 2 and emb.shape[0] * way > 2**22:
        # A big class set (the Nôm lookup: 52,000 renderings of 13,600 classes) would make
        # a one-hot of S x N floats (2.8 GB, seconds); sum by index instead. Episodes stay
        # on the matmul below, which also runs inside torch.func.vmap (Proto-MAML).
        sums = emb.new_zeros(way, emb.shape[1]).index_add_(0, labels, emb)  # (N, D)
        counts = torch.bincount(labels, minlength=way).to(emb.dtype)  # (N,)
        return sums / counts[:, None].clamp_min(1.0)
    onehot = F.one_hot(labels, way).to(emb.dtype)  # (..., S, N)
    sums = onehot.transpose(-1, -2) @ emb  # (..., N, D)
    return sums / onehot.sum(-2)[..., None].clamp_min(1.0)
