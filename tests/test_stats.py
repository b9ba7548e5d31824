import json

import numpy as np
import pytest
from scipy.stats import binomtest

from ser.evaluate.stats import accuracy_by_factor, compare_paired, mcnemar_exact, paired_bootstrap, ravdess_factors


def table(a_only: int, b_only: int, both: int = 7, neither: int = 3, seed: int = 0):
    """Correctness arrays with the given 2x2 table, in shuffled clip order."""
    a = np.array([1] * a_only + [0] * b_only + [1] * both + [0] * neither, bool)
    b = np.array([0] * a_only + [1] * b_only + [1] * both + [0] * neither, bool)
    order = np.random.default_rng(seed).permutation(len(a))
    return a[order], b[order]


# --- McNemar -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("a_only,b_only", [(0, 6), (6, 0), (3, 10), (1, 0), (12, 30), (7, 9), (2, 25), (40, 55)])
def test_mcnemar_matches_scipy_binomtest(a_only, b_only):
    r = mcnemar_exact(*table(a_only, b_only))
    assert (r["a_only"], r["b_only"]) == (a_only, b_only)
    expected = binomtest(min(a_only, b_only), a_only + b_only, 0.5).pvalue
    assert r["p"] == pytest.approx(expected, rel=1e-9, abs=1e-15)


def test_mcnemar_hand_computed_case():
    # b = 0, c = 6: P(X <= 0) = 0.5**6, two-sided doubles it
    assert mcnemar_exact(*table(0, 6))["p"] == pytest.approx(2 * 0.5 ** 6)
    assert mcnemar_exact(*table(0, 6))["p"] == pytest.approx(0.03125)
    # b = 1, c = 5: P(X <= 1) = (1 + 6) / 64, doubled
    assert mcnemar_exact(*table(1, 5))["p"] == pytest.approx(14 / 64)


def test_mcnemar_counts_which_model_is_right():
    a = [True, True, True, False, False, True]
    b = [False, False, True, True, False, True]
    assert mcnemar_exact(a, b) == {"a_only": 2, "b_only": 1, "p": pytest.approx(1.0)}


@pytest.mark.parametrize("a_only,b_only", [(0, 6), (3, 10), (11, 2)])
def test_mcnemar_symmetric(a_only, b_only):
    a, b = table(a_only, b_only)
    ab, ba = mcnemar_exact(a, b), mcnemar_exact(b, a)
    assert (ab["a_only"], ab["b_only"]) == (ba["b_only"], ba["a_only"])
    assert ab["p"] == ba["p"]


@pytest.mark.parametrize("a,b", [([True, False, True], [True, False, True]), ([], []), ([1, 1, 0], [1, 1, 0])])
def test_mcnemar_no_discordant_pairs(a, b):
    r = mcnemar_exact(a, b)
    assert r == {"a_only": 0, "b_only": 0, "p": 1.0}


@pytest.mark.parametrize("k", [1, 4, 5, 20])
def test_mcnemar_p_capped_at_one_when_tied(k):
    r = mcnemar_exact(*table(k, k))
    assert r["p"] == 1.0
    assert (r["a_only"], r["b_only"]) == (k, k)


def test_mcnemar_result_is_plain_json():
    r = mcnemar_exact(*table(3, 10))
    assert json.loads(json.dumps(r)) == r
    assert type(r["a_only"]) is int and type(r["p"]) is float


@pytest.mark.parametrize("a,b,match", [
    ([True, False], [True], r"differ in length \(2 != 1\)"),
    ([[True, False]], [[True, False]], r"correct_a must be 1-D"),
    ([True, False], [[True, False]], r"correct_b must be 1-D"),
    ([0, 2, 1], [1, 1, 1], r"correct_a must be boolean"),
    ([1, 1, 1], ["x", "y", "z"], r"correct_b must be boolean"),
])
def test_mcnemar_rejects_bad_input(a, b, match):
    with pytest.raises(ValueError, match=match):
        mcnemar_exact(a, b)


# --- paired bootstrap ---------------------------------------------------------------------------------------

def correlated(n: int = 400, acc: float = 0.75, extra_errors: int = 8, seed: int = 1):
    """A with accuracy ``acc``; B equal to A but wrong on ``extra_errors`` more clips."""
    rng = np.random.default_rng(seed)
    a = np.zeros(n, bool)
    a[rng.choice(n, int(acc * n), replace=False)] = True
    b = a.copy()
    b[rng.choice(np.flatnonzero(a), extra_errors, replace=False)] = False
    return a, b


