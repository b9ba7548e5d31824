import numpy as np
import pytest

from conftest import speaker_shifted
from ser.config import SvmConfig
from ser.models.svm import eval_clips, evaluate_feature, fit_params, make_pipeline, pipeline_of, prepare, rank_kinds, tune


def toy(seed=0, n_per=12, splits=(("Train", (1, 2, 3)), ("Test", (5,)))):
    rng = np.random.default_rng(seed)
    X, y, split, speaker = [], [], [], []
    for s, speakers in splits:
        for a in speakers:
            for label in range(2):
                # class 1 has a 100x larger "energy": separable after a log
                x = rng.lognormal(mean=0.0, sigma=0.3, size=(n_per, 6)) * (100.0 if label else 1.0)
                X.append(x)
                y += [label] * n_per
                split += [s] * n_per
                speaker += [a] * n_per
    return np.vstack(X), np.array(y), np.array(split), np.array(speaker)


def test_tuned_model_is_chosen_by_speaker_folds_and_scored_on_test():
    X, y, split, speaker = toy()
    cfg = SvmConfig(grid_C=(1.0, 10.0), grid_gamma=("scale",), grid_kernel=("rbf", "linear"))
    r = evaluate_feature(X, y, split, speaker, ["A", "B"], cfg)
    assert r["cv"] == "leave-one-speaker-out"
    assert r["folds"] == {"scheme": "leave-one-speaker-out", "n_folds": 3, "speaker_independent": True,
                          "folds": ["1", "2", "3"]}
    assert len(r["tuned"]["cv_folds"]) == 3  # one fold per training speaker
    assert r["n_candidates"] == 2 * 2 * (2 + 2)  # norms x transforms x (rbf C,gamma + linear C)
    assert r["spec"]["params"] == {"transform": "none", "norm": "none", "kernel": "rbf", "C": 10.0, "gamma": "scale"}
    assert set(r["tuned_by_norm"]) == {"none", "speaker"}
    assert r["tuned_by_norm"]["none"]["params"]["norm"] == "none"
    assert r["tuned_by_norm"]["speaker"]["params"]["norm"] == "speaker"
    assert list(r["tuned"]["splits"]) == ["Test"]  # no Confirm clips here
    assert r["tuned"]["splits"]["Test"]["n"] == 24
    assert r["tuned"]["splits"]["Test"]["accuracy"] == 1.0
    assert r["tuned"]["splits"]["Test"]["per_speaker"] == {"5": 1.0}
    assert len(r["tuned"]["pred"]["Test"]) == 24


def test_every_evaluation_split_is_scored_and_none_is_used_for_a_choice():
    X, y, split, speaker = toy(splits=(("Train", (1, 2, 3)), ("Test", (5,)), ("Confirm", (9, 10))))
    cfg = SvmConfig(grid_C=(1.0, 10.0), grid_gamma=("scale",), grid_kernel=("rbf",))
    r = evaluate_feature(X, y, split, speaker, ["A", "B"], cfg)
    for model in ("spec", "tuned"):
        assert list(r[model]["splits"]) == ["Test", "Confirm"]
        assert r[model]["splits"]["Confirm"]["n"] == 48
        assert r[model]["splits"]["Confirm"]["per_speaker"].keys() == {"9", "10"}
        pred = np.array(r[model]["pred"]["Confirm"])
        assert r[model]["splits"]["Confirm"]["correct"] == int((pred == y[split == "Confirm"]).sum())
    # scrambling the evaluation clips changes no choice
    X2 = X.copy()
    X2[split != "Train"] = X2[split != "Train"][::-1]
    r2 = evaluate_feature(X2, y, split, speaker, ["A", "B"], cfg)
    assert r2["tuned"]["params"] == r["tuned"]["params"] and r2["tuned"]["cv_folds"] == r["tuned"]["cv_folds"]


def _noisy(seed=0, n_per=12):
    """Two overlapping classes (one informative feature of four), three speakers:
    the grid's candidates get clearly different cross-validated accuracies."""
    rng = np.random.default_rng(seed)
    X, y, g = [], [], []
    for a in (1, 2, 3):
        for label in range(2):
            x = rng.standard_normal((n_per, 4))
            x[:, 0] += 2 * label - 1
            X.append(x)
            y += [label] * n_per
            g += [a] * n_per
    return np.vstack(X), np.array(y), np.array(g)


def test_tuning_takes_the_best_cross_validated_score():
    X, y, g = _noisy()
    cfg = SvmConfig(grid_C=(0.001, 10.0), grid_gamma=("scale", 100.0), grid_kernel=("rbf", "linear"),
                    grid_transform=("none",), grid_norm=("none",))
    r = tune(X, y, g, cfg)
    scores = [c["cv_mean"] for c in r["candidates"]]
    assert len(scores) == 6 and max(scores) - min(scores) > 0.2  # the data tells candidates apart
    assert r["best"]["cv_mean"] == max(scores)
    assert r["best"] is r["candidates"][scores.index(max(scores))]  # the first of equals
    # gamma=100 on standardised features memorises the training speakers: never the best
    assert r["best"]["gamma"] != 100.0
    assert r["spec_cv"]["C"] == 10.0 and r["spec_cv"]["gamma"] == "scale" and r["spec_cv"]["kernel"] == "rbf"
    for c in r["candidates"]:
        assert c["cv_mean"] == pytest.approx(np.mean(c["cv_folds"])) and len(c["cv_folds"]) == 3


def test_scaler_is_fitted_inside_the_pipeline():
    p = make_pipeline(transform="log")
    assert [name for name, _ in p.steps] == ["log", "scale", "svc"]


