"""The protocol's runs as independent units (ser/models/runs.py): side by side, cached by content.

* ``n_jobs`` changes nothing but the wall time: the tiny 1D and 2D CNNs give
  equal accuracies, choices, epochs, curves, weights and predictions with one
  process and with two.
* The run cache: a run whose inputs, params, seed, epochs, learner settings,
  threads and code recur is read, not trained, and gives the same results;
  anything else in its key makes it train again. Scripted learners count the
  fits (no torch there).
* The doit build: an interrupted ``cnn2d`` resumes where it stopped, a new
  candidate trains only its own runs, new final seeds redo no validation
  (slow: the real doit on a tiny project copy, as tests/test_dodo.py does).
"""
import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ser.models import runs
from ser.models.protocol import EvalSplit, Learner, ProtocolConfig, Trained, run_protocol
from ser.models.runs import RunOptions

GROUPS = np.repeat([1, 2, 3], 4)
Y = np.tile([0, 1, 2], 4)
CLASSES = ["A", "B", "C"]


def _quiet(_):
    pass


def comparable(res: dict) -> dict:
    """The results as JSON data, without what may differ between equal runs: timings and run counts."""
    def strip(obj):
        if isinstance(obj, dict):
            return {k: strip(v) for k, v in obj.items() if k not in ("seconds", "timings_s", "runs")}
        if isinstance(obj, list):
            return [strip(v) for v in obj]
        return obj

    return strip(json.loads(json.dumps(res, default=lambda o: o.tolist())))


def weights(trained: dict) -> dict:
    return {c: [{k: v.detach().cpu().numpy() for k, v in t.model.state_dict().items()} for t in ts]
            for c, ts in trained.items()}


def assert_same_weights(a: dict, b: dict):
    assert list(a) == list(b)
    for c in a:
        for wa, wb in zip(a[c], b[c]):
            assert list(wa) == list(wb)
            for k in wa:
                assert np.array_equal(wa[k], wb[k]), (c, k)


# ------------------------------------------------------ the real networks, tiny

def _cnn1d():
    from ser.models.cnn1d import SpeakerWaves, learner, speaker_levels
    from ser.config import Cnn1dConfig

    cfg = dataclasses.replace(Cnn1dConfig(), sr_hz=8000, n_channels=4, n_hidden=8, n_blocks=2, batch_size=4,
                              grid_window=("start",))
    rng = np.random.default_rng(0)

    def waves(n, speakers):
        w = (0.1 * rng.standard_normal((n, 1, 400))).astype(np.float32)
        return SpeakerWaves(w, speaker_levels(w, list(speakers)))

    x, x_test = waves(len(Y), GROUPS), waves(5, [9] * 5)
    cands = {n: {"window": "start", "norm": n, "shift_s": s}
             for n, s in (("clip_std", 0.0), ("train_rms", 0.01), ("speaker_rms", 0.0))}
    return learner(cfg, 3), cands, x, x_test


def _cnn2d():
    from ser.models.cnn2d import learner
    from ser.config import Cnn2dConfig

    cfg = dataclasses.replace(Cnn2dConfig(), widths=(4, 8), batch_size=4, size_hw=(16, 8), head="gap", coord=False)
    rng = np.random.default_rng(1)
    x = rng.random((len(Y), 2, 16, 8)).astype(np.float32)  # raw and speaker-normalised inputs
    x_test = rng.random((5, 2, 16, 8)).astype(np.float32)
    cands = {"none": {}, "spectrogram": {"shift_cols": 1, "time_mask_cols": 2, "mixup_alpha": 0.4},
             "none, speaker-normalised": {"input": "speaker"}}
    return learner(cfg, 3), cands, x, x_test


NETS = {"cnn1d": _cnn1d, "cnn2d": _cnn2d}


def _protocol(net, options: RunOptions, *, seeds=(0, 1), make=None):
    lrn, cands, x, x_test = (make or NETS[net])()
    test = EvalSplit("Test", x_test, np.array([0, 1, 2, 0, 1]), [f"t{i}" for i in range(5)], [9] * 5)
    pcfg = ProtocolConfig(max_epochs=3, smooth_epochs=1, val_seeds=(0, 1), seeds=seeds)
    return run_protocol(lrn, cands, x, Y, GROUPS, classes=CLASSES, load_eval=lambda: [test], pcfg=pcfg,
                        final="all", log=_quiet, run_options=options)


