import subprocess
import sys
import warnings
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest

from conftest import write_wav
from ser.features.anchors import (ANCHORS, anchor_features, egemaps_functionals, egemaps_names, ge2e_embedding,
                         ge2e_weights_path)
from ser.errors import ConfigError, DataError

# resemblyzer 0.1.4 imports binary_dilation from scipy.ndimage.morphology
pytestmark = pytest.mark.filterwarnings("ignore:Please import `binary_dilation`:DeprecationWarning")

F0_MEAN = "F0semitoneFrom27.5Hz_sma3nz_amean"
LOUDNESS_MEAN = "loudness_sma3_amean"


def harmonic_tone(f0_hz: float, sr: int, seconds: float = 2.0, amp: float = 0.3) -> np.ndarray:
    """A tone with its first seven harmonics at 1/k (a band-limited sawtooth): the
    pitch tracker of openSMILE needs harmonics to lock on."""
    t = np.arange(int(sr * seconds)) / sr
    y = sum(np.sin(2 * np.pi * k * f0_hz * t) / k for k in range(1, 8))
    return (amp * y / np.max(np.abs(y))).astype(np.float32)


def feature(v: np.ndarray, name: str) -> float:
    return float(v[egemaps_names().index(name)])


def cosine(a, b) -> float:
    return float(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b))


def train_clip(data_dir: Path, rel: str) -> Path:
    path = data_dir / "Train" / rel
    if not path.is_file():
        pytest.skip(f"{path}: not in this data set")
    return path


# two clips (different emotion and sentence) of each of the speakers 1-4 (1, 3 male; 2, 4 female)
ACTOR_CLIPS = [(a, rel % a) for a in (1, 2, 3, 4)
               for rel in ("Calm/03-01-02-01-01-01-%02d.wav", "Sad/03-01-04-01-02-01-%02d.wav")]


def test_import_loads_neither_package():
    code = "import sys, ser.features.anchors; print([m for m in ('opensmile', 'resemblyzer', 'torch') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "[]"


def test_metadata():
    assert set(ANCHORS) == {"egemaps", "ge2e"}
    assert ANCHORS["egemaps"]["dim"] == 88 and ANCHORS["ge2e"]["dim"] == 256
    assert ANCHORS["egemaps"]["version"] == version("opensmile")
    assert ANCHORS["ge2e"]["version"] == version("resemblyzer")
    assert "non-commercial" in ANCHORS["egemaps"]["licence"]
    assert ANCHORS["ge2e"]["licence"] == "Apache-2.0"


def test_ge2e_weights_ship_in_the_package():
    path = ge2e_weights_path()
    assert path.is_file() and path.parent.name == "resemblyzer"
    assert path.stat().st_size > 10_000_000  # 17 MB of LSTM weights, not a stub


# ---- eGeMAPS


def test_egemaps_names():
    names = egemaps_names()
    assert len(names) == 88 == len(set(names))
    # the published order (openSMILE's eGeMAPSv02 config), which the columns of the vectors follow
    assert names[0] == F0_MEAN and names[10] == LOUDNESS_MEAN and names[-1] == "equivalentSoundLevel_dBp"


@pytest.mark.parametrize("sr", [16000, 48000])
def test_egemaps_pitch_of_harmonic_tones(sr):
    lo = egemaps_functionals(harmonic_tone(200, sr), sr_hz=sr)
    hi = egemaps_functionals(harmonic_tone(300, sr), sr_hz=sr)
    assert lo.shape == (88,) and lo.dtype == np.float32
    # semitones above 27.5 Hz: 12 log2(200 / 27.5) = 34.35
    assert feature(lo, F0_MEAN) == pytest.approx(12 * np.log2(200 / 27.5), abs=0.1)
    assert feature(hi, F0_MEAN) - feature(lo, F0_MEAN) == pytest.approx(12 * np.log2(1.5), abs=0.1)


def test_egemaps_loudness_rises_with_level():
    y = harmonic_tone(200, 16000, amp=0.03)
    quiet = feature(egemaps_functionals(y, sr_hz=16000), LOUDNESS_MEAN)
    loud = feature(egemaps_functionals(10 * y, sr_hz=16000), LOUDNESS_MEAN)  # +20 dB
    assert quiet > 0
    assert loud > 3 * quiet  # ~4x: loudness doubles every 10 phon


def test_egemaps_full_scale_is_clipped_not_wrapped():
    y = np.tile(np.array([1.0, -1.0], np.float32), 8000)  # +1.0 would wrap to -32768 as int16
    v = egemaps_functionals(y, sr_hz=16000)
    w = egemaps_functionals(y * np.float32(0.9999), sr_hz=16000)
    assert feature(v, LOUDNESS_MEAN) == pytest.approx(feature(w, LOUDNESS_MEAN), rel=1e-3)


@pytest.mark.filterwarnings("ignore:Segment too short")
def test_egemaps_too_short_raises():
    with pytest.raises(DataError, match="too short"):
        egemaps_functionals(np.full(500, 0.1, np.float32), sr_hz=16000)


