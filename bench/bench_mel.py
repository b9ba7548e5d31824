"""Mel-spectrogram extraction of the whole data set: ours against plain librosa.

    python bench/bench_mel.py [--clips N] [--data PATH]

Both paths decode the clips the same way (ser.data.audio.read_mono); the plain one
then calls ``librosa.feature.melspectrogram(...)[:, :200]`` clip by clip, as the
task's code does. Ours is ser.features.extract's path: a sparse mel basis built once per
sample rate, only the 200 kept frames transformed, clips spread over the cores
(threads). One process; ours runs first so that its peak memory (ru_maxrss) is
not inflated by the plain path. Prints both times, the ratio, the largest
relative difference (max |ours - librosa| / max |librosa|, per clip) and the
peak memory.
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from ser.data.audio import hop_samples, read_mono  # noqa: E402
from ser.config import CONFIG  # noqa: E402
from ser.data.dataset import find_data_dir, list_clips  # noqa: E402
from ser.io import map_clips  # noqa: E402
from ser.features.spectro import mel_from_config  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=0, help="only the first N clips (0: all)")
    ap.add_argument("--data", default=None, help="data set root (default: as the build finds it)")
    args = ap.parse_args()
    import librosa

    clips = list_clips(find_data_dir(args.data))
    if args.clips:
        clips = clips[: args.clips]
    paths = [c.path for c in clips]
    m = CONFIG.mel
    # Warm both libraries' import and JIT caches on a tiny signal, outside the timing.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        librosa.feature.melspectrogram(y=np.zeros(4096, np.float32), sr=8000, n_fft=1024, n_mels=16)
    rss0 = peak_rss_mb()

    t0 = time.perf_counter()
    # The result is reduced to a checksum so that memory measures the extraction,
    # not 256 kept spectrograms; the comparison below recomputes ours per clip.
    map_clips(lambda p: float(mel_from_config(*read_mono(p), m).sum()), paths)
    t_ours = time.perf_counter() - t0
    rss_ours = peak_rss_mb()

    worst, t_plain = 0.0, 0.0
    for p in paths:
        y, sr = read_mono(p)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Empty filters detected": expected, see the report
            ref = librosa.feature.melspectrogram(y=y, sr=sr, n_mels=m.n_mels, n_fft=m.n_fft,
                                                 hop_length=hop_samples(sr, m.hop_s), power=m.power)[:, : m.n_frames]
        t_plain += time.perf_counter() - t0
        if ref.shape[1] < m.n_frames:
            ref = np.pad(ref, ((0, 0), (0, m.n_frames - ref.shape[1])))
        mine = mel_from_config(y, sr, m)
        worst = max(worst, float(np.abs(mine - ref).max() / np.abs(ref).max()))

    print(f"clips                     {len(paths)}")
    print(f"plain librosa, per clip   {t_plain:8.2f} s  (decoding not timed)")
    print(f"ser (sparse, 200 frames)  {t_ours:8.2f} s  (decoding and basis included)")
    print(f"speed-up                  {t_plain / t_ours:8.1f} x")
    print(f"largest relative diff     {worst:.2e}")
    print(f"peak RSS before / after ours: {rss0:.0f} / {rss_ours:.0f} MB")


if __name__ == "__main__":
    main()
