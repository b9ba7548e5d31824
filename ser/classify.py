"""Classify new clips with the models the build trained.

    python -m ser.classify DIR [--out predictions.csv]

``DIR`` is a folder of WAV files (any rate, mono or stereo), or a folder of
class folders ``DIR/<Class>/*.wav`` named like the training classes, in which
case accuracy and a confusion matrix are printed too. Three models are
applied:

* the spec SVM (C=10, RBF) on the best feature type of the report, refitted
  from the feature cache's training rows (deterministic, seconds);
* the 1D CNN's reported setting: its seed ensemble, from the checkpoints;
* the 2D CNN's reported setting: its seed ensemble, from the checkpoints.

A missing model names the ``doit`` task that trains it. A file that cannot
be read as audio does not stop the batch: every readable clip is classified,
the unreadable ones are listed at the end with the reason, and the exit
status is then non-zero.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from ser import results
from ser.config import CACHE_DIR, CONFIG, RESULTS_DIR
from ser.errors import DataError, SerError, reported


def find_clips(folder) -> tuple[list[Path], list[str | None]]:
    """The WAV files of ``folder`` (sorted) and their class folder names, or
    None per clip when the WAVs sit directly in ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder")
    direct = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".wav" and not p.name.startswith("."))
    if direct:
        return direct, [None] * len(direct)
    paths, labels = [], []
    for d in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for p in sorted(d.glob("*.wav")):
            if not p.name.startswith("."):
                paths.append(p)
                labels.append(d.name)
    if not paths:
        raise DataError(f"{folder}: holds no .wav files (directly or in class folders)")
    return paths, labels


def _need(path: Path, task: str) -> Path:
    if not path.is_file():
        raise SerError(f"{path}: missing; train the models first with `doit {task}`")
    return path


def svm_probe(paths, cfg=CONFIG, results_dir=RESULTS_DIR, cache_dir=CACHE_DIR) -> tuple[str, np.ndarray]:
    """Decision values of the spec SVM of the best feature type (bands in Hz),
    refitted on the feature cache's training rows."""
    from ser.features.extract import clip_features
    from ser.io import load_npz
    from ser.models.svm import pipeline_of

    svm = results.load("svm", _need(Path(results_dir) / "svm.json", "svm"))
    kind = svm["readings"]["hz"]["best"]
    feats = load_npz(_need(Path(cache_dir) / "features.npz", "features"))
    tr = feats["split"] == "Train"
    model = pipeline_of(svm["readings"]["hz"]["kinds"][kind]["spec"]["params"])
    model.fit(feats[f"X_hz_{kind}"][tr], feats["label"][tr])
    X = np.stack([clip_features(p, cfg)[f"hz_{kind}"] for p in paths])
    return f"spec SVM, {kind}", model.decision_function(X)


def _ensemble(res: dict, lrn, load_model, x, task: str) -> np.ndarray:
    """Mean class probabilities of the reported setting's seeds, each loaded
    from its checkpoint with the state (e.g. a scale) it was trained with."""
    from ser.models.protocol import Trained

    m = res["models"][res["chosen"]]
    return np.mean([lrn.predict(Trained(load_model(_need(Path(ckpt), task)), state), m["params"], x)
                    for ckpt, state in zip(m["checkpoints"], m["states"])], axis=0)


def clip_speakers(paths, root=None, cfg=CONFIG) -> list[str | None]:
    """The speaker of each new clip where one is declared, else None
    (:func:`ser.data.speakers.speakers_if_known`: a ``speakers.csv`` at
    ``root``, the configuration's ``[data] speaker_pattern``, or a known
    corpus's file names). ``root``: the folder the clips were given in
    (default: the clips' nearest common folder)."""
    import os

    from ser.data.speakers import speakers_if_known

    paths = [Path(p).resolve() for p in paths]
    if not paths:
        return []
    root = Path(root).resolve() if root is not None else Path(os.path.commonpath([p.parent for p in paths]))
    rel = [p.relative_to(root).as_posix() if p.is_relative_to(root) else p.name for p in paths]
    return speakers_if_known(root, rel, cfg.data.speaker_pattern)


def new_speakers(paths, log=print, speakers=None, cfg=CONFIG) -> list:
    """Speakers of new clips, for the ``speaker_rms`` level: ``speakers``
    (default: :func:`clip_speakers`), over every clip given. A clip without a
    speaker, or the only clip of its speaker, is its own speaker (its level is
    its own RMS); those clips are named in the log."""
    from collections import Counter

    speakers = clip_speakers(paths, cfg=cfg) if speakers is None else list(speakers)
    count = Counter(speakers)
    alone = [p for p, a in zip(paths, speakers) if a is None or count[a] == 1]
    if alone:
        log(f"1D CNN, speaker_rms: no other clip of the same speaker for {len(alone)} clip(s), each scaled by "
            f"its own RMS level instead of its speaker's: {', '.join(Path(p).name for p in alone)}")
    return [("clip", str(p)) if a is None or count[a] == 1 else ("speaker", a) for p, a in zip(paths, speakers)]


