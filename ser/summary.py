"""Comparisons the report states in words, computed from the results files.

Templates only format values; every "better", "worse" or "within the noise"
in the report is decided here from the numbers, so the wording stays true
whatever the numbers of a build turn out to be.
"""
from __future__ import annotations


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
    mean over single seeds), chosen beforehand on the training actors.

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


def augmentation_verdict(cnn2d: dict, split: str = "Test") -> dict:
    """What the augmentation experiment shows, setting by setting.

    A difference counts as clear only when the seeds' 95% intervals of the two
    means do not overlap (touching intervals are not clear).
    """
    val = {n: c["score"] for n, c in cnn2d["validation"]["candidates"].items()}
    s = {n: m["splits"][split]["summary"] for n, m in cnn2d["models"].items()}
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


def build_summary(svm: dict, nets: dict[str, dict | None]) -> dict:
    """Per evaluation split: every network against that split's SVM baseline,
    and the augmentation verdict."""
    out = {"eval_splits": list(svm["keys"]), "splits": {}}
    for split in svm["keys"]:
        row = {"svm": svm_baseline(svm, split)}
        for key, net in nets.items():
            if net is not None:
                row[key] = compare(headline(net, split), row["svm"], net.get("declared", {}).get("model", "single"))
        if nets.get("cnn2d") is not None:
            row["augmentation"] = augmentation_verdict(nets["cnn2d"], split)
        out["splits"][split] = row
    return out
