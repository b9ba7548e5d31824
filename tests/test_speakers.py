import numpy as np
import pytest

from ser.errors import DataError
from ser.data.speakers import speaker_keys, speaker_zscore


def test_zscore_uses_each_speakers_own_rows():
    X = np.array([[1.0], [3.0], [10.0], [30.0], [50.0]])
    spk = np.array(["a", "a", "b", "b", "b"])
    out = speaker_zscore(X, spk)
    assert out[:2, 0] == pytest.approx([-1.0, 1.0])
    assert out[2:, 0] == pytest.approx([-1.224745, 0.0, 1.224745], abs=1e-6)
    # another speaker's rows never move a speaker's numbers
    out2 = speaker_zscore(np.vstack([X, [[1e6]]]), np.append(spk, "c"))
    assert np.array_equal(out2[:5], out)


def test_zscore_removes_a_speakers_offset_and_gain_per_column():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(20, 3))
    X = np.vstack([A, A * [2.0, 5.0, 0.5] + [100.0, -3.0, 7.0]])
    out = speaker_zscore(X, [0] * 20 + [1] * 20)
    assert np.allclose(out[:20], out[20:])
    assert np.allclose(out.mean(axis=0), 0) and np.allclose(out[:20].std(axis=0), 1)


def test_zscore_from_a_subset_of_rows_normalises_every_row_of_the_speaker():
    X = np.array([[0.0], [2.0], [10.0], [12.0]])
    out = speaker_zscore(X, [1, 1, 1, 1], rows=np.array([True, True, False, False]))
    assert out[:, 0] == pytest.approx([-1.0, 1.0, 9.0, 11.0])
    with pytest.raises(ValueError, match="speaker 2"):
        speaker_zscore(X, [1, 1, 2, 2], rows=np.array([True, True, False, False]))


def test_constant_column_becomes_zero_not_nan():
    out = speaker_zscore(np.array([[5.0, 1.0], [5.0, 2.0]]), [1, 1])
    assert np.all(np.isfinite(out)) and np.all(out[:, 0] == 0)


def test_speaker_keys_are_per_split_and_refuse_a_clip_without_speaker():
    keys = speaker_keys(["Train", "Test", "Test"], [1, 1, 5])
    assert keys.tolist() == ["Train/1", "Test/1", "Test/5"]
    with pytest.raises(DataError, match="Test/Sad/x.wav: no speaker"):
        speaker_keys(["Train", "Test"], [1, None], ["Train/Sad/y.wav", "Test/Sad/x.wav"])
    with pytest.raises(DataError, match="no speaker"):
        speaker_keys(["Train"], [""])


# ------------------------------------------------------------ who speaks

from pathlib import Path  # noqa: E402

from ser.errors import ConfigError  # noqa: E402
from ser.data.speakers import SpeakerSource, resolve_speakers, speaker_folds, speaker_order  # noqa: E402


def _names(*names):
    return [f"Train/Angry/{n}" for n in names]


def test_builtin_recognisers_read_ravdess_cremad_and_emodb_names(tmp_path):
    spk, src = resolve_speakers(tmp_path, _names("03-01-05-01-01-01-12.wav", "03-01-02-01-02-02-01.wav"))
    assert spk == ["12", "1"] and src == SpeakerSource("recogniser", "RAVDESS") and src.word == "actor"
    spk, src = resolve_speakers(tmp_path, _names("1001_DFA_ANG_XX.wav", "1091_IEO_HAP_HI.wav"))
    assert spk == ["1001", "1091"] and src.detail == "CREMA-D" and src.word == "speaker"
    spk, src = resolve_speakers(tmp_path, _names("03a01Fa.wav", "16b10Wb.wav"))
    assert spk == ["03", "16"] and src.detail == "EmoDB"


def test_a_recogniser_is_used_only_when_every_name_matches_it(tmp_path):
    with pytest.raises(DataError, match=r"Train/Angry/03a01Fa\.wav: no speaker known.*speakers\.csv.*speaker_pattern"):
        resolve_speakers(tmp_path, _names("03a01Fa.wav", "03-01-05-01-01-01-12.wav"))


