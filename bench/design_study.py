"""Design study (issue 9): which design changes make the CNNs generalise across speakers.

Every candidate is judged ONLY by leave-one-actor-out (LOAO) validation inside
the training actors 1-4 (``<data>/Train``). Nothing here lists, reads or
prepares Test/ or Confirm/.

Three steps:

``prepare``  (CPU, where the data is) reads the Train clips once and writes
    compact arrays: the whole 48 kHz waveforms as int16 (the files are 16-bit;
    the one stereo clip's channel mean is rounded to the nearest integer), the
    per-clip speech onset (ser/data/audio.py ``speech_onset_s``), and the 2D
    CNN's network inputs (150x50 images made by ser/features/images.py
    ``clip_image`` and ``image_to_input``, as the build's export makes them)
    for two windows: the build's first 200 frames, and 200 frames from the
    speech onset.

``run``  trains every candidate on every fold (held-out actor) x seed and
    writes ``results.json`` and ``tables.md`` (rewritten every 10 s while runs
    finish, so a time-out leaves the rows done so far). Jobs are ordered by
    expected value: seeds 0 and 1 of every candidate first (in the order of the
    lists below), then an adaptive "combination of the winners", then the
    remaining seeds. With ``--device cuda`` the runs go to GPU worker processes
    (2D to single-thread CPU workers with ``--route2d cpu``); with
    ``--device cpu`` all go to CPU workers.

``report``  merges the runs of several ``results.json`` files and writes the
    tables again (and ``summary.json``, which ``doit design`` reads).

The study's code is ser's: the networks are ser/models/cnn1d.py ``build_model``
(with ``first_layer="sinc"``: ``SincConv1d``) and ser/models/cnn2d.py
``build_model`` (with ``head``, ``coord`` and ``rownorm``); the augmentations
are ser/models/augment.py ``make_augment`` / ``make_mix`` (wave shift, speed,
gain; the build's "spectrogram" setting; mixup, across actors with
``mix_groups``); training is ser/models/training.py ``fit`` (Adam,
cross-entropy with label smoothing, batch order from
``np.random.default_rng(seed)``, augmentation draws from
``torch.Generator().manual_seed(seed)``, model built after ``seed_everything``),
which scores several validation "views" after every epoch (``val_views``: a
view averages the softmax over shifted copies, the test-time averaging
candidate); the onset and voiced level are ser/data/audio.py's, the smoothing
ser/models/protocol.py's. What is the study's own: the input variants (noise,
level by voiced RMS), the job scheduling over worker pools, and the scores.

Scores. For a candidate, the validation-accuracy and validation-loss curves
are averaged over its fold x seed runs. Rule "acc": the epoch where the
centred 5-epoch moving average of the mean accuracy curve peaks
(ser.models.protocol.choose_epochs). Rule "loss": the epoch where the 5-epoch
moving average of the mean validation loss is lowest. At each rule's epoch the
table gives the mean accuracy over runs (and the smoothed value), the std over
the fold x seed runs, its standard error (std / sqrt(runs)), the per-fold
means, and the margin to the baseline with the standard error of the paired
(same fold, same seed) differences.

How it was run for issue 9 (results and reading:
bench/design_study_results/README.md), by this script's commit bd023b7, which
carried its own copies of the networks, augmentations and training loop (the
same layers and random draws) and was run from a copy beside the data::

    # here, on CPU, Train only (15 s):
    python bench/design_study.py prepare --data ../shared/data/EmotionSpeech --out .design/data
    # on the lent H100 machine (16 cores); run 1, every candidate, seeds 0-3 (241 s):
    python bench/design_study.py run --data .design/data --device cuda \\
        --out $OUT --seeds 0 1 2 3 --gpu-workers 12 --budget-s 370 --grace-s 45
    # run 2, bench/design_study_results/run2_plan.json, 1D to 80 epochs (316 s):
    python bench/design_study.py run --data .design/data --device cuda \\
        --out $OUT --plan bench/design_study_results/run2_plan.json --epochs1d 80 \\
        --gpu-workers 14 --budget-s 330 --grace-s 30
    # here: both runs merged, 1D curves cut to 50 epochs
    python bench/design_study.py report bench/design_study_results/run1_results.json.gz \\
        bench/design_study_results/run2_results.json.gz --out bench/design_study_results/merged

A tiny CPU check of the whole path (a few epochs, a few clips per actor)::

    python bench/design_study.py prepare --data ../shared/data/EmotionSpeech --out /tmp/design
    python bench/design_study.py run --data /tmp/design --device cpu --out /tmp/ds \\
        --epochs1d 2 --epochs2d 2 --seeds 0 --folds 1 2 --clips-per-actor 8 \\
        --cands1d base,a_onset --cands2d base,c_freq
"""
from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS in the workers

import numpy as np  # noqa: E402

from ser.data.audio import fix_length, speech_onset_s, voiced_rms  # noqa: E402
from ser.models.augment import AugmentSpec  # noqa: E402
from ser.models.protocol import choose_epochs, moving_average  # noqa: E402

# --------------------------------------------------------------- settings
HOP_S = 0.015
N_FRAMES = 200  # the 1D window is (n_frames + 1) * hop samples = 3.015 s, as the build
SMOOTH_EPOCHS = 5  # both rules smooth the mean curves over 5 epochs
TTA_SHIFT_S = 0.125  # test-time averaging: windows shifted by -0.125, 0, +0.125 s
DITHER = 1e-4  # uniform [-1e-4, 1e-4] on the [-1, 1] scale (about 3 LSB of 16 bit)
FLOOR_DB = -50.0  # noise floor relative to the clip's voiced RMS

