"""SVMs on the spectral features (section 2).

Two models per feature type:

``spec``
    ``StandardScaler`` then ``SVC(C=10, kernel="rbf")``, as the spec asks. The
    scaler is fitted on the training clips only (inside the pipeline).
``tuned``
    transform (none or log), speaker normalisation (none, or each speaker's
    features z-scored by that speaker's own clips: :mod:`ser.data.speakers`),
    kernel, C and gamma chosen by cross-validation grouped by training speaker
    (leave one speaker out); refitted on all training clips and evaluated once
    on each evaluation split. The best candidate within each normalisation
    (``tuned_by_norm``) is scored too, so that the reader sees every feature
    with and without speaker normalisation.
"""
from __future__ import annotations

import numpy as np

from ser.data.dataset import EVAL_SPLITS
from ser.metrics import scores

LOG_EPS = 1e-10


def _log(x):
    return np.log(np.maximum(x, 0.0) + LOG_EPS)


def prepare(X, *, transform: str = "none", norm: str = "none", speakers=None) -> np.ndarray:
    """The stateless steps before scaling: the transform (``"log"``), then
    speaker normalisation (``"speaker"``: :func:`ser.data.speakers.speaker_zscore`
    over ``speakers``). Neither fits anything on other clips, so they are
    applied to every row at once, before any fold is made."""
    from ser.data.speakers import speaker_zscore

    X = _log(X) if transform == "log" else np.asarray(X)
    if norm == "speaker":
        return speaker_zscore(X, speakers)
    if norm != "none":
        raise ValueError(f"unknown normalisation {norm!r} (none, speaker)")
    return X


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


def param_grid(cfg) -> list[dict]:
    grid = []
    for kernel in cfg.grid_kernel:
        g = {"svc__kernel": [kernel], "svc__C": list(cfg.grid_C)}
        if kernel != "linear":
            g["svc__gamma"] = list(cfg.grid_gamma)
        grid.append(g)
    return grid


def _params_of(p: dict, transform: str, norm: str = "none") -> dict:
    return {
        "transform": transform,
        "norm": norm,
        "kernel": p["svc__kernel"],
        "C": float(p["svc__C"]),
        "gamma": p.get("svc__gamma", None) if p["svc__kernel"] != "linear" else None,
    }


def tune(X, y, groups, cfg, *, seed: int = 0, speakers=None, fold_options: dict | None = None) -> dict:
    """Grid search by cross-validation over speaker folds; returns every candidate's score.

    The folds are :func:`ser.data.speakers.speaker_folds` of ``groups`` (each
    row's speaker; None: a data set without speakers) with ``fold_options``
    (``max_loso``, ``k``), the folds the networks validate on. Ties in mean
    accuracy go to the simpler model: no speaker normalisation before
    normalisation, the earlier transform, the earlier kernel, the smaller C
    (grid order). ``speakers`` (one per row; default: ``groups``) are the
    groups of speaker normalisation.
    """
    from sklearn.model_selection import GridSearchCV

    from ser.data.speakers import FOLD_DEFAULTS
    from ser.data.speakers import speaker_folds

    speakers = groups if speakers is None else speakers
    folds, scheme = speaker_folds(groups, y, **{**FOLD_DEFAULTS, **(fold_options or {}), "seed": seed})
    splitter = [(tr, va) for _, tr, va in folds]
    how = scheme["scheme"]
    candidates = []
    for norm in cfg.grid_norm:
        for transform in cfg.grid_transform:
            search = GridSearchCV(make_pipeline(), param_grid(cfg), cv=splitter, scoring="accuracy", n_jobs=1)
            search.fit(prepare(X, transform=transform, norm=norm, speakers=speakers), y)
            res = search.cv_results_
            n_folds = search.n_splits_
            for i, p in enumerate(res["params"]):
                folds = [float(res[f"split{k}_test_score"][i]) for k in range(n_folds)]
                candidates.append({**_params_of(p, transform, norm), "cv_mean": float(np.mean(folds)),
                                   "cv_folds": folds})
    spec = next(c for c in candidates if c["transform"] == "none" and c["norm"] == "none"
                and c["kernel"] == cfg.spec_kernel and c["C"] == cfg.spec_C and c["gamma"] == "scale")
    best = max(candidates, key=lambda c: c["cv_mean"])  # max keeps the first of equals
    by_norm = {n: max((c for c in candidates if c["norm"] == n), key=lambda c: c["cv_mean"]) for n in cfg.grid_norm}
    return {"cv": how, "folds": scheme, "candidates": candidates, "best": best, "spec_cv": spec,
            "best_by_norm": by_norm}


def pipeline_of(params: dict):
    """The unfitted pipeline of a parameter row (``transform``, ``kernel``,
    ``C``, ``gamma``; ``norm`` must be ``"none"``: speaker normalisation needs
    every clip of a speaker, see :func:`fit_params`)."""
    if params.get("norm", "none") != "none":
        raise ValueError("a speaker-normalised SVM needs its speakers' clips: use fit_params")
    return make_pipeline(transform=params["transform"], kernel=params["kernel"], C=params["C"],
                         gamma=params["gamma"] if params["gamma"] is not None else "scale")


