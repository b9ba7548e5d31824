"""Scores of predictions (ser/metrics.py)."""
import pytest

from ser.metrics import confusion, scores, seed_summary, wilson_interval


def test_confusion_rows_are_true_classes():
    cm = confusion([0, 0, 1, 2], [0, 1, 1, 1], 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [0, 1, 0]]


def test_wilson_interval_known_value():
    lo, hi = wilson_interval(70, 128)
    assert lo == pytest.approx(0.4603, abs=1e-3) and hi == pytest.approx(0.6304, abs=1e-3)
    assert wilson_interval(0, 10)[0] == 0.0


def test_scores_and_seed_summary():
    s = scores([0, 0, 1, 1], [0, 1, 1, 1], ["A", "B"])
    assert s["accuracy"] == 0.75 and s["recall"] == {"A": 0.5, "B": 1.0} and s["uar"] == 0.75
    m = seed_summary([0.5, 0.6, 0.7])
    assert m["mean"] == pytest.approx(0.6) and m["std"] == pytest.approx(0.1)
    assert m["mean_ci95"][0] < 0.6 < m["mean_ci95"][1]


def test_equal_figures_give_equal_svg_bytes(tmp_path):
    from ser.report.plots import _mpl, save_figure

    def draw(path):
        fig, ax = _mpl().subplots()
        ax.plot([0, 1], [1, 0], label="a")
        ax.legend()
        save_figure(fig, path)
        return path.read_bytes()

    assert draw(tmp_path / "a.svg") == draw(tmp_path / "b.svg")
