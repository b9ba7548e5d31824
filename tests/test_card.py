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


# ------------------------------------------------------------------ leakage: the same audio in two splits

SPLIT_ACTORS = {"Train": (1, 2), "Test": (5, 6), "Confirm": (9, 10)}


def _noise(seed, n=1600):
    return np.random.default_rng(seed).uniform(-0.5, 0.5, n).astype(np.float32)


def _three_splits(root):
    """Train, Test and Confirm, 2 classes x 2 actors each, every clip its own noise (PCM_16, 0.1 s)."""
    from conftest import write_wav

    seed = 0
    for split, actors in SPLIT_ACTORS.items():
        for cls, code in (("Angry", "05"), ("Sad", "04")):
            for a in actors:
                seed += 1
                write_wav(root / split / cls / f"03-01-{code}-01-01-01-{a:02d}.wav", _noise(seed))
    return root


def _card(root):
    return build_card(list_clips(root), class_names(root), str(root), 0.015)


def _decoded(path):
    import soundfile as sf

    y, sr = sf.read(str(path), dtype="float32")
    return y, sr


def _copy_as(src, dest, how):
    """``src``'s decoded samples written again into ``dest`` in another container."""
    import soundfile as sf

    y, sr = _decoded(src)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if how == "metadata":  # PCM_16 again, with a LIST/INFO chunk before the samples
        with sf.SoundFile(str(dest), "w", sr, 1, subtype="PCM_16") as f:
            f.title, f.comment = "a copy", "re-exported"
            f.write(y)
    elif how == "stereo":  # the same samples on both channels
        sf.write(str(dest), np.stack([y, y], axis=1), sr, subtype="PCM_16")
    else:
        sf.write(str(dest), y, sr, subtype=how)


TRAIN_CLIP = "Train/Sad/03-01-04-01-01-01-01.wav"


@pytest.mark.parametrize("how", ["FLOAT", "PCM_24", "PCM_32", "DOUBLE", "metadata", "stereo"])
def test_the_same_samples_in_another_container_are_caught_as_the_same_audio(tmp_path, how):
    root = _three_splits(tmp_path / "d")
    copy = root / "Test" / "Sad" / "03-01-04-01-01-02-05.wav"  # a Test speaker's name: only the audio leaks
    _copy_as(root / TRAIN_CLIP, copy, how)
    assert copy.read_bytes() != (root / TRAIN_CLIP).read_bytes()  # other bytes ...
    assert np.array_equal(_decoded(copy)[0].reshape(len(_decoded(root / TRAIN_CLIP)[0]), -1)[:, 0],
                          _decoded(root / TRAIN_CLIP)[0])  # ... the same samples
    leak = _card(root)["leakage"]
    assert leak["duplicate_audio"] == [[TRAIN_CLIP, "Test/Sad/03-01-04-01-01-02-05.wav"]]
    assert leak["shared_speakers"] == [] and not leak["clean"]


def test_every_pair_of_splits_is_checked_for_the_same_audio(tmp_path):
    root = _three_splits(tmp_path / "d")
    # one copy per pair of splits, each under a name of its new split's speakers, in another container
    _copy_as(root / "Train/Angry/03-01-05-01-01-01-02.wav", root / "Test/Angry/03-01-05-01-02-01-06.wav", "FLOAT")
    _copy_as(root / "Train/Sad/03-01-04-01-01-01-01.wav", root / "Confirm/Sad/03-01-04-01-02-01-09.wav", "PCM_24")
    _copy_as(root / "Test/Sad/03-01-04-01-01-01-05.wav", root / "Confirm/Sad/03-01-04-01-02-01-10.wav", "metadata")
    card = _card(root)
    assert sorted(map(tuple, card["leakage"]["duplicate_audio"])) == sorted([
        ("Train/Angry/03-01-05-01-01-01-02.wav", "Test/Angry/03-01-05-01-02-01-06.wav"),
        ("Train/Sad/03-01-04-01-01-01-01.wav", "Confirm/Sad/03-01-04-01-02-01-09.wav"),
        ("Test/Sad/03-01-04-01-01-01-05.wav", "Confirm/Sad/03-01-04-01-02-01-10.wav")])
    assert card["leakage"]["shared_speakers"] == []
    # each pair once, the earlier split first (Train, Test, Confirm)
    assert all(a.split("/")[0] != b.split("/")[0] for a, b in card["leakage"]["duplicate_audio"])
    assert [p[0].split("/")[0] + "/" + p[1].split("/")[0] for p in card["leakage"]["duplicate_audio"]] == [
        "Train/Test", "Train/Confirm", "Test/Confirm"]


@pytest.mark.parametrize("a_split, b_split, b_actor", [("Train", "Test", 5), ("Train", "Confirm", 9),
                                                       ("Test", "Confirm", 9)])
