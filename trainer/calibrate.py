"""Calibrated scores and "none of these": temperature scaling plus an open-set threshold.

A softmax over a class set always sums to one, so a glyph of a class the user never
taught still gets 100% for something (a letter drawn against the digits). Two numbers,
measured on *validation* classes (never test classes), fix what the app shows:

* a temperature T (Guo et al. 2017): query logits / T minimise the negative log
  likelihood of the right class, so "80%" is right about 80% of the time;
* a "none of these" threshold: episodes are sampled with 2N classes, N of them taught
  (support) and N unknown, and the *largest raw logit* of a glyph is compared with a
  threshold that keeps 99% of the right answers on taught classes; the fraction of unknown
  glyphs below it is reported, and beside it what the same rule on the best calibrated
  probability would catch. The largest logit, not the largest probability: a softmax
  hides how far a glyph is from every class (ProtoNet's logit is minus the squared
  distance to the nearest prototype, whatever the number of classes).

Both are measured at several ways and the app interpolates in log(way) (the logit
threshold barely moves with the way; the temperature does). Results live in the model file's
``metrics["calibration"]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from trainer import checkpoint as ckpt
from trainer.data.episodes import EpisodeSampler
from trainer.data.glyphset import GlyphSet
from trainer.data.sources import DataError
from trainer.learners import Learner

# The threshold keeps this share of right answers on taught classes: a false "none of
# these" on a right answer costs the user more than a missed one (the candidates are shown
# either way), and an app's class set differs from validation episodes (fonts, drawings,
# several shots), so the level is strict.
KEEP_RIGHT = 0.99
KEEP_LEVELS = (0.9, 0.95, 0.99)  # recorded too, to choose another level without re-running


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The T > 0 minimising NLL of softmax(logits / T); logits (M, N), labels (M,).

    A grid over log T (1e-3 .. 1e3) then a finer one around the best: one scalar, no
    gradients needed, and robust when the logits' scale is extreme (MAML's are small,
    ProtoNet's squared distances large).
    """
    def nll(log_t: torch.Tensor) -> torch.Tensor:  # (G,) -> (G,)
        scaled = logits[None] / log_t.exp()[:, None, None]  # (G, M, N)
        return F.cross_entropy(scaled.flatten(0, 1), labels.repeat(len(log_t)),
                               reduction="none").view(len(log_t), -1).mean(1)

    grid = torch.linspace(math.log(1e-3), math.log(1e3), 121, dtype=torch.float64)
    best = grid[nll(grid).argmin()]
    fine = torch.linspace(float(best) - 0.12, float(best) + 0.12, 49, dtype=torch.float64)
    return float(fine[nll(fine).argmin()].exp())


