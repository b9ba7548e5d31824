"""The verdicts the report states in words (ser/evaluate/summary.py), at their boundaries.

Accuracies here are multiples of 1/8 or 1/16 (exact in binary), so "equal"
really is equal.
"""
import numpy as np
import pytest

from ser.evaluate.summary import augmentation_verdict, build_summary, compare, headline, svm_baseline


def _ev(acc, ci=0.0625):
    return {"accuracy": acc, "accuracy_ci95": [acc - ci, acc + ci]}


def _svm(accs, confirm=None):
    """SVM results: spec accuracies per feature kind (bands in Hz) on Test, and
    on Confirm when given; every tuned model 1/16 below its spec model; the
    index reading's SBE tuned model the best of all on Test."""
    def kind(a, c):
        splits = lambda x, y: {"Test": _ev(x), **({"Confirm": _ev(y)} if confirm is not None else {})}  # noqa: E731
        return {"spec": {"splits": splits(a, c)}, "tuned": {"splits": splits(a - 0.0625, c - 0.0625 if c else c)}}

    conf = confirm or {}
    kinds = {k: kind(a, conf.get(k)) for k, a in accs.items()}
    index = {"SBE": kind(0.5, conf.get("SBE")), "SC": kind(0.5, conf.get("SC"))}
    index["SBE"]["tuned"]["splits"]["Test"] = _ev(0.625)
    keys = {"Test": ["Test/a.wav"], **({"Confirm": ["Confirm/b.wav"]} if confirm is not None else {})}
    return {"keys": keys, "readings": {"hz": {"kinds": kinds}, "index": {"kinds": index}}}


def test_baseline_is_the_best_spec_svm_and_the_strict_bar_the_best_of_all():
    b = svm_baseline(_svm({"SC": 0.5625, "SBW": 0.5, "SBE": 0.4375}))
    assert b["kind"] == "SC" and b["accuracy"] == 0.5625
    assert b["accuracy_ci95"] == [0.5, 0.625]
    assert b["strict_accuracy"] == 0.625 and b["strict_label"] == "SBE, bands as index, tuned SVM"


def test_baseline_ties_go_to_the_first_kind_and_each_split_has_its_own():
    svm = _svm({"SC": 0.5, "SBW": 0.5, "SBE": 0.4375}, confirm={"SC": 0.375, "SBW": 0.4375, "SBE": 0.5})
    assert svm_baseline(svm, "Test")["kind"] == "SC"
    conf = svm_baseline(svm, "Confirm")
    assert conf["kind"] == "SBE" and conf["accuracy"] == 0.5
    assert conf["strict_accuracy"] == 0.5


def _head(mean, lo, hi, ens=0.5625):
    return {"summary": {"mean": mean, "std": 0.0625, "mean_ci95": [lo, hi]}, "ensemble": _ev(ens)}


BASE = {"accuracy": 0.5625, "strict_accuracy": 0.625}


@pytest.mark.parametrize("mean, lo, hi, holds, within", [
    (0.625, 0.5625 + 1 / 64, 0.6875, True, False),  # better, SVM below the interval
    (0.5, 0.4375, 0.625, False, True),  # worse, but within the seeds' noise
    (0.375, 0.3125, 0.4375, False, False),  # clearly worse
    (0.5625, 0.5, 0.625, True, True),  # a tie is not worse
    (0.5, 0.4375, 0.5625, False, True),  # SVM exactly at the interval's top: within
    (0.625, 0.5625, 0.6875, True, True),  # SVM exactly at the interval's bottom: within
    (0.5, 0.4375, 0.5625 - 1 / 64, False, False),  # just below
])
def test_network_against_svm(mean, lo, hi, holds, within):
    c = compare(_head(mean, lo, hi), BASE)
    assert c["not_worse_than_svm"] is holds
    assert c["svm_within_seed_interval"] is within
    assert c["mean"] == mean and c["mean_ci95"] == [lo, hi] and c["std"] == 0.0625


