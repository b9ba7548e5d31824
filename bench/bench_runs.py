"""The protocol's runs side by side: wall time against ``n_jobs=1``.

    python bench/bench_runs.py [--net 1d|2d] [--configs 1x2,2x1] [--epochs 2] [--val-seeds 1] [--seeds 2] [--repeat 3]

One small protocol of the real shapes, on synthetic inputs (training costs
the same whatever the samples are): 4 training speakers of 32 clips (128, as
the course's Train split), so each validation run trains on 96 clips and
scores 32; the 1D CNN reads waveforms [shape=(n, 2 windows, 48016)] (3 s at
16 kHz), the 2D CNN images [shape=(n, 1, 150, 50)]; the network and training
settings are the build's defaults (ser.config), one candidate. Every
configuration ``JxT`` (``n_jobs`` x torch threads per run) runs the same
protocol through ser.models.protocol.run_protocol, in this one process (its workers
are joblib's), without a run cache; the first configuration is the
reference. After one untimed warm-up protocol, the configurations take
turns ``--repeat`` times. Prints per configuration the median wall time, the
start of its worker processes (timed apart, before the protocols), the
median seconds of one epoch inside a run, the speed-up against the reference
(ratio of median walls), and whether every curve and prediction equals the
reference's bit for bit.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

# the build's CPU-kernel pins (dodo.py), before torch is imported; the workers inherit them
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
os.environ.setdefault("ATEN_CPU_CAPABILITY", "avx2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from ser.config import CONFIG  # noqa: E402
from ser.models.protocol import EvalSplit, ProtocolConfig, run_protocol  # noqa: E402
from ser.models.runs import RunOptions, set_threads  # noqa: E402


def inputs(net: str, n: int, rng) -> np.ndarray:
    if net == "1d":
        from ser.models.cnn1d import clip_samples

        c = CONFIG.cnn1d
        n_samples = clip_samples(sr_hz=c.sr_hz, n_frames=c.n_frames, hop_s=c.hop_s)
        return (0.1 * rng.standard_normal((n, len(c.grid_window), n_samples))).astype(np.float32)
    h, w = CONFIG.cnn2d.size_hw
    return rng.random((n, 1, h, w)).astype(np.float32)


def setup(net: str, n_classes: int = 4):
    if net == "1d":
        from ser.models.cnn1d import candidates, learner

        cfg = CONFIG.cnn1d
    else:
        from ser.models.cnn2d import candidates, learner

        cfg = CONFIG.cnn2d
    name, params = next(iter(candidates(cfg).items()))
    return learner(cfg, n_classes), {name: params}


def start_workers(n_jobs: int, threads: int) -> float:
    """Start joblib's worker processes as the runner would (reused by its next call); seconds."""
    if n_jobs == 1:
        return 0.0
    from joblib import Parallel, delayed, parallel_config

    t0 = time.perf_counter()
    with parallel_config(backend="loky", inner_max_num_threads=threads or None):
        Parallel(n_jobs=n_jobs)(delayed(set_threads)(threads) for _ in range(n_jobs))
    return time.perf_counter() - t0


def fingerprint(res: dict) -> tuple:
    """Everything a run computes, without its timings."""
    val = [(c["mean_val_acc"], c["mean_val_loss"], [(h["train_loss"], h["val_acc"], h["val_loss"])
                                                    for h in c["histories"]])
           for c in res["validation"]["candidates"].values()]
    finals = [[(h["train_loss"], h["train_acc"]) for h in m["train_histories"]] for m in res["models"].values()]
    preds = [p["Test"]["proba_per_seed"] for p in res["predictions"].values()]
    return repr((val, finals, preds, res["chosen"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--net", choices=("1d", "2d"), default="1d")
    ap.add_argument("--configs", default="1x2,2x1", help="n_jobs x threads per run, comma-separated; first: reference")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--val-seeds", type=int, default=1)
    ap.add_argument("--seeds", type=int, default=2, help="final seeds")
    ap.add_argument("--repeat", type=int, default=3, help="timed protocols per configuration (the median is printed)")
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    speakers = np.repeat([1, 2, 3, 4], 32)
    y = np.tile(np.arange(4), 32)
    x = inputs(args.net, len(y), rng)
    test = EvalSplit("Test", inputs(args.net, 32, rng), np.arange(32) % 4, [f"t{i}" for i in range(32)], [5] * 32)
    lrn, cands = setup(args.net)
    pcfg = ProtocolConfig(max_epochs=args.epochs, smooth_epochs=1, val_seeds=tuple(range(args.val_seeds)),
                          seeds=tuple(range(args.seeds)))
    n_runs = 4 * args.val_seeds + args.seeds
    print(f"{args.net} CNN, x {x.shape} {x.dtype}, candidate {next(iter(cands))!r}: 4 folds x {args.val_seeds} "
          f"validation seed(s) + {args.seeds} final seed(s) = {n_runs} runs of {args.epochs} epochs, "
          f"{len(os.sched_getaffinity(0))} usable cores")
    configs = [tuple(int(v) for v in conf.split("x")) for conf in args.configs.split(",")]

    def protocol(n_jobs: int, threads: int) -> tuple[float, float, str]:
        set_threads(threads)
        t0 = time.perf_counter()
        res, _ = run_protocol(lrn, cands, x, y, speakers, classes=list("ABCD"), load_eval=lambda: [test], pcfg=pcfg,
                              log=lambda s: None, run_options=RunOptions(n_jobs=n_jobs, threads=threads))
        wall = time.perf_counter() - t0
        hists = [h for c in res["validation"]["candidates"].values() for h in c["histories"]]
        hists += [h for m in res["models"].values() for h in m["train_histories"]]
        return wall, float(np.mean([h["seconds"] / len(h["train_loss"]) for h in hists])), fingerprint(res)

    protocol(*configs[0])  # warm-up: first allocations and kernel choices, not timed
    starts = {c: start_workers(*c) for c in configs}  # each pool once, before it is timed
    times: dict[tuple, list] = {c: [] for c in configs}
    prints = {}
    for _ in range(args.repeat):  # the configurations in turn, so that other work on the machine hits all alike
        for c in configs:
            start_workers(*c)  # joblib reuses a pool of the same size and threads; a new one is started here
            wall, epoch_s, prints[c] = protocol(*c)
            times[c].append((wall, epoch_s))
    ref = configs[0]
    ref_wall = float(np.median([w for w, _ in times[ref]]))
    for c in configs:
        wall = float(np.median([w for w, _ in times[c]]))
        epoch_s = float(np.median([e for _, e in times[c]]))
        same = "reference" if c == ref else ("equal" if prints[c] == prints[ref] else "DIFFERENT")
        print(f"n_jobs={c[0]} threads={c[1]}: wall {wall:6.1f} s (median of {args.repeat}; walls "
              + ", ".join(f"{w:.1f}" for w, _ in times[c]) + f"), epoch {epoch_s:5.2f} s in a run, "
              f"speed-up x{ref_wall / wall:.2f} against n_jobs={ref[0]} threads={ref[1]}; "
              f"worker start {starts[c]:.1f} s (once, not in the walls); numbers: {same}", flush=True)

if __name__ == "__main__":
    main()
