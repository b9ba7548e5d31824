"""The data set's fingerprint: its content, not where it lies."""
import shutil

import numpy as np
import soundfile as sf

from ser.evaluate.card import build_card
from ser.data.dataset import class_names, list_clips


def card_of(root):
    return build_card(list_clips(root), class_names(root), str(root), 0.015)


def test_fingerprint_ignores_the_folder_but_not_one_sample(tiny_dataset, tmp_path):
    first = card_of(tiny_dataset)
    assert len(first["fingerprint_sha256"]) == 64 and first["data_name"] == "EmotionSpeech"

    moved = tmp_path / "elsewhere" / "EmotionSpeech"
    shutil.copytree(tiny_dataset, moved)
    again = card_of(moved)
    assert again["fingerprint_sha256"] == first["fingerprint_sha256"]
    assert again["data_dir"] != first["data_dir"]

    clip = moved / "Test" / "Happy" / "03-01-03-01-01-01-06.wav"
    y, sr = sf.read(str(clip), dtype="int16")
    y[1000] = y[1000] + 1  # one sample, one least significant bit
    sf.write(str(clip), y, sr, subtype="PCM_16")
    changed = card_of(moved)
    assert changed["fingerprint_sha256"] != first["fingerprint_sha256"]
    assert changed["n_clips"] == first["n_clips"]


def test_fingerprint_sees_a_clip_moved_to_another_class(tiny_dataset):
    first = card_of(tiny_dataset)
    src = tiny_dataset / "Train" / "Sad" / "03-01-04-01-01-01-02.wav"
    shutil.move(src, tiny_dataset / "Train" / "Calm" / src.name)
    assert card_of(tiny_dataset)["fingerprint_sha256"] != first["fingerprint_sha256"]


def test_fingerprint_counts_every_split_it_is_given(tiny_dataset):
    """A third split (e.g. "Confirm") in the clip list changes the fingerprint."""
    from ser.evaluate.card import clip_record, fingerprint
    from ser.data.dataset import Clip

    clips = list_clips(tiny_dataset)
    records = [clip_record(c) for c in clips]
    extra = tiny_dataset / "Confirm" / "Angry" / "03-01-05-01-01-01-09.wav"
    extra.parent.mkdir(parents=True)
    sf.write(str(extra), np.zeros(800, np.float32), 16000, subtype="PCM_16")
    more = records + [clip_record(Clip(extra, "Confirm", 0, "Angry"))]
    assert fingerprint(more) != fingerprint(records)
    assert fingerprint(list(reversed(records))) == fingerprint(records)