@pytest.mark.parametrize("ens, holds", [(0.5625, True), (0.5625 - 1 / 128, False), (0.6875, True)])
def test_ensemble_tie_with_the_svm_is_not_worse(ens, holds):
    c = compare(_head(0.5, 0.4375, 0.5625, ens=ens), BASE)
    assert c["ensemble_not_worse_than_svm"] is holds
    assert c["ensemble"] == ens and c["ensemble_ci95"] == [ens - 0.0625, ens + 0.0625]


@pytest.mark.parametrize("mean, holds", [(0.625, True), (0.625 - 1 / 128, False)])
def test_tie_with_the_strict_bar_is_not_worse(mean, holds):
    assert compare(_head(mean, mean - 0.0625, mean + 0.0625), BASE)["not_worse_than_strict_svm"] is holds


def _cnn2d(settings, split="Test", chosen="none"):
    """settings: {name: (validation score, mean, lo, hi, std)}."""
    return {
        "chosen": chosen, "declared": {"model": "single"},
        "validation": {"candidates": {n: {"score": v[0]} for n, v in settings.items()}},
        "models": {n: {"params": {}, "splits": {split: {"summary": {"mean": v[1], "mean_ci95": [v[2], v[3]], "std": v[4]},
                                          "ensemble": _ev(v[1])}}}
                   for n, v in settings.items()},
    }


def test_augmentation_verdict_separates_noise_from_clear_differences():
    res = _cnn2d({"none": (0.4375, 0.5, 0.375, 0.625, 0.0625),
                  "image": (0.375, 0.25, 0.1875, 0.3125, 0.0625),
                  "spectrogram": (0.5, 0.5625, 0.5, 0.625, 0.03125)})
    v = augmentation_verdict(res)
    assert v["by_val"] == ["spectrogram", "none", "image"] and v["by_test"] == ["spectrogram", "none", "image"]
    assert v["best_by_val"] == v["best_by_test"] == "spectrogram" and v["agree"]
    im = v["vs_none"]["image"]
    assert im["clearly_worse"] and im["hurts_on_both"] and not im["clearly_better"]
    sp = v["vs_none"]["spectrogram"]
    assert sp["helps_on_both"] and not sp["clearly_better"] and not sp["clearly_worse"]
    assert sp["val_gain"] == 0.0625 and sp["test_gain"] == 0.0625
    assert sp["std_change"] == -0.03125
    assert v["any_clear"]
    assert "none" not in v["vs_none"]


@pytest.mark.parametrize("other_lo, other_hi, better, worse", [
    (0.625, 0.75, False, False),  # its bottom touches none's top: not clear
    (0.625 + 1 / 64, 0.75, True, False),  # just apart
    (0.25, 0.375, False, False),  # its top touches none's bottom: not clear
    (0.25, 0.375 - 1 / 64, False, True),
])
def test_touching_intervals_are_not_a_clear_difference(other_lo, other_hi, better, worse):
    res = _cnn2d({"none": (0.5, 0.5, 0.375, 0.625, 0.0625),
                  "other": (0.5, (other_lo + other_hi) / 2, other_lo, other_hi, 0.0625)})
    v = augmentation_verdict(res)
    assert v["vs_none"]["other"]["clearly_better"] is better
    assert v["vs_none"]["other"]["clearly_worse"] is worse
    assert v["any_clear"] is (better or worse)


def test_equal_scores_neither_help_nor_hurt_and_first_listed_leads():
    res = _cnn2d({"none": (0.5, 0.5, 0.375, 0.625, 0.0625), "other": (0.5, 0.5, 0.375, 0.625, 0.0625)})
    v = augmentation_verdict(res)
    o = v["vs_none"]["other"]
    assert o["val_gain"] == o["test_gain"] == 0.0
    assert not o["helps_on_both"] and not o["hurts_on_both"]
    assert v["by_val"] == v["by_test"] == ["none", "other"] and v["agree"]