TRAIN1D = dict(epochs=50, batch_size=32, lr=1e-3, weight_decay=1e-3, label_smoothing=0.1)
TRAIN2D = dict(epochs=60, batch_size=16, lr=2e-3, weight_decay=1e-3, label_smoothing=0.1)
NET1D = dict(n_channels=32, first_kernel_ms=5.0, first_stride_ms=1.0, n_blocks=4, n_hidden=64, dropout=0.5)
NET2D = dict(widths=(8, 16, 32, 32), dropout=0.5, in_height=150)
# the build's "spectrogram" setting (ser/config.py Cnn2dConfig.augmentations) when the study ran
SPEC_AUG = dict(shift_cols=5, time_mask_cols=6, freq_mask_rows=15, mixup_alpha=0.4)

BASE1D = dict(sr=16000, window="start", noise="none", norm="clip_std", shift_s=0.25,
              speed=0.0, gain_db=0.0, mixup=0.0, first="conv")
BASE2D = dict(window="start", rownorm="none", head="gap", coord=False, aug="spectrogram")

# (name, overrides of the baseline, what it tests), ordered by expected value.
CANDS1D = [
    ("base", {}, "baseline: 16 kHz, 3.015 s from the file start, each clip standardised, +-0.25 s shift"),
    ("a_onset", {"window": "onset"}, "window from the speech onset (-30 dB rule, 0.1 s margin)"),
    ("c_voiced", {"norm": "voiced_rms"}, "level set by the RMS over the voiced frames (not the whole clip)"),
    ("d_all", {"speed": 0.05, "gain_db": 6.0, "mixup": 0.3}, "speed +-5%, gain +-6 dB, mixup 0.3 (+shift)"),
    ("b_dither", {"noise": "dither"}, "uniform dither +-1e-4 on every sample (no exact silence)"),
    ("d_speed", {"speed": 0.05}, "speed/pitch perturbation +-5% (+shift)"),
    ("d_mixup", {"mixup": 0.3}, "mixup alpha 0.3 across clips (+shift)"),
    ("d_gain", {"gain_db": 6.0}, "random gain +-6 dB (+shift)"),
    ("b_floor", {"noise": "floor"}, "Gaussian noise floor at -50 dB re the voiced RMS"),
    ("combo_pre", {"window": "onset", "noise": "dither", "norm": "voiced_rms", "speed": 0.05,
                   "gain_db": 6.0, "mixup": 0.3}, "onset window + dither + voiced level + speed, gain and mixup (combined before any result)"),
    ("f_sinc", {"first": "sinc"}, "sinc band-pass first layer (32 learnt bands, 81 taps)"),
    ("f_48k", {"sr": 48000}, "48 kHz input, first layer 5 ms / 1 ms stride held fixed"),
    # added for the second device run, from the first run's winners (c_voiced, b_floor; f_sinc, a_onset close)
    ("combo_vf", {"norm": "voiced_rms", "noise": "floor"}, "voiced level + noise floor (second round)"),
    ("combo_ovf", {"window": "onset", "norm": "voiced_rms", "noise": "floor"}, "onset window + voiced level + noise floor (second round)"),
    ("combo_vd", {"norm": "voiced_rms", "noise": "dither"}, "voiced level + dither (second round)"),
    ("combo_vfs", {"norm": "voiced_rms", "noise": "floor", "first": "sinc"}, "voiced level + noise floor + sinc first layer (second round)"),
]
CANDS2D = [
    ("base", {}, "baseline: first 200 frames, global average pooling, spectrogram augmentation with mixup 0.4"),
    ("a_onset", {"window": "onset"}, "200 frames from the speech onset"),
    ("b_row_img", {"rownorm": "image"}, "each frequency row standardised per image"),
    ("c_freq", {"head": "freq"}, "frequency head: average over time only, frequency x channels to the classifier"),
    ("d_none", {"aug": "none"}, "no augmentation"),
    ("d_mix_actors", {"aug": "spec_mix_actors"}, "spectrogram aug, mixup 0.4 with a clip of another actor"),
    ("b_row_train", {"rownorm": "train"}, "rows standardised by training-fold row statistics"),
    ("c_coord", {"coord": True}, "frequency-coordinate input channel"),
    ("c_freq_coord", {"head": "freq", "coord": True}, "frequency head + coordinate channel"),
    ("combo_pre", {"window": "onset", "rownorm": "image", "head": "freq"},
     "onset window + rows per image + frequency head (combined before any result)"),
    # added for the second device run, from the first run's winners (a_onset, c_freq, c_freq_coord)
    ("combo_afc", {"window": "onset", "head": "freq", "coord": True}, "onset window + frequency head + coordinate channel (second round)"),
    ("combo_af", {"window": "onset", "head": "freq"}, "onset window + frequency head (second round)"),
    ("combo_afc_rt", {"window": "onset", "head": "freq", "coord": True, "rownorm": "train"},
     "onset window + frequency head + coordinate channel + training-fold rows (second round)"),
]
BASE = {"1d": BASE1D, "2d": BASE2D}
CANDS = {"1d": CANDS1D, "2d": CANDS2D}
VIEWS = {"1d": ["single", "tta3"], "2d": ["single"]}


