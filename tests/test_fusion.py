import numpy as np
import pytest

from conftest import speaker_shifted
from ser.models.fusion import (choose_weights, combine, fuse, log_loss, network_member, subset_normalisation, svm_member,
                        weight_grid)


def test_weight_grid_covers_the_simplex_in_steps():
    g = weight_grid(3, 0.1)
    assert g.shape == (66, 3)  # compositions of 10 into 3 parts: C(12, 2)
    assert np.allclose(g.sum(1), 1) and np.all(g >= 0)
    assert np.allclose(np.round(g * 10), g * 10)
    assert len({tuple(r) for r in g.round(6)}) == 66
    assert g[0].tolist() == [1.0, 0.0, 0.0]
    assert weight_grid(5, 0.2).shape == (126, 5)
    assert weight_grid(1, 0.5).tolist() == [[1.0]]
    with pytest.raises(ValueError, match="step"):
        weight_grid(3, 0.3)


def test_fuse_is_the_weighted_mean():
    a = np.array([[1.0, 0.0], [0.5, 0.5]])
    b = np.array([[0.0, 1.0], [0.2, 0.8]])
    assert np.allclose(fuse([a, b], [0.25, 0.75]), [[0.25, 0.75], [0.275, 0.725]])


def test_log_loss_known_answer():
    p = np.array([[0.5, 0.5], [0.1, 0.9]])
    assert log_loss(p, np.array([0, 1])) == pytest.approx(-(np.log(0.5) + np.log(0.9)) / 2)
    assert np.isfinite(log_loss(np.array([[1.0, 0.0]]), np.array([1])))


def test_choose_weights_follows_the_informative_member_and_breaks_ties_by_log_loss():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 60)
    good = np.full((60, 3), 0.1)
    good[np.arange(60), y] = 0.8
    noise = rng.dirichlet(np.ones(3), 60)
    r = choose_weights([noise, good], y, step=0.1)
    assert r["oof_accuracy"] == 1.0
    # every vector with enough weight on `good` is perfect: the lowest log loss among them is all on `good`
    assert r["weights"] == [0.0, 1.0]
    assert r["n_grid"] == 11
    assert r["equal_weights_oof_accuracy"] <= 1.0


def test_choose_weights_finds_a_combination_better_than_either_member():
    # member a is right on the first half, b on the second; each alone is 50 %,
    # but a is unsure where it is wrong, so the mean is right everywhere
    y = np.array([0] * 4 + [1] * 4)
    a = np.array([[0.9, 0.1]] * 4 + [[0.6, 0.4]] * 4)
    b = np.array([[0.4, 0.6]] * 4 + [[0.1, 0.9]] * 4)
    r = choose_weights([a, b], y, step=0.5)
    assert r["weights"] == [0.5, 0.5] and r["oof_accuracy"] == 1.0


def _speakers(seed=0, n_per=8, splits=(("Train", (1, 2, 3, 4)), ("Test", (5, 6)))):
    """Three classes 1.5 apart on feature 0 of two, under speaker offsets of sd 5."""
    return speaker_shifted(seed, n_per=n_per, n_classes=3, n_dims=2, offset_sd=5.0, noise_sd=0.3, class_gap=1.5,
                           splits=splits)


PARAMS = {"transform": "none", "norm": "speaker", "kernel": "linear", "C": 1.0, "gamma": None}


def test_svm_member_out_of_fold_rows_never_see_their_speaker():
    X, y, split, speaker = _speakers()
    m = svm_member(PARAMS, X, y, split, speaker, speakers=speaker)
    n_tr = int((split == "Train").sum())
    assert m["oof"].shape == (n_tr, 3) and np.allclose(m["oof"].sum(1), 1)
    assert m["eval"]["Test"].shape == (int((split == "Test").sum()), 3)
    assert (m["oof"].argmax(1) == y[split == "Train"]).mean() > 0.9
    # scrambling speaker 1's labels changes the out-of-fold rows of the others, never speaker 1's own
    y2 = y.copy()
    one = (speaker == 1)
    y2[one] = np.roll(y2[one], 5)
    m2 = svm_member(PARAMS, X, y2, split, speaker, speakers=speaker)
    own = speaker[split == "Train"] == 1
    assert np.allclose(m2["oof"][own], m["oof"][own])
    assert not np.allclose(m2["oof"][~own], m["oof"][~own])