def test_verdicts_per_evaluation_split():
    svm = _svm({"SC": 0.5, "SBW": 0.4375, "SBE": 0.375}, confirm={"SC": 0.375, "SBW": 0.4375, "SBE": 0.3125})
    net = _cnn2d({"none": (0.5, 0.5, 0.4375, 0.5625, 0.0625)})
    for split, mean in (("Confirm", 0.4375),):
        net["models"]["none"]["splits"][split] = {
            "summary": {"mean": mean, "mean_ci95": [0.375, 0.5], "std": 0.0625}, "ensemble": _ev(0.375)}
    s = build_summary(svm, {"cnn1d": None, "cnn2d": net})
    assert s["eval_splits"] == ["Test", "Confirm"] and list(s["splits"]) == ["Test", "Confirm"]
    t, c = s["splits"]["Test"], s["splits"]["Confirm"]
    assert "cnn1d" not in t and "cnn1d" not in c
    assert t["svm"]["kind"] == "SC" and c["svm"]["kind"] == "SBW"
    # Test: 0.5 ties the SVM's 0.5; Confirm: 0.4375 ties SBW's 0.4375, the ensemble (0.375) is below
    assert t["cnn2d"]["not_worse_than_svm"] and c["cnn2d"]["not_worse_than_svm"]
    assert t["cnn2d"]["ensemble_not_worse_than_svm"] and not c["cnn2d"]["ensemble_not_worse_than_svm"]
    assert c["augmentation"]["best_by_test"] == "none"
    assert headline(net, "Confirm")["summary"]["mean"] == 0.4375


def test_headline_is_the_chosen_candidate():
    net = _cnn2d({"none": (0.5, 0.5, 0.4, 0.6, 0.05), "image": (0.6, 0.25, 0.2, 0.3, 0.05)}, chosen="image")
    assert headline(net)["summary"]["mean"] == 0.25


def test_the_verdict_is_on_the_declared_model():
    from ser.evaluate.summary import compare

    head = {"summary": {"mean": 0.50, "std": 0.02, "mean_ci95": [0.48, 0.52]},
            "ensemble": {"accuracy": 0.56, "accuracy_ci95": [0.47, 0.64]}}
    base = {"accuracy": 0.55, "strict_accuracy": 0.60}
    ens, single = compare(head, base, "ensemble"), compare(head, base, "single")
    assert ens["declared_not_worse_than_svm"] and not single["declared_not_worse_than_svm"]
    assert ens["declared_margin"] == pytest.approx(0.01) and single["declared_margin"] == pytest.approx(-0.05)
    tie = compare({**head, "ensemble": {"accuracy": 0.55, "accuracy_ci95": [0.46, 0.64]}}, base, "ensemble")
    assert tie["declared_not_worse_than_svm"]  # a tie is "not lower"


def _clips(split, n=8):
    """RAVDESS keys of ``split``: classes A/B alternate, intensity and statement vary."""
    keys = []
    for i in range(n):
        cls = "AB"[i % 2]
        keys.append(f"{split}/{cls}/03-01-0{2 + i % 2}-0{1 + (i // 2) % 2}-0{1 + (i // 4) % 2}-01-{5 + i % 2:02d}.wav")
    return keys


def _full(test_svm, test_ens, confirm_svm, confirm_ens):
    """Results with per-clip predictions: an SVM (one kind, both readings) and a
    2D CNN with settings "none" and "spec" declared as seed ensembles."""
    from ser.evaluate.summary import evidence  # noqa: F401

    keys = {"Test": _clips("Test"), "Confirm": _clips("Confirm")}
    y = {s: [("AB".index(k.split("/")[1])) for k in ks] for s, ks in keys.items()}
    svm_pred = {"Test": test_svm, "Confirm": confirm_svm}

    def acc(s, p):
        return sum(int(a == b) for a, b in zip(y[s], p)) / len(p)

    kind = {m: {"splits": {s: _ev(acc(s, svm_pred[s])) for s in keys}, "pred": svm_pred} for m in ("spec", "tuned")}
    svm = {"classes": ["A", "B"], "keys": keys, "readings": {"hz": {"kinds": {"SC": kind}}}}
    ens = {"Test": test_ens, "Confirm": confirm_ens}
    preds = {c: {s: {"keys": keys[s][::-1], "y_true": y[s][::-1], "ensemble_pred": list(p[s])[::-1],
                     "pred_per_seed": {"0": list(p[s])[::-1]}} for s in keys}
             for c, p in (("none", svm_pred), ("spec", ens))}
    net = {"chosen": "spec", "declared": {"model": "ensemble"}, "predictions": preds,
           "models": {c: {"params": {}} for c in preds}}
    return svm, net, y