# ------------------------------------------------------------------ prepare
def prepare(data_root: Path, out_dir: Path) -> None:
    """Train clips only -> ``<out>/waves.npz`` and ``<out>/images.npz``."""
    from ser.config import CONFIG
    from ser.data.audio import read_mono
    from ser.data.dataset import folder_clips, ravdess_actor
    from ser.features.images import clip_image, image_to_input

    clips = folder_clips(Path(data_root) / "Train")
    assert all(c.split == "Train" for c in clips)
    classes = sorted({c.class_name for c in clips}, key=lambda n: [c.class_name for c in clips].index(n))
    cfg = CONFIG.cnn2d
    img_kw = dict(mel_cfg=CONFIG.mel, n_frames=cfg.n_frames, fix_floor=cfg.fix_floor,
                  dynamic_range=cfg.dynamic_range, low_at_bottom=cfg.low_at_bottom)
    waves, onsets, vrms, images = [], [], [], {"start": [], "onset": []}
    t0 = time.perf_counter()
    for i, c in enumerate(clips):
        y, sr = read_mono(c.path)
        if sr != 48000:
            raise SystemExit(f"{c.path}: {sr} Hz; this study stores 48 kHz waveforms")
        waves.append(np.clip(np.round(y * 32768.0), -32768, 32767).astype(np.int16))
        onsets.append(speech_onset_s(y, sr))
        vrms.append(voiced_rms(y, sr))
        for window, imgs in images.items():  # the onset image: ser's default onset rule, as speech_onset_s above
            imgs.append(image_to_input(clip_image(c.path, window=window, **img_kw), size_hw=tuple(cfg.size_hw),
                                       interpolation=cfg.interpolation))
        if (i + 1) % 16 == 0:
            print(f"prepare: {i + 1}/{len(clips)} clips ({time.perf_counter() - t0:.0f} s)", flush=True)
    lengths = np.array([len(w) for w in waves])
    W = np.zeros((len(waves), lengths.max()), np.int16)
    for i, w in enumerate(waves):
        W[i, : len(w)] = w
    meta = dict(label=np.array([c.label for c in clips]), actor=np.array([ravdess_actor(c.path.name) for c in clips]),
                name=np.array([c.path.name for c in clips]), classes=np.array(classes))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out_dir / "waves.npz", wave48=W, length=lengths, sr=48000,
                        onset_s=np.array(onsets), voiced_rms48=np.array(vrms), **meta)
    np.savez_compressed(out_dir / "images.npz", **{k: np.stack(v).astype(np.float32) for k, v in images.items()},
                        **meta)
    print(f"prepare: wrote {out_dir} ({len(clips)} Train clips, actors {sorted(set(meta['actor'].tolist()))}, "
          f"{time.perf_counter() - t0:.0f} s)", flush=True)


# ------------------------------------------------------- models and inputs
def build_model_1d(p: dict, n_classes: int):
    """ser/models/cnn1d.py's WaveCNN with the build's sizes: the first layer
    spans 5 ms (stride 1 ms) at the input rate, a convolution or (``first``
    "sinc") a sinc band-pass bank."""
    from ser.models.cnn1d import build_model

    return build_model(n_classes, sr_hz=int(p["sr"]), first_layer=p["first"], **NET1D)


def build_model_2d(p: dict, n_classes: int):
    """ser/models/cnn2d.py's Cnn2d with the candidate's ``head``, ``coord`` and ``rownorm``."""
    from ser.models.cnn2d import build_model

    return build_model(n_classes, head=p["head"], coord=p["coord"], rownorm=p["rownorm"], **NET2D)


def augment_spec(net: str, p: dict) -> AugmentSpec:
    """The candidate's augmentations (ser/models/augment.py): for the 1D CNN
    speed, zero-filled shift and gain, mixup ``p["mixup"]``; for the 2D CNN
    the build's "spectrogram" setting or nothing."""
    if net == "1d":
        return AugmentSpec(shift_samples=int(round(p["shift_s"] * p["sr"])), speed=float(p["speed"]),
                           gain_db=float(p["gain_db"]), mixup_alpha=float(p["mixup"]))
    return AugmentSpec() if p["aug"] == "none" else AugmentSpec(name="spectrogram", **SPEC_AUG)


_W: dict = {}  # the worker's data and device (worker_init), and its 1D inputs by settings