@pytest.mark.slow
@pytest.mark.parametrize("net", sorted(NETS))
def test_two_processes_give_the_results_of_one(net):
    """Every accuracy, choice, epoch, curve, weight and prediction is the same with n_jobs=1 and 2."""
    pytest.importorskip("torch")
    one, t_one = _protocol(net, RunOptions(n_jobs=1, threads=1))
    two, t_two = _protocol(net, RunOptions(n_jobs=2, threads=1))
    assert one["runs"]["n_jobs"] == 1 and two["runs"]["n_jobs"] == (1 if runs.uses_cuda() else 2)
    assert one["runs"]["validation"] == two["runs"]["validation"] == {"runs": 3 * 3 * 2, "trained": 18, "cached": 0}
    assert one["runs"]["final"] == {"runs": 3 * 2, "trained": 6, "cached": 0}
    assert comparable(one) == comparable(two)
    assert_same_weights(weights(t_one), weights(t_two))
    # the runs really learnt something different per candidate and seed (the comparison is not vacuous)
    curves = [tuple(h["val_loss"]) for c in one["validation"]["candidates"].values() for h in c["histories"]]
    assert len(set(curves)) == len(curves)


@pytest.mark.parametrize("net", sorted(NETS))
def test_cached_runs_give_the_results_of_trained_ones(net, tmp_path):
    """A second protocol reads every run, the final models' weights included, and
    scores the evaluation split exactly as the trained models did."""
    pytest.importorskip("torch")
    first, t_first = _protocol(net, RunOptions(n_jobs=1, threads=1, cache_dir=tmp_path))
    again, t_again = _protocol(net, RunOptions(n_jobs=1, threads=1, cache_dir=tmp_path))
    assert first["runs"]["trained"] == 24 and first["runs"]["cached"] == 0
    assert again["runs"]["trained"] == 0 and again["runs"]["cached"] == 24
    assert comparable(first) == comparable(again)
    # the histories' times are the training's own, read back with the rest
    assert first["validation"]["candidates"] == again["validation"]["candidates"]
    assert_same_weights(weights(t_first), weights(t_again))
    assert [t.state for ts in t_first.values() for t in ts] == [t.state for ts in t_again.values() for t in ts]
    assert len(list(Path(tmp_path).rglob("*.npz"))) == 24


@pytest.mark.slow
def test_cached_runs_and_n_jobs_mix(tmp_path):
    """Half the runs cached by one process, the rest trained by two: the same results."""
    pytest.importorskip("torch")
    ref, _ = _protocol("cnn2d", RunOptions(n_jobs=1, threads=1), seeds=(0, 1, 2))
    _protocol("cnn2d", RunOptions(n_jobs=1, threads=1, cache_dir=tmp_path), seeds=(0,))
    mixed, _ = _protocol("cnn2d", RunOptions(n_jobs=2, threads=1, cache_dir=tmp_path), seeds=(0, 1, 2))
    assert mixed["runs"]["validation"]["cached"] == 18 and mixed["runs"]["final"] == {
        "runs": 9, "trained": 6, "cached": 3}
    assert comparable(mixed) == comparable(ref)


# ------------------------------------------------------------ scripted learner

class Scripted:
    """A cacheable learner without torch: its curves and weights are
    functions of the params, seed, epochs and the rows it is given; every
    fit is counted."""

    def __init__(self, code=("ser.models.protocol",), key=None, view=None, export=True):
        self.fits = []
        self.learner = Learner(fit=self.fit, predict=self.predict, key=key or {"scripted": 1}, code=code,
                               view=view, export=self.export if export else None,
                               restore=self.restore if export else None)

    def fit(self, params, x, y, *, seed, epochs, x_val=None, y_val=None, log=None):
        self.fits.append({"name": params["name"], "seed": seed, "epochs": epochs, "validation": x_val is not None})
        x = np.asarray(x, float).reshape(len(x), -1)
        w = np.sin(np.arange(3) + params["level"] + seed + x.sum() / 7.0)  # "weights"
        hist = {"train_loss": [float(1 / (e + 1 + seed)) for e in range(epochs)],
                "train_acc": [float(params["level"])] * epochs, "val_loss": [], "val_acc": [], "seconds": 0.5}
        if x_val is not None:
            xv = np.asarray(x_val, float).reshape(len(x_val), -1)
            hist["val_acc"] = [float(params["level"] * (e + 1) / epochs + 0.01 * seed) for e in range(epochs)]
            hist["val_loss"] = [1.0 - v for v in hist["val_acc"]]
            logits = np.stack([np.outer(xv.sum(1), w) * (e + 1) for e in range(epochs)])
            hist["val_proba"] = (np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)).astype(np.float32)
        return Trained({"w": w}, {"scale": float(x.std()), "note": params["name"]}), hist

    def predict(self, trained, params, x):
        logits = np.outer(np.asarray(x, float).reshape(len(x), -1).sum(1), trained.model["w"])
        return np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)

    @staticmethod
    def export(trained):
        return {"w": trained.model["w"]}

    @staticmethod
    def restore(arrays, state):
        return Trained({"w": arrays["w"]}, state)

    def trained(self, validation: bool):
        return [(f["name"], f["seed"]) for f in self.fits if f["validation"] == validation]


