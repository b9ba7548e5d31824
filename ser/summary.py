"""Comparisons the report states in words, computed from the results files.

Templates only format values; every "better", "worse" or "within the noise"
in the report is decided here from the numbers, so the wording stays true
whatever the numbers of a build turn out to be.
"""
from __future__ import annotations


def svm_baseline(svm: dict) -> dict:
    """The SVM number a network must not fall below: the spec SVM with the best
    feature type (bands in Hz), as the task defines it, and the best of every
    SVM built (any reading, spec or tuned) as a stricter bar."""
    main = svm["readings"]["hz"]
    best = main["kinds"][main["best"]]["spec"]["test"]
    every = [(k[m]["test"]["accuracy"], rd, kind, m)
             for rd, r in svm["readings"].items() for kind, k in r["kinds"].items() for m in ("spec", "tuned")]
    top = max(every)
    return {"kind": main["best"], "accuracy": best["accuracy"], "accuracy_ci95": best["accuracy_ci95"],
            "strict_accuracy": top[0], "strict_label": f"{top[2]}, bands as {top[1]}, {top[3]} SVM"}


def compare(headline: dict, baseline: dict, target: float) -> dict:
    """A network's seed mean and ensemble against the SVM baseline and a target."""
    mean = headline["summary"]["mean"]
    lo, hi = headline["summary"]["mean_ci95"]
    ens = headline["ensemble"]["accuracy"]
    return {
        "mean": mean,
        "std": headline["summary"]["std"],
        "mean_ci95": [lo, hi],
        "ensemble": ens,
        "not_worse_than_svm": mean >= baseline["accuracy"],
        "ensemble_not_worse_than_svm": ens >= baseline["accuracy"],
        "not_worse_than_strict_svm": mean >= baseline["strict_accuracy"],
        # is the SVM inside the seeds' interval of the mean? then the gap is within seed noise
        "svm_within_seed_interval": lo <= baseline["accuracy"] <= hi,
        "target": target,
        "target_met": mean >= target,
    }


def augmentation_verdict(cnn2d: dict) -> dict:
    """What the augmentation experiment shows, setting by setting.

    A difference counts as clear only when the seeds' 95% intervals of the two
    test means do not overlap.
    """
    s = cnn2d["settings"]
    names = list(s)
    by_val = sorted(names, key=lambda n: -s[n]["val_acc"])
    by_test = sorted(names, key=lambda n: -s[n]["test_summary"]["mean"])

    def clear(a: str, b: str) -> bool:
        return s[a]["test_summary"]["mean_ci95"][0] > s[b]["test_summary"]["mean_ci95"][1]

    pairs = {}
    if "none" in s:
        for n in names:
            if n == "none":
                continue
            d_val = s[n]["val_acc"] - s["none"]["val_acc"]
            d_test = s[n]["test_summary"]["mean"] - s["none"]["test_summary"]["mean"]
            pairs[n] = {
                "val_gain": d_val,
                "test_gain": d_test,
                "helps_on_both": d_val > 0 and d_test > 0,
                "hurts_on_both": d_val < 0 and d_test < 0,
                "clearly_better": clear(n, "none"),
                "clearly_worse": clear("none", n),
                "std_change": s[n]["test_summary"]["std"] - s["none"]["test_summary"]["std"],
            }
    return {"by_val": by_val, "by_test": by_test, "best_by_val": by_val[0], "best_by_test": by_test[0],
            "agree": by_val[0] == by_test[0], "vs_none": pairs,
            "any_clear": any(p["clearly_better"] or p["clearly_worse"] for p in pairs.values())}


def cnn2d_headline(cnn2d: dict) -> dict:
    s = cnn2d["settings"][cnn2d["chosen"]]
    return {"summary": s["test_summary"], "ensemble": s["test_ensemble"]}


def cnn1d_headline(cnn1d: dict) -> dict:
    return {"summary": cnn1d["test"]["summary"], "ensemble": cnn1d["test"]["ensemble"]}


def build_summary(svm: dict, cnn1d: dict | None, cnn2d: dict | None, targets: dict) -> dict:
    base = svm_baseline(svm)
    out = {"svm": base}
    if cnn1d is not None:
        out["cnn1d"] = compare(cnn1d_headline(cnn1d), base, targets["cnn1d"])
    if cnn2d is not None:
        out["cnn2d"] = compare(cnn2d_headline(cnn2d), base, targets["cnn2d"])
        out["augmentation"] = augmentation_verdict(cnn2d)
    return out