def test_paired_evidence_uses_each_clips_own_predictions_per_split_and_pooled():
    from ser.evaluate.summary import evidence

    # Test: the network is right on every clip, the SVM wrong on clips 0-3; Confirm: both equal
    svm, net, y = _full([1, 0, 1, 0, 0, 1, 0, 1], [0, 1, 0, 1, 0, 1, 0, 1],
                        [0, 1, 0, 1, 1, 0, 1, 0], [0, 1, 0, 1, 1, 0, 1, 0])
    ev = evidence(svm, {"cnn1d": None, "cnn2d": net})
    t, c, pooled = ev["paired"]["Test"]["cnn2d"], ev["paired"]["Confirm"]["cnn2d"], ev["paired"]["pooled"]["cnn2d"]
    assert (t["acc_a"], t["acc_b"], t["diff"]) == (1.0, 0.5, 0.5)
    assert (t["a_only"], t["b_only"]) == (4, 0) and t["p"] == pytest.approx(2 * 0.5 ** 4)
    assert (c["diff"], c["p"]) == (0.0, 1.0)
    assert pooled["n"] == 16 and pooled["diff"] == pytest.approx(0.25) and pooled["strata"] == {"Confirm": 8, "Test": 8}
    # the augmentation settings against "none" (here the SVM's predictions), per split
    assert ev["augmentation_paired"]["Test"]["spec"]["diff"] == 0.5
    assert ev["augmentation_paired"]["Confirm"]["spec"]["diff"] == 0.0


def test_error_breakdown_per_intensity_and_statement():
    from ser.evaluate.summary import evidence

    # the network is wrong exactly on the strong-intensity clips of Test (clips 2, 3, 6, 7)
    truth = [0, 1, 0, 1, 0, 1, 0, 1]
    wrong_strong = [0, 1, 1, 0, 0, 1, 1, 0]
    svm, net, y = _full(truth, wrong_strong, truth, truth)
    bf = evidence(svm, {"cnn1d": None, "cnn2d": net})["by_factor"]
    assert bf["Test"]["cnn2d"]["intensity"]["normal"]["accuracy"] == 1.0
    assert bf["Test"]["cnn2d"]["intensity"]["strong"]["accuracy"] == 0.0
    assert bf["Test"]["svm"]["intensity"]["strong"]["accuracy"] == 1.0
    assert bf["Test"]["cnn2d"]["statement"]["Kids are talking by the door"]["n"] == 4
    assert bf["Confirm"]["cnn2d"]["intensity"]["strong"]["accuracy"] == 1.0


def test_a_single_declared_model_is_compared_seed_by_seed():
    from ser.evaluate.summary import declared_predictions, paired

    svm, net, y = _full([0] * 8, [0, 1] * 4, [0] * 8, [0] * 8)
    net["declared"] = {"model": "single"}
    p = declared_predictions(net, "Test", svm["keys"]["Test"])
    assert p.shape == (1, 8)
    r = paired(y["Test"], np.stack([p[0], p[0]]), np.zeros(8, int))
    assert r["n"] == 16 and r["diff"] == pytest.approx(0.5)


# ------------------------------------------------------------------ every verdict from its own split's numbers


def _spec_tuned(spec, tuned=None):
    """A kind's spec and tuned SVM: accuracies {split: acc}; tuned 1/16 below spec unless given."""
    tuned = tuned or {s: a - 0.0625 for s, a in spec.items()}
    return {m: {"splits": {s: _ev(a) for s, a in accs.items()}} for m, accs in (("spec", spec), ("tuned", tuned))}


