"""Comparisons the report states in words, computed from the results files.

Templates only format values; every "better", "worse" or "within the noise"
in the report is decided here from the numbers, so the wording stays true
whatever the numbers of a build turn out to be.
"""
from __future__ import annotations

import numpy as np


def svm_baseline(svm: dict, split: str = "Test") -> dict:
    """The SVM number a network must not fall below on ``split``: the spec SVM
    (bands in Hz) with the best feature type on that split (on Test, the
    task's definition), and the best of every SVM built (any reading, spec or
    tuned) as a stricter bar."""
    main = svm["readings"]["hz"]["kinds"]
    kind = max(main, key=lambda k: main[k]["spec"]["splits"][split]["accuracy"])  # first of equals
    best = main[kind]["spec"]["splits"][split]
    every = [(k[m]["splits"][split]["accuracy"], rd, kind, m)
             for rd, r in svm["readings"].items() for kind, k in r["kinds"].items() for m in ("spec", "tuned")]
    top = max(every)
    return {"kind": kind, "accuracy": best["accuracy"], "accuracy_ci95": best["accuracy_ci95"],
            "strict_accuracy": top[0], "strict_label": f"{top[2]}, bands as {top[1]}, {top[3]} SVM"}


def headline(net: dict, split: str = "Test") -> dict:
    """A network's reported setting on ``split``: the chosen candidate's seeds and ensemble."""
    return net["models"][net["chosen"]]["splits"][split]


def compare(head: dict, baseline: dict, declared: str = "single") -> dict:
    """A network's seed mean and ensemble against the SVM baseline; the
    verdict is on the declared model (``"ensemble"`` or ``"single"``: the
    mean over single seeds), chosen beforehand on the training speakers.

    "Not worse" means greater than or equal: a tie meets the task's "not
    lower than the SVM".
    """
    mean = head["summary"]["mean"]
    lo, hi = head["summary"]["mean_ci95"]
    ens = head["ensemble"]["accuracy"]
    judged = ens if declared == "ensemble" else mean
    return {
        "declared": declared,
        "declared_accuracy": judged,
        "declared_not_worse_than_svm": judged >= baseline["accuracy"],
        "declared_margin": judged - baseline["accuracy"],
        "mean": mean,
        "std": head["summary"]["std"],
        "mean_ci95": [lo, hi],
        "ensemble": ens,
        "ensemble_ci95": head["ensemble"]["accuracy_ci95"],
        "not_worse_than_svm": mean >= baseline["accuracy"],
        "ensemble_not_worse_than_svm": ens >= baseline["accuracy"],
        "not_worse_than_strict_svm": mean >= baseline["strict_accuracy"],
        # is the SVM inside the seeds' interval of the mean? then the gap is within seed noise
        "svm_within_seed_interval": lo <= baseline["accuracy"] <= hi,
    }


def augmentation_settings(cnn2d: dict) -> list[str]:
    """The 2D candidates of the augmentation experiment (item h): those on the
    task's images, not the speaker-normalised ones."""
    return [n for n, m in cnn2d["models"].items() if m["params"].get("input", "raw") == "raw"]


def augmentation_verdict(cnn2d: dict, split: str = "Test") -> dict:
    """What the augmentation experiment shows, setting by setting.

    A difference counts as clear only when the seeds' 95% intervals of the two
    means do not overlap (touching intervals are not clear).
    """
    val = {n: c["score"] for n, c in cnn2d["validation"]["candidates"].items()}
    s = {n: m["splits"][split]["summary"] for n, m in cnn2d["models"].items() if n in augmentation_settings(cnn2d)}
    names = list(s)
    by_val = sorted(names, key=lambda n: -val[n])
    by_test = sorted(names, key=lambda n: -s[n]["mean"])

    def clear(a: str, b: str) -> bool:
        return s[a]["mean_ci95"][0] > s[b]["mean_ci95"][1]

    pairs = {}
    if "none" in s:
        for n in names:
            if n == "none":
                continue
            d_val, d_test = val[n] - val["none"], s[n]["mean"] - s["none"]["mean"]
            pairs[n] = {
                "val_gain": d_val,
                "test_gain": d_test,
                "helps_on_both": d_val > 0 and d_test > 0,
                "hurts_on_both": d_val < 0 and d_test < 0,
                "clearly_better": clear(n, "none"),
                "clearly_worse": clear("none", n),
                "std_change": s[n]["std"] - s["none"]["std"],
            }
    return {"by_val": by_val, "by_test": by_test, "best_by_val": by_val[0], "best_by_test": by_test[0],
            "agree": by_val[0] == by_test[0], "vs_none": pairs,
            "any_clear": any(p["clearly_better"] or p["clearly_worse"] for p in pairs.values())}


def _by_key(keys, values, order) -> np.ndarray:
    at = {k: i for i, k in enumerate(keys)}
    return np.asarray(values)[[at[k] for k in order]]


def declared_predictions(net: dict, split: str, keys) -> np.ndarray:
    """The declared model's predicted classes on ``split``, in the order of
    ``keys``: the seed ensemble's, or for a single model every seed's
    [shape=(n_seeds, n_clips)] (its accuracy is the mean over seeds)."""
    p = net["predictions"][net["chosen"]][split]
    if net["declared"]["model"] == "ensemble":
        return _by_key(p["keys"], p["ensemble_pred"], keys)
    return np.stack([_by_key(p["keys"], v, keys) for v in p["pred_per_seed"].values()])


def baseline_predictions(svm: dict, split: str) -> np.ndarray:
    """The predictions of that split's SVM baseline (:func:`svm_baseline`), in ``svm["keys"][split]`` order."""
    kind = svm_baseline(svm, split)["kind"]
    return np.asarray(svm["readings"]["hz"]["kinds"][kind]["spec"]["pred"][split])


