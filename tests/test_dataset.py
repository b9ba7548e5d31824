import numpy as np
import pytest
from conftest import tone, write_wav

from ser.data.dataset import (class_names, eval_splits_of, find_data_dir, image_records, list_clips, present_splits,
                         ravdess_actor, training_speakers)
from ser.errors import DataError


def test_shared_data_set_layout(data_dir):
    clips = list_clips(data_dir)
    assert class_names(data_dir) == ["Angry", "Calm", "Happy", "Sad"]
    assert present_splits(data_dir) == ("Train", "Test", "Confirm")
    assert eval_splits_of(clips) == ("Test", "Confirm")
    assert len(clips) == 128 + 128 + 256
    for split, speakers, per_class in (("Train", {str(a) for a in range(1, 5)}, 32),
                                       ("Test", {str(a) for a in range(5, 9)}, 32),
                                       ("Confirm", {str(a) for a in range(9, 17)}, 64)):
        sc = [c for c in clips if c.split == split]
        assert {c.speaker for c in sc} == speakers
        assert np.bincount([c.label for c in sc]).tolist() == [per_class] * 4
    assert all(c.class_name == ["Angry", "Calm", "Happy", "Sad"][c.label] for c in clips)


def test_classes_are_alphabetical_not_listing_order(tiny_dataset):
    clips = list_clips(tiny_dataset)
    assert [c.class_name for c in clips if c.split == "Train"][::2] == ["Angry", "Calm", "Happy", "Sad"]
    assert clips[0].key == "Train/Angry/03-01-05-01-01-01-01.wav"
    assert clips[0].speaker == "1"


def test_stray_files_are_skipped_with_a_warning(tiny_dataset):
    (tiny_dataset / "Train" / "Calm" / ".DS_Store").write_bytes(b"\0\1")
    (tiny_dataset / "Train" / "Calm" / "notes.txt").write_text("x")
    with pytest.warns(UserWarning) as caught:
        clips = list_clips(tiny_dataset)
    assert len(clips) == 16
    assert sorted(str(w.message).rsplit("/", 1)[-1] for w in caught) == [
        ".DS_Store: skipped (not a .wav file)", "notes.txt: skipped (not a .wav file)"]


def test_missing_split_is_named(tiny_dataset):
    import shutil

    shutil.rmtree(tiny_dataset / "Test")
    with pytest.raises(DataError, match=r"Test: missing split folder"):
        list_clips(tiny_dataset)


def test_class_missing_in_test_is_named(tiny_dataset):
    import shutil

    shutil.rmtree(tiny_dataset / "Test" / "Sad")
    with pytest.raises(DataError, match=r"Test: class folders \['Angry', 'Calm', 'Happy'\] differ"):
        list_clips(tiny_dataset)


def test_class_without_clips_is_named(tiny_dataset):
    for p in (tiny_dataset / "Train" / "Happy").iterdir():
        p.unlink()
    with pytest.raises(DataError, match=r"Train/Happy: class 'Happy' has no \.wav clips"):
        list_clips(tiny_dataset)


def test_names_of_no_known_corpus_stop_unless_speakers_are_declared_or_opted_out(tmp_path):
    root = tmp_path / "d"
    for split in ("Train", "Test"):
        write_wav(root / split / "A" / "clip1.wav", tone(300, 8000, 0.1))
    with pytest.raises(DataError, match=r"Train/A/clip1\.wav: no speaker known .*speakers\.csv.*speaker_pattern"):
        list_clips(root, "")
    clips = list_clips(root, "none")
    assert [c.speaker for c in clips] == [None, None]
    assert training_speakers([c for c in clips if c.split == "Train"]) is None


def test_explicit_or_env_path_is_used_and_checked(tmp_path, monkeypatch):
    assert find_data_dir(tmp_path) == tmp_path.resolve()
    monkeypatch.setenv("SER_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="nowhere"):
        find_data_dir()


def test_confirm_is_optional_and_read_when_present(tiny_dataset):
    clips = list_clips(tiny_dataset)
    assert present_splits(tiny_dataset) == ("Train", "Test") and eval_splits_of(clips) == ("Test",)
    write_wav(tiny_dataset / "Confirm" / "Calm" / "03-01-02-01-01-01-09.wav", tone(300, 16000, 0.1))
    for name in ("Angry", "Happy", "Sad"):
        write_wav(tiny_dataset / "Confirm" / name / "03-01-05-01-01-01-09.wav", tone(300, 16000, 0.1))
    clips = list_clips(tiny_dataset)
    assert present_splits(tiny_dataset) == ("Train", "Test", "Confirm")
    assert eval_splits_of(clips) == ("Test", "Confirm")
    assert [c.split for c in clips][-4:] == ["Confirm"] * 4 and clips[-1].speaker == "9"


def test_training_speakers_need_every_clip_to_have_one(tmp_path):
    from ser.data.dataset import Clip

    train = [Clip(tmp_path / "a.wav", "Train", 0, "A", "3"), Clip(tmp_path / "clip1.wav", "Train", 0, "A", None)]
    with pytest.raises(DataError, match=r"clip1\.wav: no speaker known for this training clip"):
        training_speakers(train)
    assert training_speakers(train[:1]).tolist() == ["3"]
    with pytest.raises(DataError, match="no training clips"):
        training_speakers([])


def test_ravdess_actor_of_wav_and_png_names():
    assert ravdess_actor("03-01-05-01-01-01-12.wav") == 12
    assert ravdess_actor("03-01-05-01-01-01-12.png") == 12
    assert ravdess_actor("Train/Angry/03-01-05-01-01-01-12") == 12
    assert ravdess_actor("clip.wav") is None


def test_image_records_read_speaker_labels_and_wav_keys(tmp_path):
    for split, speakers in (("Train", (1, 2)), ("Test", (5,))):
        for name, code in (("Calm", "02"), ("Angry", "05")):
            for a in speakers:
                p = tmp_path / split / name / f"03-01-{code}-01-01-01-{a:02d}.png"
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_bytes(b"png")
    recs = image_records(tmp_path, "Train")
    assert [(r["class_name"], r["label"], r["speaker"]) for r in recs] == [
        ("Angry", 0, "1"), ("Angry", 0, "2"), ("Calm", 1, "1"), ("Calm", 1, "2")]
    assert recs[0]["key"] == "Train/Angry/03-01-05-01-01-01-01.wav" and recs[0]["split"] == "Train"
    assert [r["label"] for r in image_records(tmp_path, "Test", classes=["Calm", "Angry"])] == [0, 1]
    with pytest.raises(DataError, match=r"Test/Sad: missing class folder"):
        image_records(tmp_path, "Test", classes=["Angry", "Calm", "Sad"])
