import os
import warnings
from pathlib import Path

# The build's CPU-kernel pins (dodo.py), set before anything imports torch: the
# tests' processes and the run workers they start then use the same kernels.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
os.environ.setdefault("ATEN_CPU_CAPABILITY", "avx2")

import numpy as np
import pytest
import soundfile as sf

warnings.filterwarnings("ignore", message="Couldn't find ffmpeg or avconv")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    from ser.data.dataset import find_data_dir
    from ser.errors import DataError

    try:
        return find_data_dir()
    except DataError as exc:  # pragma: no cover - the shared data set is there in CI
        pytest.skip(str(exc))


def write_wav(path: Path, y: np.ndarray, sr: int = 16000, subtype: str = "PCM_16") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), y, sr, subtype=subtype)
    return path


def tone(freq_hz: float, sr: int, seconds: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return (amp * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


@pytest.fixture
def tiny_dataset(tmp_path) -> Path:
    """Train/Test x 4 classes x 2 clips of tones with RAVDESS-like names."""
    root = tmp_path / "EmotionSpeech"
    codes = {"Angry": "05", "Calm": "02", "Happy": "03", "Sad": "04"}
    for split, speakers in (("Train", (1, 2)), ("Test", (5, 6))):
        for i, (name, code) in enumerate(codes.items()):
            for a in speakers:
                y = tone(300 + 200 * i + 10 * a, 16000, 0.5)
                write_wav(root / split / name / f"03-01-{code}-01-01-01-{a:02d}.wav", y)
    return root


def speaker_shifted(seed=0, *, n_per, n_classes, n_dims, offset_sd, noise_sd, class_gap,
                    splits=(("Train", (1, 2, 3, 4)), ("Test", (5, 6)))):
    """Features whose classes lie ``class_gap`` apart on feature 0 while every
    speaker's features are offset by a speaker-specific draw (sd ``offset_sd``):
    ``(X, y, split, speaker)``, ``n_per`` rows per speaker and class."""
    rng = np.random.default_rng(seed)
    X, y, split, speaker = [], [], [], []
    for s, speakers in splits:
        for a in speakers:
            offset = rng.normal(0, offset_sd, size=n_dims)
            for label in range(n_classes):
                x = rng.normal(0, noise_sd, size=(n_per, n_dims)) + offset
                x[:, 0] += class_gap * label
                X.append(x)
                y += [label] * n_per
                split += [s] * n_per
                speaker += [a] * n_per
    return np.vstack(X), np.array(y), np.array(split), np.array(speaker)
