"""Combined models: a weighted average of several models' class probabilities.

Members and their probabilities:

* an SVM: its decision values turned into probabilities by sigmoid
  calibration (scikit-learn's ``CalibratedClassifierCV``), calibrated by
  leave-one-speaker-out inside the clips it is trained on, so that no clip
  calibrates the model that was fitted on it;
* a network: the seed ensemble's mean softmax.

The weights are chosen on the training speakers only, from out-of-fold
probabilities: every training clip is scored by models that never saw its
speaker (for an SVM, a calibrated SVM fitted on the other training speakers; for
a network, the validation runs of its chosen setting at the chosen epoch,
validation seeds averaged). Every weight vector on a grid over the simplex is
scored; the highest out-of-fold accuracy wins, ties go to the lower
out-of-fold log loss, then to the earlier vector of the grid. The final
members (trained on every training clip) are then combined with those
weights and each evaluation split is scored once.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ser.data.dataset import EVAL_SPLITS
from ser.metrics import scores

PROBA_FLOOR = 1e-12


def weight_grid(n_members: int, step: float) -> np.ndarray:
    """Every weight vector whose entries are multiples of ``step`` and sum to 1.

    Returns
    -------
    np.ndarray [shape=(n_vectors, n_members)]
        In lexicographic order of the integer compositions, largest first
        weight first.
    """
    k = int(round(1.0 / step))
    if n_members < 1 or k < 1 or abs(k * step - 1.0) > 1e-9:
        raise ValueError(f"step must divide 1 and there must be members, got step={step}, n={n_members}")

    def parts(total: int, n: int):
        if n == 1:
            yield (total,)
            return
        for first in range(total, -1, -1):
            for rest in parts(total - first, n - 1):
                yield (first, *rest)

    return np.array(list(parts(k, n_members)), dtype=float) / k


def fuse(probas: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """The weighted mean of the members' class probabilities [shape=(n_clips, n_classes)]."""
    return np.tensordot(np.asarray(weights, float), np.stack([np.asarray(p, float) for p in probas]), axes=1)


