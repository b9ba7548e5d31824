"""`doit data` recipes (ser.data.corpus) on small synthetic trees of tiny WAV files."""
import csv
import importlib.util
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ser.config import CONFIG, PROJECT_DIR
from ser.data.corpus import build_layout, get_corpus, parse_speakers, plan
from ser.errors import ConfigError, DataError

EMODB = dict(CONFIG.data.emodb_emotions)
CREMAD = dict(CONFIG.data.cremad_emotions)
RAVDESS = dict(CONFIG.data.ravdess_emotions)


def wav(path: Path, seed: int = 0, n: int = 320) -> Path:
    """A tiny 16 kHz mono WAV (``n`` samples of noise)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    y = np.random.default_rng(seed).uniform(-0.3, 0.3, n).astype(np.float32)
    sf.write(str(path), y, 16000, subtype="PCM_16")
    return path


def read_csv(root: Path) -> list[tuple[str, str]]:
    with open(root / "speakers.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["path", "speaker"]
    return [tuple(r) for r in rows[1:]]


def layout(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*.wav")}


def leftovers(parent: Path) -> list[str]:
    """Temporary files or folders a run left beside its output."""
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


# ------------------------------------------------------------------ EmoDB trees

EMODB_SPEAKERS = ("03", "08", "09", "10", "11")


@pytest.fixture
def emodb_src(tmp_path) -> Path:
    """Speakers 03, 08-11, each with one file per emotion letter W F T N A E L,
    at several depths, plus files that are not EmoDB clips."""
    root = tmp_path / "emodb"
    k = 0
    for spk in EMODB_SPEAKERS:
        for letter in "WFTNAEL":
            k += 1
            sub = root / "download" / "wav" if int(spk) % 2 else root / "other" / "deep" / spk
            wav(sub / f"{spk}a0{1 + k % 5}{letter}a.wav", seed=k)
    wav(root / "download" / "wav" / "03a01Xa.wav", seed=99)  # a letter outside the mapping
    wav(root / "download" / "wav" / "notes.wav", seed=98)  # not named like EmoDB
    (root / "download" / "erklaerung.txt").write_text("not audio")
    return root


def test_emodb_names_are_parsed():
    p = plan(["wav/03a01Fa.wav", "x/16b10Wb.wav", "14b09Ea.wav", "03a01Xa.wav", "3a01Fa.wav", "readme.txt"],
             "emodb", EMODB, {"Train": (3, 16), "Test": (14,)})
    assert [(rel, spk) for _, rel, spk in p.jobs] == [
        ("Test/Disgust/14b09Ea.wav", "14"), ("Train/Angry/16b10Wb.wav", "16"), ("Train/Happy/03a01Fa.wav", "03")]
    assert dict(p.skipped_emotions) == {"X": 1}
    assert sum(p.skipped.values()) == 1  # 3a01Fa.wav: one speaker digit; readme.txt is not a .wav at all


def test_emodb_layout_and_speakers_csv(emodb_src, tmp_path):
    out = tmp_path / "EmotionSpeech"
    done = build_layout(str(emodb_src), out, corpus="emodb", train="03,8-9", test="10-11")
    classes = {"Angry", "Happy", "Sad", "Neutral", "Fear", "Disgust", "Boredom"}
    assert done["n_clips"] == 35
    assert {k: v for k, v in done["per_folder"].items() if k.startswith("Train/")} == \
        {f"Train/{c}": 3 for c in classes}
    assert done["speakers"] == {"Train": ["03", "08", "09"], "Test": ["10", "11"]}
    assert done["skipped"]["emotion X (not mapped)"] == 1
    assert sum(n for why, n in done["skipped"].items() if "not named like EmoDB" in why) == 1
    # each emotion letter landed in its class folder, whatever the depth of the source file
    files = layout(out)
    assert {f.split("/")[1] for f in files} == classes
    letter_of = {v: k for k, v in EMODB.items()}
    assert all(f.rsplit("/", 1)[1][5] == letter_of[f.split("/")[1]] for f in files)
    # speakers.csv: one row per copied file, relative forward-slash paths, the corpus' own spelling
    rows = read_csv(out)
    assert {r[0] for r in rows} == files and len(rows) == len(files)
    assert ("Train/Angry/" + next(f for f in sorted(files) if "/03a" in f and "/Angry/" in f).rsplit("/", 1)[1],
            "03") in rows
    assert {spk for path, spk in rows if path.startswith("Test/")} == {"10", "11"}
    assert all(spk == path.rsplit("/", 1)[1][:2] for path, spk in rows)
    # the copies are the source files, byte for byte
    src = {p.name: p for p in emodb_src.rglob("*.wav")}
    assert all((out / f).read_bytes() == src[f.rsplit("/", 1)[1]].read_bytes() for f in files)
    assert leftovers(tmp_path) == []


# ----------------------------------------------------------------- CREMA-D trees

def make_cremad(root: Path, speakers=(1001, 1002, 1091), emotions=("ANG", "HAP", "SAD", "NEU", "FEA", "DIS")):
    k = 0
    for spk in speakers:
        for emo in emotions:
            for sentence, level in (("DFA", "XX"), ("IEO", "HI")):
                k += 1
                wav(root / "AudioWAV" / f"{spk}_{sentence}_{emo}_{level}.wav", seed=k)
    wav(root / "AudioWAV" / f"{speakers[0]}_DFA_SUR_XX.wav", seed=500)  # no such emotion in the mapping
    return root


def test_cremad_names_are_parsed():
    p = plan(["1001_DFA_ANG_XX.wav", "a/1091_IEO_FEA_LO.wav", "1002_TIE_NEU_XX.wav", "1001_DFA_ANG.wav"],
             "cremad", CREMAD, {"Train": (1001,), "Test": (1091,)})
    assert [(rel, spk) for _, rel, spk in p.jobs] == [("Test/Fear/1091_IEO_FEA_LO.wav", "1091"),
                                                     ("Train/Angry/1001_DFA_ANG_XX.wav", "1001")]
    assert p.skipped["speaker in no split"] == 1 and sum(p.skipped.values()) == 2


def test_cremad_zip_only_mapped_emotions(tmp_path):
    src = make_cremad(tmp_path / "cremad")
    z = tmp_path / "crema.zip"
    with zipfile.ZipFile(z, "w") as f:
        for p in src.rglob("*.wav"):
            f.write(p, p.relative_to(src).as_posix())
    out = tmp_path / "ES"
    done = build_layout(str(z), out, corpus="cremad", train="1001-1002", test="1091",
                        emotions={"ANG": "Angry", "SAD": "Sad"})
    assert done["n_clips"] == 12  # 3 speakers x 2 emotions x 2 sentences
    assert {f.split("/")[1] for f in layout(out)} == {"Angry", "Sad"}
    assert done["skipped"] == {"emotion DIS (not mapped)": 6, "emotion FEA (not mapped)": 6,
                               "emotion HAP (not mapped)": 6, "emotion NEU (not mapped)": 6,
                               "emotion SUR (not mapped)": 1}
    assert sorted(read_csv(out))[:2] == [("Test/Angry/1091_DFA_ANG_XX.wav", "1091"),
                                         ("Test/Angry/1091_IEO_ANG_HI.wav", "1091")]
    assert {spk for _, spk in read_csv(out)} == {"1001", "1002", "1091"}


def test_cremad_default_mapping_has_six_classes(tmp_path):
    src = make_cremad(tmp_path / "cremad")
    done = build_layout(str(src), tmp_path / "ES", corpus="cremad", train="1001,1002", test="1091")
    assert {k.split("/")[1] for k in done["per_folder"]} == {"Angry", "Happy", "Sad", "Neutral", "Fear", "Disgust"}
    assert done["per_folder"]["Train/Fear"] == 4 and done["per_folder"]["Test/Fear"] == 2


# ----------------------------------------------------------------- RAVDESS trees

def test_ravdess_speakers_are_written_without_padding(tmp_path):
    src = tmp_path / "ravdess"
    for actor in (1, 12):
        for emo in ("01", "02", "03", "04", "05"):
            wav(src / f"Actor_{actor:02d}" / f"03-01-{emo}-01-01-01-{actor:02d}.wav", seed=actor * 10 + int(emo))
        wav(src / f"Actor_{actor:02d}" / f"03-02-05-01-01-01-{actor:02d}.wav")  # song: not speech
    out = tmp_path / "ES"
    done = build_layout(str(src), out, corpus="ravdess", train="1", test="12")
    assert done["n_clips"] == 8
    assert done["skipped"] == {"not speech audio-only (03-01)": 2, "emotion 01 (not mapped)": 2}
    assert ("Test/Angry/03-01-05-01-01-01-12.wav", "12") in read_csv(out)
    assert {spk for _, spk in read_csv(out)} == {"1", "12"}
    assert {f.split("/")[1] for f in layout(out)} == set(RAVDESS.values())


# ------------------------------------------------------------------- speakers

def test_speaker_lists():
    assert parse_speakers("03,08-11") == (3, 8, 9, 10, 11)
    assert parse_speakers("1001, 1002") == (1001, 1002)
    assert parse_speakers(["03", 8]) == (3, 8)
    assert parse_speakers("1-3,2") == (1, 2, 3)
    assert parse_speakers("") == ()
    with pytest.raises(ConfigError, match="'11-8' is empty"):
        parse_speakers("11-8")
    with pytest.raises(ConfigError, match="expected numbers"):
        parse_speakers("03,eight")
    with pytest.raises(ConfigError, match="unknown.*ravdess, emodb, cremad"):
        get_corpus("savee")


def test_a_speaker_in_two_splits_is_an_error(emodb_src, tmp_path):
    out = tmp_path / "ES"
    with pytest.raises(ConfigError, match=r"speakers \[9\] are in both the Train and the Test split"):
        build_layout(str(emodb_src), out, corpus="emodb", train="03,08-09", test="09-11")
    with pytest.raises(ConfigError, match=r"speakers \[3\] are in both the Test and the Confirm split"):
        build_layout(str(emodb_src), out, corpus="emodb", train="08", test="3,9", confirm="03")
    assert not out.exists() and leftovers(tmp_path) == []


def test_a_listed_speaker_without_files_is_an_error_naming_it(emodb_src, tmp_path):
    out = tmp_path / "ES"
    with pytest.raises(DataError, match=r"speaker 16 \(Test split\) has no EmoDB clips in") as exc:
        build_layout(str(emodb_src), out, corpus="emodb", train="03,08", test="9-11,16")
    assert "speaker 3 " not in str(exc.value)  # only the missing one is named
    assert not out.exists() and leftovers(tmp_path) == []
    # a speaker whose files all have unmapped emotions is named too, with the emotions it has
    src = tmp_path / "src"
    for name in ("03a01La.wav", "08a01Wa.wav", "09a01Wa.wav"):
        wav(src / name)
    with pytest.raises(DataError, match=r"speaker 3 \(Train split\) has no clips of the emotions \['W'\] "
                                        r"\(only \['L'\]\)"):
        build_layout(str(src), out, corpus="emodb", train="03,08", test="9", emotions={"W": "Angry"})
    assert not out.exists() and leftovers(tmp_path) == []


def test_a_split_without_a_class_is_an_error(tmp_path):
    src = tmp_path / "src"
    for name in ("03a01Wa.wav", "03a01Fa.wav", "08a01Wa.wav"):
        wav(src / name)
    with pytest.raises(DataError, match="no clips for Test/Happy with these speakers"):
        build_layout(str(src), tmp_path / "ES", corpus="emodb", train="3", test="8",
                     emotions={"W": "Angry", "F": "Happy"})
    assert not (tmp_path / "ES").exists()


# ---------------------------------------------------------- no half-written output

def test_a_bad_file_leaves_no_half_layout(emodb_src, tmp_path):
    # a Git LFS pointer named like a clip: found after some files were already copied
    (emodb_src / "download" / "wav" / "11b10Wa.wav").write_text(
        "version https://git-lfs.github.com/spec/v1\noid sha256:0\nsize 1\n")
    out = tmp_path / "ES"
    with pytest.raises(DataError, match=r"11b10Wa\.wav: not a readable audio file"):
        build_layout(str(emodb_src), out, corpus="emodb", train="03,08-10", test="11")
    assert not out.exists() and leftovers(tmp_path) == []
    # an empty output folder that was there stays, empty
    out.mkdir()
    with pytest.raises(DataError):
        build_layout(str(emodb_src), out, corpus="emodb", train="03,08-10", test="11")
    assert out.is_dir() and list(out.iterdir()) == [] and leftovers(tmp_path) == []


def test_one_name_twice(tmp_path):
    src = tmp_path / "src"
    for spk in ("03", "08"):
        wav(src / "a" / f"{spk}a01Wa.wav", seed=int(spk))
    a = src / "a" / "03a01Wa.wav"
    (src / "b").mkdir()
    (src / "b" / "03a01Wa.wav").write_bytes(a.read_bytes())  # the same file again: taken once
    done = build_layout(str(src), tmp_path / "ES", corpus="emodb", train="3", test="8", emotions={"W": "Angry"})
    assert done["n_clips"] == 2 and done["skipped"] == {"the same file twice": 1}
    wav(src / "b" / "03a01Wa.wav", seed=7, n=500)  # another file with the same name: an error naming both
    with pytest.raises(DataError, match=r"a/03a01Wa\.wav and b/03a01Wa\.wav: two different files"):
        build_layout(str(src), tmp_path / "ES2", corpus="emodb", train="3", test="8", emotions={"W": "Angry"})
    assert not (tmp_path / "ES2").exists()


# ------------------------------------------------------------------- doit data

@pytest.fixture(scope="module")
def task_data():
    spec = importlib.util.spec_from_file_location("dodo_for_data", PROJECT_DIR / "dodo.py")
    dodo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dodo)
    return dodo.task_data()


def test_doit_data_emodb(task_data, emodb_src, tmp_path, capsys):
    build = task_data["actions"][0]
    params = {p["name"]: p["default"] for p in task_data["params"]}
    assert params["corpus"] == "ravdess"
    failed = build(**{**params, "src": str(emodb_src), "out": str(tmp_path / "ES"), "corpus": "emodb"})
    assert failed is not None and "needs --train and --test" in str(failed)
    assert not (tmp_path / "ES").exists()
    ok = build(**{**params, "src": str(emodb_src), "out": str(tmp_path / "ES"), "corpus": "emodb",
                  "train": "3,8", "test": "9-11"})
    assert ok is None
    text = capsys.readouterr().out
    assert "35 EmoDB clips" in text and "Train 03, 08; Test 09, 10, 11" in text
    assert "1 emotion X (not mapped)" in text
    assert len(read_csv(tmp_path / "ES")) == 35