def _net_split(mean, lo, hi, ens):
    return {"summary": {"mean": mean, "mean_ci95": [lo, hi], "std": 0.0625}, "ensemble": _ev(ens)}


def _two_splits():
    """SVMs, two networks and a combined model whose every verdict differs between Test and Confirm."""
    T, C = "Test", "Confirm"
    hz = {"SC": _spec_tuned({T: 0.5625, C: 0.375}), "SBW": _spec_tuned({T: 0.5, C: 0.4375}),
          "SBE": _spec_tuned({T: 0.4375, C: 0.5})}
    index = {"SC": _spec_tuned({T: 0.375, C: 0.5625}), "SBW": _spec_tuned({T: 0.5, C: 0.25}, {T: 0.625, C: 0.25})}
    svm = {"keys": {T: ["Test/a.wav"], C: ["Confirm/b.wav"]},
           "readings": {"hz": {"kinds": hz}, "index": {"kinds": index}}}
    cnn1d = {"chosen": "clip", "declared": {"model": "single"},
             "models": {"clip": {"splits": {T: _net_split(0.625, 0.5625 + 1 / 64, 0.6875, 0.5),
                                            C: _net_split(0.4375, 0.375, 0.5, 0.5625)}},
                        "other": {"splits": {T: _net_split(0.25, 0.2, 0.3, 0.25), C: _net_split(0.25, 0.2, 0.3, 0.25)}}}}
    # 2D: (Test mean, Confirm mean) per setting; intervals +-1/64 around the mean
    means = {"none": (0.5, 0.5), "image": (0.4375, 0.625), "spectrogram": (0.5625, 0.375),
             "spectrogram, speaker-normalised": (0.75, 0.75)}
    cnn2d = {"chosen": "spectrogram", "declared": {"model": "ensemble"},
             "validation": {"candidates": {"none": {"score": 0.4}, "image": {"score": 0.5},
                                           "spectrogram": {"score": 0.45},
                                           "spectrogram, speaker-normalised": {"score": 0.3}}},
             "models": {n: {"params": {"input": "speaker"} if "speaker" in n else {},
                            "splits": {s: _net_split(m, m - 1 / 64, m + 1 / 64, m) for s, m in zip((T, C), ms)}}
                        for n, ms in means.items()}}
    cnn2d["models"]["spectrogram"]["splits"][T]["ensemble"] = _ev(0.6875)  # the ensemble above its seeds' mean
    fusion = {"models": {"svm+cnn": {"splits": {T: _ev(0.5625), C: _ev(0.4375)}},
                         "all": {"splits": {T: _ev(0.5), C: _ev(0.5)}}}}
    return svm, {"cnn1d": cnn1d, "cnn2d": cnn2d}, fusion