X = np.arange(len(Y) * 2, dtype=float).reshape(len(Y), 2) / 10  # two columns per clip
TEST = EvalSplit("Test", X[:4] + 5, np.array([0, 1, 2, 0]), ["a", "b", "c", "d"], [9] * 4)
CANDS = {"low": {"name": "low", "level": 0.3}, "high": {"name": "high", "level": 0.6}}


def _run(lrn: Scripted, cache, *, cands=CANDS, seeds=(0, 1), x=X, y=Y, epochs=3, threads=0, final="all"):
    pcfg = ProtocolConfig(max_epochs=epochs, smooth_epochs=1, val_seeds=(0, 1), seeds=seeds)
    return run_protocol(lrn.learner, cands, x, y, GROUPS, classes=CLASSES, load_eval=lambda: [TEST], pcfg=pcfg,
                        final=final, log=_quiet, run_options=RunOptions(n_jobs=1, threads=threads, cache_dir=cache))


def test_without_a_cache_folder_every_run_trains(tmp_path):
    a, b = Scripted(), Scripted()
    res_a, _ = _run(a, None)
    res_b, _ = _run(b, None)
    assert len(a.fits) == len(b.fits) == 2 * 3 * 2 + 2 * 2
    r = res_b["runs"]
    assert r["n_jobs"] == 1 and r["cache"] is False and (r["trained"], r["cached"]) == (16, 0)
    assert r["validation"] == {"runs": 12, "trained": 12, "cached": 0}
    assert r["final"] == {"runs": 4, "trained": 4, "cached": 0}


def test_a_repeated_protocol_trains_nothing_and_gives_the_same_results(tmp_path):
    first, again = Scripted(), Scripted()
    res1, t1 = _run(first, tmp_path)
    res2, t2 = _run(again, tmp_path)
    assert len(first.fits) == 16 and again.fits == []
    assert res2["runs"]["validation"] == {"runs": 12, "trained": 0, "cached": 12}
    assert res2["runs"]["final"] == {"runs": 4, "trained": 0, "cached": 4}
    assert comparable(res1) == comparable(res2)
    assert res1["validation"] == res2["validation"]  # the out-of-fold probabilities and the seconds too
    for c in t1:
        assert [t.state for t in t1[c]] == [t.state for t in t2[c]]
        assert all(np.array_equal(a.model["w"], b.model["w"]) for a, b in zip(t1[c], t2[c]))


def test_a_new_candidate_trains_only_its_own_runs(tmp_path):
    _run(Scripted(), tmp_path)
    more = Scripted()
    res, _ = _run(more, tmp_path, cands={**CANDS, "mid": {"name": "mid", "level": 0.45}})
    assert more.trained(validation=True) == [("mid", s) for _ in range(3) for s in (0, 1)]
    assert more.trained(validation=False) == [("mid", 0), ("mid", 1)]
    assert res["runs"]["trained"] == 8 and res["runs"]["cached"] == 16
    # a candidate renamed keeps its runs: the key holds its params, not its name
    renamed = Scripted()
    _run(renamed, tmp_path, cands={"LOW": CANDS["low"], "HIGH": CANDS["high"]})
    assert renamed.fits == []


def test_new_final_seeds_train_no_validation_run(tmp_path):
    _run(Scripted(), tmp_path, seeds=(0,))
    more = Scripted()
    res, _ = _run(more, tmp_path, seeds=(0, 1, 2))
    assert more.trained(validation=True) == []
    assert more.trained(validation=False) == [("low", 1), ("low", 2), ("high", 1), ("high", 2)]
    assert res["runs"]["validation"] == {"runs": 12, "trained": 0, "cached": 12}
    assert res["runs"]["final"] == {"runs": 6, "trained": 4, "cached": 2}


