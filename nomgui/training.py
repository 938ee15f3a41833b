"""Training runs started from the app: ``python -m trainer ...`` in its own process.

No torch here. A run is a folder under ``<data dir>/runs/``:

    run.json        what was asked (the request, the command line), when, the process id,
                    and what became of it (evaluation, registered model)
    progress.jsonl  the trainer's ``--json-progress`` lines (its stdout)
    stderr.log      the trainer's messages and errors
    out/            the trainer's run folder: config.json, metrics.jsonl, checkpoint.pt,
                    best.pt
    data.zip        for runs on the class set: a snapshot of it as class folders

The process is started in its own session with its output going to those files, and
:class:`RunMonitor` follows the files. So closing the app can leave a run going (the next
launch finds it again), and a crash of the app or of the trainer loses nothing:
the trainer checkpoints on its own, and a run whose process is gone without its final
``done`` line is reported as failed, resumable from its last checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from nomgui.classset import atomic_write
from nomgui.safepath import UnsafePathError, check_name

_CHILDREN: dict[int, subprocess.Popen] = {}  # trainer processes this app started
_DETACH: dict[str, Any] = (
    {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP} if sys.platform == "win32"
    else {"start_new_session": True})

RUN_FILE, PROGRESS, STDERR, OUT, DATA_ZIP = (
    "run.json", "progress.jsonl", "stderr.log", "out", "data.zip")

# What the dialog offers; "fomaml" is maml with --first-order.
ALGORITHMS = {
    "protonet": "Prototypical Networks: a class is the mean embedding of its examples. "
                "Fast to train, strong on Omniglot.",
    "maml": "MAML (second order): learns an initialisation that adapts in a few gradient "
            "steps. Slower per step; the classic meta-learner.",
    "fomaml": "First-order MAML: MAML without second derivatives. Cheaper, a little weaker.",
    "protomaml": "Proto-MAML: MAML whose output layer starts from the prototypes "
                 "(w = 2c, b = -|c|²).",
    "transfer": "Transfer learning: pre-train an ordinary classifier on many classes, then "
                "fit a new output layer per task. The baseline.",
}
DATASETS = {
    "omniglot": "Omniglot: 1,623 handwritten characters of 50 alphabets, 20 drawings each. "
                "Data folder: the one holding images_background.zip and "
                "images_evaluation.zip (or tick Download).",
    "nom": "Chữ Nôm woodblock crops: real printed characters, 5-20 crops each. Data folder: "
           "the one holding nom_woodblock_crops.zip.",
    "nom-fonts": "Nôm characters rendered with the installed CJK fonts. Data folder: the "
                 "one holding nom_codepoints.tsv.",
    "folder": "Any folder (or zip) with one sub-folder of images per class.",
    "classset": "The class set open in the window (its classes and examples). Trains and "
                "validates on the same classes: this adapts a model to your glyphs. "
                "Examples held out of training (Hold out) measure it afterwards.",
}
SPLITS = {
    "seed": "Classes shuffled with a fixed seed: train / validation / test classes never "
            "overlap (Omniglot: 1,100 / 100 / 423).",
    "lake": "Omniglot only: the 964 background characters train, the 659 evaluation "
            "characters test.",
    "nom-only": "Nôm crops only: the seed split restricted to Nôm-proper characters.",
    "all": "Every class in every part (for your own small class sets); with Hold out, "
           "some examples of each class are kept out of training to measure the model.",
}


def held_out_text(event: dict[str, Any]) -> str:
    """The trainer's ``held_out`` line (a class-set model on examples it never trained on)
    as the runs list shows it."""
    low, high = event.get("ci_low"), event.get("ci_high")
    ci = (f"95% CI {low:.0f}–{high:.0f}%" if isinstance(low, (int, float))
          and isinstance(high, (int, float)) else f"± {event['ci95']:.1f}%")
    n = event.get("held_out")
    return f"{event['mean']:.1f}% ({ci}) on {n if isinstance(n, int) else '?'} held-out examples"


class RunError(RuntimeError):
    """A run cannot be started, resumed or read; the message is for the user."""


@dataclass
class TrainRequest:
    """What the user asked for in the dialog; ``argv`` turns it into the trainer's command."""

    command: str = "meta-train"  # meta-train | pretrain | evaluate
    algo: str = "protonet"
    dataset: str = "omniglot"
    data_root: str = ""
    split: str = "seed"
    way: int = 5
    shot: int = 1
    query: int = 15
    steps: int = 2000
    batch: int = 16
    device: str = "auto"
    download: bool = False
    init_from: str = ""  # model file to start from (fine-tuning), or the model to evaluate
    episodes: int = 1000  # evaluate
    record: bool = False  # evaluate: store the result in the model file
    title: str = ""
    holdout: int = 0  # split all: examples per class kept out of training, then measured

    def __post_init__(self) -> None:
        if self.command == "pretrain":
            self.algo = "transfer"

    def argv(self, run_dir: Path, cache_dir: Path) -> list[str]:
        """Arguments after ``python -m trainer``."""
        dataset = "folder" if self.dataset == "classset" else self.dataset
        root = str(run_dir / DATA_ZIP) if self.dataset == "classset" else self.data_root
        args = [self.command, "--dataset", dataset, "--split", self.split,
                "--device", self.device, "--cache-dir", str(cache_dir)]
        if root:
            args += ["--data-root", root]
        if self.download:
            args.append("--download")
        if self.command == "evaluate":
            return [*args, "--model", self.init_from, "--way", str(self.way), "--shot",
                    str(self.shot), "--query", str(self.query), "--episodes",
                    str(self.episodes), "--json", *(["--record"] if self.record else [])]
        args += ["--out", str(run_dir / OUT), "--steps", str(self.steps), "--batch",
                 str(self.batch), "--json-progress",
                 # validate and checkpoint often enough to see progress in a short run
                 "--val-every", str(max(1, min(500, self.steps // 4))),
                 "--checkpoint-every", str(max(1, min(200, self.steps // 10)))]
        if self.init_from:
            args += ["--init-from", self.init_from]
        if self.holdout and self.split == "all":
            args += ["--holdout-per-class", str(self.holdout)]
        if self.command == "meta-train":
            algo = "maml" if self.algo == "fomaml" else self.algo
            args += ["--algo", algo, "--way", str(self.way), "--shot", str(self.shot),
                     "--query", str(self.query), "--val-episodes", "100"]
            if self.algo == "fomaml":
                args.append("--first-order")
        return args

    def describe(self) -> str:
        if self.command == "evaluate":
            return (f"evaluate {Path(self.init_from).name} on {self.dataset}, "
                    f"{self.way}-way {self.shot}-shot")
        what = "transfer" if self.command == "pretrain" else self.algo
        shape = "" if self.command == "pretrain" else f" {self.way}-way {self.shot}-shot"
        return f"{what} on {self.dataset}{shape}, {self.steps} steps"


@dataclass
class RunInfo:
    """The contents of run.json."""

    id: str
    title: str
    created: float
    request: dict[str, Any]
    argv: list[str] = field(default_factory=list)
    pid: int | None = None
    evaluation: dict[str, Any] | None = None  # the evaluate JSON record of the best model
    registered: str | None = None  # model file added to the model menu
    parent: str | None = None  # an evaluation's training run (its result goes there)
    pid_start: int | None = None  # the process's start time (clock ticks after boot)
    stop_asked: float | None = None  # when Stop was pressed (time.time()), until a restart


# A run record is data that may be damaged or crafted; these are the only types it may
# hold. A pid of -1 signals every process of the user, -PGID a whole group: see _alive.
_INFO_TYPES: dict[str, tuple[type, ...]] = {
    "id": (str,), "title": (str,), "created": (int, float), "request": (dict,),
    "argv": (list,), "pid": (int, type(None)), "evaluation": (dict, type(None)),
    "registered": (str, type(None)), "parent": (str, type(None)),
    "pid_start": (int, type(None)), "stop_asked": (int, float, type(None)),
}
_PID_MAX = 2**22  # Linux's largest pid_max; anything above is not a process id
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d{1,2})?)$")


def _run_info(data: object) -> RunInfo:
    """A RunInfo from run.json's contents, every field type-checked (ValueError if not)."""
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    unknown = sorted(set(data) - {f.name for f in fields(RunInfo)})
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(unknown)}")
    for key, types in _INFO_TYPES.items():
        if key in data and (not isinstance(data[key], types) or isinstance(data[key], bool)):
            raise ValueError(f"field {key!r} is {data[key]!r:.40}, not a "
                             f"{' or '.join(t.__name__ for t in types)}")
    info = RunInfo(**data)
    check_name(info.id, "run id")
    if info.pid is not None and not 1 < info.pid <= _PID_MAX:
        raise ValueError(f"process id {info.pid} is not one a run can have")
    if not all(isinstance(a, str) for a in info.argv):
        raise ValueError("the command line holds non-text arguments")
    _checked_request(info.request)
    if info.evaluation is not None and not (valid_event(info.evaluation)
                                            and "mean" in info.evaluation):
        raise ValueError("the recorded evaluation is malformed")
    return info


def _checked_request(request: dict[str, Any]) -> TrainRequest:
    """The TrainRequest of a record, its choices among the known ones (ValueError if not)."""
    req = TrainRequest(**request)  # TypeError on unknown keys
    for name, allowed in (("command", ("meta-train", "pretrain", "evaluate")),
                          ("algo", ALGORITHMS), ("dataset", DATASETS), ("split", SPLITS)):
        if getattr(req, name) not in allowed:
            raise ValueError(f"{name} {getattr(req, name)!r:.40} is not one nomgui knows")
    for name in ("way", "shot", "query", "steps", "batch", "episodes"):
        value = getattr(req, name)
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 10**9:
            raise ValueError(f"{name} {value!r:.40} is not a positive whole number")
    if not isinstance(req.holdout, int) or isinstance(req.holdout, bool) \
            or not 0 <= req.holdout <= 10**6:
        raise ValueError(f"holdout {req.holdout!r:.40} is not a whole number from 0")
    for name in ("data_root", "init_from", "title"):
        if not isinstance(getattr(req, name), str):
            raise ValueError(f"{name} is not a text")
    if not isinstance(req.device, str) or not _DEVICE.match(req.device):
        raise ValueError(f"device {req.device!r:.40} is not one nomgui knows")
    return req


def _proc_start_time(pid: int) -> int | None:
    """The process's start time from /proc (clock ticks after boot); None where there is
    no /proc or no such process. With the pid it names one process for good."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    try:
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (IndexError, ValueError):
        return None


def _alive(pid: object, run_dir: Path, start_time: int | None = None) -> bool:
    """Is the trainer process of this run still running? Only a positive pid of a process
    this run started counts: its start time must match the recorded one and its command
    line must name the trainer and this run's folder (where /proc shows them), so a
    recycled process id, or a crafted one, is never taken for the run (and never signalled).
    """
    if not isinstance(pid, int) or isinstance(pid, bool) or not 1 < pid <= _PID_MAX:
        return False
    if pid in _CHILDREN:  # started by this app: ask the child (poll() also reaps it)
        return _CHILDREN[pid].poll() is None
    if Path("/proc/self/stat").exists():
        if start_time is not None and _proc_start_time(pid) != start_time:
            return False
        try:
            text = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
                errors="replace")
        except OSError:
            return False
        return "trainer" in text and str(run_dir) in text
    # No /proc (macOS, Windows): the pid is at least a live process of ours.
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


_NUMBER_KEYS = ("step", "steps", "loss", "acc", "val_acc", "best_val", "mean", "ci95",
                "way", "shot", "episodes", "tasks_per_s")
_REQUIRED = {"start": ("step", "steps"), "step": ("step", "loss", "acc"),
             "val": ("step", "val_acc", "best_val")}


def valid_event(event: object) -> bool:
    """Whether a progress line is one the app can show: a dict whose known keys have the
    right types and whose kind has its keys (a damaged or foreign line is skipped)."""
    if not isinstance(event, dict):
        return False

    def number(key: str) -> bool:
        value = event.get(key)
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    # Known numeric keys are numbers or null (a "done" before any validation has
    # best_val null); the keys a kind of line needs must be there as numbers.
    if any(event.get(k) is not None and not number(k) for k in _NUMBER_KEYS):
        return False
    kind = event.get("event")
    if kind is None and "mean" in event:  # evaluate's result line
        return all(number(k) for k in ("mean", "ci95", "way", "shot", "episodes"))
    if kind == "done":
        return isinstance(event.get("status"), str) and number("step")
    return all(number(k) for k in _REQUIRED.get(kind, ()))


def read_events(path: Path) -> list[dict[str, Any]]:
    """The JSON lines of a progress file; a line cut short by a kill is skipped."""
    events = []
    if path.exists():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    event = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if valid_event(event):
                    events.append(event)
    return events


class Run:
    """One run folder. Everything is read from disk, so any window sees the same state."""

    def __init__(self, folder: Path, info: RunInfo) -> None:
        self.folder, self.info = folder, info
        # The progress file is read at most once per Run object: the runs list builds new
        # objects on each refresh, and a followed run's new lines come from its monitor.
        self._events: list[dict[str, Any]] | None = None
        self._final = False

    @property
    def request(self) -> TrainRequest:
        return TrainRequest(**self.info.request)

    @classmethod
    def open(cls, folder: Path) -> Run:
        try:
            data = json.loads((folder / RUN_FILE).read_text(encoding="utf-8"))
            return cls(folder, _run_info(data))
        except (OSError, ValueError, TypeError, UnsafePathError) as exc:
            raise RunError(f"{folder.name}: the run's record is unreadable ({exc})") from exc

    def save(self) -> None:
        atomic_write(self.folder / RUN_FILE, json.dumps(asdict(self.info), indent=2).encode())

    # -- state -----------------------------------------------------------------------------
    def events(self) -> list[dict[str, Any]]:
        """Events of the latest start (a resume appends a new ``start``)."""
        events = self.all_events()
        starts = [i for i, e in enumerate(events) if e.get("event") == "start"]
        return events[starts[-1]:] if starts else events

    def all_events(self) -> list[dict[str, Any]]:
        if self._events is None or not self._final:
            # Checked before reading: once the process is gone, every line it wrote is there;
            # while it runs the file still grows, so it is read again next time.
            self._final = not self.running()
            self._events = read_events(self.folder / PROGRESS)
        return self._events

    def running(self) -> bool:
        return _alive(self.info.pid, self.folder, self.info.pid_start)

    def status(self) -> str:
        """running | finished | stopped | failed | evaluated."""
        if self.running():
            return "running"
        if self.request.command == "evaluate":
            return "evaluated" if any("mean" in e for e in self.all_events()) else "failed"
        done = [e for e in self.events() if e.get("event") == "done"]
        if done:
            return done[-1]["status"]
        # Stopped before the trainer could say so: a Stop in its first seconds (while
        # Python imports torch) ends it before its handler is installed. Not a failure.
        stopped_early = self.info.stop_asked is not None and not any(
            e.get("event") == "start" for e in self.all_events())
        return "stopped" if stopped_early else "failed"

    def error_text(self) -> str:
        """The last lines the trainer wrote on stderr (its error message if it failed)."""
        path = self.folder / STDERR
        if not path.exists():
            return ""
        lines = [x for x in path.read_text(encoding="utf-8", errors="replace").splitlines()
                 if x.strip() and "%|" not in x]  # no tqdm bars
        return "\n".join(lines[-6:])

    @property
    def model_path(self) -> Path:
        return self.folder / OUT / "best.pt"

    def can_resume(self) -> bool:
        return (self.request.command != "evaluate" and not self.running()
                and (self.folder / OUT / "checkpoint.pt").exists()
                and self.status() in ("stopped", "failed"))

    def accuracy_text(self) -> str:
        ev = self.info.evaluation
        if self.request.command == "evaluate":
            found = [e for e in self.all_events() if "mean" in e]
            ev = found[-1] if found else None
        if ev:
            return (f"{ev['mean']:.2f} ± {ev['ci95']:.2f}% ({ev['way']}-way "
                    f"{ev['shot']}-shot test)")
        held = [e for e in self.all_events() if e.get("event") == "held_out"]
        if held:
            return held_out_text(held[-1])
        vals = [e for e in self.all_events() if e.get("event") == "val"]
        return f"val {vals[-1]['best_val']:.2f}%" if vals else ""


class RunStore:
    """All runs, one folder each under ``root``; starts, stops and resumes processes."""

    def __init__(self, root: Path, cache_dir: Path, python: str = sys.executable) -> None:
        self.root, self.cache_dir, self.python = Path(root), Path(cache_dir), python

    def list(self) -> tuple[list[Run], list[str]]:
        """Runs, newest first, and messages about folders that could not be read."""
        runs, errors = [], []
        if self.root.is_dir():
            for folder in sorted(self.root.iterdir(), reverse=True):
                # A link to a folder elsewhere is not a run of this store: its files are
                # not the data folder's to resume into or delete.
                if folder.is_symlink():
                    errors.append(f"{folder.name}: a link to elsewhere, not a run folder")
                elif folder.is_dir() and (folder / RUN_FILE).exists():
                    try:
                        runs.append(Run.open(folder))
                    except RunError as exc:
                        errors.append(str(exc))
        return runs, errors

    def create(self, request: TrainRequest, classset_zip: Path | None = None,
               parent: Run | None = None) -> Run:
        """A new run folder; ``classset_zip`` is copied in for runs on the class set."""
        if request.dataset == "classset" and classset_zip is None:
            raise RunError("no class set to train on")
        if request.dataset not in ("classset",) and not request.data_root \
                and not request.download:
            raise RunError("choose the data folder (or tick Download for Omniglot)")
        if request.command == "evaluate" and not Path(request.init_from).is_file():
            raise RunError(f"model file {request.init_from} does not exist")
        # The trainer runs in the run folder: relative paths would point somewhere else.
        if request.data_root:
            request.data_root = str(Path(request.data_root).expanduser().resolve())
        if request.init_from:
            request.init_from = str(Path(request.init_from).expanduser().resolve())
        stamp = time.strftime("%Y%m%d-%H%M%S")
        folder = self.root / stamp
        n = 1
        while folder.exists():
            n += 1
            folder = self.root / f"{stamp}-{n}"
        folder.mkdir(parents=True)
        if classset_zip is not None:
            shutil.copyfile(classset_zip, folder / DATA_ZIP)
        info = RunInfo(id=folder.name, title=request.title or request.describe(),
                       created=time.time(), request=asdict(request),
                       argv=request.argv(folder, self.cache_dir),
                       parent=parent.info.id if parent else None)
        run = Run(folder, info)
        run.save()
        return run

    def start(self, run: Run, resume: bool = False) -> None:
        if run.running():
            raise RunError("this run is already running")
        # The command is rebuilt from the checked request, not taken from run.json: a
        # record's argv could send --out (and so every write) anywhere.
        run.info.argv = run.request.argv(run.folder, self.cache_dir)
        run.info.stop_asked = None
        argv = [self.python, "-m", "trainer", *run.info.argv,
                *(["--resume"] if resume else [])]
        # Output goes to files, not pipes, and the process gets its own session: the run
        # outlives the window when asked to, and a Ctrl-C meant for the app is not its.
        # (QProcess kills its child when destroyed, and PySide6's startDetached with
        # redirected output does not return the process id.)
        try:
            with (run.folder / PROGRESS).open("ab") as out, \
                    (run.folder / STDERR).open("ab") as err:
                proc = subprocess.Popen(argv, cwd=run.folder, stdout=out, stderr=err,
                                        stdin=subprocess.DEVNULL, **_DETACH)
        except OSError as exc:
            raise RunError(f"could not start {self.python} -m trainer: {exc}") from exc
        _CHILDREN[proc.pid] = proc  # polled by _alive, which also reaps it
        run.info.pid, run.info.pid_start = proc.pid, _proc_start_time(proc.pid)
        run.save()

    def stop(self, run: Run) -> bool:
        """Ask the trainer to stop after its current step; it saves a checkpoint. Only the
        run's own process is signalled (see :func:`_alive`), never a group or -1."""
        pid = run.info.pid
        if not isinstance(pid, int) or pid <= 1 or not run.running():
            return False
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            return False
        run.info.stop_asked = time.time()
        # The signal is sent; only the label of a stop before the first step needs this.
        with contextlib.suppress(OSError):
            run.save()
        return True

    def wait(self, runs: list[Run], timeout: float) -> bool:
        """Block until the runs' processes are gone (for closing the app); True if they are."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if not any(r.running() for r in runs):
                return True
            time.sleep(0.1)
        return not any(r.running() for r in runs)

    def delete(self, run: Run) -> None:
        if run.running():
            raise RunError("stop the run before deleting it")
        shutil.rmtree(run.folder)

    def register(self, run: Run, models_dir: Path) -> Path:
        """Copy the run's best model into the user's models folder (the Model menu)."""
        if not run.model_path.exists():
            raise RunError("this run has no model yet (it saves one at its first validation)")
        if run.info.registered and Path(run.info.registered).exists():
            raise RunError(f"this run's model is already in your models as "
                           f"{Path(run.info.registered).name}")
        req = run.request
        # Never overwrite a registered model (and the evaluation recorded in it): a name
        # that is taken gets a number.
        # From checked choices and the run's folder name: never a path from the record.
        target = models_dir / f"{req.algo}-{req.dataset}-{run.folder.name}.pt"
        n = 2
        while target.exists():
            target = models_dir / f"{req.algo}-{req.dataset}-{run.info.id}-{n}.pt"
            n += 1
        atomic_write(target, run.model_path.read_bytes())
        run.info.registered = str(target)
        run.save()
        return target

    def evaluation_request(self, run: Run, model: Path) -> TrainRequest | None:
        """The evaluation that goes with a registered model: its own data, test classes,
        5-way 1-shot. None for a model of split all (a class set): it has no unseen
        classes to test on; its figure is the trainer's, on the examples it held out,
        already in the model file."""
        req = run.request
        if req.split == "all":
            return None
        way = req.way if req.dataset == "classset" else 5
        return TrainRequest(command="evaluate", dataset=req.dataset, data_root=req.data_root,
                            split=req.split, way=way, shot=1, query=min(req.query, 15),
                            device=req.device, init_from=str(model), episodes=1000 if
                            req.dataset != "classset" else 200, record=True,
                            title=f"evaluate {model.name}")


class RunMonitor(QObject):
    """Follows one run's files: emits each new progress event, then ``ended`` once the
    process is gone (with the final status). Polling, not pipes: the same code follows a
    run started by this window, by an earlier session, or from a terminal."""

    event = Signal(dict)
    stderr = Signal(str)
    ended = Signal(str)  # status

    def __init__(self, run: Run, interval_ms: int = 250, parent: QObject | None = None):
        super().__init__(parent)
        self.run = run
        self._offsets = {PROGRESS: 0, STDERR: 0}
        self.events: list[dict[str, Any]] = []  # every progress event read so far
        self._partial = ""
        self._timer = QTimer(self, interval=interval_ms)
        self._timer.timeout.connect(self.poll)
        self._was_running = run.running()

    def start(self) -> None:
        self._was_running = True
        self._timer.start()
        self.poll()

    def stop(self) -> None:
        self._timer.stop()

    def _read_new(self, name: str) -> str:
        path = self.run.folder / name
        if not path.exists():
            return ""
        with path.open("rb") as f:
            f.seek(self._offsets[name])
            data = f.read()
        self._offsets[name] += len(data)
        return data.decode("utf-8", errors="replace")

    def poll(self) -> None:
        alive = self.run.running()  # before reading, so no line written before exit is missed
        text = self._partial + self._read_new(PROGRESS)
        lines = text.split("\n")
        self._partial = lines.pop()  # an unfinished line waits for the next poll
        for line in lines:
            if line.startswith("{"):
                try:
                    event = json.loads(line)
                except json.JSONDecodeError:  # not one of the trainer's lines
                    continue
                if not valid_event(event):  # damaged: skipped, as read_events does
                    continue
                self.events.append(event)
                self.event.emit(event)
        err = self._read_new(STDERR)
        if err:
            self.stderr.emit(err)
        if not alive and self._was_running:
            self._timer.stop()
            self._was_running = False
            self.ended.emit(self.run.status())