def _net(train_keys, eval_keys, oof, proba):
    return {"chosen": "c", "validation": {"train_keys": train_keys, "candidates": {"c": {"oof_proba": oof}}},
            "predictions": {"c": {"Test": {"keys": eval_keys, "ensemble_proba": proba}}}}


def test_network_member_reorders_by_clip_key():
    net = _net(["b", "a"], ["y", "x"], [[0.0, 1.0], [1.0, 0.0]], [[0.3, 0.7], [0.9, 0.1]])
    m = network_member(net, ["a", "b"], {"Test": ["x", "y"]})
    assert m["oof"].tolist() == [[1.0, 0.0], [0.0, 1.0]]
    assert m["eval"]["Test"].tolist() == [[0.9, 0.1], [0.3, 0.7]]
    net["validation"]["candidates"]["c"]["oof_proba"] = None
    with pytest.raises(ValueError, match="out-of-fold"):
        network_member(net, ["a", "b"], {"Test": ["x", "y"]})


def test_combine_scores_each_split_with_the_weights_from_training_only():
    y_tr = np.array([0, 1, 0, 1])
    good = {"oof": np.eye(2)[y_tr] * 0.8 + 0.1, "eval": {"Test": np.array([[0.2, 0.8], [0.7, 0.3]])}}
    bad = {"oof": np.eye(2)[1 - y_tr] * 0.8 + 0.1, "eval": {"Test": np.array([[0.9, 0.1], [0.1, 0.9]])}}
    r = combine({"good": good, "bad": bad}, y_tr, {"Test": np.array([1, 0])}, {"Test": [5, 6]}, ["A", "B"], step=0.5)
    assert r["weights"] == {"good": 1.0, "bad": 0.0}
    assert r["pred"]["Test"] == [1, 0] and r["splits"]["Test"]["accuracy"] == 1.0
    assert r["splits"]["Test"]["per_speaker"] == {"5": 1.0, "6": 1.0}


def test_one_class_normalisation_hurts_where_the_assumption_breaks():
    X, y, split, speaker = _speakers(n_per=10)
    r = subset_normalisation(PARAMS, X, y, split, speaker, speaker, split_name="Test")
    assert [p["speaker"] for p in r["per_speaker"]] == ["5", "6"]
    assert r["all_clips_mean"] > 0.9
    assert r["one_class_mean"] < r["all_clips_mean"] - 0.3
    assert set(r["one_class_by_class"]) == {0, 1, 2}


def test_two_training_speakers_say_their_calibration_is_not_speaker_independent():
    from ser.models.fusion import LOSO, ONE_ACTOR

    X, y, split, speaker = _speakers(splits=(("Train", (1, 2)), ("Test", (5,))))
    m = svm_member(PARAMS, X, y, split, speaker, speakers=speaker)
    assert m["calibration"] == sorted([ONE_ACTOR, LOSO])
    assert np.allclose(m["oof"].sum(1), 1) and np.all(m["oof"] >= 0)
    X4, y4, split4, speaker4 = _speakers()
    assert svm_member(PARAMS, X4, y4, split4, speaker4, speakers=speaker4)["calibration"] == [LOSO]


def test_softmax_of_decision_values_orders_like_the_decision():
    from ser.models.fusion import _Softmax

    class D:
        def decision_function(self, X):
            return np.array([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]])

    p = _Softmax(D()).predict_proba(None)
    assert np.allclose(p.sum(1), 1) and np.allclose(p[1], 1 / 3)
    assert p[0, 0] == pytest.approx(np.exp(2) / (np.exp(2) + 1 + np.exp(-1)))