def _retrained(tmp_path, **change) -> int:
    """Runs trained again after a first protocol, when ``change`` is made."""
    _run(Scripted(), tmp_path)
    lrn = Scripted(**{k: v for k, v in change.items() if k in ("code", "key", "view")})
    _run(lrn, tmp_path, **{k: v for k, v in change.items() if k not in ("code", "key", "view")})
    return len(lrn.fits)


def test_the_learners_settings_and_threads_are_in_the_key(tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "set_threads", lambda n: None)  # the key only: this process keeps its threads
    assert _retrained(tmp_path / "a", key={"scripted": 2}) == 16
    assert _retrained(tmp_path / "b", threads=3) == 16
    assert _retrained(tmp_path / "c", epochs=4) == 16
    assert _retrained(tmp_path / "d") == 0


def test_the_code_is_in_the_key(tmp_path, monkeypatch):
    mod = tmp_path / "mod" / "scripted_code_mod.py"
    mod.parent.mkdir()
    mod.write_text("A = 1\n")
    monkeypatch.syspath_prepend(str(mod.parent))
    _run(Scripted(code=("scripted_code_mod",)), tmp_path / "cache")
    same = Scripted(code=("scripted_code_mod",))
    _run(same, tmp_path / "cache")
    assert same.fits == []
    mod.write_text("A = 2  # edited\n")
    edited = Scripted(code=("scripted_code_mod",))
    _run(edited, tmp_path / "cache")
    assert len(edited.fits) == 16


def test_the_inputs_bytes_and_labels_are_in_the_key(tmp_path):
    _run(Scripted(), tmp_path)
    x = X.copy()
    x[0, 1] += 1e-9  # one number of one clip of speaker 1
    lrn = Scripted()
    _run(lrn, tmp_path, x=x)
    # every run reads clip 0, to train or to validate: every run trains again
    assert len(lrn.fits) == 16
    y = Y.copy()
    y[-1] = 1  # a label of speaker 3: its own folds' runs and every other fold's training
    lrn = Scripted()
    _run(lrn, tmp_path, y=y)
    assert len(lrn.fits) == 16
    # the order of the training clips is part of a run (batches): a run on reordered clips trains
    assert runs._data_digest(["a", "b"], np.array([0, 1]), [0, 1]) != runs._data_digest(
        ["a", "b"], np.array([0, 1]), [1, 0])


def test_only_the_part_of_the_inputs_a_candidate_reads_is_in_the_key(tmp_path):
    first = lambda x, params: x[:, 0]  # noqa: E731 - the candidate reads column 0 only
    _run(Scripted(view=first), tmp_path)
    x = X.copy()
    x[:, 1] += 1.0
    unread = Scripted(view=first)
    _run(unread, tmp_path, x=x)
    assert unread.fits == []
    x[3, 0] += 1.0
    read = Scripted(view=first)
    _run(read, tmp_path, x=x)
    assert len(read.fits) == 16


def test_a_learner_without_a_key_is_never_cached(tmp_path):
    lrn = Scripted()
    lrn.learner = dataclasses.replace(lrn.learner, key=None)
    _run(lrn, tmp_path)
    _run(lrn, tmp_path)
    assert len(lrn.fits) == 32 and not any(tmp_path.iterdir())


def test_final_models_that_cannot_be_exported_are_trained_again(tmp_path):
    _run(Scripted(export=False), tmp_path)
    lrn = Scripted(export=False)
    res, _ = _run(lrn, tmp_path)
    assert lrn.trained(validation=True) == [] and len(lrn.trained(validation=False)) == 4
    assert res["runs"]["final"] == {"runs": 4, "trained": 4, "cached": 0}


def test_an_unreadable_entry_is_trained_again_and_written_whole(tmp_path, capsys):
    _run(Scripted(), tmp_path)
    entries = sorted(tmp_path.rglob("*.npz"))
    assert len(entries) == 16 and all(p.parent.name == p.name[:2] for p in entries)
    entries[0].write_bytes(entries[0].read_bytes()[:100])  # a truncated entry (not written by the cache)
    lrn = Scripted()
    _run(lrn, tmp_path)
    assert len(lrn.fits) == 1 and "unreadable" in capsys.readouterr().err
    again = Scripted()
    _run(again, tmp_path)
    assert again.fits == []