def test_a_speaker_in_two_splits_is_found_for_every_pair_of_splits(tmp_path, a_split, b_split, b_actor):
    from conftest import write_wav

    root = _three_splits(tmp_path / "d")
    a_actor = SPLIT_ACTORS[a_split][0]
    # a new clip (new audio) of a_split's first speaker, filed under b_split
    write_wav(root / b_split / "Angry" / f"03-01-05-02-02-02-{a_actor:02d}.wav", _noise(999))
    leak = _card(root)["leakage"]
    assert leak["shared_speakers"] == [str(a_actor)]
    assert leak["duplicate_audio"] == [] and not leak["clean"]


def test_two_copies_of_one_clip_in_another_split_give_one_pair_each(tmp_path):
    root = _three_splits(tmp_path / "d")
    src = root / "Test/Angry/03-01-05-01-01-01-06.wav"
    _copy_as(src, root / "Confirm/Angry/03-01-05-01-02-01-09.wav", "FLOAT")
    _copy_as(src, root / "Confirm/Angry/03-01-05-01-02-01-10.wav", "PCM_16")
    assert _card(root)["leakage"]["duplicate_audio"] == [
        ["Test/Angry/03-01-05-01-01-01-06.wav", "Confirm/Angry/03-01-05-01-02-01-09.wav"],
        ["Test/Angry/03-01-05-01-01-01-06.wav", "Confirm/Angry/03-01-05-01-02-01-10.wav"]]


def test_a_clip_doubled_inside_train_and_copied_to_test_gives_both_train_clips(tmp_path):
    root = _three_splits(tmp_path / "d")
    src = root / TRAIN_CLIP
    _copy_as(src, root / "Train/Sad/03-01-04-01-02-01-01.wav", "PCM_16")  # within a split: no leak by itself
    assert _card(root)["leakage"]["clean"]
    _copy_as(src, root / "Test/Sad/03-01-04-01-02-01-05.wav", "FLOAT")
    assert _card(root)["leakage"]["duplicate_audio"] == [
        [TRAIN_CLIP, "Test/Sad/03-01-04-01-02-01-05.wav"],
        ["Train/Sad/03-01-04-01-02-01-01.wav", "Test/Sad/03-01-04-01-02-01-05.wav"]]


def test_different_clips_raise_no_alarm_even_one_bit_apart(tmp_path):
    import soundfile as sf

    root = _three_splits(tmp_path / "d")
    y, sr = sf.read(str(root / TRAIN_CLIP), dtype="int16")
    y[800] += 1  # one least significant bit of one sample
    sf.write(str(root / "Test/Sad/03-01-04-01-02-01-05.wav"), y, sr, subtype="PCM_16")
    quieter, _ = _decoded(root / TRAIN_CLIP)
    sf.write(str(root / "Confirm/Sad/03-01-04-01-02-01-09.wav"), quieter * 0.5, sr, subtype="FLOAT")
    card = _card(root)
    assert card["leakage"] == {"shared_speakers": [], "duplicate_audio": [], "clean": True}


def test_leakage_warnings_say_each_shared_speaker_and_pair_in_a_sentence(tmp_path, capsys):
    from ser.evaluate.card import leakage_warnings

    root = _three_splits(tmp_path / "d")
    assert leakage_warnings(_card(root)) == []
    assert "leakage" not in capsys.readouterr().err
    _copy_as(root / TRAIN_CLIP, root / "Test/Sad/03-01-04-01-02-01-01.wav", "FLOAT")  # a training speaker too
    _copy_as(root / TRAIN_CLIP, root / "Confirm/Sad/03-01-04-01-02-01-09.wav", "FLOAT")
    card = _card(root)
    assert leakage_warnings(card) == [
        "speakers in two splits: ['1']",
        f"the same audio is in two splits: {TRAIN_CLIP} and Test/Sad/03-01-04-01-02-01-01.wav",
        f"the same audio is in two splits: {TRAIN_CLIP} and Confirm/Sad/03-01-04-01-02-01-09.wav",
        # the two copies are the same audio in Test and Confirm too
        "the same audio is in two splits: Test/Sad/03-01-04-01-02-01-01.wav and Confirm/Sad/03-01-04-01-02-01-09.wav"]
    err = capsys.readouterr().err
    assert err.count("WARNING: leakage:") == 4 and "Confirm/Sad/03-01-04-01-02-01-09.wav" in err


# ------------------------------------------------------------------ the card's facts, split by split


def test_clip_record_reads_the_header_and_hashes_the_decoded_samples(tmp_path):
    from ser.data.dataset import Clip
    from ser.evaluate.card import clip_record

    root = _three_splits(tmp_path / "d")
    stereo = root / "Test/Sad/03-01-04-01-02-01-05.wav"
    _copy_as(root / TRAIN_CLIP, stereo, "stereo")
    a = clip_record(Clip(root / TRAIN_CLIP, "Train", 1, "Sad", "1"))
    b = clip_record(Clip(stereo, "Test", 1, "Sad", "5"))
    assert a == {"key": TRAIN_CLIP, "split": "Train", "class": "Sad", "speaker": "1", "sr_hz": 16000,
                 "channels": 1, "subtype": "PCM_16", "n_samples": 1600, "duration_s": 0.1,
                 "audio_sha256": a["audio_sha256"]}
    assert (b["channels"], b["split"], b["speaker"]) == (2, "Test", "5")
    assert b["audio_sha256"] == a["audio_sha256"] and len(a["audio_sha256"]) == 64


