import warnings

import librosa
import numpy as np
import pytest
from conftest import tone

from ser.data.audio import hop_samples, read_mono
from ser.config import CONFIG
from ser.features.spectro import mel_centres_hz, mel_from_config, mel_spectrogram, stft_power


def librosa_mel(y, sr, power=2.0, n_mels=3401, n_fft=16384):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return librosa.feature.melspectrogram(y=y, sr=sr, n_mels=n_mels, n_fft=n_fft,
                                              hop_length=hop_samples(sr, 0.015), power=power)


def rel_diff(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.mark.parametrize("key", ["Train/Angry/03-01-05-01-01-01-01.wav",
                                 "Train/Calm/03-01-02-01-01-02-01.wav",  # stereo
                                 "Test/Sad/03-01-04-02-02-02-08.wav"])
@pytest.mark.parametrize("power", [2.0, 1.0])
def test_equals_librosa_on_real_clips(data_dir, key, power):
    y, sr = read_mono(data_dir / key)
    ours = mel_from_config(y, sr, CONFIG.mel, power=power)
    ref = librosa_mel(y, sr, power)[:, :200]
    assert ours.shape == ref.shape == (3401, 200)
    assert rel_diff(ours, ref) <= 1e-6


def test_whole_clip_equals_librosa(data_dir):
    y, sr = read_mono(data_dir / "Test/Happy/03-01-03-01-01-01-05.wav")
    ours = mel_from_config(y, sr, CONFIG.mel, n_frames=None, power=1.0)
    ref = librosa_mel(y, sr, 1.0)
    assert ours.shape == ref.shape
    assert rel_diff(ours, ref) <= 1e-6


def test_short_clip_is_zero_padded_after_librosas_frames():
    sr = 16000
    y = tone(1000, sr, 0.5) + 0.01  # 0.5 s: 1 + 8000 // 240 = 34 frames
    ours = mel_spectrogram(y, sr_hz=sr, n_mels=128, n_fft=2048, hop_length=240, n_frames=200)
    ref = librosa_mel(y, sr, n_mels=128, n_fft=2048)
    assert ref.shape[1] == 34
    assert ours.shape == (128, 200)
    assert rel_diff(ours[:, :34], ref) <= 1e-6
    assert not ours[:, 34:].any()


def test_other_sample_rate_matches_librosa():
    sr = 22050
    rng = np.random.default_rng(0)
    y = rng.standard_normal(sr * 2).astype(np.float32) * 0.1
    ours = mel_spectrogram(y, sr_hz=sr, n_mels=256, n_fft=4096, hop_length=hop_samples(sr, 0.015), n_frames=100)
    ref = librosa_mel(y, sr, n_mels=256, n_fft=4096)[:, :100]
    assert rel_diff(ours, ref) <= 1e-6


def test_pure_tone_peaks_at_its_frequency():
    sr, f0 = 16000, 1500.0
    P = stft_power(tone(f0, sr, 1.0), n_fft=4096, hop_length=240, n_frames=10)
    peak_bins = P[:, 5].argmax()
    assert abs(peak_bins * sr / 4096 - f0) <= sr / 4096


def test_mel_centres_are_librosas():
    c = mel_centres_hz(48000, 3401)
    assert c.shape == (3401,)
    np.testing.assert_allclose(c, librosa.mel_frequencies(3403, fmin=0, fmax=24000)[1:-1])
    assert np.all(np.diff(c) > 0)
