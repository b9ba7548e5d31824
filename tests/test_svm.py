import numpy as np

from ser.config import SvmConfig
from ser.svm import evaluate_feature, make_pipeline, rank_kinds


def toy(seed=0, n_per=12):
    rng = np.random.default_rng(seed)
    X, y, split, actor = [], [], [], []
    for s, actors in (("Train", (1, 2, 3)), ("Test", (5,))):
        for a in actors:
            for label in range(2):
                # class 1 has a 100x larger "energy": separable after a log
                x = rng.lognormal(mean=0.0, sigma=0.3, size=(n_per, 6)) * (100.0 if label else 1.0)
                X.append(x)
                y += [label] * n_per
                split += [s] * n_per
                actor += [a] * n_per
    return np.vstack(X), np.array(y), np.array(split), np.array(actor)


def test_tuned_model_is_chosen_by_actor_folds_and_scored_on_test():
    X, y, split, actor = toy()
    cfg = SvmConfig(grid_C=(1.0, 10.0), grid_gamma=("scale",), grid_kernel=("rbf", "linear"))
    r = evaluate_feature(X, y, split, actor, ["A", "B"], cfg)
    assert r["cv"] == "leave one training actor out"
    assert len(r["tuned"]["cv_folds"]) == 3  # one fold per training actor
    assert r["n_candidates"] == 2 * (2 + 2)
    assert r["spec"]["params"] == {"transform": "none", "kernel": "rbf", "C": 10.0, "gamma": "scale"}
    assert r["tuned"]["test"]["n"] == 24
    assert r["tuned"]["test"]["accuracy"] == 1.0


def test_scaler_is_fitted_inside_the_pipeline():
    p = make_pipeline(transform="log")
    assert [name for name, _ in p.steps] == ["log", "scale", "svc"]


def test_best_and_worst_follow_test_accuracy():
    def kind(acc, cv):
        return {"spec": {"test": {"accuracy": acc, "accuracy_ci95": [acc - 0.08, acc + 0.08]}}, "tuned": {"cv_mean": cv}}

    r = rank_kinds({"SC": kind(0.55, 0.3), "SBW": kind(0.49, 0.4), "SBE": kind(0.30, 0.5)})
    assert (r["best"], r["worst"]) == ("SC", "SBE")
    assert r["best_by_cv"] == "SBE" and not r["rankings_agree"]
    assert not r["best_worst_overlap"]
