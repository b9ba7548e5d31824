"""The RAVDESS recipe of `doit data` (ser/data/corpus.py): actor folders and the official zip become the layout."""
import csv
import shutil
import zipfile

import pytest

from ser.config import CONFIG
from ser.data.dataset import list_clips
from ser.errors import ConfigError, DataError
from ser.data.corpus import build_layout, plan
from ser.data.corpus import parse_speakers as parse_actors

EMO = dict(CONFIG.data.ravdess_emotions)


def speakers_by_split(root) -> dict[str, set[str]]:
    """The speakers of each split, read from the layout's speakers.csv."""
    with open(root / "speakers.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    out: dict[str, set[str]] = {}
    for r in rows:
        assert (root / r["path"]).is_file(), r
        out.setdefault(r["path"].split("/")[0], set()).add(r["speaker"])
    return out


@pytest.fixture
def fake_ravdess(tmp_path, data_dir):
    """Actor_NN folders made from a few shared clips, renamed as RAVDESS would."""
    src = next((data_dir / "Train" / "Angry").glob("*.wav"))
    root = tmp_path / "ravdess"
    for actor in (1, 2, 5, 9):
        for emo in ("01", "02", "03", "04", "05"):
            d = root / f"Actor_{actor:02d}"
            d.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, d / f"03-01-{emo}-01-01-01-{actor:02d}.wav")
        shutil.copy(src, d / f"02-01-05-01-01-01-{actor:02d}.wav")  # video-only: ignored
        shutil.copy(src, d / f"03-02-05-01-01-01-{actor:02d}.wav")  # song: ignored
    return root


def test_folder_of_actors_becomes_the_layout(fake_ravdess, tmp_path):
    out = tmp_path / "EmotionSpeech"
    done = build_layout(str(fake_ravdess), out, emotions=EMO, train="1-2", test="5")
    assert done["n_clips"] == 12  # 3 actors x 4 emotions; neutral, song, video and actor 9 left out
    clips = list_clips(out)
    assert len(clips) == 12
    assert speakers_by_split(out) == {"Train": {"1", "2"}, "Test": {"5"}}
    assert {c.class_name for c in clips} == {"Angry", "Calm", "Happy", "Sad"}
    assert all(c.path.name[6:8] == {"Angry": "05", "Calm": "02", "Happy": "03", "Sad": "04"}[c.class_name]
               for c in clips)


def test_zip_archive_becomes_the_layout(fake_ravdess, tmp_path):
    z = tmp_path / "Audio_Speech_Actors_01-24.zip"
    with zipfile.ZipFile(z, "w") as f:
        for p in fake_ravdess.rglob("*.wav"):
            f.write(p, p.relative_to(fake_ravdess))
    done = build_layout(str(z), tmp_path / "out", emotions=EMO, train=(1,), test=(2, 5))
    assert done["per_folder"]["Test/Sad"] == 2


def test_refuses_to_overwrite_and_leaves_nothing_on_error(fake_ravdess, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    with pytest.raises(DataError, match="already exists and is not empty"):
        build_layout(str(fake_ravdess), out, emotions=EMO, train="1", test="5")
    assert (out / "mine.txt").read_text() == "keep"
    with pytest.raises(DataError, match="no clips for Test/"):
        build_layout(str(fake_ravdess), tmp_path / "o2", emotions=EMO, train="1", test="7")
    assert not (tmp_path / "o2").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_actor_lists():
    assert parse_actors("1-4") == (1, 2, 3, 4) and parse_actors("1, 3") == (1, 3)
    with pytest.raises(ConfigError, match="expected numbers"):
        parse_actors("one")
    with pytest.raises(ConfigError, match="in both"):
        plan([], "ravdess", EMO, {"Train": (1, 2), "Test": (2, 3)})


def test_confirm_actors_make_a_third_split(fake_ravdess, tmp_path):
    out = tmp_path / "EmotionSpeech"
    done = build_layout(str(fake_ravdess), out, emotions=EMO, train="1-2", test="5", confirm="9")
    assert done["n_clips"] == 16 and "Confirm/Angry" in done["per_folder"]
    clips = list_clips(out)
    assert {c.split for c in clips} == {"Train", "Test", "Confirm"}
    assert speakers_by_split(out)["Confirm"] == {"9"}
    with pytest.raises(ConfigError, match="both the Test and the Confirm split"):
        build_layout(str(fake_ravdess), tmp_path / "x", emotions=EMO, train="1-2", test="5", confirm="5")
