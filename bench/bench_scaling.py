"""How the networks' cost grows with the training speakers and clips.

    python bench/bench_scaling.py [--clips-per-speaker 32] [--speakers 4,8,20,90]

For each size it prints the fold scheme (:func:`ser.data.speakers.speaker_folds`
with the configuration's ``max_loso_speakers`` and ``k_folds``), each
network's run count (candidates x folds x validation seeds, then the final
runs) and the clip-epochs those runs train, and an estimate of each
network's training time on this machine: the clip-epochs times the seconds
per clip-epoch measured here, in this process, on synthetic inputs of the
real shape (one short fit per network), or recorded by a build
(``--results build/results``). Runs side by side (``[runs] n_jobs``)
divide the estimate by their measured speed-up (``bench/bench_runs.py``).

With up to ``max_loso_speakers`` speakers, validation trains every fold on
every other speaker, so its cost grows with the square of the speakers;
past it, k folds keep it linear in the clips.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
# the build's CPU-kernel pins (dodo.py), before torch is imported
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
os.environ.setdefault("ATEN_CPU_CAPABILITY", "avx2")

import numpy as np  # noqa: E402

from ser.models import cnn1d, cnn2d  # noqa: E402
from ser.config import CONFIG  # noqa: E402
from ser.data.speakers import speaker_folds  # noqa: E402


def seconds_per_clip_epoch(name: str, n_clips: int = 64, epochs: int = 2, n_classes: int = 4) -> float:
    """One fit of the network's first candidate on random inputs of the build's shape."""
    rng = np.random.default_rng(0)
    y = np.arange(n_clips) % n_classes
    if name == "cnn1d":
        c = CONFIG.cnn1d
        n_samples = (c.n_frames + 1) * int(c.sr_hz * c.hop_s)
        x = (0.1 * rng.standard_normal((n_clips, len(c.grid_window), n_samples))).astype(np.float32)
        lrn, params = cnn1d.learner(c, n_classes), next(iter(cnn1d.candidates(c).values()))
    else:
        c = CONFIG.cnn2d
        x = rng.random((n_clips, 1, *c.size_hw), dtype=np.float32)
        lrn, params = cnn2d.learner(c, n_classes), next(iter(v for v in cnn2d.candidates(c).values()
                                                              if not cnn2d.reads_speaker_input(v)))
    t0 = time.perf_counter()
    lrn.fit(params, x, y, seed=0, epochs=epochs, log=lambda s: None)
    return (time.perf_counter() - t0) / (n_clips * epochs)


def recorded_seconds_per_clip_epoch(results: dict) -> float:
    """Seconds per clip-epoch of a build's network results: every run's recorded
    seconds over the clips it trained on times its epochs (validation and final runs)."""
    n_train = len(results["validation"]["train_keys"])
    secs = clip_epochs = 0.0
    for row in results["validation"]["candidates"].values():
        for h in row["histories"]:
            secs += h["seconds"]
            clip_epochs += (n_train - h["n_val"]) * len(h["train_loss"])
    for m in results["models"].values():
        for h in m["train_histories"]:
            secs += h["seconds"]
            clip_epochs += n_train * len(h["train_loss"])
    return secs / clip_epochs


def plan(name: str, n_speakers: int, per_speaker: int) -> dict:
    """Fold scheme, run counts and clip-epochs of one network at one size (epochs: the maximum)."""
    c = getattr(CONFIG, name)
    n_cands = len(cnn1d.candidates(c) if name == "cnn1d" else cnn2d.candidates(c))
    finals = n_cands if name == "cnn2d" else 1  # the 2D CNN trains every augmentation setting to the end
    groups = np.repeat([str(i + 1) for i in range(n_speakers)], per_speaker)
    y = np.arange(len(groups)) % 4
    folds, scheme = speaker_folds(groups, y, max_loso=CONFIG.data.max_loso_speakers, k=CONFIG.data.k_folds)
    val_clips = sum(len(tr) for _, tr, _ in folds)
    val_runs = n_cands * len(folds) * len(c.val_seeds)
    final_runs = finals * len(c.seeds)
    clip_epochs = c.max_epochs * (n_cands * len(c.val_seeds) * val_clips + final_runs * len(groups))
    return {"scheme": scheme["scheme"], "folds": len(folds), "val_runs": val_runs, "final_runs": final_runs,
            "clip_epochs": clip_epochs}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips-per-speaker", type=int, default=32)
    ap.add_argument("--speakers", default="4,8,20,90")
    ap.add_argument("--results", default=None,
                    help="a build's results folder: take the seconds per clip-epoch its networks recorded "
                         "instead of measuring them here")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.speakers.split(",")]
    if args.results:
        import json

        cost = {n: recorded_seconds_per_clip_epoch(json.loads((Path(args.results) / f"{n}.json").read_text()))
                for n in ("cnn1d", "cnn2d")}
        how = f"recorded by the build in {args.results}"
    else:
        cost = {n: seconds_per_clip_epoch(n) for n in ("cnn1d", "cnn2d")}
        how = "measured here, one short fit on random inputs"
    print(f"seconds per clip-epoch ({how}): " + ", ".join(f"{n} {1e3 * s:.2f} ms" for n, s in cost.items()))
    print(f"{'speakers':>8} {'clips':>6}  {'scheme':<40} {'folds':>5}  network  {'val runs':>8} {'final':>5} "
          f"{'clip-epochs':>12} {'est. min':>8} {'x 4 spk':>7}")
    base = {n: plan(n, sizes[0], args.clips_per_speaker)["clip_epochs"] for n in cost}
    for s in sizes:
        for n in cost:
            p = plan(n, s, args.clips_per_speaker)
            print(f"{s:>8} {s * args.clips_per_speaker:>6}  {p['scheme']:<40} {p['folds']:>5}  {n:<7}  "
                  f"{p['val_runs']:>8} {p['final_runs']:>5} {p['clip_epochs']:>12,} "
                  f"{p['clip_epochs'] * cost[n] / 60:>8.1f} {p['clip_epochs'] / base[n]:>7.1f}")


if __name__ == "__main__":
    main()