def test_bootstrap_diff_is_accuracy_difference():
    a, b = correlated()
    r = paired_bootstrap(a, b, n_boot=500)
    assert r["diff"] == a.mean() - b.mean()
    assert r["diff"] == pytest.approx(8 / 400)
    assert r["n"] == 400 and r["n_boot"] == 500 and r["level"] == 0.95
    assert paired_bootstrap(b, a, n_boot=500)["diff"] == pytest.approx(-8 / 400)


def test_bootstrap_identical_models():
    a, _ = correlated()
    r = paired_bootstrap(a, a.copy(), n_boot=1000)
    assert r["diff"] == 0.0
    assert r["ci"] == [0.0, 0.0]


def test_bootstrap_interval_contains_diff_and_widens_with_fewer_clips():
    a, b = table(30, 12, both=250, neither=108, seed=3)  # n = 400, diff = 0.045
    big = paired_bootstrap(a, b, n_boot=2000)
    assert big["ci"][0] < big["diff"] < big["ci"][1]
    small = paired_bootstrap(*table(4, 2, both=31, neither=13, seed=3), n_boot=2000)  # n = 50, similar rates
    assert small["ci"][0] < small["diff"] < small["ci"][1]
    assert small["ci"][1] - small["ci"][0] > 2 * (big["ci"][1] - big["ci"][0])


def test_bootstrap_deterministic_for_a_seed():
    # 4000 clips and 200 resamples: two seeds give the same interval about once in 300
    a, b = table(300, 120, both=2500, neither=1080)
    r1 = paired_bootstrap(a, b, n_boot=200, seed=7)
    assert all(paired_bootstrap(a, b, n_boot=200, seed=7) == r1 for _ in range(3))
    others = {tuple(paired_bootstrap(a, b, n_boot=200, seed=s)["ci"]) for s in (8, 9, 10)}
    assert len(others - {tuple(r1["ci"])}) >= 2


def unpaired_interval(a, b, n_boot, level, seed=0):
    """What an interval that resamples the two models' clips independently gives."""
    rng = np.random.default_rng(seed)
    n = len(a)
    d = a[rng.integers(0, n, (n_boot, n))].mean(1) - b[rng.integers(0, n, (n_boot, n))].mean(1)
    return np.quantile(d, [(1 - level) / 2, (1 + level) / 2])


def test_bootstrap_is_paired():
    # accuracies 0.75 and 0.73: apart they are indistinguishable, but B only ever loses clips
    a, b = correlated(n=400, acc=0.75, extra_errors=8)
    r = paired_bootstrap(a, b, n_boot=4000)
    assert r["ci"][0] > 0, r
    lo, hi = unpaired_interval(a, b, 4000, 0.95)
    assert lo < 0 < hi  # the sanity check: unpaired resampling cannot tell them apart
    assert (r["ci"][1] - r["ci"][0]) < 0.5 * (hi - lo)


def test_bootstrap_higher_level_contains_lower():
    a, b = table(30, 12, both=250, neither=108)
    r95 = paired_bootstrap(a, b, n_boot=4000, level=0.95)
    r99 = paired_bootstrap(a, b, n_boot=4000, level=0.99)
    r50 = paired_bootstrap(a, b, n_boot=4000, level=0.5)
    assert r99["ci"][0] < r95["ci"][0] < r50["ci"][0] <= r50["ci"][1] < r95["ci"][1] < r99["ci"][1]
    assert r99["level"] == 0.99


def test_bootstrap_strata_keep_their_size():
    # 10 clips where only A is right, 90 where the models agree: drawn within strata, every resample
    # holds exactly 10 clips of the first kind, so the difference cannot move
    a = np.r_[np.ones(10, bool), np.ones(60, bool), np.zeros(30, bool)]
    b = np.r_[np.zeros(10, bool), np.ones(60, bool), np.zeros(30, bool)]
    split = np.array(["Test"] * 10 + ["Confirm"] * 90)
    r = paired_bootstrap(a, b, n_boot=2000, strata=split)
    assert r["diff"] == pytest.approx(0.1)
    assert r["ci"] == [pytest.approx(0.1), pytest.approx(0.1)]
    assert r["strata"] == {"Confirm": 90, "Test": 10}
    pooled = paired_bootstrap(a, b, n_boot=2000)
    assert pooled["ci"][1] - pooled["ci"][0] > 0.05
    assert "strata" not in pooled