def _rec(split, cls, i, speaker, *, n=1600, sr=16000, channels=1, subtype="PCM_16"):
    return {"key": f"{split}/{cls}/{i}.wav", "split": split, "class": cls, "speaker": speaker, "sr_hz": sr,
            "channels": channels, "subtype": subtype, "n_samples": n, "duration_s": n / sr,
            "audio_sha256": f"{split}{cls}{i}"}


def test_each_split_is_described_by_its_own_clips():
    records = ([_rec("Train", "A", i, "1") for i in range(3)] + [_rec("Train", "B", 9, "2", n=48000, sr=48000)]
               + [_rec("Test", "B", i, "5", channels=2, subtype="FLOAT") for i in range(2)]
               + [_rec("Confirm", "A", i, s, n=3200) for i, s in enumerate(("9", "10", "10", "11", "9"))])
    card = summarise(records, ["A", "B"], "/x/ES", 0.015)
    tr, te, co = (card["splits"][s] for s in ("Train", "Test", "Confirm"))
    assert list(card["splits"]) == ["Train", "Test", "Confirm"] and card["n_clips"] == 11
    assert (tr["n_clips"], te["n_clips"], co["n_clips"]) == (4, 2, 5)
    assert tr["per_class"] == {"A": 3, "B": 1} and te["per_class"] == {"A": 0, "B": 2}
    assert co["per_class"] == {"A": 5, "B": 0}
    assert tr["majority_rate"] == 0.75 and te["majority_rate"] == 1.0
    assert co["speakers"] == ["9", "10", "11"]  # in speaker order, not text order
    assert co["clips_per_speaker"] == {"9": 2, "10": 2, "11": 1}
    assert tr["sample_rates_hz"] == [16000, 48000] and te["sample_rates_hz"] == [16000]
    assert te["subtypes"] == ["FLOAT"] and te["channels"] == {"2": 2} and tr["channels"] == {"1": 4}
    assert te["multichannel_clips"] == ["Test/B/0.wav", "Test/B/1.wav"] and tr["multichannel_clips"] == []
    assert tr["duration_s"] == {"min": 0.1, "mean": 0.325, "max": 1.0}
    assert co["duration_s"] == {"min": 0.2, "mean": 0.2, "max": 0.2}
    assert co["shorter_than_200_frames"] == 5 and co["n_frames"]["max"] == 1 + 3200 // 240
    # the interval width is Test's (2 clips), not every split's
    from ser.metrics import wilson_interval

    lo, hi = wilson_interval(1, 2)
    assert card["test_ci95_halfwidth_at_50"] == pytest.approx((hi - lo) / 2)
    assert card["data_name"] == "ES" and card["classes"] == ["A", "B"]


def test_unknown_speakers_are_left_out_and_said_to_be_unknown():
    records = [_rec("Train", "A", 0, None), _rec("Train", "A", 1, "1"), _rec("Test", "A", 0, None)]
    card = summarise(records, ["A"], "d", 0.015)
    assert card["splits"]["Train"]["speakers"] == ["1"] and not card["splits"]["Train"]["speakers_known"]
    assert card["splits"]["Test"]["speakers"] == [] and not card["splits"]["Test"]["speakers_known"]
    assert "Confirm" not in card["splits"]
    assert card["leakage"]["shared_speakers"] == []  # None is not a speaker shared by two splits


def test_the_card_says_how_the_speakers_were_found(tiny_dataset):
    from ser.data.dataset import list_clips_and_speakers

    clips, source = list_clips_and_speakers(tiny_dataset)
    card = build_card(clips, class_names(tiny_dataset), str(tiny_dataset), 0.015, source)
    assert card["speaker_source"] == {"kind": "recogniser", "detail": "RAVDESS",
                                      "text": "read from the RAVDESS file names", "word": "actor"}
    assert "speaker_source" not in build_card(clips, class_names(tiny_dataset), str(tiny_dataset), 0.015)


@pytest.mark.parametrize("frames, shorter", [(199, 1), (200, 0), (201, 0)])
def test_a_clip_of_exactly_200_frames_is_not_counted_as_short(frames, shorter):
    n = (frames - 1) * 240  # 16 kHz, hop 15 ms: 240 samples; frames = 1 + n // hop
    card = summarise([_rec("Train", "A", 0, "1", n=n), _rec("Test", "A", 0, "5")], ["A"], "d", 0.015)
    assert card["splits"]["Train"]["n_frames"]["max"] == frames
    assert card["splits"]["Train"]["shorter_than_200_frames"] == shorter


def test_shared_speakers_are_listed_in_speaker_order():
    records = [_rec("Train", "A", i, s) for i, s in enumerate(("2", "10", "1"))]
    records += [_rec("Test", "A", i, s) for i, s in enumerate(("10", "2", "5"))]
    records += [_rec("Confirm", "A", 0, "1")]
    assert summarise(records, ["A"], "d", 0.015)["leakage"]["shared_speakers"] == ["1", "2", "10"]