def worker_init(cache: str, device: str, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    _W["device"] = device
    _W["cache"] = cache
    _W["d"] = dict(np.load(cache, allow_pickle=False))
    _W["name"] = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"


def _windows_1d(p: dict) -> np.ndarray:
    """The network input of every clip for the 1D settings ``p`` (float32 [n, L])."""
    from ser.models.cnn1d import clip_samples, normalise

    d, sr = _W["d"], int(p["sr"])
    key = ("win", sr, p["window"], p["noise"], p["norm"])
    if key in _W:
        return _W[key]
    waves, lengths = d[f"wave{sr // 1000}k"], d[f"length{sr // 1000}k"]
    L = clip_samples(sr_hz=sr, n_frames=N_FRAMES, hop_s=HOP_S)
    X = np.zeros((len(waves), L), np.float32)
    vrms = np.zeros(len(waves))
    for i in range(len(waves)):
        y = waves[i, : lengths[i]].astype(np.float32) / 32768.0
        vrms[i] = voiced_rms(y, sr)
        X[i] = fix_length(y[int(round(d["onset_s"][i] * sr)) if p["window"] == "onset" else 0:], L)
    rng = np.random.default_rng(12345)  # the same noise in every run
    if p["noise"] == "dither":
        X += rng.uniform(-DITHER, DITHER, X.shape).astype(np.float32)
    elif p["noise"] == "floor":
        X += (rng.standard_normal(X.shape) * (vrms * 10 ** (FLOOR_DB / 20))[:, None]).astype(np.float32)
    elif p["noise"] != "none":
        raise ValueError(p["noise"])
    if p["norm"] == "clip_std":
        X = normalise(X, "clip_std")
    elif p["norm"] == "voiced_rms":
        X = (X - X.mean(1, keepdims=True)) / np.maximum(vrms, 1e-8)[:, None].astype(np.float32)
    else:
        raise ValueError(p["norm"])
    _W[key] = X.astype(np.float32)
    return _W[key]


def _inputs(net: str, p: dict, va: np.ndarray):
    """Training and validation inputs (CPU tensors) of one fold, and the validation views."""
    import torch

    from ser.models.augment import shift_waves

    sel = _W["d"]["sel"]
    if net == "2d":
        X = torch.from_numpy(_W["d"]["img_" + p["window"]][sel])
        return X[~va], {"single": [X[va]]}
    X = torch.from_numpy(_windows_1d(p)[sel]).unsqueeze(1)
    xv, T = X[va], int(round(TTA_SHIFT_S * p["sr"]))
    return X[~va], {"single": [xv], "tta3": [shift_waves(xv, [s] * len(xv)) for s in (-T, 0, T)]}


def run_job(job: dict) -> dict:
    """One training run (ser/models/training.py ``fit``): candidate
    ``job['params']`` of network ``job['net']`` on fold ``job['fold']``, seed ``job['seed']``."""
    import torch

    from ser.models.augment import make_augment, make_mix
    from ser.models.training import TrainConfig, fit, seed_everything

    d, p, net = _W["d"], job["params"], job["net"]
    y_all = torch.as_tensor(d["label"][d["sel"]], dtype=torch.long)
    actors = d["actor"][d["sel"]]
    va = actors == job["fold"]
    n_classes = int(d["label"].max()) + 1
    xt, views = _inputs(net, p, va)
    seed_everything(job["seed"])
    model = build_model_1d(p, n_classes) if net == "1d" else build_model_2d(p, n_classes)
    if p.get("rownorm") == "train":
        model.set_row_stats(xt)
    spec = augment_spec(net, p)
    cfg = TrainConfig(**{**(TRAIN1D if net == "1d" else TRAIN2D), "epochs": job["epochs"]})
    h = fit(model, xt, y_all[~va], cfg, seed=job["seed"], augment=make_augment(spec), mix=make_mix(spec),
            mix_groups=actors[~va] if p.get("aug") == "spec_mix_actors" else None, val_views=views,
            y_val=y_all[va], train_device=_W["device"], deadline=job.get("deadline"), log=lambda s: None)
    hist = {"train_loss": h["train_loss"], "train_acc": h["train_acc"], "val": h["val_views"],
            "seconds": h["seconds"]}
    if "aborted_at_epoch" in h:
        hist["aborted_at_epoch"] = h["aborted_at_epoch"]
    return {k: job[k] for k in ("net", "cand", "fold", "seed")} | {"hist": hist, "device": _W["name"]}


# ---------------------------------------------------------------- scoring
def rule_epochs(mean_acc, mean_loss) -> tuple[tuple[int, float], tuple[int, float]]:
    """(epoch, smoothed value) of the acc rule and of the loss rule, 1-based."""
    sl = moving_average(mean_loss, SMOOTH_EPOCHS)
    el = int(np.argmin(sl))
    return choose_epochs(mean_acc, SMOOTH_EPOCHS), (el + 1, float(sl[el]))


def _curves(runs: list[dict], view: str) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy and loss curves [runs, epochs] of one view."""
    return (np.array([r["hist"]["val"][view]["acc"] for r in runs]),
            np.array([r["hist"]["val"][view]["loss"] for r in runs]))


def _base_scores(base_runs: list[dict] | None) -> dict | None:
    """The baseline's accuracy per (fold, seed) at each rule's epoch of its own mean curves."""
    base_ok = [r for r in base_runs or [] if "aborted_at_epoch" not in r["hist"]]
    if not base_ok:
        return None
    BA, BL = _curves(base_ok, "single")
    (bea, _), (bel, _) = rule_epochs(BA.mean(0), BL.mean(0))
    return {rule: {(r["fold"], r["seed"]): BA[i, e - 1] for i, r in enumerate(base_ok)}
            for rule, e in (("acc", bea), ("loss", bel))}


def summarise(runs: list[dict], view: str, base_runs: list[dict] | None) -> dict | None:
    """Scores of one candidate (see the module text); None without complete runs."""
    runs = [r for r in runs if "aborted_at_epoch" not in r["hist"]]
    if not runs:
        return None
    A, Lo = _curves(runs, view)
    folds = sorted({r["fold"] for r in runs})
    out = {"n_runs": len(runs), "folds": folds, "seeds": sorted({r["seed"] for r in runs}),
           "mean_val_acc": A.mean(0).round(4).tolist(), "mean_val_loss": Lo.mean(0).round(4).tolist(),
           "seconds_per_run": float(np.mean([r["hist"]["seconds"] for r in runs]))}
    base = _base_scores(base_runs)
    for rule, (e, smooth) in zip(("acc", "loss"), rule_epochs(A.mean(0), Lo.mean(0))):
        per_run = A[:, e - 1]
        sd = float(per_run.std(ddof=1)) if len(per_run) > 1 else float("nan")
        row = {"epoch": e, "acc": float(per_run.mean()), "smoothed": float(smooth),
               "std": sd, "se": sd / math.sqrt(len(per_run)),
               "per_fold": {int(f): float(np.mean([a for a, r in zip(per_run, runs) if r["fold"] == f]))
                            for f in folds}}
        if base is not None:
            pairs = [(a, base[rule][(r["fold"], r["seed"])]) for a, r in zip(per_run, runs)
                     if (r["fold"], r["seed"]) in base[rule]]
            if pairs:
                diff = np.array([a - b for a, b in pairs])
                row["margin"] = float(per_run.mean() - np.mean(list(base[rule].values())))
                row["paired_margin"] = float(diff.mean())
                row["paired_se"] = float(diff.std(ddof=1) / math.sqrt(len(diff))) if len(diff) > 1 else float("nan")
        out[rule] = row
    return out


def summarise_all(runs: dict, names, views) -> dict:
    """``{name: {view: summarise(...)}}`` of one network's runs, margins against its "base" runs."""
    return {n: {v: summarise(runs.get(n, []), v, runs.get("base")) for v in views} for n in names}


def _num(v, d=3) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{d}f}"