def log_loss(proba: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log probability of the true class (floored at 1e-12)."""
    p = np.asarray(proba, float)[np.arange(len(y)), np.asarray(y)]
    return float(-np.mean(np.log(np.maximum(p, PROBA_FLOOR))))


def choose_weights(oof: Sequence[np.ndarray], y, *, step: float) -> dict:
    """The grid's weight vector with the best out-of-fold accuracy (ties: lower log loss, then grid order)."""
    y = np.asarray(y)
    grid = weight_grid(len(oof), step)
    stack = np.stack([np.asarray(p, float) for p in oof])
    fused = np.einsum("gm,mnc->gnc", grid, stack)
    acc = (fused.argmax(-1) == y).mean(axis=1)
    ll = np.array([log_loss(f, y) for f in fused])
    best = min(range(len(grid)), key=lambda i: (-acc[i], ll[i], i))
    equal = fuse(oof, np.full(len(oof), 1.0 / len(oof)))
    return {"weights": grid[best].tolist(), "oof_accuracy": float(acc[best]), "oof_log_loss": float(ll[best]),
            "n_grid": int(len(grid)), "step": step,
            "equal_weights_oof_accuracy": float((equal.argmax(-1) == y).mean())}


LOSO = "leave one speaker out"
ONE_ACTOR = "softmax of decision values (one speaker left, no calibration)"


class _Softmax:
    """A fitted SVM whose probabilities are the softmax of its one-vs-rest decision values."""

    def __init__(self, model):
        self.model = model

    def predict_proba(self, X):
        d = np.asarray(self.model.decision_function(X), float)
        e = np.exp(d - d.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)


def calibrated_svm(params: dict, X, y, groups, rows: np.ndarray, *, speakers=None, method: str = "sigmoid",
                   fold_options: dict | None = None):
    """The SVM of a parameter row (:mod:`ser.models.svm`), fitted on ``rows`` with
    probabilities calibrated on speaker folds inside those rows
    (:func:`ser.data.speakers.speaker_folds`; ``groups`` None: stratified folds),
    every row's input as it reads them, and how the probabilities were made.

    When ``rows`` hold a single speaker (a model fitted without one of two
    training speakers), no speaker-independent calibration exists: the
    probabilities are then the softmax of the decision values, and the
    returned name says so."""
    from sklearn.calibration import CalibratedClassifierCV

    from ser.data.speakers import FOLD_DEFAULTS
    from ser.data.speakers import speaker_folds

    from ser.models.svm import make_pipeline, prepare

    Xp = prepare(X, transform=params["transform"], norm=params["norm"], speakers=speakers)
    y = np.asarray(y)
    base = make_pipeline(kernel=params["kernel"], C=params["C"],
                         gamma=params["gamma"] if params["gamma"] is not None else "scale")
    if groups is not None and len(set(np.asarray(groups)[rows].tolist())) < 2:
        return _Softmax(base.fit(Xp[rows], y[rows])), Xp, ONE_ACTOR
    folds, scheme = speaker_folds(None if groups is None else np.asarray(groups)[rows], y[rows],
                                  **{**FOLD_DEFAULTS, **(fold_options or {})})
    cv = [(tr, va) for _, tr, va in folds]
    how = LOSO if scheme["scheme"] == "leave-one-speaker-out" else scheme["scheme"]
    return CalibratedClassifierCV(base, method=method, cv=cv).fit(Xp[rows], y[rows]), Xp, how


def svm_member(params: dict, X, y, split, groups, *, speakers=None, method: str = "sigmoid",
               fold_options: dict | None = None) -> dict:
    """An SVM's out-of-fold probabilities on the training clips (each
    validation fold of :func:`ser.data.speakers.speaker_folds`, the folds every
    model validates on, scored by a calibrated SVM fitted on the other
    training clips) and its final calibrated probabilities on every
    evaluation split."""
    from ser.data.speakers import FOLD_DEFAULTS
    from ser.data.speakers import speaker_folds

    split = np.asarray(split)
    groups = None if groups is None else np.asarray(groups)
    tr = split == "Train"
    oof = np.zeros((int(tr.sum()), len(np.unique(y))))
    tr_idx = np.flatnonzero(tr)
    opts = {**FOLD_DEFAULTS, **(fold_options or {})}
    folds, _ = speaker_folds(None if groups is None else groups[tr], np.asarray(y)[tr], **opts)
    hows = set()
    for _, f_tr, f_va in folds:
        fit_rows = np.zeros(len(split), bool)
        fit_rows[tr_idx[f_tr]] = True
        model, Xp, how = calibrated_svm(params, X, y, groups, fit_rows, speakers=speakers, method=method,
                                        fold_options=opts)
        oof[f_va] = model.predict_proba(Xp[tr_idx[f_va]])
        hows.add(how)
    model, Xp, how = calibrated_svm(params, X, y, groups, tr, speakers=speakers, method=method, fold_options=opts)
    return {"oof": oof, "eval": {s: model.predict_proba(Xp[split == s]) for s in EVAL_SPLITS if (split == s).any()},
            "calibration": sorted(hows | {how})}


def network_member(net: dict, train_keys: Sequence[str], eval_keys: dict[str, Sequence[str]]) -> dict:
    """A network's chosen setting as a member: out-of-fold probabilities from
    its validation runs and the seed ensemble's probabilities, both reordered
    to the given clip keys."""
    val = net["validation"]
    row = val["candidates"][net["chosen"]]
    if row.get("oof_proba") is None or val.get("train_keys") is None:
        raise ValueError("the network's results hold no out-of-fold probabilities; re-run its task")
    pos = {k: i for i, k in enumerate(val["train_keys"])}
    oof = np.asarray(row["oof_proba"], float)[[pos[k] for k in train_keys]]
    out = {}
    for s, keys in eval_keys.items():
        p = net["predictions"][net["chosen"]][s]
        at = {k: i for i, k in enumerate(p["keys"])}
        out[s] = np.asarray(p["ensemble_proba"], float)[[at[k] for k in keys]]
    return {"oof": oof, "eval": out}


def combine(members: dict[str, dict], y_train, eval_y: dict[str, np.ndarray], eval_speakers: dict[str, list],
            classes: Sequence[str], *, step: float) -> dict:
    """Weights from the members' out-of-fold probabilities, then one pass over each evaluation split."""
    from ser.data.speakers import per_speaker

    names = list(members)
    choice = choose_weights([members[m]["oof"] for m in names], y_train, step=step)
    out = {"members": names, **choice, "weights": dict(zip(names, choice["weights"])), "splits": {}, "pred": {},
           "proba": {}}
    for s, y in eval_y.items():
        p = fuse([members[m]["eval"][s] for m in names], choice["weights"])
        pred = p.argmax(1)
        out["splits"][s] = {**scores(y, pred, classes), "per_speaker": per_speaker(y, pred, eval_speakers[s])}
        out["pred"][s] = pred.tolist()
        out["proba"][s] = np.round(p, 6).tolist()
    return out


def member_summary(member: dict, y_train, eval_y: dict[str, np.ndarray], classes) -> dict:
    """A member's own out-of-fold accuracy and its accuracy per evaluation split."""
    return {"calibration": member.get("calibration"),
            "oof_accuracy": float((member["oof"].argmax(1) == np.asarray(y_train)).mean()),
            "splits": {s: scores(y, member["eval"][s].argmax(1), classes)["accuracy"] for s, y in eval_y.items()}}


def subset_normalisation(params: dict, X, y, split, groups, speakers, *, split_name: str) -> dict:
    """What speaker normalisation assumes, measured: each speaker of
    ``split_name`` normalised by the clips of one class only (every class in
    turn) instead of all their clips, against the usual normalisation, with
    the final SVM of ``params`` (which must use ``norm="speaker"``)."""
    from ser.data.speakers import speaker_order, speaker_zscore
    from ser.models.svm import fit_params, prepare

    split, y, groups, speakers = map(np.asarray, (split, y, groups, speakers))
    tr = split == "Train"
    model, Xp = fit_params(params, X, y, tr, speakers=speakers)
    Xt = prepare(X, transform=params["transform"], norm="none")
    classes = np.unique(y)
    per = []
    for a in sorted(set(groups[split == split_name].tolist()), key=speaker_order):
        mine = (split == split_name) & (groups == a)
        row = {"speaker": str(a), "n": int(mine.sum()), "all_clips": float((model.predict(Xp[mine]) == y[mine]).mean()),
               "one_class": {}}
        for c in classes:
            Z = speaker_zscore(Xt[mine], speakers[mine], rows=y[mine] == c)
            row["one_class"][int(c)] = float((model.predict(Z) == y[mine]).mean())
        per.append(row)
    all_mean = float(np.mean([r["all_clips"] for r in per]))
    one = float(np.mean([v for r in per for v in r["one_class"].values()]))
    return {"split": split_name, "params": params, "per_speaker": per, "all_clips_mean": all_mean,
            "one_class_mean": one, "one_class_by_class": {int(c): float(np.mean([r["one_class"][int(c)] for r in per]))
                                                           for c in classes}}


def run_fusion(feats: dict, anchor_feats: dict | None, svm: dict, anchors: dict | None, nets: dict[str, dict],
               cfg, *, log: Callable[[str], None] = print) -> dict:
    """The combined models of the build (see the module text).

    ``task``: the hand-made-feature SVM (the tuned SVM of the feature type
    ranked first by cross-validation, bands in Hz), the 1D CNN and the 2D CNN.
    ``all``: those and the anchors' tuned SVMs (``anchors`` results), when built.
    """
    from ser.data.speakers import fold_options
    from ser.models.svm import groups_of, speakers_of

    classes = [str(c) for c in feats["classes"]]
    y, split, groups = feats["label"], feats["split"], groups_of(feats)
    speakers = speakers_of(feats)
    tr = split == "Train"
    train_keys = feats["key"][tr].tolist()
    evals = [s for s in EVAL_SPLITS if (split == s).any()]
    eval_keys = {s: feats["key"][split == s].tolist() for s in evals}
    eval_y = {s: y[split == s] for s in evals}
    eval_speakers = {s: groups[split == s].tolist() for s in evals}
    method = cfg.fusion.calibration
    opts = fold_options(cfg)

    hz = svm["readings"]["hz"]
    kind = hz["best_by_cv"]
    members = {"svm": svm_member(hz["kinds"][kind]["tuned"]["params"], feats[f"X_hz_{kind}"], y, split, groups,
                                 speakers=speakers, method=method, fold_options=opts)}
    labels = {"svm": f"tuned SVM on {kind}"}
    for name, net in nets.items():
        members[name] = network_member(net, train_keys, eval_keys)
        labels[name] = {"cnn1d": "1D CNN", "cnn2d": "2D CNN"}.get(name, name)
    task = list(members)
    if anchors is not None:
        if anchor_feats["key"].tolist() != feats["key"].tolist():
            raise ValueError("the anchor cache and the feature cache list different clips; re-run doit")
        for name, r in anchors["kinds"].items():
            members[name] = svm_member(r["tuned"]["params"], anchor_feats[f"X_{name}"], y, split, groups,
                                       speakers=speakers, method=method, fold_options=opts)
            labels[name] = f"tuned SVM on {anchors['meta'][name]['label']}"
    log(f"fusion: members {', '.join(members)}")
    out = {"classes": classes, "keys": eval_keys, "calibration": method,
           "members": {m: {"label": labels[m], **member_summary(members[m], y[tr], eval_y, classes)} for m in members},
           "models": {}}
    combos = {"task": (task, cfg.fusion.step_task)}
    if anchors is not None:
        combos["all"] = (list(members), cfg.fusion.step_all)
    for cname, (names, step) in combos.items():
        out["models"][cname] = combine({m: members[m] for m in names}, y[tr], eval_y, eval_speakers, classes, step=step)
        r = out["models"][cname]
        log(f"fusion {cname}: weights {r['weights']} (out-of-fold {r['oof_accuracy']:.3f}); "
            + ", ".join(f"{s} {r['splits'][s]['accuracy']:.3f}" for s in evals))
    out["subset_normalisation"] = _subset_check(feats, anchor_feats, svm, anchors, speakers, evals[-1])
    return out


def _subset_check(feats, anchor_feats, svm, anchors, speakers, split_name: str) -> dict | None:
    """:func:`subset_normalisation` for the speaker-normalised SVM with the
    best cross-validated accuracy (any feature set), on ``split_name``."""
    from ser.models.svm import groups_of

    hz = svm["readings"]["hz"]
    options = [(r["tuned_by_norm"]["speaker"], feats[f"X_hz_{k}"], f"{k}, bands in Hz")
               for k, r in hz["kinds"].items() if "speaker" in r.get("tuned_by_norm", {})]
    if anchors is not None:
        options += [(r["tuned_by_norm"]["speaker"], anchor_feats[f"X_{k}"], anchors["meta"][k]["label"])
                    for k, r in anchors["kinds"].items() if "speaker" in r.get("tuned_by_norm", {})]
    if not options:
        return None
    best, X, label = max(options, key=lambda o: o[0]["cv_mean"])  # first of equals
    return {"features": label, **subset_normalisation(best["params"], X, feats["label"], feats["split"],
                                                      groups_of(feats), speakers, split_name=split_name)}