def test_each_split_s_verdicts_are_computed_from_that_split_s_numbers():
    svm, nets, fusion = _two_splits()
    s = build_summary(svm, nets, fusion)
    assert s["eval_splits"] == ["Test", "Confirm"]
    t, c = s["splits"]["Test"], s["splits"]["Confirm"]
    # the SVM baseline and the strict bar of each split
    assert (t["svm"]["kind"], t["svm"]["accuracy"], t["svm"]["accuracy_ci95"]) == ("SC", 0.5625, [0.5, 0.625])
    assert (c["svm"]["kind"], c["svm"]["accuracy"], c["svm"]["accuracy_ci95"]) == ("SBE", 0.5, [0.4375, 0.5625])
    assert (t["svm"]["strict_accuracy"], t["svm"]["strict_label"]) == (0.625, "SBW, bands as index, tuned SVM")
    assert (c["svm"]["strict_accuracy"], c["svm"]["strict_label"]) == (0.5625, "SC, bands as index, spec SVM")
    # 1D CNN, declared single: better on Test, worse (within its seeds' noise) on Confirm; the ensemble the other way
    t1, c1 = t["cnn1d"], c["cnn1d"]
    assert (t1["mean"], c1["mean"]) == (0.625, 0.4375)
    assert t1["not_worse_than_svm"] and not c1["not_worse_than_svm"]
    assert t1["declared_not_worse_than_svm"] and not c1["declared_not_worse_than_svm"]
    assert (t1["declared_margin"], c1["declared_margin"]) == (0.0625, -0.0625)
    assert not t1["ensemble_not_worse_than_svm"] and c1["ensemble_not_worse_than_svm"]
    assert not t1["svm_within_seed_interval"] and c1["svm_within_seed_interval"]
    assert t1["not_worse_than_strict_svm"] and not c1["not_worse_than_strict_svm"]
    # 2D CNN, declared ensemble: worse on Test, better on Confirm
    t2, c2 = t["cnn2d"], c["cnn2d"]
    assert (t2["declared"], t2["declared_accuracy"], c2["declared_accuracy"]) == ("ensemble", 0.6875, 0.375)
    assert t2["declared_not_worse_than_svm"] and not c2["declared_not_worse_than_svm"]
    assert (t2["ensemble_ci95"], c2["ensemble_ci95"]) == ([0.625, 0.75], [0.3125, 0.4375])
    assert not t2["not_worse_than_strict_svm"]  # the strict bar is on the seeds' mean (0.5625 < 0.625)
    # the combined models
    assert t["combined_svm+cnn"] == {"accuracy": 0.5625, "accuracy_ci95": [0.5, 0.625], "not_worse_than_svm": True,
                                     "margin": 0.0}
    assert c["combined_svm+cnn"] == {"accuracy": 0.4375, "accuracy_ci95": [0.375, 0.5], "not_worse_than_svm": False,
                                     "margin": -0.0625}
    assert not t["combined_all"]["not_worse_than_svm"] and c["combined_all"]["not_worse_than_svm"]
    # the augmentation experiment: the speaker-normalised setting is not part of it
    ta, ca = t["augmentation"], c["augmentation"]
    assert ta["by_val"] == ca["by_val"] == ["image", "spectrogram", "none"]
    assert ta["by_test"] == ["spectrogram", "none", "image"] and ca["by_test"] == ["image", "none", "spectrogram"]
    assert (ta["best_by_test"], ta["agree"]) == ("spectrogram", False)
    assert (ca["best_by_test"], ca["agree"]) == ("image", True)
    assert ta["vs_none"]["spectrogram"]["clearly_better"] and ca["vs_none"]["spectrogram"]["clearly_worse"]
    assert ta["vs_none"]["image"]["test_gain"] == -0.0625 and ca["vs_none"]["image"]["test_gain"] == 0.125


def test_a_network_without_results_and_no_combined_models_leave_no_verdicts():
    svm, nets, _ = _two_splits()
    s = build_summary(svm, {"cnn1d": nets["cnn1d"], "cnn2d": None})
    for row in s["splits"].values():
        assert set(row) == {"svm", "cnn1d"}  # no cnn2d, no augmentation, no combined models


def _with_predictions(svm):
    """``svm`` of _two_splits with per-clip predictions: each spec SVM predicts its own constant class."""
    for r, reading in enumerate(svm["readings"].values()):
        for i, k in enumerate(reading["kinds"].values()):
            for m, model in k.items():
                model["pred"] = {s: [10 * r + 2 * i + (m == "tuned")] * 3 for s in svm["keys"]}
    return svm


def test_each_split_is_compared_with_its_own_baseline_s_predictions():
    from ser.evaluate.summary import baseline_predictions

    svm = _with_predictions(_two_splits()[0])
    assert baseline_predictions(svm, "Test").tolist() == [0, 0, 0]  # hz SC
    assert baseline_predictions(svm, "Confirm").tolist() == [4, 4, 4]  # hz SBE