def test_an_interrupted_write_leaves_no_entry(tmp_path, monkeypatch):
    """A write that fails half-way leaves neither the entry nor a temporary file."""
    calls = []

    def failing(f, **arrays):
        calls.append(1)
        f.write(b"PK\x03\x04 half an entry")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez_compressed", failing)
    with pytest.raises(KeyboardInterrupt):
        _run(Scripted(), tmp_path)
    assert calls and [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_workers_report_the_kernel_pins_and_a_mismatch_stops_the_protocol():
    parent = runs._facts()
    assert parent["pins"] == {k: os.environ.get(k) for k in runs.PIN_VARS}
    runs.check_worker(parent, {**parent, "pid": -1})
    with pytest.raises(RuntimeError, match="CPU-kernel settings"):
        runs.check_worker(parent, {**parent, "pid": -1, "pins": {**parent["pins"], "ONEDNN_MAX_CPU_ISA": "AVX512"}})
    with pytest.raises(RuntimeError, match="kernels"):
        runs.check_worker({**parent, "cpu_capability": "AVX2"}, {**parent, "pid": -1, "cpu_capability": "AVX512"})


@pytest.mark.slow
def test_worker_processes_inherit_the_pins_of_the_build(tmp_path):
    """dodo.py sets the pins before torch is imported; a worker started by the
    protocol sees the same values and torch kernels (a subprocess, so that the
    pins are set before its first import of torch)."""
    code = """
import os, sys
os.environ.update(OMP_WAIT_POLICY="PASSIVE", ONEDNN_MAX_CPU_ISA="AVX2", ATEN_CPU_CAPABILITY="avx2")
import torch
from joblib import Parallel, delayed, parallel_config
from ser.models import runs


def probe():
    import torch  # as a learner's module does in a worker
    return runs._facts()


with parallel_config(backend="loky", inner_max_num_threads=1):
    facts = Parallel(n_jobs=2)(delayed(probe)() for _ in range(2))
parent = runs._facts()
for f in facts:
    runs.check_worker(parent, f)
    assert f["pid"] != parent["pid"] and f["pins"]["ONEDNN_MAX_CPU_ISA"] == "AVX2", f
print(parent["cpu_capability"], [f["cpu_capability"] for f in facts])
"""
    pytest.importorskip("torch")
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parent.parent,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split()[0] == "AVX2"


def test_options_come_from_the_runs_section_the_one_place_of_threads(tmp_path):
    from ser.config import Config, load_config
    from ser.errors import ConfigError

    cfg = Config()
    assert runs.options(cfg, cache_dir=tmp_path) == RunOptions(n_jobs=cfg.runs.n_jobs, threads=cfg.runs.threads,
                                                               cache_dir=tmp_path)
    toml = tmp_path / "c.toml"
    toml.write_text("[runs]\nn_jobs = 2\nthreads = 1\ncache = false\n")
    cfg = load_config(toml)
    assert runs.options(cfg, cache_dir=tmp_path) == RunOptions(n_jobs=2, threads=1, cache_dir=None)
    toml.write_text("[cnn1d]\nthreads = 3\n")  # a network has no thread setting of its own
    with pytest.raises(ConfigError, match=r"cnn1d.*threads.*unknown key"):
        load_config(toml)
    assert runs.effective_jobs(0, 1) == (1 if runs.uses_cuda() else runs.usable_cores())


# -------------------------------------------------------------- the doit build

BASE = """\
[cnn2d]
max_epochs = 3
smooth_epochs = 1
val_seeds = [0, 1]
seeds = [0]
widths = [4, 8]
speaker_norm = []
augmentations = [["none", []], ["image", [["hflip_p", 0.5], ["crop_pad", 2]]]]

[runs]
n_jobs = 2
threads = 1
"""
NEW_CANDIDATE = '["image", [["hflip_p", 0.5], ["crop_pad", 2]]], ["spec", [["shift_cols", 3]]]]'


class RunBuild:
    """A tiny project copy (tests/test_dodo.py's), for the images and the 2D CNN."""

    def __init__(self, base: Path):
        from test_dodo import copy_project, make_dataset

        self.project = copy_project(base / "project")
        self.data = make_dataset(base / "EmotionSpeech")
        self.toml = base / "runs.toml"
        self.toml.write_text(BASE)
        self.db = base / "doit.db"
        self.results = self.project / "build" / "results" / "cnn2d.json"
        self.cache = self.project / "build" / "cache" / "runs"

    def args(self, *args):
        """doit's command line; a doit command (forget, clean) first."""
        command = [args[0]] if args and args[0] in ("forget", "clean") else []
        return [sys.executable, "-m", "doit", *command, "-f", str(self.project / "dodo.py"), "--db-file",
                str(self.db), *args[len(command):], f"data_dir={self.data}"]

    @property
    def env(self):
        return {**os.environ, "MPLBACKEND": "Agg", "SER_CONFIG": str(self.toml), "SER_DATA": str(self.data)}

    def doit(self, *args) -> set[str]:
        out = subprocess.run(self.args(*args), cwd=self.project, capture_output=True, text=True, env=self.env,
                             timeout=300)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        return set(re.findall(r"^\.  (\S+)$", out.stdout, re.M))

    def entries(self) -> list[Path]:
        return sorted(p for p in self.cache.rglob("*.npz") if not p.name.startswith("."))

    def runs(self) -> dict:
        return json.loads(self.results.read_text())["runs"]

    def config(self, text: str) -> None:
        self.toml.write_text(text)


@pytest.fixture(scope="module")
def run_build(tmp_path_factory):
    """Images, then a cnn2d killed after its first cached runs, then resumed."""
    b = RunBuild(tmp_path_factory.mktemp("runs"))
    assert b.doit("images") == {"images"}
    proc = subprocess.Popen(b.args("cnn2d"), cwd=b.project, env=b.env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while len(b.entries()) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # doit and its workers
        proc.wait()
    b.killed_with = len(b.entries())
    b.killed_entries = b.entries()
    b.killed_results = b.results.is_file()
    assert b.doit("cnn2d") == {"cnn2d"}
    b.resumed = b.runs()
    b.resumed_results = json.loads(b.results.read_text())
    return b


@pytest.mark.slow
def test_an_interrupted_cnn2d_resumes_where_it_stopped(run_build):
    b = run_build
    assert not b.killed_results, "cnn2d finished before it was killed: nothing was interrupted"
    total = {"validation": 2 * 2 * 2, "final": 2 * 1}  # candidates x folds x validation seeds; candidates x seeds
    assert 2 <= b.killed_with < sum(total.values())
    for p in b.killed_entries:  # every entry the killed task left is whole
        with np.load(p, allow_pickle=False) as z:
            assert "meta" in z.files and all(z[k] is not None for k in z.files)
    r = b.resumed
    assert r["n_jobs"] == 2 and r["threads"] == 1 and r["cache"] is True
    assert {k: r[k]["runs"] for k in total} == total
    assert r["cached"] == b.killed_with and r["trained"] == sum(total.values()) - b.killed_with
    assert len(b.entries()) == sum(total.values())


@pytest.mark.slow
def test_the_run_cache_is_no_target_and_cached_results_equal_trained_ones(run_build):
    """`doit forget` and `doit clean` leave the cache; the task then re-runs from it alone, with the same results."""
    b = run_build
    b.config(BASE)  # (as the fixture left it, unless another test changed it)
    b.doit("cnn2d")
    before = json.loads(b.results.read_text())
    b.doit("forget", "cnn2d")
    b.doit("clean", "cnn2d")
    assert not b.results.is_file() and len(b.entries()) >= 10
    assert b.doit("cnn2d") == {"cnn2d"}
    after = json.loads(b.results.read_text())
    assert after["runs"]["trained"] == 0 and after["runs"]["cached"] == 10
    assert comparable(after) == comparable(before) == comparable(b.resumed_results)


@pytest.mark.slow
def test_a_new_candidate_trains_only_its_runs_in_the_build(run_build):
    b = run_build
    text = BASE.replace('["image", [["hflip_p", 0.5], ["crop_pad", 2]]]]', NEW_CANDIDATE)
    assert text != BASE
    b.config(text)
    assert "cnn2d" in b.doit("cnn2d")  # (images read [cnn2d] too, and run again)
    r = b.runs()
    assert r["validation"] == {"runs": 3 * 2 * 2, "trained": 2 * 2, "cached": 2 * 2 * 2}
    assert r["final"] == {"runs": 3, "trained": 1, "cached": 2}


@pytest.mark.slow
def test_new_final_seeds_redo_no_validation_in_the_build(run_build):
    b = run_build
    b.config(BASE.replace("seeds = [0]\n", "seeds = [0, 1]\n"))
    assert "cnn2d" in b.doit("cnn2d")
    r = b.runs()
    assert r["validation"] == {"runs": 8, "trained": 0, "cached": 8}
    assert r["final"] == {"runs": 4, "trained": 2, "cached": 2}