def test_bootstrap_strata_with_opposite_effects():
    # A wins every clip of one stratum, B every clip of the other: with strata the pooled diff is fixed
    a = np.r_[np.ones(20, bool), np.zeros(30, bool)]
    b = ~a
    strata = np.r_[np.zeros(20, int), np.ones(30, int)]
    r = paired_bootstrap(a, b, n_boot=1000, strata=strata)
    assert r["ci"] == [pytest.approx(-0.2), pytest.approx(-0.2)]
    assert r["strata"] == {"0": 20, "1": 30}


def test_bootstrap_strata_interval_contains_diff():
    # a stratum where the models differ and one where they agree, each with noise of its own
    a1, b1 = table(12, 2, both=20, neither=6, seed=4)
    a2, b2 = table(3, 3, both=100, neither=54, seed=5)
    a, b = np.r_[a1, a2], np.r_[b1, b2]
    strata = ["Test"] * len(a1) + ["Confirm"] * len(a2)
    r = paired_bootstrap(a, b, n_boot=3000, strata=strata)
    assert r["ci"][0] < r["diff"] < r["ci"][1]
    assert r["diff"] == paired_bootstrap(a, b, n_boot=3000)["diff"]


def test_bootstrap_result_is_plain_json():
    a, b = correlated()
    r = paired_bootstrap(a, b, n_boot=200, strata=np.arange(400) % 2)
    assert json.loads(json.dumps(r)) == r
    assert all(type(x) is float for x in r["ci"]) and type(r["n"]) is int


@pytest.mark.parametrize("kwargs,match", [
    ({"n_boot": 0}, r"n_boot must be a positive integer"),
    ({"n_boot": 2.5}, r"n_boot must be a positive integer"),
    ({"level": 1.0}, r"level must be in \(0, 1\)"),
    ({"level": 95}, r"level must be in \(0, 1\)"),
    ({"level": 0}, r"level must be in \(0, 1\)"),
    ({"strata": [0, 1]}, r"strata differs in length"),
    ({"strata": [[0, 1, 0]]}, r"strata must be 1-D"),
])
def test_bootstrap_rejects_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        paired_bootstrap([True, False, True], [True, True, False], **kwargs)


@pytest.mark.parametrize("a,b,match", [
    ([], [], r"no clips"),
    ([True], [True, False], r"differ in length \(1 != 2\)"),
    ([0.5, 1.0], [1, 0], r"correct_a must be boolean"),
])
def test_bootstrap_rejects_bad_data(a, b, match):
    with pytest.raises(ValueError, match=match):
        paired_bootstrap(a, b)


def test_bootstrap_fast_at_default_size():
    import time

    a, b = correlated()
    t = time.perf_counter()
    paired_bootstrap(a, b)
    assert time.perf_counter() - t < 2.0


# --- compare_paired -----------------------------------------------------------------------------------------

def test_compare_paired_from_predictions():
    y = np.array([0, 1, 2, 3, 0, 1, 2, 3, 0, 1])
    pa = np.array([0, 1, 2, 3, 0, 1, 2, 0, 1, 1])  # right on 8
    pb = np.array([0, 1, 0, 3, 1, 1, 2, 3, 2, 2])  # right on 6
    r = compare_paired(y, pa, pb, n_boot=500, seed=3)
    assert (r["n"], r["acc_a"], r["acc_b"]) == (10, 0.8, 0.6)
    assert r["diff"] == r["acc_a"] - r["acc_b"]
    assert (r["a_only"], r["b_only"]) == (3, 1)  # clips 2, 4, 9 / clip 7
    assert r["p"] == pytest.approx(binomtest(1, 4, 0.5).pvalue)
    boot = paired_bootstrap(pa == y, pb == y, n_boot=500, seed=3)
    assert r["ci"] == boot["ci"] and r["n_boot"] == 500 and r["level"] == 0.95
    assert json.loads(json.dumps(r)) == r


def test_compare_paired_passes_strata():
    y = np.zeros(100, int)
    pa = np.r_[np.zeros(70, int), np.ones(30, int)]
    pb = np.r_[np.ones(10, int), np.zeros(60, int), np.ones(30, int)]
    r = compare_paired(y, pa, pb, n_boot=500, strata=["T"] * 10 + ["C"] * 90)
    assert r["ci"] == [pytest.approx(0.1), pytest.approx(0.1)]
    assert r["strata"] == {"C": 90, "T": 10}


@pytest.mark.parametrize("y,pa,pb,match", [
    ([0, 1], [0, 1], [0], r"differ in length \(2, 2, 1\)"),
    ([[0, 1]], [0, 1], [0, 1], r"y_true must be 1-D"),
    ([0, 1], [0, 1], [[0, 1]], r"pred_b must be 1-D"),
])
def test_compare_paired_rejects_bad_input(y, pa, pb, match):
    with pytest.raises(ValueError, match=match):
        compare_paired(y, pa, pb)