def paired(y, pred_a, pred_b, *, strata=None, seed: int = 0) -> dict:
    """:func:`ser.evaluate.stats.compare_paired`; a model given per seed (2-D) is
    pooled over its seeds against the other model's predictions repeated."""
    from ser.evaluate.stats import compare_paired

    pred_a, pred_b, y = np.asarray(pred_a), np.asarray(pred_b), np.asarray(y)
    if pred_a.ndim == 2:
        k = len(pred_a)
        pred_a, pred_b, y = pred_a.ravel(), np.tile(pred_b, k), np.tile(y, k)
        strata = None if strata is None else np.tile(strata, k)
    return compare_paired(y, pred_a, pred_b, seed=seed, strata=strata)


def challengers(svm: dict, nets: dict[str, dict | None], fusion: dict | None, split: str) -> dict[str, np.ndarray]:
    """Each model compared with the SVM baseline on ``split``: the networks'
    declared models and the combined models, predictions in ``svm["keys"]`` order."""
    keys = svm["keys"][split]
    out = {k: declared_predictions(n, split, keys) for k, n in nets.items() if n is not None}
    if fusion is not None:
        for name, r in fusion["models"].items():
            out[f"combined_{name}"] = _by_key(fusion["keys"][split], r["pred"][split], keys)
    return out


def paired_evidence(svm: dict, nets: dict[str, dict | None], fusion: dict | None, classes) -> dict:
    """Per split, and pooled over every evaluation split (each split against
    its own baseline, resampled within splits): every challenger minus the SVM
    baseline, with the paired bootstrap interval and McNemar's p."""
    splits = list(svm["keys"])
    y = {s: np.array([classes.index(k.split("/")[1]) for k in svm["keys"][s]]) for s in splits}
    base = {s: baseline_predictions(svm, s) for s in splits}
    ch = {s: challengers(svm, nets, fusion, s) for s in splits}
    out = {s: {m: paired(y[s], p, base[s]) for m, p in ch[s].items()} for s in splits}
    if len(splits) > 1:
        pooled = {}
        for m in ch[splits[0]]:
            preds = [ch[s][m] for s in splits]
            cat = np.concatenate(preds, axis=-1)
            pooled[m] = paired(np.concatenate([y[s] for s in splits]), cat, np.concatenate([base[s] for s in splits]),
                               strata=np.concatenate([[s] * len(y[s]) for s in splits]))
        out["pooled"] = pooled
    return out


def augmentation_pairs(cnn2d: dict, split: str) -> dict:
    """Each augmentation setting's seed ensemble against the "none" setting's, paired over the clips of ``split``."""
    preds = cnn2d["predictions"]
    if "none" not in preds:
        return {}
    ref = preds["none"][split]
    return {n: paired(ref["y_true"], _by_key(p[split]["keys"], p[split]["ensemble_pred"], ref["keys"]),
                      ref["ensemble_pred"])
            for n, p in preds.items() if n != "none" and n in augmentation_settings(cnn2d)}


def error_breakdown(svm: dict, nets: dict[str, dict | None], fusion: dict | None, classes) -> dict | None:
    """Accuracy per emotional intensity and per statement (RAVDESS names) of
    the SVM baseline and every challenger, per split; None when the names do
    not carry them."""
    from ser.evaluate.stats import accuracy_by_factor

    out = {}
    for s, keys in svm["keys"].items():
        y = np.array([classes.index(k.split("/")[1]) for k in keys])
        models = {"svm": baseline_predictions(svm, s), **challengers(svm, nets, fusion, s)}
        rows = {}
        for m, p in models.items():
            p = np.asarray(p)
            if p.ndim == 2:  # a single model: every seed pooled
                r = accuracy_by_factor(list(keys) * len(p), np.tile(y, len(p)), p.ravel())
            else:
                r = accuracy_by_factor(keys, y, p)
            if r is None:
                return None
            rows[m] = r
        out[s] = rows
    return out


def build_summary(svm: dict, nets: dict[str, dict | None], fusion: dict | None = None) -> dict:
    """Per evaluation split: every network and combined model against that
    split's SVM baseline, and the augmentation verdict."""
    out = {"eval_splits": list(svm["keys"]), "splits": {}}
    for split in svm["keys"]:
        row = {"svm": svm_baseline(svm, split)}
        for key, net in nets.items():
            if net is not None:
                row[key] = compare(headline(net, split), row["svm"], net["declared"]["model"])
        if fusion is not None:
            for name, r in fusion["models"].items():
                acc = r["splits"][split]["accuracy"]
                row[f"combined_{name}"] = {"accuracy": acc, "accuracy_ci95": r["splits"][split]["accuracy_ci95"],
                                           "not_worse_than_svm": acc >= row["svm"]["accuracy"],
                                           "margin": acc - row["svm"]["accuracy"]}
        if nets.get("cnn2d") is not None:
            row["augmentation"] = augmentation_verdict(nets["cnn2d"], split)
        out["splits"][split] = row
    return out


def evidence(svm: dict, nets: dict[str, dict | None], fusion: dict | None = None) -> dict:
    """The per-clip evidence beside the verdicts: paired comparisons with the
    SVM baseline (per split and pooled), the augmentation settings against no
    augmentation, and accuracy per intensity and statement."""
    out = {"paired": paired_evidence(svm, nets, fusion, svm["classes"]),
           "by_factor": error_breakdown(svm, nets, fusion, svm["classes"])}
    if nets.get("cnn2d") is not None:
        out["augmentation_paired"] = {s: augmentation_pairs(nets["cnn2d"], s) for s in svm["keys"]}
    return out