def test_speakers_csv_wins_over_names_and_must_list_every_clip(tmp_path):
    rel = _names("03-01-05-01-01-01-12.wav", "take_0001.wav")
    (tmp_path / "speakers.csv").write_text("path,speaker\nTrain/Angry/03-01-05-01-01-01-12.wav,alice\n"
                                           "./Train/Angry/take_0001.wav, bob \n\n")
    spk, src = resolve_speakers(tmp_path, rel)
    assert spk == ["alice", "bob"] and src.kind == "csv" and src.word == "speaker"
    with pytest.raises(DataError, match=r"Train/Angry/take_0002\.wav: no speaker known for this clip: not listed in"):
        resolve_speakers(tmp_path, rel + _names("take_0002.wav"))
    (tmp_path / "speakers.csv").write_text("file,who\nx,y\n")
    with pytest.raises(DataError, match=r"speakers\.csv: the first row must be the header path,speaker"):
        resolve_speakers(tmp_path, rel)
    (tmp_path / "speakers.csv").write_text("path,speaker\nTrain/Angry/take_0001.wav,a\nTrain/Angry/take_0001.wav,b\n")
    with pytest.raises(DataError, match="row 3: Train/Angry/take_0001.wav is listed twice"):
        resolve_speakers(tmp_path, rel)


def test_a_pattern_reads_the_named_group_and_names_a_clip_it_misses(tmp_path):
    spk, src = resolve_speakers(tmp_path, _names("spk07_take3.wav", "spk11_take1.wav"), r"spk(?P<speaker>\d+)_")
    assert spk == ["07", "11"] and src == SpeakerSource("pattern", r"spk(?P<speaker>\d+)_")
    with pytest.raises(DataError, match=r"Train/Angry/other\.wav: no speaker known.*does not match"):
        resolve_speakers(tmp_path, _names("spk07_take3.wav", "other.wav"), r"spk(?P<speaker>\d+)_")
    with pytest.raises(ConfigError, match="named group"):
        resolve_speakers(tmp_path, _names("spk07.wav"), r"spk(\d+)")
    with pytest.raises(ConfigError, match="not a regular expression"):
        resolve_speakers(tmp_path, _names("spk07.wav"), r"spk(?P<speaker>\d+")


def test_none_is_the_explicit_opt_out(tmp_path):
    spk, src = resolve_speakers(tmp_path, _names("a.wav", "b.wav"), "none")
    assert spk == [None, None] and src.kind == "none" and "not speaker-independent" in src.describe()


def test_speakers_sort_by_number_then_text():
    assert sorted(["10", "2", "b", "1", "a"], key=speaker_order) == ["1", "2", "10", "a", "b"]


# ------------------------------------------------------------ folds

def _groups(n_speakers, per=6):
    g = np.repeat([str(i + 1) for i in range(n_speakers)], per)
    y = np.tile(np.arange(3), len(g) // 3)
    return g, y


def test_leave_one_speaker_out_up_to_the_limit():
    g, y = _groups(4)
    folds, scheme = speaker_folds(g, y, max_loso=4, k=3)
    assert scheme == {"scheme": "leave-one-speaker-out", "n_folds": 4, "speaker_independent": True,
                      "folds": ["1", "2", "3", "4"]}
    for name, tr, va in folds:
        assert set(g[va]) == {name} and name not in set(g[tr])
        assert sorted(np.concatenate([tr, va]).tolist()) == list(range(len(g)))


def test_group_k_fold_above_the_limit_keeps_speakers_apart_and_covers_every_clip():
    g, y = _groups(12)
    folds, scheme = speaker_folds(g, y, max_loso=8, k=4, seed=0)
    assert scheme["scheme"] == "stratified group k-fold over speakers" and scheme["n_folds"] == 4
    assert scheme["speaker_independent"]
    held = np.concatenate([va for _, _, va in folds])
    assert sorted(held.tolist()) == list(range(len(g)))  # every clip held out exactly once
    for _, tr, va in folds:
        assert not set(g[tr]) & set(g[va])
    # the same folds every time (seeded)
    again, _ = speaker_folds(g, y, max_loso=8, k=4, seed=0)
    assert all(np.array_equal(a[2], b[2]) for a, b in zip(folds, again))


def test_without_speakers_the_folds_are_stratified_over_clips_and_say_so():
    _, y = _groups(3)  # 6 clips per class: 2 of each class in each of 3 folds
    folds, scheme = speaker_folds(None, y, max_loso=8, k=3)
    assert scheme["scheme"] == "stratified k-fold over clips" and not scheme["speaker_independent"]
    assert len(folds) == 3
    for _, _, va in folds:
        assert np.bincount(y[va]).tolist() == [2, 2, 2]
    with pytest.raises(DataError, match="at least 2 training speakers"):
        speaker_folds(["1", "1"], [0, 1], max_loso=8, k=3)