def open_set_logits(learner: Learner, glyphs: GlyphSet, *, way: int, shot: int, query: int,
                    episodes: int, seed: int, device: torch.device | str = "cpu"
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Logits of taught-class queries (M, way), their labels (M,), and logits of queries of
    ``way`` other classes the support never saw (M, way), over seeded episodes."""
    sampler = EpisodeSampler(glyphs, 2 * way, shot, query, 1,
                             generator=torch.Generator().manual_seed(seed))
    known, labels, unknown = [], [], []
    learner.eval()
    with torch.no_grad():
        for _ in range(episodes):
            ep = sampler.sample().to(device)
            taught = ep.support_y[0] < way  # the first `way` positions are taught
            classify = learner.adapt(ep.support_x[0][taught], ep.support_y[0][taught], way)
            qy = ep.query_y[0]
            logits = classify(ep.query_x[0]).float().cpu()  # (2N*Q, N)
            inside = (qy < way).cpu()
            known.append(logits[inside])
            labels.append(qy.cpu()[inside])
            unknown.append(logits[~inside])
    return torch.cat(known), torch.cat(labels), torch.cat(unknown)


def calibrate(learner: Learner, glyphs: GlyphSet, *, ways: Sequence[int] = (5, 20),
              shot: int = 1, query: int = 5, episodes: int = 100, seed: int = 7,
              device: torch.device | str = "cpu") -> dict[str, Any]:
    """Temperature and "none of these" threshold per way, measured on ``glyphs`` (a
    validation part). Ways the data cannot fill (2N classes of shot + query images) are
    skipped; an empty ``by_way`` means nothing could be measured."""
    by_way = []
    for way in ways:
        try:
            known, labels, unknown = open_set_logits(learner, glyphs, way=way, shot=shot,
                                                     query=query, episodes=episodes,
                                                     seed=seed + way, device=device)
        except DataError:  # too few classes for 2N-way episodes
            continue
        t = fit_temperature(known.double(), labels)
        guess = known.argmax(-1)  # the temperature does not change the answer
        right = guess == labels
        if not bool(right.any()):
            continue
        top_known = known.double().max(-1).values  # (M,) the largest raw logit
        top_unknown = unknown.double().max(-1).values
        levels = {}
        for keep in KEEP_LEVELS:
            thr = float(torch.quantile(top_known[right], 1 - keep))
            levels[f"{keep:.2f}"] = {
                "logit_threshold": thr,
                "unknown_caught": round(100 * float((top_unknown < thr).double().mean()), 2)}
        threshold = float(torch.quantile(top_known[right], 1 - KEEP_RIGHT))
        flagged = top_known < threshold
        # The same rule on the best calibrated probability, for comparison: a softmax
        # hides distance, so it catches far fewer untaught glyphs at the same cost.
        p_known = torch.softmax(known.double() / t, -1).max(-1).values
        p_unknown = torch.softmax(unknown.double() / t, -1).max(-1).values
        p_thr = torch.quantile(p_known[right], 1 - KEEP_RIGHT)
        by_way.append({
            "way": way, "shot": shot, "episodes": episodes, "temperature": t,
            "logit_threshold": threshold, "keep_levels": levels,
            "accuracy": round(100 * float(right.double().mean()), 2),
            "right_kept": round(100 * float((~flagged[right]).double().mean()), 2),
            "wrong_flagged": round(100 * float(flagged[~right].double().mean()), 2)
            if bool((~right).any()) else None,
            "unknown_caught": round(100 * float((top_unknown < threshold).double().mean()),
                                    2),
            "unknown_caught_by_probability": round(
                100 * float((p_unknown < p_thr).double().mean()), 2),
        })
    return {"part": "validation", "by_way": by_way}


def for_classes(calibration: dict[str, Any] | None, n_classes: int
                ) -> tuple[float, float | None]:
    """(temperature, logit threshold) for a class set of ``n_classes``, interpolated in
    log(way) between the calibrated ways (held constant outside them); (1.0, None) for a
    model without calibration."""
    rows = sorted((calibration or {}).get("by_way", []), key=lambda r: r["way"])
    if not rows:
        return 1.0, None
    if n_classes <= rows[0]["way"]:
        lo = hi = rows[0]
    elif n_classes >= rows[-1]["way"]:
        lo = hi = rows[-1]
    else:
        hi = next(r for r in rows if r["way"] >= n_classes)
        lo = rows[rows.index(hi) - 1]
    if lo is hi:
        return float(lo["temperature"]), float(lo["logit_threshold"])
    f = (math.log(n_classes) - math.log(lo["way"])) / (math.log(hi["way"]) - math.log(lo["way"]))
    temp = math.exp((1 - f) * math.log(lo["temperature"]) + f * math.log(hi["temperature"]))
    return temp, (1 - f) * lo["logit_threshold"] + f * hi["logit_threshold"]


def record_calibration(path: Path, calibration: dict[str, Any]) -> None:
    """Store ``calibration`` in the model file's metrics (under the file's lock, like
    recorded evaluations, so a side-by-side evaluation is not lost)."""
    ckpt.update_metrics(path, lambda metrics: metrics.update(calibration=calibration),
                        "calibrations")


def _validation_part(payload: dict[str, Any], data: Any, dataset: str | None = None,
                     split: str | None = None) -> tuple[GlyphSet, str, str]:
    """The validation classes of the model's own data and split (or the given ones)."""
    from trainer.config import TrainConfig
    from trainer.runs import load_splits

    saved = dict(payload.get("train_config", {}))
    cfg = TrainConfig.from_dict({**saved, **({"dataset": dataset} if dataset else {}),
                                 **({"split": split} if split else {})})
    return load_splits(cfg, data).val, cfg.dataset, cfg.split


def calibrate_model_file(path: Path, part: GlyphSet, *, dataset: str, split: str,
                         ways: Sequence[int] = (5, 20), shot: int = 1, query: int = 5,
                         episodes: int = 200, device: torch.device | str = "cpu",
                         record: bool = True, log: Any = print) -> dict[str, Any]:
    """Calibrate a model file on ``part`` (validation classes of ``dataset``/``split``);
    record it unless ``record`` is False. ``by_way`` is empty when the data is too small."""
    learner, _ = ckpt.load_learner(path, device)
    result = calibrate(learner, part, ways=ways, shot=shot, query=query, episodes=episodes,
                       device=device)
    result.update(dataset=dataset, split=split)
    if not result["by_way"]:
        log(f"calibration: {dataset}/{split} validation has too few classes for "
            f"{min(ways)}-way open-set episodes; the model shows uncalibrated scores")
        return result
    if record:
        record_calibration(path, result)
    for r in result["by_way"]:
        log(f"calibration {r['way']}-way: temperature {r['temperature']:.3g}, none-of-these "
            f"below a best logit of {r['logit_threshold']:.3g} (keeps {r['right_kept']}% of "
            f"right answers, catches {r['unknown_caught']}% of untaught classes)")
    return result


def cmd_calibrate(args: Any, device: torch.device) -> int:
    """``nomgui-train calibrate``: see the module docstring."""
    import json

    from trainer.runs import DataOptions

    data = DataOptions(args.data_root, args.cache_dir, args.download)
    given = {a.split("=", 1)[0] for a in getattr(args, "argv", [])}
    # Without --dataset / --split: the model's own data and split (its validation part).
    part, dataset, split = _validation_part(
        ckpt.read(args.model), data, args.dataset if "--dataset" in given else None,
        args.split if "--split" in given else None)
    result = calibrate_model_file(
        args.model, part, dataset=dataset, split=split,
        ways=args.ways, shot=args.shot, query=args.query, episodes=args.episodes,
        device=device, record=not args.no_record)
    print(json.dumps(result))
    return 0 if result["by_way"] else 2
