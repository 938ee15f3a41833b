"""``nomgui-train`` / ``python -m trainer``: list, pretrain, meta-train, evaluate.

Errors the user can fix (missing data, bad model file, bad flags) print one clear message
and exit with status 2; SIGINT/SIGTERM stop a run after the current step, with a checkpoint.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import Any

import appdirs
import torch

from trainer import checkpoint as ckpt
from trainer import distributed, engine, runs
from trainer.cliargs import OneLineParser, check_args, os_error_line, zoom_list
from trainer.config import TrainConfig
from trainer.data import DATASETS, DataError, load_dataset
from trainer.data.glyphset import GlyphSet
from trainer.data.splits import SPLITS, make_splits
from trainer.distributed import Dist
from trainer.evaluate import (
    AllClassesResult,
    ClassCheck,
    EvalResult,
    all_classes_accuracy,
    check_classes,
    evaluate,
    part_label,
)
from trainer.learners import LEARNERS
from trainer.runtime import configure_device, resolve_device, tune_allocator

EXIT_USER_ERROR = 2


def _common(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("common")
    g.add_argument("--data-root", type=Path, help="data folder or zips (see README)")
    g.add_argument("--download", action="store_true",
                   help="download the data set (Omniglot: torchvision) into --data-root")
    g.add_argument("--cache-dir", type=Path,
                   default=Path(appdirs.user_cache_dir("nomgui")),
                   help="where decoded data sets are cached (default: %(default)s)")
    g.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--threads", type=int, default=0,
                   help="CPU threads for torch (0: torch's default)")
    g.add_argument("--dataset", default="omniglot", choices=sorted(DATASETS))
    g.add_argument("--split", default="seed", choices=SPLITS)
    g.add_argument("--image-size", type=int, default=28)


def _training(p: argparse.ArgumentParser, *, episodic: bool) -> None:
    p.add_argument("--out", type=Path, required=True, help="run folder")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--extend", action="store_true",
                   help="with --resume and another --steps: the cosine LR schedule goes on "
                        "from where it stood down to 0 at the new --steps, larger or smaller "
                        "(without it, a larger --steps re-stretches the schedule: a warm "
                        "restart; a smaller one is ignored)")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--hidden", type=int, default=64,
                   help="backbone channels per block (the papers' Conv4: 64)")
    p.add_argument("--no-last-pool", dest="last_pool", action="store_false",
                   help="leave Conv4's last block unpooled: its whole map is the embedding "
                        "(64 x 3 x 3 = 576 numbers at 28 px instead of 64; same weights, "
                        "so --init-from a pooled model works)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--schedule", default="cosine", choices=("cosine", "constant"))
    p.add_argument("--val-every", type=int, default=500)
    p.add_argument("--checkpoint-every", type=int, default=200)
    p.add_argument("--affine", type=float, default=0.0,
                   help="per-sample affine augmentation strength (0: off, 1: +-10 deg...)")
    p.add_argument("--precision", default="fp32", choices=("fp32", "tf32", "bf16"),
                   help="training-step arithmetic: fp32; tf32 (CUDA TensorFloat-32 "
                        "matmuls and convolutions); bf16 (autocast, a CPU with avx512_bf16 "
                        "or AMX, or a GPU). Weights and evaluation stay float32")
    p.add_argument("--json-progress", action="store_true",
                   help="print one JSON object per line on stdout (for the GUI)")
    p.add_argument("--init-from", type=Path,
                   help="start from the weights of this model file (fine-tuning); every "
                        "tensor whose name and shape match is copied")
    p.add_argument("--holdout-per-class", type=int, default=0, metavar="K",
                   help="split all (a class set): keep up to K examples of each class (at "
                        "most half of it; a class of one example keeps it) out of training "
                        "and validation, and record the model's accuracy on them in the "
                        "model file when the run ends (default: 0, none)")
    if episodic:
        p.add_argument("--algo", required=True,
                       choices=[n for n, c in LEARNERS.items() if c.batch_kind == "episodes"])
        p.add_argument("--way", type=int, default=5)
        p.add_argument("--shot", type=int, default=1)
        p.add_argument("--query", type=int, default=15)
        p.add_argument("--batch", type=int, default=16, help="tasks per meta-step")
        p.add_argument("--val-episodes", type=int, default=200)
        p.add_argument("--distractors", type=int, default=0,
                       help="--dataset nom-lookup (ProtoNet): code points per episode with "
                            "renderings only, beside the --way characters whose crops are "
                            "the queries (support: every clean rendering + --shot woodblock "
                            "renderings; --batch 1)")
        p.add_argument("--hard-distractors", type=int, default=0, metavar="N",
                       help="--dataset nom-lookup: up to N of the --distractors are the code "
                            "points nearest the episode characters' crops (mined with the "
                            "model at the start and after every validation); the rest random")
        p.add_argument("--rotations", action="store_true",
                       help="x4 classes by 90-degree rotations (as in the papers)")
        m = p.add_argument_group("MAML family")
        m.add_argument("--first-order", action="store_true")
        m.add_argument("--inner-steps", type=int)
        m.add_argument("--inner-lr", type=float)
        m.add_argument("--eval-inner-steps", type=int)
        m.add_argument("--learn-inner-lr", action="store_true")
    else:
        p.add_argument("--algo", default="transfer",
                       choices=[n for n, c in LEARNERS.items()
                                if c.batch_kind == "classification"],
                       help="transfer: linear head (Chen et al.'s Baseline); cosine: "
                            "normalised head, new classes by their mean (Baseline++)")
        p.add_argument("--batch", type=int, default=128, help="images per step")
        p.add_argument("--finetune-steps", type=int)
        p.add_argument("--finetune-lr", type=float)
        p.add_argument("--finetune-backbone", action="store_true")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="nomgui-train", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="learners and data sets")
    p = sub.add_parser("pretrain", help="transfer learning: pre-train a classifier")
    _common(p)
    _training(p, episodic=False)
    p = sub.add_parser("meta-train", help="meta-train protonet, maml or protomaml")
    _common(p)
    _training(p, episodic=True)
    p = sub.add_parser("evaluate", help="episodic evaluation of a model file")
    _common(p)
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--part", default="test", choices=("train", "val", "test"))
    p.add_argument("--way", type=int, default=5)
    p.add_argument("--shot", type=int, default=1)
    p.add_argument("--query", type=int, default=15)
    p.add_argument("--episodes", type=int, default=1000)
    p.add_argument("--eval-inner-steps", type=int,
                   help="MAML family: adaptation steps (default: the model's own setting)")
    p.add_argument("--finetune-steps", type=int,
                   help="transfer: head fine-tuning steps (default: the model's own)")
    p.add_argument("--finetune-backbone", action="store_true",
                   help="transfer: fine-tune the whole network, not only a new head")
    w = p.add_argument_group(
        "all classes at once (the seminar's transfer protocol)",
        "instead of episodes, one task over every class of the split part: each class's "
        "images are shuffled (--seed) into training, validation and test images")
    w.add_argument("--all-classes", action="store_true")
    lk = p.add_argument_group(
        "Nôm lookup: real crops of --part's characters (--dataset nom, --split seed or "
        "nom-only) named among every vocabulary code point, each represented by clean "
        "renderings in every installed font that covers it")
    lk.add_argument("--lookup", action="store_true")
    lk.add_argument("--support", default="clean", choices=("clean", "woodblock", "both"),
                    help="renderings that stand for each code point: clean ones (one per "
                         "font), the woodblock-like training renderings (6 per code point), "
                         "or both (default: clean)")
    lk.add_argument("--zooms", type=float, nargs="+", metavar="Z",
                    help="test-time augmentation: embed each crop as the mean over these "
                         "magnifications of it about its centre, e.g. 1 1.1 (0.5-2; "
                         "default: the model's own, chosen by lookup-zooms, else 1)")
    w.add_argument("--train-per-class", type=int, default=10)
    w.add_argument("--val-per-class", type=int, default=4)
    p.add_argument("--min-images", type=int,
                   help="draw episodes only from classes with at least this many images "
                        "(give a table's largest shot + query: one set of classes for "
                        "every column); the count is printed")
    p.add_argument("--allow-seen", action="store_true",
                   help="evaluate even on classes the model was trained or validated on "
                        "(refused otherwise); the record then says 'seen classes'")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--record", action="store_true",
                   help="store the result in the model file (shown by the app)")
    p = sub.add_parser("calibrate", help="temperature and 'none of these' threshold of a "
                       "model file, measured on validation classes (stored in the file)")
    _common(p)
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--ways", type=int, nargs="+", default=[5, 20])
    p.add_argument("--shot", type=int, default=1)
    p.add_argument("--query", type=int, default=5)
    p.add_argument("--episodes", type=int, default=200)
    p.add_argument("--no-record", action="store_true", help="print only")
    p = sub.add_parser("lookup-zooms", help="test-time zooms of a Nôm lookup model: "
                       "candidate sets measured on the validation crops' lookup, the best "
                       "stored in the file (used by evaluate --lookup and the app)")
    _common(p)
    p.set_defaults(dataset="nom")
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--support", default="clean", choices=("clean", "woodblock", "both"),
                   help="renderings that stand for each code point (default: clean, the "
                        "app's)")
    p.add_argument("--candidates", type=zoom_list, nargs="+", metavar="Z[,Z...]",
                   default=[[1.0], [1.0, 1.1], [1.0, 1.2], [0.9, 1.0, 1.1]],
                   help="sets of magnifications, each comma-separated (default: 1 1,1.1 "
                        "1,1.2 0.9,1,1.1); the best top-1 wins, ties to fewer views")
    p.add_argument("--no-record", action="store_true", help="print only")
    p.add_argument("--json", action="store_true")
    return parser


def _hparams(args: argparse.Namespace, names: list[str]) -> dict[str, Any]:
    out = {}
    for name in names:
        value = getattr(args, name, None)
        if value is not None and value is not False:
            out[name] = value
    return out


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    if args.command == "pretrain":
        algo = args.algo
        hp = (_hparams(args, ["finetune_steps", "finetune_lr", "finetune_backbone"])
              if algo == "transfer" else {})
        episodic: dict[str, Any] = {}
    else:
        algo = args.algo
        hp = _hparams(args, ["first_order", "inner_steps", "inner_lr", "eval_inner_steps",
                             "learn_inner_lr"]) if algo in ("maml", "protomaml") else {}
        episodic = {"way": args.way, "shot": args.shot, "query": args.query,
                    "val_episodes": args.val_episodes, "rotations": args.rotations,
                    "distractors": args.distractors,
                    "hard_distractors": args.hard_distractors}
    return TrainConfig(
        algo=algo, dataset=args.dataset, split=args.split, image_size=args.image_size,
        hidden=args.hidden, last_pool=args.last_pool,
        batch=args.batch, steps=args.steps, lr=args.lr, schedule=args.schedule,
        val_every=args.val_every, checkpoint_every=args.checkpoint_every, affine=args.affine,
        precision=args.precision, seed=args.seed, hparams=hp,
        holdout_per_class=args.holdout_per_class,
        init_from=str(args.init_from.resolve()) if args.init_from else None, **episodic)


class StoppedWhilePreparing(BaseException):
    """A stop asked for while the data was still being read or rendered, before the first
    step. A BaseException, like KeyboardInterrupt, so that no ``except Exception`` in a
    data loader mistakes it for a damaged file."""


class StopFlag:
    """Set by SIGINT/SIGTERM: the run stops after the current step and saves a checkpoint.

    While ``preparing`` (reading, rendering and caching the data: a minute or more for the
    Nôm sets) there is no step to finish and nothing to save yet, so a signal stops at once
    with :class:`StoppedWhilePreparing`; the caches are written atomically, so none is left
    half-written. A second signal means "now", except under torchrun: there a Ctrl-C
    reaches each worker directly and again as torchrun's SIGTERM, and that must still save
    the checkpoint.
    """

    def __init__(self, second_signal_interrupts: bool = True) -> None:
        self.stop = False
        self.second_signal_interrupts = second_signal_interrupts
        self.preparing = False

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.preparing:
            self.stop, self.preparing = True, False
            raise StoppedWhilePreparing
        if self.stop:
            if self.second_signal_interrupts:  # a second Ctrl-C means "now"
                raise KeyboardInterrupt
            return
        self.stop = True
        print(f"\nstopping after this step ({signal.Signals(signum).name}); "
              "a checkpoint will be saved", file=sys.stderr)

    def __call__(self) -> bool:
        return self.stop


def _progress_printer(json_progress: bool):
    if json_progress:
        def emit(event: engine.Event) -> None:
            print(json.dumps(event), flush=True)
        return emit, lambda: None

    from tqdm import tqdm

    bar: dict[str, Any] = {}

    def show(event: engine.Event) -> None:
        if event["event"] == "start":
            if event.get("world_size", 1) > 1:
                print(f"{event['world_size']} processes x {event['batch_per_process']} = "
                      f"{event['batch']} per step", file=sys.stderr)
            bar["t"] = tqdm(total=event["steps"], initial=event["step"], unit="step",
                            dynamic_ncols=True, disable=not sys.stderr.isatty())
            bar["last"] = event["step"]
        elif event["event"] == "step":
            bar["t"].update(event["step"] - bar["last"])
            bar["last"] = event["step"]
            bar["t"].set_postfix(loss=f"{event['loss']:.3f}", acc=f"{event['acc']:.1f}")
        elif event["event"] == "val":
            bar["t"].write(f"step {event['step']}: val {event['val_acc']:.2f}% "
                           f"(best {event['best_val']:.2f}%)")
        elif event["event"] == "done":
            bar["t"].close()
            print(f"{event['status']} at step {event['step']}; best val "
                  f"{event['best_val']}% at step {event['best_step']}; model {event['model']}")

    return show, lambda: bar.get("t") and bar["t"].close()


def cmd_list() -> int:
    print("learners:")
    for name, cls in LEARNERS.items():
        how = "pretrain" if cls.batch_kind == "classification" else "meta-train --algo " + name
        print(f"  {name:10s} {cls.description}  [{how}]")
    print("data sets:")
    for name, text in DATASETS.items():
        print(f"  {name:10s} {text}")
    print(f"splits: {', '.join(SPLITS)}")
    return 0


def cmd_train(args: argparse.Namespace, device: torch.device, dist: Dist) -> int:
    cfg = config_from_args(args)
    if args.extend and not args.resume:
        raise ValueError("--extend continues a run: use it with --resume")
    if args.resume and (args.out / "config.json").is_file():
        # Resume continues the saved run; only the step budget may be raised.
        saved = TrainConfig.from_dict(
            json.loads((args.out / "config.json").read_text())["train_config"])
        requested = cfg
        step = _checkpoint_step(args.out)
        cfg, schedule_note = engine.continue_to(saved, step if step is not None else 0,
                                                requested.steps, extend=args.extend)
        if dist.is_main:
            ignored = _ignored_flags(getattr(args, "argv", []), requested, saved)
            if ignored:
                print("resume: the run keeps its saved settings; ignored "
                      + ", ".join(ignored), file=sys.stderr)
            if schedule_note:
                print(f"resume: {schedule_note}", file=sys.stderr)
    data = runs.DataOptions(args.data_root, args.cache_dir, args.download)
    stop = StopFlag(second_signal_interrupts=not dist.enabled)
    # Under torchrun the ranks must leave together, at a step (engine.train): no early exit.
    stop.preparing = not dist.enabled
    stop.install()
    emit, close = _progress_printer(args.json_progress)

    def prepared() -> None:
        stop.preparing = False

    if stop.preparing and args.json_progress:  # the app says so; a stop now is at once
        emit({"event": "preparing"})

    try:
        result = runs.run(cfg, data, args.out, device=device, resume=args.resume,
                          on_event=emit, should_stop=stop, dist=dist, on_prepared=prepared)
    except StoppedWhilePreparing:
        step = _checkpoint_step(args.out) if args.resume else None
        print("stopped while preparing the data, before the first step"
              + (f"; the checkpoint at step {step} is kept" if step is not None else ""),
              file=sys.stderr)
        if args.json_progress:  # the app's record of how the run ended
            emit({"event": "done", "status": "stopped", "step": step or 0,
                  "best_val": None, "best_step": None, "model": None})
        return 130
    finally:
        close()
    return 0 if result.status == "finished" else 130


def _checkpoint_step(run_dir: Path) -> int | None:
    try:
        return int(ckpt.read(run_dir / "checkpoint.pt")["step"])
    except (ckpt.ModelFileError, KeyError):
        return None  # the engine says what is wrong with the run folder


def _ignored_flags(argv: list[str], requested: TrainConfig, saved: TrainConfig) -> list[str]:
    """The settings given on a resume's command line that differ from the run's own: the
    run goes on with its saved configuration, so these are ignored (said, not silent)."""
    given = {a.split("=", 1)[0][2:].replace("-", "_") for a in argv if a.startswith("--")}
    out = []
    for name in sorted(given):
        if name == "steps":
            if requested.steps < saved.steps:
                out.append(f"--steps {requested.steps} (the run's: {saved.steps}; steps "
                           "can only be raised)")
            continue
        if name in TrainConfig.__dataclass_fields__:
            new, old = getattr(requested, name), getattr(saved, name)
        elif name in requested.hparams or name in saved.hparams:
            new, old = requested.hparams.get(name), saved.hparams.get(name)
        else:
            continue  # run-time flags (--device, --threads, --data-root...) do apply
        if new != old:
            out.append(f"--{name.replace('_', '-')} {new} (the run's: {old})")
    return out


def _override_hparams(learner: Any, payload: dict, args: argparse.Namespace) -> None:
    """Apply evaluate's per-learner flags, refusing those the model's learner lacks."""
    flags = {"eval_inner_steps": args.eval_inner_steps, "finetune_steps": args.finetune_steps,
             "finetune_backbone": args.finetune_backbone or None}
    for name, value in flags.items():
        if value is None:
            continue
        if name not in learner.hparams:
            raise ValueError(f"--{name.replace('_', '-')} does not apply to a "
                             f"{payload['learner']['algo']} model")
        learner.hparams[name] = value


def cmd_evaluate(args: argparse.Namespace, device: torch.device) -> int:
    learner, payload = ckpt.load_learner(args.model, device)
    _override_hparams(learner, payload, args)
    size = payload["learner"]["backbone"].get("image_size", 28)
    if args.lookup:
        return cmd_lookup(args, learner, payload, size, device)
    glyphs = load_dataset(args.dataset, args.data_root, size=size, cache_dir=args.cache_dir,
                          download=args.download)
    part = make_splits(glyphs, args.split).part(args.part)
    # The seen-class guard: a "test" score only on classes the model never trained on.
    label = part_label(check_classes(payload, part, dataset=args.dataset, glyphs=glyphs),
                       part=args.part, dataset=args.dataset, split=args.split,
                       allow_seen=args.allow_seen)
    result: EvalResult | AllClassesResult
    if args.all_classes:
        result = all_classes_accuracy(learner, part, train_per_class=args.train_per_class,
                                      val_per_class=args.val_per_class, seed=args.seed,
                                      device=device)
        protocol = "all-classes"
    else:
        result = evaluate(learner, part, way=args.way, shot=args.shot, query=args.query,
                          episodes=args.episodes, seed=args.seed, device=device,
                          min_images=args.min_images)
        protocol = "episodes"
    record = {"model": str(args.model), "algo": payload["learner"]["algo"],
              "dataset": args.dataset, "split": args.split, "part": label,
              "eval_inner_steps": learner.hparams.get("eval_inner_steps"),
              **{k: learner.hparams[k] for k in ("finetune_steps", "finetune_backbone")
                 if k in learner.hparams},
              **({"min_images": args.min_images} if args.min_images and not args.all_classes
                 else {}),
              "protocol": protocol, **result.to_dict()}
    if args.record:  # refuses training checkpoints (ModelFileError)
        ckpt.record_evaluation(args.model, {k: v for k, v in record.items() if k != "model"})
    print(json.dumps(record) if args.json else f"{record['algo']} on {args.dataset}/"
          f"{args.split}/{label}: {result}")
    return 0


def _lookup_data(args: argparse.Namespace, payload: dict[str, Any], size: int, part: str
                 ) -> tuple[list[str], GlyphSet, GlyphSet, ClassCheck]:
    """The lookup's inputs: the fonts, the support (renderings of every vocabulary code
    point, ``args.support``), the real crops of ``part`` of ``args.split``, and which of
    their characters the model file says it has seen."""
    from trainer.data.nom_lookup import crop_parts, font_report, load_vocabulary, lookup_support

    if args.dataset != "nom":
        raise ValueError("the lookup names real crops of the Nôm crop set: use --dataset nom")
    vocab = load_vocabulary()
    fonts, missing = font_report()
    for line in missing:
        print(f"font not installed (its code points use the other fonts): {line}",
              file=sys.stderr)
    parts = dict(zip(("train", "val", "test"),
                     crop_parts(args.data_root, size, args.split, cache_dir=args.cache_dir,
                                vocab=vocab), strict=True))
    queries = parts[part]
    check = check_classes(payload, queries, dataset=args.dataset)
    support = lookup_support(vocab, size, args.support, cache_dir=args.cache_dir)
    return fonts, support, queries, check


def cmd_lookup(args: argparse.Namespace, learner: Any, payload: dict[str, Any], size: int,
               device: torch.device) -> int:
    """``evaluate --lookup``: see :mod:`trainer.lookup`."""
    from trainer.lookup import chosen_zooms, lookup_accuracy

    # The model's own zooms (chosen on validation by lookup-zooms) unless --zooms is given.
    zooms = list(args.zooms) if args.zooms else list(chosen_zooms(payload["metrics"]))
    fonts, support, queries, check = _lookup_data(args, payload, size, args.part)
    # The guard: no crop of a query character may have reached training (font renderings
    # of every code point may, and do for a lookup model: that is the point of fonts).
    label = part_label(check, part=args.part, dataset=args.dataset, split=args.split,
                       allow_seen=args.allow_seen)
    result = lookup_accuracy(learner, support, queries, device=device, fonts=fonts,
                             zooms=zooms)
    record = {"model": str(args.model), "algo": payload["learner"]["algo"],
              "dataset": args.dataset, "split": args.split, "part": label,
              "protocol": "lookup", "support": args.support, "zooms": zooms,
              "way": result.classes,
              "shot": 1,
              "mean": result.top["1"], "ci95": result.top_ci95["1"], **result.to_dict(),
              "crops_seen_in_training": len(check.seen)}
    if args.record:
        ckpt.record_evaluation(args.model, {k: v for k, v in record.items() if k != "model"})
    zoom_text = "" if zooms == [1.0] else f"; zooms {', '.join(f'{z:g}' for z in zooms)}"
    print(json.dumps(record) if args.json else f"{record['algo']} on {args.dataset}/"
          f"{args.split}/{label}: {result}; crops of these characters in training: "
          f"{len(check.seen)}{zoom_text}")
    return 0


def cmd_lookup_zooms(args: argparse.Namespace, device: torch.device) -> int:
    """``lookup-zooms``: each candidate set of test-time zooms measured on the validation
    crops' lookup; the best is stored in the model file (see :func:`trainer.lookup.
    choose_zooms`)."""
    from trainer.lookup import choose_zooms

    learner, payload = ckpt.load_learner(args.model, device)
    if not learner.classes_are_means:
        raise ValueError(f"{args.model.name} is a {learner.name} model: the lookup needs "
                         "one whose classes are means of embeddings (protonet, cosine)")
    size = payload["learner"]["backbone"].get("image_size", 28)
    fonts, support, queries, check = _lookup_data(args, payload, size, "val")
    # Validation crops may have chosen the model (that is what they are for, and choosing
    # the zooms is the same use); they must not have trained it.
    trained = check.trained
    crops = {ckpt.character_of(n) for n in queries.class_names}
    if trained is None or crops & set(trained.get("train_classes", [])):
        raise ValueError(f"the {args.split} validation crops' characters are not known to "
                         f"be outside {args.model.name}'s training: choose zooms with the "
                         "split it was trained with")
    choice = choose_zooms(learner, support, queries, args.candidates, device=device,
                          fonts=fonts)
    record = {"split": args.split, "part": "val", "support": args.support, **choice}
    if not args.no_record:
        ckpt.update_metrics(args.model, lambda m: m.__setitem__("lookup_zooms", record),
                            "lookup zooms")
    if args.json:
        print(json.dumps(record))
    else:
        for c in choice["candidates"]:
            print(f"zooms {', '.join(f'{z:g}' for z in c['zooms'])}: top-1 {c['top']['1']:.2f}"
                  f" +- {c['top_ci95']['1']:.2f}%, top-5 {c['top']['5']:.2f}%, top-10 "
                  f"{c['top']['10']:.2f}%")
        print(f"chosen: {', '.join(f'{z:g}' for z in choice['zooms'])} ({choice['queries']:,} "
              f"validation crops of {args.split}; "
              f"{'not stored' if args.no_record else 'stored in ' + args.model.name})")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # to name ignored flags
    if args.command == "list":
        return cmd_list()
    try:
        check_args(args)  # every flag's range, before anything starts
    except ValueError as exc:
        print(f"nomgui-train: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    tune_allocator()
    if args.threads:
        torch.set_num_threads(args.threads)
    dist = distributed.SINGLE
    try:
        if args.command == "calibrate":
            from trainer.calibrate import cmd_calibrate

            device = resolve_device(args.device)
            return cmd_calibrate(args, device)
        if args.command == "lookup-zooms":
            device = resolve_device(args.device)
            configure_device(device)
            return cmd_lookup_zooms(args, device)
        if args.command == "evaluate":
            if distributed.launched_by_torchrun():
                raise ValueError("evaluate runs in one process: start it without torchrun")
            device = resolve_device(args.device)
            configure_device(device)
            return cmd_evaluate(args, device)
        dist, device = distributed.init(args.device)
        configure_device(device)
        return cmd_train(args, device, dist)
    except (DataError, ckpt.ModelFileError, engine.RunError, ValueError) as exc:
        if dist.is_main:  # these are raised on every rank alike: say it once
            print(f"nomgui-train: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as exc:  # full disk, read-only folder: the last checkpoint is intact
        print(f"nomgui-train: error: {os_error_line(exc)}", file=sys.stderr)
        return 1
    except FloatingPointError as exc:  # the loss diverged; the engine kept the checkpoint
        if dist.is_main:
            print(f"nomgui-train: error: {exc}", file=sys.stderr)
        return 1
    finally:
        distributed.shutdown(dist)


if __name__ == "__main__":
    sys.exit(main())