def cnn1d_probe(paths, cfg=CONFIG, results_dir=RESULTS_DIR, cache_dir=CACHE_DIR, *,
                log=print, speakers=None) -> tuple[str, np.ndarray]:
    """Class probabilities of the 1D CNN's seed ensemble (with speaker levels
    from the clips given, :func:`new_speakers` of ``speakers``, when its
    setting is ``speaker_rms``)."""
    from ser.models import cnn1d

    res = results.load("cnn1d", _need(Path(results_dir) / "cnn1d.json", "cnn1d"))
    c = cfg.cnn1d
    x = cnn1d.load_waveforms(paths, n_frames=c.n_frames, hop_s=c.hop_s, sr_hz=c.sr_hz,
                             window=tuple(c.grid_window), onset=cfg.onset)
    if res["models"][res["chosen"]]["params"]["norm"] == "speaker_rms":
        x = cnn1d.SpeakerWaves(x, cnn1d.speaker_levels(x, new_speakers(paths, log, speakers, cfg)))
    n = len(res["classes"])
    probs = _ensemble(res, cnn1d.learner(c, n), lambda p: cnn1d.load_model(p, c, n_classes=n), x, "cnn1d")
    return f"1D CNN, {res['chosen']}, seed ensemble", probs


def cnn2d_probe(paths, cfg=CONFIG, results_dir=RESULTS_DIR, cache_dir=CACHE_DIR, *,
                log=print, speakers=None) -> tuple[str, np.ndarray]:
    """Class probabilities of the 2D CNN's seed ensemble (images made in memory
    exactly as the export writes them).

    When the reported setting reads speaker-normalised images, a speaker
    (``speakers``, default :func:`clip_speakers`) is normalised by their clips among
    ``paths``. A clip that is its speaker's only one here, or names no speaker,
    has no such statistics: the raw-input setting with the best validation
    score classifies it instead, and ``log`` names those clips.
    """
    from collections import Counter

    from ser.models import cnn2d
    from ser.features.images import (clip_mel, image_to_input, log_mel_image, log_mel_row_stats, speaker_norm_image,
                         speaker_row_stats_by)

    res = results.load("cnn2d", _need(Path(results_dir) / "cnn2d.json", "cnn2d"))
    c, chosen = cfg.cnn2d, res["chosen"]
    n = len(res["classes"])
    lrn = cnn2d.learner(c, n)
    mel_kw = dict(mel_cfg=cfg.mel, n_frames=c.n_frames, window=c.window, onset=cfg.onset)
    speaker = cnn2d.reads_speaker_input(res["models"][chosen]["params"])

    def to_input(img):
        return image_to_input(img, size_hw=tuple(c.size_hw), interpolation=c.interpolation)

    def probs_of(name, x):
        return _ensemble({**res, "chosen": name}, lrn, lambda p: cnn2d.load_checkpoint(p, c, n_classes=n), x,
                         "cnn2d")

    raw, stats = [], []
    for p in paths:  # pass 1: the raw images, and each clip's row statistics
        X = clip_mel(p, **mel_kw)
        raw.append(to_input(log_mel_image(X, fix_floor=c.fix_floor, dynamic_range=c.dynamic_range,
                                          low_at_bottom=c.low_at_bottom)))
        if speaker:
            stats.append(log_mel_row_stats(X))
    x = np.stack(raw)
    name = f"2D CNN, {chosen}, seed ensemble"
    if not speaker:
        return name, probs_of(chosen, x)
    speakers = clip_speakers(paths, cfg=cfg) if speakers is None else list(speakers)
    n_clips = Counter(a for a in speakers if a is not None)
    ok = np.array([a is not None and n_clips[a] > 1 for a in speakers], dtype=bool)
    probs = np.zeros((len(paths), n))
    if ok.any():  # pass 2: the speaker-normalised images, stacked behind the raw ones (cnn2d.INPUTS)
        norms = speaker_row_stats_by((a, Path(p).name, st) for a, p, st, k in zip(speakers, paths, stats, ok) if k)
        x_spk = np.stack([to_input(speaker_norm_image(clip_mel(p, **mel_kw), *norms[a], low_at_bottom=c.low_at_bottom))
                          for p, a, k in zip(paths, speakers, ok) if k])
        probs[ok] = probs_of(chosen, np.concatenate([x[ok], x_spk], axis=1))
    if not ok.all():
        raws = [m for m, v in res["models"].items() if not cnn2d.reads_speaker_input(v["params"])]
        if not raws:
            raise SerError(f"{results_dir}/cnn2d.json: no raw-input 2D model for clips without a speaker's statistics")
        fallback = max(raws, key=lambda m: res["validation"]["candidates"][m]["score"])
        lone = [Path(p).name for p, k in zip(paths, ok) if not k]
        log(f"2D CNN: {len(lone)} clip(s) without another clip of the same speaker here, so without "
            f"speaker statistics, classified by '{fallback}' (raw input, best raw validation score) instead of "
            f"'{chosen}': {', '.join(lone)}")
        probs[~ok] = probs_of(fallback, x[~ok])
        name += f" ('{fallback}' for {len(lone)} clip(s) of single-clip speakers)"
    return name, probs