def table_md(net: str, results: dict, cands: list, descr: dict) -> str:
    """One network's table (markdown): a row per candidate and view."""
    lines = [f"### {net.upper()} CNN: leave-one-actor-out on training actors 1-4",
             "",
             "| candidate | view | runs | acc-rule: epoch | acc (smoothed) | std | SE | margin (paired SE) "
             "| per-fold A1/A2/A3/A4 | loss-rule: epoch | acc | std | margin (paired SE) | s/run | what |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    f = _num
    for name in cands:
        for view, s in results.get(name, {}).items():
            if s is None:
                continue
            a, lo = s["acc"], s["loss"]
            pf = "/".join(f(a["per_fold"].get(k), 2) for k in (1, 2, 3, 4))
            m_a = f"{f(a.get('margin'), 3)} ({f(a.get('paired_se'), 3)})" if "margin" in a else "-"
            m_l = f"{f(lo.get('margin'), 3)} ({f(lo.get('paired_se'), 3)})" if "margin" in lo else "-"
            lines.append(f"| {name} | {view} | {s['n_runs']} | {a['epoch']} | {f(a['acc'])} ({f(a['smoothed'])}) "
                         f"| {f(a['std'])} | {f(a['se'])} | {m_a} | {pf} | {lo['epoch']} | {f(lo['acc'])} "
                         f"| {f(lo['std'])} | {m_l} | {s['seconds_per_run']:.1f} | {descr.get(name, '')} |")
    return "\n".join(lines) + "\n"


def merge_winners(net: str, params: dict, scored: dict) -> tuple[dict, list]:
    """The settings of the winning candidates merged, best first (``scored``:
    name -> margin); a later winner may not override an earlier one, except
    that the 1D augmentations (speed, gain, mixup) add up."""
    merged, used = {}, []
    for n in sorted(scored, key=scored.get, reverse=True):
        over = {k: v for k, v in params[n].items() if v != BASE[net][k]}
        if all(k not in merged for k in over):
            merged.update(over)
            used.append(n)
        else:
            new = {k: v for k, v in over.items() if k not in merged}
            if net == "1d" and new and all(k in ("speed", "gain_db", "mixup") for k in over):
                merged.update(new)
                used.append(n)
    return merged, used


# ------------------------------------------------------------------ run
def load_cache(data_dir: Path, cache: Path, clips_per_actor: int, need48: bool) -> dict:
    """Read the prepared arrays, resample to 16 kHz once, write one npz the workers load."""
    from math import gcd

    from scipy.signal import resample_poly

    w = np.load(data_dir / "waves.npz")
    im = np.load(data_dir / "images.npz")
    assert (w["name"] == im["name"]).all()
    n = len(w["label"])
    sel = np.arange(n)
    if clips_per_actor:
        sel = np.concatenate([np.flatnonzero(w["actor"] == a)[:: max(1, (w["actor"] == a).sum() // clips_per_actor)]
                              [:clips_per_actor] for a in sorted(set(w["actor"].tolist()))])
    W, L = w["wave48"], w["length"]
    g = gcd(48000, 16000)
    w16 = [resample_poly(W[i, : L[i]].astype(np.float64), 16000 // g, 48000 // g) for i in range(n)]
    len16 = np.array([len(x) for x in w16])
    W16 = np.zeros((n, len16.max()), np.int16)
    for i, x in enumerate(w16):
        W16[i, : len(x)] = np.clip(np.round(x), -32768, 32767)
    d = dict(wave16k=W16, length16k=len16, onset_s=w["onset_s"], label=w["label"], actor=w["actor"],
             sel=sel, img_start=im["start"], img_onset=im["onset"])
    if need48:
        d.update(wave48k=W, length48k=L)
    np.savez(cache, **d)
    return d


def plan_jobs(args, params: dict, folds: list) -> tuple[list, dict, dict]:
    """The job queue ``(tier, order, net, candidate, fold, seed)`` (smallest
    first), the candidates' settings (only those of ``--plan`` with one) and
    the number of runs each candidate expects."""
    first_seeds, later_seeds = args.seeds[:2], args.seeds[2:]
    queue = []
    plan = json.loads(Path(args.plan).read_text()) if args.plan else None
    if plan:  # [[net, candidate, [seeds]], ...] in priority order
        for k, (net, name, seeds) in enumerate(plan):
            queue += [(0, k, net, name, f, s) for s in seeds for f in folds]
        params = {net: {n: p for n, p in params[net].items() if any(q[:2] == [net, n] for q in plan)}
                  for net in params}
        expected = {(net, name): len(folds) * sum(len(q[2]) for q in plan if q[:2] == [net, name])
                    for net in params for name in params[net]}
        return queue, params, expected
    for net in ("1d", "2d"):
        for k, name in enumerate(params[net]):
            queue += jobs_for(net, name, first_seeds, 0, k, folds) + jobs_for(net, name, later_seeds, 2, k, folds)
    expected = {(net, name): len(folds) * len(args.seeds) for net in params for name in params[net]}
    return queue, params, expected


def jobs_for(net: str, name: str, seeds, tier: int, order: int, folds) -> list:
    return [(tier, order, net, name, f, s) for s in seeds for f in folds]


class Study:
    """One ``run``: the candidates, the job queue, the worker pools, the
    finished runs and the outputs (``results.json``, ``tables.md``)."""

    def __init__(self, args):
        self.args, self.t_start = args, time.time()
        self.deadline = self.t_start + args.budget_s
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.log_lines: list[str] = []
        self.runs: dict = {"1d": {}, "2d": {}}
        self.inflight: dict = {}

    def log(self, s: str) -> None:
        s = f"[{time.time() - self.t_start:6.1f}s] {s}"
        print(s, flush=True)
        self.log_lines.append(s)

    def load(self) -> None:
        """The chosen candidates, the worker cache, the folds and the run's environment."""
        import torch

        args = self.args
        chosen = {net: [c for c in CANDS[net] if getattr(args, f"cands{net}") == "all"
                        or c[0] in getattr(args, f"cands{net}").split(",")] for net in CANDS}
        self.cache = Path(args.cache)
        self.cache.parent.mkdir(parents=True, exist_ok=True)
        d = load_cache(Path(args.data), self.cache, args.clips_per_actor,
                       any(c[1].get("sr") == 48000 for c in chosen["1d"]))
        present = sorted(set(d["actor"][d["sel"]].tolist()))
        self.folds = [f for f in (args.folds or present) if f in present]
        self.log(f"data: {len(d['sel'])} Train clips (actors {present}), folds {self.folds}, seeds {args.seeds}; "
                 f"1D {[c[0] for c in chosen['1d']]}; 2D {[c[0] for c in chosen['2d']]}")
        self.info = {"torch": torch.__version__, "python": sys.version.split()[0], "cpus": os.cpu_count(),
                     "device": args.device}
        if args.device == "cuda":
            self.info["gpu"] = "(not queried in the parent: CUDA is initialised in the workers only)"
        self.descr = {net: {c[0]: c[2] for c in cs} for net, cs in chosen.items()}
        params = {net: {c[0]: BASE[net] | c[1] for c in cs} for net, cs in chosen.items()}
        self.queue, self.params, self.expected = plan_jobs(args, params, self.folds)
        if args.plan:
            args.skip += ",combo"
        self.combo_done = {net: "combo" in args.skip for net in CANDS}
        self.epochs = {"1d": args.epochs1d, "2d": args.epochs2d}

    def start_pools(self) -> None:
        args = self.args
        gpu = args.device == "cuda" and args.gpu_workers > 0
        self.route = {"1d": "gpu" if gpu else "cpu", "2d": "gpu" if gpu and args.route2d == "gpu" else "cpu"}
        self.slots = {"gpu": args.gpu_workers, "cpu": args.cpu_workers}
        self.pools = {kind: self.new_pool(kind) for kind in sorted(set(self.route.values()))}

    def new_pool(self, kind: str):
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        init = (str(self.cache), "cuda", 1) if kind == "gpu" else (str(self.cache), "cpu", self.args.cpu_threads)
        return ProcessPoolExecutor(self.slots[kind], mp_context=mp.get_context("spawn"), initializer=worker_init,
                                   initargs=init)

    def submit_more(self) -> None:
        """Fill every pool's free slots with the first jobs of the queue (none past the budget)."""
        from concurrent.futures.process import BrokenProcessPool

        for pool_name in self.pools:
            while sum(1 for v in self.inflight.values() if v[1] == pool_name) < self.slots[pool_name]:
                cands = sorted(j for j in self.queue if self.route[j[2]] == pool_name)
                if not cands or time.time() > self.deadline:
                    return
                j = cands[0]
                self.queue.remove(j)
                _, _, net, name, fold, seed = j
                job = {"net": net, "cand": name, "fold": fold, "seed": seed, "params": self.params[net][name],
                       "epochs": self.epochs[net], "deadline": self.deadline + self.args.grace_s}
                try:
                    fut = self.pools[pool_name].submit(run_job, job)
                except BrokenProcessPool:  # a worker died (e.g. killed): a fresh pool, once per failure
                    self.log(f"pool {pool_name} broken: starting a new one")
                    self.pools[pool_name] = self.new_pool(pool_name)
                    fut = self.pools[pool_name].submit(run_job, job)
                self.inflight[fut] = (j, pool_name)

    def collect(self, fut) -> None:
        """One finished run: record it, log it (and its candidate's scores when complete)."""
        j, _ = self.inflight.pop(fut)
        try:
            r = fut.result()
        except Exception as exc:  # noqa: BLE001 - report and go on
            self.log(f"FAILED {j}: {exc.__class__.__name__}: {exc}")
            return
        net, runs = r["net"], self.runs[r["net"]]
        runs.setdefault(r["cand"], []).append(r)
        h = r["hist"]
        self.log(f"{net} {r['cand']:<14} fold {r['fold']} seed {r['seed']}: val acc last "
                 f"{h['val']['single']['acc'][-1]:.3f}, max {max(h['val']['single']['acc']):.3f} "
                 f"({h['seconds']:.1f} s, {r['device']}){' ABORTED' if 'aborted_at_epoch' in h else ''}")
        if len(runs[r["cand"]]) == self.expected.get((net, r["cand"])):
            s = summarise(runs[r["cand"]], "single", runs.get("base"))
            if s:
                self.log(f"== {net} {r['cand']}: acc-rule {s['acc']['acc']:.3f} @ {s['acc']['epoch']} "
                         f"(margin {s['acc'].get('margin', float('nan')):+.3f}), loss-rule "
                         f"{s['loss']['acc']:.3f} @ {s['loss']['epoch']}")
        self.maybe_combo(net)

    def maybe_combo(self, net: str) -> None:
        """Once seeds 0-1 of every single-change candidate are in: queue the winners merged."""
        if self.combo_done[net]:
            return
        runs, params, first_seeds = self.runs[net], self.params[net], self.args.seeds[:2]
        singles = [n for n in params if n not in ("base", "combo_pre")]
        if any(len(runs.get(n, [])) < len(self.folds) * len(first_seeds) for n in singles + ["base"]):
            return
        self.combo_done[net] = True
        scored = {}
        for n in singles:
            s = summarise(runs[n], "single", runs["base"])
            if not s or "margin" not in s["acc"]:
                continue
            if s["acc"]["margin"] > (0 if self.args.combo_rule == "any" else s["acc"]["se"]):
                scored[n] = s["acc"]["margin"]
        merged, used = merge_winners(net, params, scored)
        if len(used) < 2:
            self.log(f"{net} combo: winners {used or 'none'}: nothing to combine")
            return
        name = "combo_win"
        params[name] = BASE[net] | merged
        self.descr[net][name] = "winners " + ", ".join(used) + " (chosen during the run)"
        self.expected[(net, name)] = len(self.folds) * len(self.args.seeds)
        k = len(params)
        self.queue += jobs_for(net, name, first_seeds, 1, k, self.folds)
        self.queue += jobs_for(net, name, self.args.seeds[2:], 2, k, self.folds)
        self.log(f"{net} combo {name}: {merged}")

    def write_outputs(self, final: bool = False) -> None:
        res = {net: summarise_all(self.runs[net], self.params[net], VIEWS[net]) for net in ("1d", "2d")}
        md = [f"# Design study, issue 9 ({'final' if final else 'partial'}; {time.time() - self.t_start:.0f} s)", "",
              "LOAO validation on training actors 1-4 only. acc-rule: epoch of the peak of the 5-epoch "
              "moving average of the mean val accuracy; loss-rule: epoch of min smoothed mean val loss. "
              "acc = mean over fold x seed runs at that epoch (smoothed value in brackets); std and "
              "SE = std/sqrt(runs) over the runs; margin = acc - baseline's acc under the same rule "
              "(paired SE over same fold+seed); per-fold = mean over seeds per held-out actor. "
              "View tta3 = softmax averaged over windows shifted by -0.125/0/+0.125 s.", ""]
        for net in ("1d", "2d"):
            md.append(table_md(net, res[net], list(self.params[net]), self.descr[net]))
        md.append(f"params: {json.dumps(self.params)}\n")
        (self.out / "tables.md").write_text("\n".join(md))
        keep = ("train_acc", "train_loss", "seconds")
        blob = {"info": self.info, "args": vars(self.args), "folds": self.folds, "params": self.params,
                "descr": self.descr, "summary": res, "elapsed_s": time.time() - self.t_start,
                "runs": {net: {name: [{k: r[k] for k in ("fold", "seed", "device")} | {"val": r["hist"]["val"]}
                                      | {k: r["hist"][k] for k in keep}
                                      | {"aborted_at_epoch": r["hist"].get("aborted_at_epoch")}
                                      for r in rs] for name, rs in self.runs[net].items()} for net in self.runs}}
        tmp = self.out / ".results.json.tmp"
        tmp.write_text(json.dumps(blob))
        os.replace(tmp, self.out / "results.json")

    def loop(self) -> None:
        """Submit, collect and rewrite the outputs until no run is left in flight."""
        from concurrent.futures import FIRST_COMPLETED, wait

        self.submit_more()
        last_write = 0.0
        while self.inflight:
            done, _ = wait(list(self.inflight), timeout=30, return_when=FIRST_COMPLETED)
            for fut in done:
                self.collect(fut)
            self.submit_more()
            if time.time() - last_write > 10 or not self.inflight:
                self.write_outputs()
                last_write = time.time()

    def finish(self) -> None:
        for p in self.pools.values():
            p.shutdown(cancel_futures=True)
        if self.queue:
            self.log(f"budget reached: {len(self.queue)} jobs not started: "
                     f"{sorted({(j[2], j[3]) for j in self.queue})}")
        self.write_outputs(final=True)
        (self.out / "log_main.txt").write_text("\n".join(self.log_lines) + "\n")
        self.log(f"done in {time.time() - self.t_start:.0f} s")


def run(args) -> None:
    """Train and score every candidate (the module text): plan, pools, collection, tables."""
    study = Study(args)
    study.load()
    study.start_pools()
    study.loop()
    study.finish()


# ----------------------------------------------------------------- report
def merge_results(paths, eps: dict) -> tuple[dict, dict]:
    """The runs of several ``results.json`` files (first copy of a fold x seed
    wins; runs aborted or shorter than ``eps[net]`` epochs left out), curves cut
    to ``eps[net]`` epochs; and the candidates' descriptions."""
    runs: dict = {"1d": {}, "2d": {}}
    descr: dict = {net: {c[0]: c[2] for c in CANDS[net]} for net in CANDS}
    for path in paths:
        raw = Path(path).read_bytes()
        blob = json.loads(gzip.decompress(raw) if str(path).endswith(".gz") else raw)
        for net in ("1d", "2d"):
            for k, v in blob.get("descr", {}).get(net, {}).items():  # the script's own words win
                descr[net].setdefault(k, v)
            for name, rs in blob["runs"].get(net, {}).items():
                have = {(r["fold"], r["seed"]) for r in runs[net].get(name, [])}
                for r in rs:
                    n = len(r["val"]["single"]["acc"])
                    if r.get("aborted_at_epoch") or n < eps[net] or (r["fold"], r["seed"]) in have:
                        continue
                    val = {v: {k: c[: eps[net]] for k, c in vv.items()} for v, vv in r["val"].items()}
                    runs[net].setdefault(name, []).append(
                        {"net": net, "cand": name, "fold": r["fold"], "seed": r["seed"],
                         "hist": {"val": val, "seconds": r["seconds"] * eps[net] / n}})
    return runs, descr


def report(args) -> None:
    """Merge the runs of ``args.results`` (:func:`merge_results`) and write
    ``tables.md`` and ``summary.json`` to ``args.out``."""
    eps = {"1d": args.epochs1d, "2d": args.epochs2d}
    runs, descr = merge_results(args.results, eps)
    md = [f"# Design study, issue 9: merged {', '.join(str(p) for p in args.results)}", "",
          f"Curves cut to {eps['1d']} (1D) / {eps['2d']} (2D) epochs. Columns as in the run's tables; "
          "margins against the baseline runs of the same merge. s/run: mean seconds of one run on the "
          "machine that ran it (scaled to the cut), with many runs sharing it.", ""]
    summary = {}
    for net in ("1d", "2d"):
        order = [c[0] for c in CANDS[net]]
        names = [n for n in order if n in runs[net]] + sorted(set(runs[net]) - set(order))
        summary[net] = summarise_all(runs[net], names, VIEWS[net])
        md.append(table_md(net, summary[net], names, descr[net]))
        wins = [f"{n}/{v} ({rule} rule {s[rule]['margin']:+.3f} > SE {s[rule]['se']:.3f})"
                for n in names for v, s in summary[net][n].items() if s and n != "base"
                for rule in ("acc", "loss") if s[rule].get("margin", 0) > s[rule]["se"]]
        md.append(f"Beat the baseline by more than their own SE: {'; '.join(wins) or 'none'}\n")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "tables.md").write_text("\n".join(md))
    summary["descriptions"] = {net: {n: descr[net].get(n, n) for n in summary[net]} for net in ("1d", "2d")}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print("\n".join(md))


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    pp = sub.add_parser("prepare", help="Train clips -> compact arrays (CPU)")
    pp.add_argument("--data", required=True, help="EmotionSpeech root (only <data>/Train is read)")
    pp.add_argument("--out", required=True)
    pr = sub.add_parser("run", help="train and score every candidate")
    pr.add_argument("--data", required=True, help="the folder prepare wrote")
    pr.add_argument("--out", required=True)
    pr.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    pr.add_argument("--cache", default="/tmp/design_study_cache.npz")
    pr.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    pr.add_argument("--folds", type=int, nargs="*", default=None)
    pr.add_argument("--epochs1d", type=int, default=TRAIN1D["epochs"])
    pr.add_argument("--epochs2d", type=int, default=TRAIN2D["epochs"])
    pr.add_argument("--cands1d", default="all")
    pr.add_argument("--cands2d", default="all")
    pr.add_argument("--skip", default="", help="'combo' to skip the adaptive combination")
    pr.add_argument("--combo-rule", default="se", choices=("se", "any"),
                    help="a winner beats the baseline by more than its SE ('any': by more than 0; checks only)")
    pr.add_argument("--plan", default=None,
                    help="JSON file [[net, candidate, [seeds]], ...]: run exactly these, in this order")
    pr.add_argument("--clips-per-actor", type=int, default=0, help="0: all (tiny checks only)")
    pr.add_argument("--gpu-workers", type=int, default=6)
    pr.add_argument("--cpu-workers", type=int, default=2)
    pr.add_argument("--cpu-threads", type=int, default=1)
    pr.add_argument("--route2d", default="gpu", choices=("cpu", "gpu"),
                    help="with --device cuda: 2D runs on the GPU workers (default) or CPU workers")
    pr.add_argument("--budget-s", type=float, default=1e9, help="start no run after this many seconds")
    pr.add_argument("--grace-s", type=float, default=60.0, help="runs still going this long after the budget stop")
    rp = sub.add_parser("report", help="merge results.json files and write the tables again")
    rp.add_argument("results", nargs="+")
    rp.add_argument("--out", required=True)
    rp.add_argument("--epochs1d", type=int, default=TRAIN1D["epochs"])
    rp.add_argument("--epochs2d", type=int, default=TRAIN2D["epochs"])
    return ap.parse_args(argv)


def main() -> None:
    args = parse_args()
    if args.cmd == "report":
        report(args)
    elif args.cmd == "prepare":
        prepare(Path(args.data), Path(args.out))
    else:
        run(args)


if __name__ == "__main__":
    main()
