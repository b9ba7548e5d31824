import pytest

from ser.summary import augmentation_verdict, compare, svm_baseline


def _svm(accs):
    kinds = {k: {"spec": {"test": {"accuracy": a, "accuracy_ci95": [a - 0.08, a + 0.08]}},
                 "tuned": {"test": {"accuracy": a - 0.01, "accuracy_ci95": [a - 0.09, a + 0.07]}}}
             for k, a in accs.items()}
    best = max(accs, key=accs.get)
    return {"readings": {"hz": {"kinds": kinds, "best": best},
                         "index": {"kinds": {"SBE": {"spec": {"test": {"accuracy": 0.6}},
                                                     "tuned": {"test": {"accuracy": 0.62}}}}, "best": "SBE"}}}


def test_baseline_is_the_best_spec_svm_and_the_strict_bar_the_best_of_all():
    b = svm_baseline(_svm({"SC": 0.55, "SBW": 0.49, "SBE": 0.44}))
    assert b["kind"] == "SC" and b["accuracy"] == 0.55
    assert b["strict_accuracy"] == 0.62 and b["strict_label"] == "SBE, bands as index, tuned SVM"


@pytest.mark.parametrize("mean, lo, hi, holds, within", [
    (0.60, 0.56, 0.64, True, False),
    (0.53, 0.48, 0.58, False, True),
    (0.40, 0.35, 0.45, False, False),
])
def test_network_against_svm(mean, lo, hi, holds, within):
    head = {"summary": {"mean": mean, "std": 0.04, "mean_ci95": [lo, hi]}, "ensemble": {"accuracy": 0.56}}
    c = compare(head, {"accuracy": 0.55, "strict_accuracy": 0.62}, target=0.65)
    assert c["not_worse_than_svm"] is holds
    assert c["svm_within_seed_interval"] is within
    assert c["ensemble_not_worse_than_svm"] is True
    assert c["target_met"] is False


def _setting(val, mean, lo, hi, std=0.05):
    return {"val_acc": val, "test_summary": {"mean": mean, "std": std, "mean_ci95": [lo, hi]}}


def test_augmentation_verdict_separates_noise_from_clear_differences():
    res = {"settings": {"none": _setting(0.45, 0.47, 0.40, 0.54),
                        "image": _setting(0.40, 0.30, 0.25, 0.35),
                        "spectrogram": _setting(0.46, 0.50, 0.44, 0.56, std=0.02)}}
    v = augmentation_verdict(res)
    assert v["by_val"] == ["spectrogram", "none", "image"] and v["agree"]
    assert v["vs_none"]["image"]["clearly_worse"] and v["vs_none"]["image"]["hurts_on_both"]
    sp = v["vs_none"]["spectrogram"]
    assert sp["helps_on_both"] and not sp["clearly_better"]
    assert sp["std_change"] == pytest.approx(-0.03)
    assert v["any_clear"]