def test_egemaps_rejects_two_channels():
    with pytest.raises(DataError, match="mono"):
        egemaps_functionals(np.zeros((2, 16000), np.float32), sr_hz=16000)


# ---- GE2E


def test_ge2e_unit_norm_and_deterministic(data_dir):
    from ser.data.audio import read_mono

    y, sr = read_mono(train_clip(data_dir, ACTOR_CLIPS[0][1]))
    e = ge2e_embedding(y, sr_hz=sr)
    assert e.shape == (256,) and e.dtype == np.float32
    assert np.linalg.norm(e) == pytest.approx(1.0, abs=1e-5)
    assert e.min() >= 0  # the encoder ends in a ReLU
    assert np.array_equal(e, ge2e_embedding(y.copy(), sr_hz=sr))


def test_ge2e_reads_the_sample_rate(data_dir):
    import librosa

    from ser.data.audio import read_mono

    y, sr = read_mono(train_clip(data_dir, ACTOR_CLIPS[2][1]))
    assert sr == 48000
    y16 = librosa.resample(y, orig_sr=sr, target_sr=16000)
    # the same clip at 48 and at 16 kHz: ~1.0 (0.4-0.5 when the rate is ignored)
    assert cosine(ge2e_embedding(y, sr_hz=sr), ge2e_embedding(y16, sr_hz=16000)) > 0.999


def test_ge2e_same_speaker_closer_than_other_speakers(data_dir):
    paths = [train_clip(data_dir, rel) for _, rel in ACTOR_CLIPS]
    speakers = np.array([a for a, _ in ACTOR_CLIPS])
    E = anchor_features(paths, "ge2e", workers=2)
    assert E.shape == (8, 256)
    assert np.array_equal(E, anchor_features(paths, "ge2e", workers=1))
    C = E @ E.T
    same = (speakers[:, None] == speakers[None, :]) & ~np.eye(len(speakers), dtype=bool)
    other = speakers[:, None] != speakers[None, :]
    # measured 0.74 (same speaker) and 0.52 (other speakers)
    assert C[same].mean() > C[other].mean() + 0.1


def test_ge2e_silent_clip_raises_without_numpy_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # log10(0) of the level, 0 * inf
        with pytest.raises(DataError, match="no speech"):
            ge2e_embedding(np.zeros(32000, np.float32), sr_hz=16000)


# ---- anchor_features


@pytest.fixture
def tone_files(tmp_path) -> list[Path]:
    return [write_wav(tmp_path / f"t{f}.wav", harmonic_tone(f, 16000, seconds=1.0), 16000)
            for f in (150, 220, 330, 440)]


def test_rows_follow_paths_whatever_the_workers(tone_files):
    X = anchor_features(tone_files, "egemaps", workers=1)
    assert X.shape == (4, 88) and X.dtype == np.float32
    f0 = X[:, egemaps_names().index(F0_MEAN)]
    assert np.all(np.diff(f0) > 4)  # 150 < 220 < 330 < 440 Hz: 6.6, 7.0 and 5.0 semitones apart
    assert np.array_equal(anchor_features(tone_files[::-1], "egemaps", workers=2), X[::-1])
    assert np.array_equal(anchor_features(tone_files, "egemaps", workers=3), X)


def test_stereo_files_are_mixed_to_mono(tmp_path):
    y = harmonic_tone(200, 16000, seconds=1.0, amp=0.4)
    stereo = write_wav(tmp_path / "stereo.wav", np.stack([y, np.zeros_like(y)], axis=1), 16000, "FLOAT")
    half = write_wav(tmp_path / "half.wav", y / 2, 16000, "FLOAT")
    full = write_wav(tmp_path / "full.wav", y, 16000, "FLOAT")
    X = anchor_features([stereo, half, full], "egemaps", workers=1)
    assert np.array_equal(X[0], X[1])  # channels averaged: the tone at half level
    assert not np.allclose(X[0], X[2])


@pytest.mark.parametrize("kind", ["egemaps", "ge2e"])
def test_bad_file_raises_data_error_naming_it(tone_files, tmp_path, kind):
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio")
    with pytest.raises(DataError) as info:
        anchor_features([tone_files[0], bad, tone_files[1]], kind, workers=2)
    assert str(bad) in str(info.value)
    assert str(tone_files[0]) not in str(info.value)


def test_silent_file_names_file_and_reason(tmp_path):
    silent = write_wav(tmp_path / "silent.wav", np.zeros(32000, np.float32), 16000)
    with pytest.raises(DataError, match="no speech") as info:
        anchor_features([silent], "ge2e", workers=1)
    assert str(silent) in str(info.value)


def test_unknown_kind_and_empty_list():
    with pytest.raises(ConfigError, match="unknown anchor kind"):
        anchor_features([], "mfcc")
    assert anchor_features([], "ge2e").shape == (0, 256)