def classify(folder, out_csv=None, *, cfg=CONFIG, results_dir=RESULTS_DIR, cache_dir=CACHE_DIR, log=print) -> dict:
    """Apply every model to the clips of ``folder``; write a CSV and print a
    table (and accuracy and confusion matrices when the clips carry labels)."""
    from ser.metrics import scores
    from ser.evaluate.predictions import csv_text

    paths, labels = find_clips(folder)
    classes = results.load("data", _need(Path(results_dir) / "data.json", "card"))["classes"]
    unknown = sorted({lb for lb in labels if lb is not None and lb not in classes})
    if unknown:
        raise DataError(f"{folder}: class folders {unknown} are not among the trained classes {classes}")
    readable, skipped = readable_clips(paths)
    keep = [i for i, p in enumerate(paths) if p in set(readable)]
    paths, labels = [paths[i] for i in keep], [labels[i] for i in keep]
    if not paths:
        raise DataError(f"{folder}: no clip could be read: " + "; ".join(f"{p}: {why}" for p, why in skipped))
    speakers = clip_speakers(paths, folder, cfg)
    outputs = [svm_probe(paths, cfg, results_dir, cache_dir)]
    outputs += [probe(paths, cfg, results_dir, cache_dir, log=log, speakers=speakers)
                for probe in (cnn1d_probe, cnn2d_probe)]
    rows, result = [], {"clips": [str(p) for p in paths], "models": {},
                        "skipped": [{"clip": str(p), "reason": why} for p, why in skipped]}
    for name, values in outputs:
        pred = values.argmax(1)
        result["models"][name] = {"pred": [classes[i] for i in pred]}
        for p, a, lb, k, v in zip(paths, speakers, labels, pred, values):
            rows.append({"clip": str(p), "split": "", "speaker": a or "", "true_class": lb or "", "model": name,
                         "predicted_class": classes[k], "correct": "" if lb is None else int(lb == classes[k]),
                         "scores_kind": "decision" if "SVM" in name else "probability",
                         **{f"score_{c}": round(float(x), 4) for c, x in zip(classes, v)}})
        if all(lb is not None for lb in labels):
            y = [classes.index(lb) for lb in labels]
            result["models"][name]["scores"] = scores(y, pred, classes)
    if out_csv:
        from ser.io import atomic_path

        with atomic_path(out_csv) as tmp:
            tmp.write_text(csv_text(rows))
    log(format_table(result, [p.name for p in paths], labels, classes))
    if skipped:
        log(f"\nnot classified ({len(skipped)} file(s) could not be read):")
        for p, why in skipped:
            log(f"  {p}: {why}")
    return result


def readable_clips(paths) -> tuple[list[Path], list[tuple[Path, str]]]:
    """The clips that decode as audio, and ``(path, reason)`` for the others."""
    from ser.data.audio import read_mono

    ok, bad = [], []
    for p in paths:
        try:
            read_mono(p)
        except SerError as exc:
            bad.append((p, str(exc).replace(f"{p}: ", "", 1)))
        else:
            ok.append(p)
    return ok, bad


def format_table(result: dict, names, labels, classes) -> str:
    models = list(result["models"])
    w = max(len(n) for n in names) + 2
    lines = ["clip".ljust(w) + ("true".ljust(8) if labels[0] is not None else "")
             + "".join(m.split(",")[0].ljust(14) for m in models)]
    for i, n in enumerate(names):
        lines.append(n.ljust(w) + ((labels[i] or "").ljust(8) if labels[0] is not None else "")
                     + "".join(result["models"][m]["pred"][i].ljust(14) for m in models))
    for m in models:
        sc = result["models"][m].get("scores")
        if sc:
            lines.append(f"\n{m}: accuracy {100 * sc['accuracy']:.1f}% ({sc['correct']}/{sc['n']})")
            lines.append("  true \\ predicted  " + " ".join(c[:7].rjust(7) for c in classes))
            for c, row in zip(classes, sc["confusion"]):
                lines.append(f"  {c:16s} " + " ".join(str(v).rjust(7) for v in row))
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ser.classify", description=__doc__.split("\n\n")[0])
    ap.add_argument("clips", help="folder of WAV files, or of class folders of WAV files")
    ap.add_argument("--out", default="predictions_new.csv", help="CSV written here (default: %(default)s)")
    args = ap.parse_args(argv)
    result, error = reported(classify, args.clips, args.out)
    if error is not None:
        return 1
    print(f"\nwritten: {args.out}")
    return 1 if result["skipped"] else 0


if __name__ == "__main__":
    sys.exit(main())
