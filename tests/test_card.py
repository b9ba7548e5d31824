import shutil

import numpy as np
import pytest

from ser.evaluate.card import build_card, summarise
from ser.data.dataset import class_names, list_clips


def test_card_counts_and_clean_splits(tiny_dataset):
    card = build_card(list_clips(tiny_dataset), class_names(tiny_dataset), str(tiny_dataset), 0.015)
    assert card["splits"]["Train"]["per_class"] == {"Angry": 2, "Calm": 2, "Happy": 2, "Sad": 2}
    assert card["splits"]["Test"]["speakers"] == ["5", "6"]
    assert card["splits"]["Test"]["clips_per_speaker"] == {"5": 4, "6": 4}
    assert card["splits"]["Test"]["majority_rate"] == 0.25
    assert card["splits"]["Train"]["sample_rates_hz"] == [16000]
    assert card["leakage"]["clean"]


def test_card_finds_shared_speaker_and_copied_audio(tiny_dataset, capsys):
    src = tiny_dataset / "Train" / "Sad" / "03-01-04-01-01-01-01.wav"
    # same audio under another name in Test, spoken by a training speaker
    shutil.copy(src, tiny_dataset / "Test" / "Sad" / "03-01-04-01-01-02-01.wav")
    card = build_card(list_clips(tiny_dataset), class_names(tiny_dataset), str(tiny_dataset), 0.015)
    assert card["leakage"]["shared_speakers"] == ["1"]
    assert card["leakage"]["duplicate_audio"] == [["Train/Sad/03-01-04-01-01-01-01.wav",
                                                   "Test/Sad/03-01-04-01-01-02-01.wav"]]
    # a second copy of the same clip in Test: every pair is listed
    shutil.copy(src, tiny_dataset / "Test" / "Sad" / "03-01-04-01-01-02-05.wav")
    card = build_card(list_clips(tiny_dataset), class_names(tiny_dataset), str(tiny_dataset), 0.015)
    assert card["leakage"]["duplicate_audio"] == [
        ["Train/Sad/03-01-04-01-01-01-01.wav", "Test/Sad/03-01-04-01-01-02-01.wav"],
        ["Train/Sad/03-01-04-01-01-01-01.wav", "Test/Sad/03-01-04-01-01-02-05.wav"]]
    assert not card["leakage"]["clean"]
    assert "WARNING: leakage" in capsys.readouterr().err


def _records(n_samples, sr):
    from ser.data.audio import AudioInfo

    info = AudioInfo(sr_hz=sr, n_channels=1, n_samples=n_samples, subtype="PCM_16")
    return [{"key": f"Train/A/{i}.wav", "split": split, "class": "A", "speaker": None, "sr_hz": sr,
             "channels": 1, "subtype": "PCM_16", "n_samples": n_samples, "duration_s": info.duration_s, "audio_sha256": f"{split}{i}"}
            for i, split in enumerate(("Train", "Test"))]


# Lengths where n / sr * sr falls just below n in floating point (e.g. 67 hops
# at 16 kHz), and their neighbours.
@pytest.mark.parametrize("sr, k", [(16000, 67), (16000, 134), (16000, 10), (48000, 19), (48000, 69),
                                   (44100, 5), (44100, 41), (22050, 7)])
@pytest.mark.parametrize("extra", [-1, 0, 1])
def test_frame_count_is_one_plus_samples_over_hop(sr, k, extra):
    from ser.data.audio import hop_samples

    hop = hop_samples(sr, 0.015)
    n = k * hop + extra
    card = summarise(_records(n, sr), ["A"], "d", 0.015)
    assert card["splits"]["Train"]["n_frames"] == {"min": 1 + n // hop, "mean": 1 + n // hop, "max": 1 + n // hop}


def test_frame_count_of_real_files(tmp_path):
    from conftest import write_wav

    root = tmp_path / "d"
    # 67 hops of 240 samples at 16 kHz: 68 frames; one sample less: 67
    write_wav(root / "Train" / "A" / "03-01-05-01-01-01-01.wav", np.full(67 * 240, 0.1, np.float32))
    write_wav(root / "Test" / "A" / "03-01-05-01-01-01-05.wav", np.full(67 * 240 - 1, 0.1, np.float32))
    card = build_card(list_clips(root), class_names(root), str(root), 0.015)
    assert card["splits"]["Train"]["n_frames"]["max"] == 68
    assert card["splits"]["Test"]["n_frames"]["max"] == 67
    assert card["splits"]["Train"]["shorter_than_200_frames"] == 1
