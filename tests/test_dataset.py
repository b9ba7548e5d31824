import numpy as np
import pytest
from conftest import tone, write_wav

from ser.dataset import class_names, find_data_dir, list_clips
from ser.errors import DataError


def test_shared_data_set_layout(data_dir):
    clips = list_clips(data_dir)
    assert len(clips) == 256
    assert class_names(data_dir) == ["Angry", "Calm", "Happy", "Sad"]
    for split, actors in (("Train", {1, 2, 3, 4}), ("Test", {5, 6, 7, 8})):
        sc = [c for c in clips if c.split == split]
        assert {c.actor for c in sc} == actors
        assert np.bincount([c.label for c in sc]).tolist() == [32, 32, 32, 32]
    assert all(c.class_name == ["Angry", "Calm", "Happy", "Sad"][c.label] for c in clips)


def test_classes_are_alphabetical_not_listing_order(tiny_dataset):
    clips = list_clips(tiny_dataset)
    assert [c.class_name for c in clips if c.split == "Train"][::2] == ["Angry", "Calm", "Happy", "Sad"]
    assert clips[0].key == "Train/Angry/03-01-05-01-01-01-01.wav"
    assert clips[0].actor == 1


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


def test_non_ravdess_names_have_no_actor(tmp_path):
    root = tmp_path / "d"
    for split in ("Train", "Test"):
        write_wav(root / split / "A" / "clip1.wav", tone(300, 8000, 0.1))
    clips = list_clips(root)
    assert [c.actor for c in clips] == [None, None]


def test_explicit_or_env_path_is_used_and_checked(tmp_path, monkeypatch):
    assert find_data_dir(tmp_path) == tmp_path.resolve()
    monkeypatch.setenv("SER_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="nowhere"):
        find_data_dir()