# --- RAVDESS factors ----------------------------------------------------------------------------------------

KIDS, DOGS = "Kids are talking by the door", "Dogs are sitting by the door"


@pytest.mark.parametrize("name,expected", [
    ("Test/Angry/03-01-05-02-01-01-05.wav", {"intensity": "strong", "statement": KIDS, "speaker": 5}),
    ("03-01-05-01-02-02-12.wav", {"intensity": "normal", "statement": DOGS, "speaker": 12}),
    ("Confirm/Sad/03-01-04-02-02-01-16.WAV", {"intensity": "strong", "statement": DOGS, "speaker": 16}),
    ("Train\\Calm\\03-01-02-01-01-02-03.wav", {"intensity": "normal", "statement": KIDS, "speaker": 3}),
])
def test_ravdess_factors(name, expected):
    assert ravdess_factors(name) == expected


@pytest.mark.parametrize("name", [
    "clip.wav", "Test/Angry/clip_01.wav", "03-01-05-02-01-01.wav", "03-01-05-02-01-01-05.mp3",
    "03-01-05-03-01-01-05.wav",  # no intensity 03
    "03-01-05-01-03-01-05.wav",  # no statement 03
    "03-01-05-02-01-01-05.wav/extra", "",
])
def test_ravdess_factors_none_for_other_names(name):
    assert ravdess_factors(name) is None


def test_accuracy_by_factor():
    keys = ["Test/Angry/03-01-05-02-01-01-05.wav",  # strong, kids: right
            "Test/Angry/03-01-05-01-02-01-05.wav",  # normal, dogs: wrong
            "Test/Sad/03-01-04-02-02-02-06.wav",    # strong, dogs: right
            "Test/Sad/03-01-04-02-01-02-06.wav",    # strong, kids: wrong
            "Test/Calm/03-01-02-01-01-01-07.wav"]   # normal, kids: right
    y = [0, 0, 3, 3, 1]
    p = [0, 2, 3, 0, 1]
    r = accuracy_by_factor(keys, y, p)
    assert r == {
        "intensity": {"normal": {"accuracy": 0.5, "n": 2, "correct": 1},
                      "strong": {"accuracy": 2 / 3, "n": 3, "correct": 2}},
        "statement": {DOGS: {"accuracy": 0.5, "n": 2, "correct": 1},
                      KIDS: {"accuracy": 2 / 3, "n": 3, "correct": 2}},
    }
    assert list(r["intensity"]) == ["normal", "strong"] and list(r["statement"]) == [DOGS, KIDS]
    assert json.loads(json.dumps(r)) == r


def test_accuracy_by_factor_counts_add_up():
    rng = np.random.default_rng(0)
    n = 200
    keys = [f"Test/X/03-01-0{rng.integers(1, 9)}-0{rng.integers(1, 3)}-0{rng.integers(1, 3)}-01-{a:02d}.wav"
            for a in rng.integers(1, 25, n)]
    y = rng.integers(0, 4, n)
    p = np.where(rng.random(n) < 0.7, y, (y + 1) % 4)
    r = accuracy_by_factor(keys, y, p)
    for factor in ("intensity", "statement"):
        assert sum(g["n"] for g in r[factor].values()) == n
        assert sum(g["correct"] for g in r[factor].values()) == int((p == y).sum())
        for g in r[factor].values():
            assert g["accuracy"] == g["correct"] / g["n"]
    strong = [k for k in keys if k.split("-")[3] == "02"]
    assert r["intensity"]["strong"]["n"] == len(strong)


def test_accuracy_by_factor_only_levels_present():
    r = accuracy_by_factor(["03-01-05-02-02-01-05.wav"], [1], [1])
    assert r == {"intensity": {"strong": {"accuracy": 1.0, "n": 1, "correct": 1}},
                 "statement": {DOGS: {"accuracy": 1.0, "n": 1, "correct": 1}}}


def test_accuracy_by_factor_none_when_any_key_is_not_ravdess():
    keys = ["Test/Angry/03-01-05-02-01-01-05.wav", "Test/Angry/other.wav"]
    assert accuracy_by_factor(keys, [0, 0], [0, 0]) is None


def test_accuracy_by_factor_rejects_lengths():
    with pytest.raises(ValueError, match=r"differ in length \(2, 2, 1\)"):
        accuracy_by_factor(["03-01-05-02-01-01-05.wav"] * 2, [0, 1], [0])
