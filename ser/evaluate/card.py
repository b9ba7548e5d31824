"""The data-set card: what is in each split, and whether the splits leak.

Leakage is checked two ways, across every pair of splits present (Train, Test
and the optional Confirm): a speaker found in two splits (the speakers of
:mod:`ser.data.speakers`), and every pair of clips with the same audio in two splits (SHA-256 of the decoded samples, so a
re-encoded or renamed copy is caught too).

The same per-clip hashes give the data set a fingerprint that names it in the
report instead of a machine's path: equal for a moved or copied folder, and
different as soon as one clip's samples, name or class changes.
"""
from __future__ import annotations

import hashlib
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from ser.data.audio import audio_info, hop_samples, read_mono
from ser.data.dataset import OPTIONAL_SPLITS, SPLITS, Clip
from ser.metrics import wilson_interval
from ser.data.speakers import speaker_order
from ser.features.spectro import n_frames_of


def clip_record(clip: Clip) -> dict:
    """Header facts and a hash of the decoded mono samples of one clip."""
    info = audio_info(clip.path)
    y, _ = read_mono(clip.path)
    return {
        "key": clip.key,
        "split": clip.split,
        "class": clip.class_name,
        "speaker": clip.speaker,
        "sr_hz": info.sr_hz,
        "channels": info.n_channels,
        "subtype": info.subtype,
        "n_samples": info.n_samples,
        "duration_s": info.duration_s,
        "audio_sha256": hashlib.sha256(np.ascontiguousarray(y).tobytes()).hexdigest(),
    }


def fingerprint(records: list[dict]) -> str:
    """SHA-256 naming a data set by its content, not by where it lies.

    One line ``key<TAB>sr_hz<TAB>audio_sha256<LF>`` per clip, in the order of
    the keys (``Split/Class/file.wav``), hashed together; every split in
    ``records`` counts. Moving the folder changes nothing; changing one
    sample, renaming a clip or moving it to another class changes the hash.
    """
    h = hashlib.sha256()
    for r in sorted(records, key=lambda r: r["key"]):
        h.update(f"{r['key']}\t{r['sr_hz']}\t{r['audio_sha256']}\n".encode())
    return h.hexdigest()


def _describe(values) -> dict:
    v = np.asarray(values, float)
    return {"min": float(v.min()), "mean": float(v.mean()), "max": float(v.max())}


def summarise(records: list[dict], class_names: list[str], data_dir: str, hop_s: float) -> dict:
    """Counts per class and split, speakers, sample rates, durations, channels, leakage."""
    card = {
        "data_dir": data_dir,  # the HTML appendix shows it; the PDF names the data by name and fingerprint
        "data_name": Path(data_dir).name,
        "fingerprint_sha256": fingerprint(records),
        "classes": class_names,
        "n_clips": len(records),
        "splits": {},
    }
    present = {r["split"] for r in records}
    for split in SPLITS + tuple(s for s in OPTIONAL_SPLITS if s in present):
        rs = [r for r in records if r["split"] == split]
        counts = Counter(r["class"] for r in rs)
        speakers = sorted({r["speaker"] for r in rs if r["speaker"] is not None}, key=speaker_order)
        per_speaker = Counter(r["speaker"] for r in rs if r["speaker"] is not None)
        frames = [n_frames_of(r["n_samples"], hop_samples(r["sr_hz"], hop_s)) for r in rs]
        card["splits"][split] = {
            "n_clips": len(rs),
            "per_class": {c: counts.get(c, 0) for c in class_names},
            "speakers": speakers,
            "clips_per_speaker": {a: per_speaker[a] for a in speakers},
            "majority_rate": max(counts.values()) / len(rs) if rs else 0.0,
            "speakers_known": all(r["speaker"] is not None for r in rs),
            "sample_rates_hz": sorted({r["sr_hz"] for r in rs}),
            "subtypes": sorted({r["subtype"] for r in rs}),
            "channels": {str(k): v for k, v in sorted(Counter(r["channels"] for r in rs).items())},
            "multichannel_clips": [r["key"] for r in rs if r["channels"] > 1],
            "duration_s": _describe([r["duration_s"] for r in rs]),
            "n_frames": _describe(frames),
            "shorter_than_200_frames": int(sum(f < 200 for f in frames)),
        }
    test = [r for r in records if r["split"] == "Test"]
    shared_speakers, dup_pairs = set(), []
    names = list(card["splits"])
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            ra = [r for r in records if r["split"] == a]
            rb = [r for r in records if r["split"] == b]
            shared_speakers |= ({r["speaker"] for r in ra if r["speaker"] is not None}
                              & {r["speaker"] for r in rb if r["speaker"] is not None})
            in_b: dict[str, list[str]] = {}
            for r in rb:
                in_b.setdefault(r["audio_sha256"], []).append(r["key"])
            dup_pairs += [[r["key"], k] for r in ra for k in in_b.get(r["audio_sha256"], [])]
    shared_speakers = sorted(shared_speakers, key=speaker_order)
    # Width of a 95% interval on the test split, for an accuracy of 50%: how
    # far apart two models must be before the test split can tell them apart.
    lo, hi = wilson_interval(len(test) // 2, len(test))
    card["test_ci95_halfwidth_at_50"] = (hi - lo) / 2
    card["leakage"] = {
        "shared_speakers": shared_speakers,
        "duplicate_audio": dup_pairs,
        "clean": not shared_speakers and not dup_pairs,
    }
    return card


def leakage_warnings(card: dict) -> list[str]:
    """Plain sentences for the build log (empty when the splits are clean)."""
    out = []
    if card["leakage"]["shared_speakers"]:
        out.append(f"speakers in two splits: {card['leakage']['shared_speakers']}")
    for a, b in card["leakage"]["duplicate_audio"]:
        out.append(f"the same audio is in two splits: {a} and {b}")
    return out


def build_card(clips: list[Clip], class_names: list[str], data_dir: str, hop_s: float, source=None) -> dict:
    """The card of ``clips``; ``source`` (a :class:`ser.data.speakers.SpeakerSource`)
    says how the speakers were found."""
    from ser.io import map_clips

    records = map_clips(clip_record, clips, desc="data-set card")
    card = summarise(records, class_names, data_dir, hop_s)
    if source is not None:
        card["speaker_source"] = {"kind": source.kind, "detail": source.detail, "text": source.describe(),
                                  "word": source.word}
    for w in leakage_warnings(card):
        print(f"WARNING: leakage: {w}", file=sys.stderr)
    return card