def test_best_and_worst_follow_test_accuracy():
    def kind(acc, cv):
        return {"spec": {"splits": {"Test": {"accuracy": acc, "accuracy_ci95": [acc - 0.08, acc + 0.08]},
                                    "Confirm": {"accuracy": 1 - acc, "accuracy_ci95": [0, 1]}}},
                "tuned": {"cv_mean": cv}}

    r = rank_kinds({"SC": kind(0.55, 0.3), "SBW": kind(0.49, 0.4), "SBE": kind(0.30, 0.5)})
    assert (r["best"], r["worst"]) == ("SC", "SBE")
    assert r["order_by_test"] == ["SC", "SBW", "SBE"]
    assert r["best_by_cv"] == "SBE" and not r["rankings_agree"]
    assert not r["best_worst_overlap"]
    assert r["best_minus_worst"] == pytest.approx(0.25)


def _shifted_speakers(seed=0, n_per=10, splits=(("Train", (1, 2, 3, 4)), ("Test", (5, 6)))):
    """Two classes 1 unit apart on feature 0, but every speaker's features are
    offset by a large speaker-specific amount: only a speaker's own average
    tells the classes apart."""
    return speaker_shifted(seed, n_per=n_per, n_classes=2, n_dims=3, offset_sd=6.0, noise_sd=0.25, class_gap=1.0,
                           splits=splits)


def test_speaker_normalisation_is_a_candidate_that_wins_when_speakers_shift():
    X, y, split, speaker = _shifted_speakers()
    cfg = SvmConfig(grid_C=(1.0, 10.0), grid_gamma=("scale",), grid_kernel=("rbf", "linear"), grid_transform=("none",))
    r = evaluate_feature(X, y, split, speaker, ["A", "B"], cfg)
    assert r["tuned"]["params"]["norm"] == "speaker"
    by = r["tuned_by_norm"]
    assert by["speaker"]["cv_mean"] > by["none"]["cv_mean"] + 0.2
    assert by["speaker"]["splits"]["Test"]["accuracy"] >= 0.8
    assert by["none"]["splits"]["Test"]["accuracy"] <= 0.6
    # the spec SVM never normalises by speaker
    assert r["spec"]["params"]["norm"] == "none"


def test_speaker_normalisation_of_an_evaluation_speaker_uses_their_clips_only():
    X, y, split, speaker = _shifted_speakers()
    cfg = SvmConfig(grid_C=(10.0,), grid_gamma=("scale",), grid_kernel=("rbf",), grid_transform=("none",))
    r = evaluate_feature(X, y, split, speaker, ["A", "B"], cfg)["tuned_by_norm"]
    # moving one test speaker far away changes nothing: their own mean is taken off
    X2 = X.copy()
    X2[speaker == 6] += 100.0
    r2 = evaluate_feature(X2, y, split, speaker, ["A", "B"], cfg)["tuned_by_norm"]
    assert r2["speaker"]["pred"]["Test"] == r["speaker"]["pred"]["Test"]
    assert r2["speaker"]["decision"]["Test"] == pytest.approx(r["speaker"]["decision"]["Test"], abs=1e-3)
    assert r2["none"]["pred"]["Test"] != r["none"]["pred"]["Test"]  # without it the shift is seen


def test_prepare_logs_before_normalising_and_refuses_unknown_norms():
    X = np.array([[1.0, 10.0], [np.e, 100.0], [np.e ** 2, 1000.0]])
    spk = np.array([1, 1, 1])
    out = prepare(X, transform="log", norm="speaker", speakers=spk)
    # log first: the first column becomes 0, 1, 2 -> z-scores -1.22, 0, 1.22
    assert out[:, 0] == pytest.approx([-1.2247449, 0.0, 1.2247449], abs=1e-5)
    assert np.array_equal(prepare(X, transform="none", norm="none"), X)
    with pytest.raises(ValueError, match="unknown normalisation"):
        prepare(X, norm="bogus", speakers=spk)


def test_fit_params_without_normalisation_equals_the_plain_pipeline():
    X, y, split, speaker = toy()
    tr = split == "Train"
    params = {"transform": "log", "norm": "none", "kernel": "rbf", "C": 10.0, "gamma": "scale"}
    model, Xp = fit_params(params, X, y, tr)
    plain = pipeline_of(params).fit(X[tr], y[tr])
    assert np.allclose(model.decision_function(Xp[~tr]), plain.decision_function(X[~tr]))
    with pytest.raises(ValueError, match="fit_params"):
        pipeline_of({**params, "norm": "speaker"})


def test_eval_clips_lists_each_evaluation_split_s_keys_and_speakers_in_row_order():
    feats = {"split": np.array(["Train", "Confirm", "Test", "Confirm", "Test", "Train"]),
             "key": np.array(["Train/A/t1", "Confirm/A/c1", "Test/B/x", "Confirm/B/c2", "Test/A/y", "Train/B/t2"]),
             "speaker": np.array(["s1", "s9", "s5", "", "s6", "s2"])}
    out = eval_clips(feats)
    assert list(out["keys"]) == ["Test", "Confirm"] == list(out["speakers"])  # Train is no evaluation split
    assert out["keys"] == {"Test": ["Test/B/x", "Test/A/y"], "Confirm": ["Confirm/A/c1", "Confirm/B/c2"]}
    assert out["speakers"] == {"Test": ["s5", "s6"], "Confirm": ["s9", None]}  # no speaker: None
    no_confirm = eval_clips({k: v[[0, 2, 4]] for k, v in feats.items()})
    assert list(no_confirm["keys"]) == ["Test"] and no_confirm["speakers"] == {"Test": ["s5", "s6"]}
