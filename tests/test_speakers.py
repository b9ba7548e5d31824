import numpy as np
import pytest

from ser.errors import DataError
from ser.speakers import speaker_keys, speaker_zscore


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
