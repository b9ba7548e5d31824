"""The protocol's training runs as independent units: side by side, cached by content.

A *run* is one ``learner.fit`` of :mod:`ser.models.protocol`: a candidate on one
validation fold with one validation seed, or a candidate's final model with
one seed. Runs do not depend on each other, so

* **they run side by side.** :class:`Runner` hands the runs that are not
  cached to ``joblib.Parallel`` (loky processes) with ``n_jobs`` of
  :class:`RunOptions` (``[runs] n_jobs`` of the configuration; 1: one after
  another in this process). A run's result does not depend on ``n_jobs``:
  each run seeds itself (its seed, inside ``learner.fit``) and sets its own
  torch thread count (``[runs] threads``), and every worker has the CPU-kernel
  pins of ``dodo.py`` (``ONEDNN_MAX_CPU_ISA``, ``ATEN_CPU_CAPABILITY``,
  ``OMP_WAIT_POLICY``): workers inherit the environment, and each run reports
  its own back, which is checked against this process's. With CUDA the runs
  stay on the one device, one after another.
* **they are cached by content.** With a cache folder (the build passes
  ``build/cache/runs/``), each run's output (its history, its validation
  probabilities and, for a final run, the model's weights and state) is kept
  in ``<folder>/<key[:2]>/<key>.npz``. The key is the SHA-256 of what the run
  depends on: the bytes of every training and validation clip the candidate
  reads (:attr:`ser.models.protocol.Learner.view`) and their labels, in order; the
  candidate's params, the seed and the epochs; the learner's settings
  (:attr:`ser.models.protocol.Learner.key`: its configuration without the fields that
  never reach a run, the torch version, device and kernel pins); the torch
  threads (they change the 2D CNN's numbers); and the code: the source text
  of the learner's modules (:attr:`ser.models.protocol.Learner.code`) and of
  :func:`_train_one`, which runs a run. A run whose key is cached is read, not
  trained, and gives the same numbers as training it would. Entries are
  written atomically (:mod:`ser.io`) by the process that trained the run, as
  soon as it finishes, so an interrupted task keeps every finished run and
  leaves no half entry (a killed write leaves at most a ``.``-named temporary
  file, never read). A learner without ``key`` is never cached, and one
  without ``export``/``restore`` caches its validation runs only.

The cache is not a doit target and no task's dependency: doit decides
whether a task runs, as before; a cache hit only makes a task that runs
faster. ``doit clean`` and ``doit forget`` leave it; delete the folder to
empty it. Entries are never removed by the build.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib
import inspect
import json
import os
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

PIN_VARS = ("OMP_WAIT_POLICY", "ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")
"""Environment variables read by torch's CPU kernels at import (``dodo.py`` sets them)."""

FORMAT = 1  # of a cache entry and its key


@dataclass(frozen=True)
class RunOptions:
    """How the runs of one :func:`ser.models.protocol.run_protocol` call are executed.

    n_jobs : runs side by side, each in its own process; 0: as many as the
        cores hold at ``threads`` each; always 1 when torch uses CUDA.
    threads : torch threads of each run; 0: this process's count, as it is.
    cache_dir : the run cache folder; None: no cache.
    """

    n_jobs: int = 1
    threads: int = 0
    cache_dir: str | os.PathLike | None = None


_CURRENT: list[RunOptions] = [RunOptions()]


def current() -> RunOptions:
    """The options :func:`ser.models.protocol.run_protocol` uses when it is given none."""
    return _CURRENT[-1]


@contextlib.contextmanager
def using(options: RunOptions) -> Iterator[RunOptions]:
    """Make ``options`` the :func:`current` ones inside the ``with`` block."""
    _CURRENT.append(options)
    try:
        yield options
    finally:
        _CURRENT.pop()


def options(cfg, *, cache_dir=None) -> RunOptions:
    """The options of a :class:`ser.config.Config`'s ``[runs]`` section, the
    one place both networks' threads are set; ``cache_dir`` is used when
    ``[runs] cache`` is on."""
    r = cfg.runs
    return RunOptions(n_jobs=int(r.n_jobs), threads=int(r.threads),
                      cache_dir=cache_dir if r.cache else None)


