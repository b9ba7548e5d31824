"""SVMs on the spectral features (section 2).

Two models per feature type:

``spec``
    ``StandardScaler`` then ``SVC(C=10, kernel="rbf")``, as the spec asks. The
    scaler is fitted on the training clips only (inside the pipeline).
``tuned``
    transform (none or log), kernel, C and gamma chosen by cross-validation
    grouped by training actor (leave one actor out); refitted on all training
    clips and evaluated once on the test clips.
"""
from __future__ import annotations

import numpy as np

from .dataset import EVAL_SPLITS
from .metrics import scores

LOG_EPS = 1e-10


def _log(x):
    return np.log(np.maximum(x, 0.0) + LOG_EPS)


def make_pipeline(*, transform: str = "none", kernel: str = "rbf", C: float = 10.0, gamma="scale"):
    """transform -> StandardScaler -> SVC, as one scikit-learn Pipeline."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler
    from sklearn.svm import SVC

    steps = []
    if transform == "log":
        steps.append(("log", FunctionTransformer(_log)))
    steps += [("scale", StandardScaler()), ("svc", SVC(C=C, kernel=kernel, gamma=gamma))]
    return Pipeline(steps)


def cv_splitter(groups: np.ndarray, y: np.ndarray, seed: int):
    """Leave-one-actor-out when actors are known, else 4 stratified folds."""
    from sklearn.model_selection import LeaveOneGroupOut, StratifiedKFold

    if np.all(groups >= 0) and len(np.unique(groups)) >= 2:
        return LeaveOneGroupOut(), "leave one training actor out"
    return StratifiedKFold(n_splits=4, shuffle=True, random_state=seed), "4 stratified folds (no actor in file names)"


def param_grid(cfg) -> list[dict]:
    grid = []
    for kernel in cfg.grid_kernel:
        g = {"svc__kernel": [kernel], "svc__C": list(cfg.grid_C)}
        if kernel != "linear":
            g["svc__gamma"] = list(cfg.grid_gamma)
        grid.append(g)
    return grid


def _params_of(p: dict, transform: str) -> dict:
    return {
        "transform": transform,
        "kernel": p["svc__kernel"],
        "C": float(p["svc__C"]),
        "gamma": p.get("svc__gamma", None) if p["svc__kernel"] != "linear" else None,
    }


def tune(X, y, groups, cfg, *, seed: int = 0) -> dict:
    """Grid search by grouped cross-validation; returns every candidate's score.

    Ties in mean accuracy go to the simpler model: the earlier transform, the
    earlier kernel, the smaller C (grid order).
    """
    from sklearn.model_selection import GridSearchCV

    splitter, how = cv_splitter(groups, y, seed)
    candidates = []
    for transform in cfg.grid_transform:
        search = GridSearchCV(make_pipeline(transform=transform), param_grid(cfg), cv=splitter,
                              scoring="accuracy", n_jobs=1)
        search.fit(X, y, groups=groups)
        res = search.cv_results_
        n_folds = search.n_splits_
        for i, p in enumerate(res["params"]):
            folds = [float(res[f"split{k}_test_score"][i]) for k in range(n_folds)]
            candidates.append({**_params_of(p, transform), "cv_mean": float(np.mean(folds)), "cv_folds": folds})
    spec = next(c for c in candidates if c["transform"] == "none" and c["kernel"] == cfg.spec_kernel
                and c["C"] == cfg.spec_C and c["gamma"] == "scale")
    best = max(candidates, key=lambda c: c["cv_mean"])  # max keeps the first of equals
    return {"cv": how, "candidates": candidates, "best": best, "spec_cv": spec}


def pipeline_of(params: dict):
    """The unfitted pipeline of a parameter row (``transform``, ``kernel``, ``C``, ``gamma``)."""
    return make_pipeline(transform=params["transform"], kernel=params["kernel"], C=params["C"],
                         gamma=params["gamma"] if params["gamma"] is not None else "scale")



def evaluate_feature(X, y, split, groups, class_names, cfg, *, seed: int = 0) -> dict:
    """Spec model and tuned model for one feature matrix; every choice made on
    the Train rows, then each evaluation split (Test, and Confirm when present)
    scored once."""
    from .protocol import per_actor

    tr = split == "Train"
    tuned = tune(X[tr], y[tr], groups[tr], cfg, seed=seed)
    spec_params = {"transform": "none", "kernel": cfg.spec_kernel, "C": cfg.spec_C, "gamma": "scale"}
    out = {"cv": tuned["cv"]}
    best_params = {k: tuned["best"][k] for k in ("transform", "kernel", "C", "gamma")}
    evals = [s for s in EVAL_SPLITS if (split == s).any()]
    for name, params, cv in (("spec", spec_params, tuned["spec_cv"]), ("tuned", best_params, tuned["best"])):
        model = pipeline_of(params).fit(X[tr], y[tr])
        out[name] = {"params": params, "cv_mean": cv["cv_mean"], "cv_folds": cv["cv_folds"], "splits": {}, "pred": {},
                     "decision": {}}
        for s in evals:
            ev = split == s
            pred = model.predict(X[ev])
            out[name]["splits"][s] = {**scores(y[ev], pred, class_names),
                                      "per_actor": per_actor(y[ev], pred, groups[ev].tolist())}
            out[name]["pred"][s] = pred.tolist()
            out[name]["decision"][s] = np.round(model.decision_function(X[ev]), 4).tolist()
    top = sorted(tuned["candidates"], key=lambda c: -c["cv_mean"])[:5]
    out["top_candidates"] = top
    out["n_candidates"] = len(tuned["candidates"])
    return out


def run_svms(feats: dict[str, np.ndarray], cfg, *, log=print) -> dict:
    """Every reading x feature kind; plus the best and worst kinds by test accuracy.

    ``feats`` is the feature cache (see :mod:`ser.extract`).
    """
    classes = [str(c) for c in feats["classes"]]
    y, split, groups = feats["label"], feats["split"], feats["actor"]
    results = {"classes": classes, "keys": {s: feats["key"][split == s].tolist() for s in EVAL_SPLITS if (split == s).any()},
               "readings": {}}
    for reading in cfg.features.readings:
        per_kind = {}
        for kind in cfg.features.kinds:
            r = evaluate_feature(feats[f"X_{reading}_{kind}"], y, split, groups, classes, cfg.svm, seed=cfg.seed)
            per_kind[kind] = r
            log(f"SVM {reading:5s} {kind:3s}: spec C={cfg.svm.spec_C:g} test acc "
                f"{r['spec']['splits']['Test']['accuracy']:.3f} | tuned {r['tuned']['params']} "
                f"cv {r['tuned']['cv_mean']:.3f} test {r['tuned']['splits']['Test']['accuracy']:.3f}")
        results["readings"][reading] = {"kinds": per_kind, **rank_kinds(per_kind)}
    return results


def rank_kinds(per_kind: dict) -> dict:
    """Best and worst feature kind by the spec model's test accuracy (the
    spec's definition), and by cross-validated accuracy of the tuned model."""
    by_test = sorted(per_kind, key=lambda k: -per_kind[k]["spec"]["splits"]["Test"]["accuracy"])
    by_cv = sorted(per_kind, key=lambda k: -per_kind[k]["tuned"]["cv_mean"])
    best, worst = per_kind[by_test[0]]["spec"]["splits"]["Test"], per_kind[by_test[-1]]["spec"]["splits"]["Test"]
    return {"order_by_test": by_test, "best": by_test[0], "worst": by_test[-1],
            "order_by_cv": by_cv, "best_by_cv": by_cv[0], "worst_by_cv": by_cv[-1],
            "rankings_agree": by_test[0] == by_cv[0],
            # Do the 95% intervals of the best and worst kinds overlap?
            "best_worst_overlap": best["accuracy_ci95"][0] <= worst["accuracy_ci95"][1],
            "best_minus_worst": best["accuracy"] - worst["accuracy"]}