def test_challengers_follow_the_svm_s_clip_order_in_each_split():
    from ser.evaluate.summary import challengers

    svm = {"keys": {"Test": ["T/a", "T/b", "T/c"], "Confirm": ["C/x", "C/y"]}}
    net = {"chosen": "n", "declared": {"model": "ensemble"},
           "predictions": {"n": {"Test": {"keys": ["T/c", "T/a", "T/b"], "ensemble_pred": [2, 0, 1]},
                                 "Confirm": {"keys": ["C/y", "C/x"], "ensemble_pred": [3, 4]}}}}
    fusion = {"keys": {"Test": ["T/b", "T/c", "T/a"], "Confirm": ["C/y", "C/x"]},
              "models": {"all": {"pred": {"Test": [11, 12, 10], "Confirm": [13, 14]}}}}
    t = challengers(svm, {"cnn2d": net, "cnn1d": None}, fusion, "Test")
    c = challengers(svm, {"cnn2d": net, "cnn1d": None}, fusion, "Confirm")
    assert set(t) == {"cnn2d", "combined_all"}
    assert t["cnn2d"].tolist() == [0, 1, 2] and t["combined_all"].tolist() == [10, 11, 12]
    assert c["cnn2d"].tolist() == [4, 3] and c["combined_all"].tolist() == [14, 13]


# ------------------------------------------------------------------ more of the verdicts' edges


@pytest.mark.parametrize("d_val, d_test, helps, hurts", [
    (0.0625, 0.0625, True, False), (-0.0625, -0.0625, False, True),
    (0.0625, -0.0625, False, False), (-0.0625, 0.0625, False, False),  # the two disagree: neither
    (0.0, 0.0625, False, False), (0.0625, 0.0, False, False),  # no change on one: neither
    (0.0, -0.0625, False, False), (-0.0625, 0.0, False, False),
])
def test_helps_or_hurts_only_when_validation_and_the_split_agree(d_val, d_test, helps, hurts):
    res = _cnn2d({"none": (0.5, 0.5, 0.375, 0.625, 0.0625),
                  "other": (0.5 + d_val, 0.5 + d_test, 0.375 + d_test, 0.625 + d_test, 0.0625)})
    o = augmentation_verdict(res)["vs_none"]["other"]
    assert (o["helps_on_both"], o["hurts_on_both"]) == (helps, hurts)
    assert (o["val_gain"], o["test_gain"]) == (d_val, d_test)


def test_a_single_declared_model_s_verdict_is_on_the_seeds_mean():
    from ser.evaluate.summary import declared_predictions

    head = _head(0.5, 0.4375, 0.5625, ens=0.625)
    assert compare(head, BASE)["declared"] == "single" and compare(head, BASE)["declared_accuracy"] == 0.5
    svm, nets, _ = _two_splits()
    single = {**nets["cnn2d"], "declared": {"model": "single"}}
    row = build_summary(svm, {"cnn2d": single})["splits"]["Test"]["cnn2d"]
    assert (row["declared"], row["declared_accuracy"]) == ("single", 0.5625)
    svm2, net, _ = _full([0] * 8, [0, 1] * 4, [0] * 8, [0] * 8)
    net["declared"]["model"] = "single"
    assert declared_predictions(net, "Test", svm2["keys"]["Test"]).shape == (1, 8)


def test_augmentation_pairs_set_each_raw_setting_against_none_only():
    from ser.evaluate.summary import augmentation_pairs

    svm, net, y = _full([1, 0, 1, 0, 0, 1, 0, 1], [0, 1, 0, 1, 0, 1, 0, 1], [0] * 8, [0] * 8)
    net["predictions"]["spec, speaker-normalised"] = net["predictions"]["spec"]
    net["models"] = {"none": {"params": {}}, "spec": {"params": {}},
                     "spec, speaker-normalised": {"params": {"input": "speaker"}}}
    pairs = augmentation_pairs(net, "Test")
    assert set(pairs) == {"spec"} and pairs["spec"]["diff"] == 0.5