def fit_params(params: dict, X, y, train, *, speakers=None):
    """The SVM of a parameter row fitted on the rows ``train``, and every
    row's input as that model reads it (:func:`prepare` with the row's
    transform and normalisation)."""
    Xp = prepare(X, transform=params["transform"], norm=params["norm"], speakers=speakers)
    model = make_pipeline(kernel=params["kernel"], C=params["C"],
                          gamma=params["gamma"] if params["gamma"] is not None else "scale")
    return model.fit(Xp[train], np.asarray(y)[train]), Xp


PARAM_KEYS = ("transform", "norm", "kernel", "C", "gamma")



def evaluate_feature(X, y, split, groups, class_names, cfg, *, seed: int = 0, speakers=None,
                     fold_options: dict | None = None) -> dict:
    """Spec model and tuned models for one feature matrix; every choice made on
    the Train rows, then each evaluation split (Test, and Confirm when present)
    scored once.

    ``spec`` is the spec's SVM, ``tuned`` the best candidate of the whole grid,
    ``tuned_by_norm[n]`` the best candidate with speaker normalisation ``n``.
    """
    from ser.data.speakers import per_speaker
    from ser.data.speakers import speaker_keys

    tr = split == "Train"
    if speakers is None and "speaker" in cfg.grid_norm:
        speakers = speaker_keys(split.tolist(), None if groups is None else groups.tolist())
    tuned = tune(X[tr], y[tr], None if groups is None else groups[tr], cfg, seed=seed,
                 speakers=None if speakers is None else speakers[tr], fold_options=fold_options)
    spec_params = {"transform": "none", "norm": "none", "kernel": cfg.spec_kernel, "C": cfg.spec_C, "gamma": "scale"}
    evals = [s for s in EVAL_SPLITS if (split == s).any()]

    def fit_score(params, cv):
        model, Xp = fit_params(params, X, y, tr, speakers=speakers)
        r = {"params": params, "cv_mean": cv["cv_mean"], "cv_folds": cv["cv_folds"], "splits": {}, "pred": {},
             "decision": {}}
        for s in evals:
            ev = split == s
            pred = model.predict(Xp[ev])
            r["splits"][s] = {**scores(y[ev], pred, class_names),
                              "per_speaker": per_speaker(y[ev], pred, [None] * int(ev.sum()) if groups is None
                                                         else groups[ev].tolist())}
            r["pred"][s] = pred.tolist()
            r["decision"][s] = np.round(model.decision_function(Xp[ev]), 4).tolist()
        return r

    out = {"cv": tuned["cv"], "folds": tuned["folds"], "spec": fit_score(spec_params, tuned["spec_cv"]),
           "tuned": fit_score({k: tuned["best"][k] for k in PARAM_KEYS}, tuned["best"]),
           "tuned_by_norm": {n: fit_score({k: c[k] for k in PARAM_KEYS}, c) for n, c in tuned["best_by_norm"].items()}}
    out["top_candidates"] = sorted(tuned["candidates"], key=lambda c: -c["cv_mean"])[:5]
    out["n_candidates"] = len(tuned["candidates"])
    return out


def speakers_of(feats: dict[str, np.ndarray]) -> np.ndarray:
    """The speaker of every row of a feature cache (:func:`ser.data.speakers.speaker_keys`)."""
    from ser.data.speakers import speaker_keys

    return speaker_keys(feats["split"].tolist(), [str(a) or None for a in feats["speaker"]], feats["key"].tolist())


def groups_of(feats: dict[str, np.ndarray]) -> np.ndarray | None:
    """Each row's speaker as text (the groups of the folds), or None when the
    data set has no speakers (every entry empty, ``speaker_pattern = "none"``)."""
    g = np.asarray([str(a) for a in feats["speaker"]], dtype=object)
    return None if len(g) and all(a == "" for a in g) else g


def eval_clips(feats: dict[str, np.ndarray]) -> dict[str, dict[str, list]]:
    """The evaluation splits' clips of a feature cache, in its row order:
    ``{"keys": {split: [key]}, "speakers": {split: [speaker or None]}}``
    (None where the data set has no speakers)."""
    split = feats["split"]
    present = [s for s in EVAL_SPLITS if (split == s).any()]
    return {"keys": {s: feats["key"][split == s].tolist() for s in present},
            "speakers": {s: [str(a) or None for a in feats["speaker"][split == s]] for s in present}}


def run_svms(feats: dict[str, np.ndarray], cfg, *, log=print, fold_options: dict | None = None) -> dict:
    """Every reading x feature kind; plus the best and worst kinds by test accuracy.

    ``feats`` is the feature cache (see :mod:`ser.features.extract`).
    """
    classes = [str(c) for c in feats["classes"]]
    y, split, groups = feats["label"], feats["split"], groups_of(feats)
    speakers = speakers_of(feats) if "speaker" in cfg.svm.grid_norm else None
    results = {"classes": classes, **eval_clips(feats), "readings": {}}
    for reading in cfg.features.readings:
        per_kind = {}
        for kind in cfg.features.kinds:
            r = evaluate_feature(feats[f"X_{reading}_{kind}"], y, split, groups, classes, cfg.svm, seed=cfg.seed,
                                 speakers=speakers, fold_options=fold_options)
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