def set_threads(n: int | None) -> None:
    """``torch.set_num_threads(n)`` when ``n`` is a positive number (else nothing)."""
    if n:
        import torch

        if torch.get_num_threads() != int(n):
            torch.set_num_threads(int(n))


def effective_threads(threads: int) -> int:
    """The thread count each run sets: ``threads``, or with 0 this process's
    torch count (0 when torch is not loaded: nothing is set)."""
    if threads:
        return int(threads)
    if "torch" in sys.modules:
        return int(sys.modules["torch"].get_num_threads())
    return 0


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def uses_cuda() -> bool:
    """Whether the networks train on CUDA (:func:`ser.models.training.device`)."""
    if "torch" not in sys.modules:
        return False
    return bool(sys.modules["torch"].cuda.is_available())


def effective_jobs(n_jobs: int, threads: int) -> int:
    """Processes for the runs: 1 with CUDA (one device), ``n_jobs`` else; 0:
    the usable cores over ``threads`` (at least 1)."""
    if uses_cuda():
        return 1
    if n_jobs <= 0:
        return max(1, usable_cores() // max(1, threads))
    return int(n_jobs)


# ----------------------------------------------------------------- runs

@dataclass(frozen=True)
class RunSpec:
    """One training run of the protocol."""

    kind: str  # "validation" or "final"
    candidate: str
    params: dict
    seed: int
    epochs: int
    train_idx: np.ndarray
    val_idx: np.ndarray | None = None
    fold: Any = None  # the held-out fold's name (validation runs)


def _quiet(_):
    pass


def pins() -> dict[str, str | None]:
    return {k: os.environ.get(k) for k in PIN_VARS}


def _facts() -> dict:
    """What a process that ran a run reports back: its pins and torch's CPU kernels."""
    facts = {"pid": os.getpid(), "pins": pins()}
    if "torch" in sys.modules:
        facts["cpu_capability"] = sys.modules["torch"].backends.cpu.get_cpu_capability()
        facts["threads"] = sys.modules["torch"].get_num_threads()
    return facts


def _train_one(learner, spec: RunSpec, x, y, threads: int, entry: str | None, material: dict | None,
               epoch_log: Callable[[str], None] | None = None):
    """Train one run (in this process or a worker), store it in the cache
    (``entry``), and return ``(Trained or None, history, facts)``: the
    trained model of a final run only."""
    set_threads(threads)
    kw = {} if spec.val_idx is None else {"x_val": x[spec.val_idx], "y_val": y[spec.val_idx]}
    trained, hist = learner.fit(spec.params, x[spec.train_idx], y[spec.train_idx], seed=spec.seed,
                                epochs=spec.epochs, log=epoch_log or _quiet, **kw)
    final = spec.kind == "final"
    if entry is not None:
        save_entry(entry, material, hist, trained if final else None, learner)
    return (trained if final else None), hist, _facts()


# ---------------------------------------------------------------- cache

def _json(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_plain)


def _plain(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (tuple, set, frozenset)):
        return list(obj)
    if isinstance(obj, os.PathLike):
        return str(obj)
    raise TypeError(f"not JSON data: {type(obj).__name__}")


def _row_arrays(x) -> list[np.ndarray]:
    """The arrays of a learner's inputs whose axis 0 is the clip: an array,
    a tuple/list of them (None skipped), or an object holding them as
    attributes (e.g. :class:`ser.models.cnn1d.SpeakerWaves`)."""
    if isinstance(x, np.ndarray):
        return [x]
    if isinstance(x, (tuple, list)):
        return [a for item in x if item is not None for a in _row_arrays(item)]
    if hasattr(x, "__dict__"):
        n = len(x)
        return [v for _, v in sorted(vars(x).items()) if isinstance(v, np.ndarray) and len(v) == n]
    return [np.asarray(x)]


def clip_digests(x) -> list[str]:
    """SHA-256 of each clip's inputs (its rows of every array of ``x``, with their dtypes and shapes)."""
    arrays = _row_arrays(x)
    n = len(arrays[0]) if arrays else 0
    out = []
    for i in range(n):
        h = hashlib.sha256()
        for a in arrays:
            row = np.ascontiguousarray(a[i])
            h.update(f"{row.dtype.str}{row.shape}".encode())
            h.update(row.tobytes())
        out.append(h.hexdigest())
    return out


def _data_digest(digests: Sequence[str], y: np.ndarray, idx) -> str:
    h = hashlib.sha256()
    for i in np.asarray(idx):
        h.update(digests[int(i)].encode())
    h.update(np.asarray(y)[np.asarray(idx)].astype(np.int64).tobytes())
    return h.hexdigest()


def code_digest(modules: Sequence[str]) -> str:
    """SHA-256 of the source text of ``modules`` (names) and of :func:`_train_one`."""
    h = hashlib.sha256()
    for name in modules:
        mod = importlib.import_module(name)
        h.update(name.encode() + b"\0" + Path(mod.__file__).read_bytes() + b"\0")
    h.update(inspect.getsource(_train_one).encode())
    return h.hexdigest()


def entry_path(cache_dir, key: str) -> Path:
    return Path(cache_dir) / key[:2] / f"{key}.npz"


def save_entry(path, material: dict, hist: dict, trained, learner) -> None:
    """One run's output as one ``.npz``, written atomically: ``meta`` (JSON:
    the key's material, the history's lists and numbers, the model's state),
    ``hist/<name>`` (the history's arrays) and ``model/<name>`` (a final
    model's arrays, ``learner.export``)."""
    from ser.io import save_npz

    arrays, plain = {}, {}
    for k, v in hist.items():
        if isinstance(v, np.ndarray):
            arrays[f"hist/{k}"] = v
        else:
            plain[k] = v
    meta = {"format": FORMAT, "material": material, "hist": plain, "order": list(hist), "model": None}
    if trained is not None:
        arrays.update({f"model/{k}": np.asarray(v) for k, v in learner.export(trained).items()})
        meta["model"] = {"state": trained.state}
    try:
        arrays["meta"] = np.array(_json(meta))
    except (TypeError, ValueError) as exc:
        print(f"run cache: not stored ({exc})", file=sys.stderr, flush=True)
        return
    save_npz(path, **arrays)


def load_entry(path, material: dict) -> tuple[dict, dict[str, np.ndarray]] | None:
    """``(meta, arrays)`` of an entry made from ``material``; None when there
    is none (or it cannot be read: it is then retrained and written anew)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        meta = json.loads(str(arrays.pop("meta")))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        print(f"run cache: {path} unreadable ({exc}); training the run again", file=sys.stderr, flush=True)
        return None
    if meta.get("format") != FORMAT or meta.get("material") != json.loads(_json(material)):
        return None
    return meta, arrays


def _from_entry(meta: dict, arrays: dict, learner, final: bool):
    hist = dict(meta["hist"])
    for k, v in arrays.items():
        if k.startswith("hist/"):
            hist[k[5:]] = v
    hist = {k: hist[k] for k in meta["order"]}
    trained = None
    if final:
        model = {k[6:]: v for k, v in arrays.items() if k.startswith("model/")}
        trained = learner.restore(model, meta["model"]["state"])
    return trained, hist


# --------------------------------------------------------------- runner

@dataclass
class Counts:
    runs: int = 0
    trained: int = 0
    cached: int = 0


@dataclass
class Runner:
    """Runs :class:`RunSpec` s of one learner on one training set (``x``, ``y``).

    ``counts`` keeps, per kind of run, how many ran and how many of them were
    trained or read from the cache.
    """

    learner: Any
    x: Any
    y: np.ndarray
    options: RunOptions = field(default_factory=RunOptions)
    counts: dict = field(default_factory=lambda: {"validation": Counts(), "final": Counts()})

    def __post_init__(self):
        self.y = np.asarray(self.y)
        self.threads = effective_threads(self.options.threads)
        self.n_jobs = effective_jobs(self.options.n_jobs, self.threads)
        keyed = self.options.cache_dir is not None and getattr(self.learner, "key", None) is not None
        self.cache_dir = Path(self.options.cache_dir) if keyed else None
        self._code = code_digest(tuple(self.learner.code)) if keyed else None
        self._digests: dict[str, list[str]] = {}

    # the key
    def _clips(self, params: dict) -> list[str]:
        """Each training clip's digest, of the part of ``x`` the candidate reads."""
        k = _json(params)
        if k not in self._digests:
            view = self.learner.view(self.x, params) if getattr(self.learner, "view", None) else self.x
            self._digests[k] = clip_digests(view)
        return self._digests[k]

    def material(self, spec: RunSpec) -> dict:
        """What the run's key is the hash of."""
        clips = self._clips(spec.params)
        return json.loads(_json({
            "format": FORMAT, "kind": spec.kind, "learner": self.learner.key, "code": self._code,
            "threads": self.threads, "params": spec.params, "seed": int(spec.seed), "epochs": int(spec.epochs),
            "train": _data_digest(clips, self.y, spec.train_idx),
            "val": None if spec.val_idx is None else _data_digest(clips, self.y, spec.val_idx)}))

    def cacheable(self, spec: RunSpec) -> bool:
        if self.cache_dir is None:
            return False
        return spec.kind != "final" or (getattr(self.learner, "export", None) is not None
                                        and getattr(self.learner, "restore", None) is not None)

    # running
    def run(self, specs: Sequence[RunSpec], epoch_log: Callable[[RunSpec], Callable[[str], None]] | None = None
            ) -> Iterator[tuple[RunSpec, Any, dict, bool]]:
        """``(spec, Trained or None, history, cached)`` per run, in the order
        of ``specs``; runs not cached train side by side."""
        plan = []  # (spec, entry path, material, cached result)
        for spec in specs:
            entry = material = hit = None
            if self.cacheable(spec):
                material = self.material(spec)
                entry = entry_path(self.cache_dir, hashlib.sha256(_json(material).encode()).hexdigest())
                got = load_entry(entry, material)
                if got is not None:
                    hit = _from_entry(*got, self.learner, spec.kind == "final")
            plan.append((spec, entry, material, hit))
        pending = [(s, e, m) for s, e, m, hit in plan if hit is None]
        parent = _facts()
        trained = self._train(pending, epoch_log)
        try:
            for spec, entry, material, hit in plan:
                c = self.counts[spec.kind]
                c.runs += 1
                if hit is not None:
                    c.cached += 1
                    yield spec, hit[0], hit[1], True
                    continue
                model, hist, facts = next(trained)
                check_worker(parent, facts)
                c.trained += 1
                yield spec, model, hist, False
        finally:  # runs trained here set their threads: this process gets its own back
            set_threads(parent.get("threads"))

    def _train(self, pending, epoch_log) -> Iterator:
        if not pending:
            return iter(())
        n_jobs = min(self.n_jobs, len(pending))
        if n_jobs == 1:  # here, one after another, with the epoch lines
            return (_train_one(self.learner, s, self.x, self.y, self.threads, None if e is None else str(e), m,
                               epoch_log(s) if epoch_log else None) for s, e, m in pending)
        from joblib import Parallel, delayed, parallel_config

        with parallel_config(backend="loky", inner_max_num_threads=self.threads or None):
            return iter(Parallel(n_jobs=n_jobs, return_as="generator")(
                delayed(_train_one)(self.learner, s, self.x, self.y, self.threads,
                                    None if e is None else str(e), m) for s, e, m in pending))

    def record(self) -> dict:
        """The ``runs`` entry of the protocol's results."""
        v, f = self.counts["validation"], self.counts["final"]
        return {"n_jobs": self.n_jobs, "threads": self.threads, "cache": self.cache_dir is not None,
                "validation": vars(v).copy(), "final": vars(f).copy(),
                "trained": v.trained + f.trained, "cached": v.cached + f.cached}


def check_worker(parent: dict, facts: dict) -> None:
    """A run trained in another process must have had this process's kernel
    settings, or its numbers would depend on ``n_jobs``."""
    if facts.get("pid") == parent.get("pid"):
        return
    if facts.get("pins") != parent.get("pins"):
        raise RuntimeError(f"a run worker had the CPU-kernel settings {facts.get('pins')}, "
                           f"this process {parent.get('pins')}")
    if "cpu_capability" in parent and facts.get("cpu_capability") not in (None, parent["cpu_capability"]):
        raise RuntimeError(f"a run worker used torch's {facts['cpu_capability']} kernels, "
                           f"this process {parent['cpu_capability']}")