def _fusion(keys, test, confirm):
    """A combined model "all", its clips listed in reverse order."""
    return {"keys": {s: ks[::-1] for s, ks in keys.items()},
            "models": {"all": {"pred": {"Test": list(test)[::-1], "Confirm": list(confirm)[::-1]}}}}


def test_combined_models_have_paired_evidence_and_a_breakdown_per_split():
    from ser.evaluate.summary import evidence

    truth = [0, 1, 0, 1, 0, 1, 0, 1]
    svm, net, y = _full([1, 0, 1, 0, 0, 1, 0, 1], truth, truth, truth)
    fused = _fusion(svm["keys"], [0, 1, 1, 0, 0, 1, 1, 0], truth)  # wrong on Test's strong-intensity clips
    ev = evidence(svm, {"cnn2d": net}, fused)
    t, c, pooled = (ev["paired"][s]["combined_all"] for s in ("Test", "Confirm", "pooled"))
    assert (t["acc_a"], t["acc_b"], t["diff"]) == (0.5, 0.5, 0.0) and (t["a_only"], t["b_only"]) == (2, 2)
    assert (c["acc_a"], c["diff"]) == (1.0, 0.0)
    assert pooled["n"] == 16 and pooled["acc_a"] == 0.75
    bf = ev["by_factor"]
    assert bf["Test"]["combined_all"]["intensity"]["strong"]["accuracy"] == 0.0
    assert bf["Test"]["combined_all"]["intensity"]["normal"]["accuracy"] == 1.0
    assert bf["Confirm"]["combined_all"]["intensity"]["strong"]["accuracy"] == 1.0


def test_a_single_declared_model_is_pooled_seed_by_seed_per_split_over_splits_and_by_factor():
    from ser.evaluate.summary import evidence

    truth = [0, 1, 0, 1, 0, 1, 0, 1]
    wrong_strong = [0, 1, 1, 0, 0, 1, 1, 0]
    svm, net, y = _full(truth, truth, truth, truth)
    net["declared"] = {"model": "single"}
    for s, seeds in (("Test", (truth, wrong_strong)), ("Confirm", (truth, truth))):
        net["predictions"]["spec"][s]["pred_per_seed"] = {str(i): list(p)[::-1] for i, p in enumerate(seeds)}
    ev = evidence(svm, {"cnn2d": net})
    t, pooled = ev["paired"]["Test"]["cnn2d"], ev["paired"]["pooled"]["cnn2d"]
    assert (t["n"], t["acc_a"], t["b_only"]) == (16, 0.75, 4)
    assert (pooled["n"], pooled["acc_a"], pooled["strata"]) == (32, 0.875, {"Confirm": 16, "Test": 16})
    strong = ev["by_factor"]["Test"]["cnn2d"]["intensity"]["strong"]
    assert (strong["n"], strong["accuracy"]) == (8, 0.5)  # 4 clips x 2 seeds, one seed wrong on each
    assert ev["by_factor"]["Test"]["cnn2d"]["intensity"]["normal"]["accuracy"] == 1.0


def test_one_evaluation_split_gives_no_pooled_evidence():
    from ser.evaluate.summary import evidence

    svm, net, y = _full([1, 0] * 4, [0, 1] * 4, [0] * 8, [0] * 8)
    svm["keys"] = {"Test": svm["keys"]["Test"]}
    ev = evidence(svm, {"cnn2d": net})
    assert set(ev["paired"]) == {"Test"} and ev["paired"]["Test"]["cnn2d"]["diff"] == 1.0


def test_the_paired_evidence_is_the_same_on_every_run():
    from ser.evaluate.summary import evidence

    svm, net, y = _full([1, 0, 1, 0, 0, 1, 0, 1], [0, 1, 0, 0, 0, 1, 1, 1], [0, 1, 1, 1, 0, 0, 1, 0],
                        [0, 1, 0, 1, 1, 1, 1, 0])
    first, again = (evidence(svm, {"cnn2d": net})["paired"] for _ in range(2))
    assert first == again
    assert first["pooled"]["cnn2d"]["ci"][0] < first["pooled"]["cnn2d"]["ci"][1]
