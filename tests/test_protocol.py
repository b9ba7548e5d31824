"""The shared evaluation protocol (ser/models/protocol.py) with a scripted learner.

No network is trained here: :class:`Stub` records what every ``fit`` receives
and returns a scripted validation curve, and its ``predict`` returns scripted
probabilities, so each test pins one choice of the protocol with known answers.
Inputs are clip ids (training ids 0..9, evaluation ids from 100 up), so the
rows a fit sees can be checked one by one.
"""
import numpy as np
import pytest

from ser.metrics import confusion, seed_summary, t_interval
from ser.models.protocol import EvalSplit, Learner, ProtocolConfig, Trained, choose_epochs, moving_average, run_protocol
from ser.data.speakers import speaker_folds


def loso_folds(groups):
    return [(int(n), tr, va) for n, tr, va in speaker_folds(groups, np.zeros(len(groups), int), max_loso=99, k=5)[0]]

# Ten training clips of three speakers, of unequal sizes (2, 3 and 5 clips),
# so a fold-weighted mean differs from a plain mean of the folds.
GROUPS = np.array([1, 1, 2, 2, 2, 3, 3, 3, 3, 3])
X = np.arange(len(GROUPS))
Y = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
CLASSES = ["A", "B", "C"]


def _quiet(_):
    pass


class Stub:
    """A :class:`ser.models.protocol.Learner` without training.

    Parameters
    ----------
    curve : callable(params, held_out_speaker, seed) -> list of float
        The validation accuracy per epoch of one validation run.
    probs : callable(params, seed, x) -> np.ndarray [shape=(len(x), n_classes)]
        What a final model of ``seed`` predicts.
    """

    def __init__(self, curve, probs=None, events=None):
        self.curve = curve
        self.probs = probs or (lambda params, seed, x: np.full((len(x), 3), 1 / 3))
        self.fits = []
        self.events = [] if events is None else events

    def fit(self, params, x, y, *, seed, epochs, x_val=None, y_val=None, log=None):
        x = np.asarray(x)
        validating = x_val is not None
        self.fits.append({"params": params, "x": x.tolist(), "y": np.asarray(y).tolist(), "seed": seed,
                          "epochs": epochs, "x_val": None if x_val is None else np.asarray(x_val).tolist()})
        self.events.append("validation fit" if validating else "final fit")
        val = []
        if validating:
            speakers = {int(GROUPS[i]) for i in x_val}
            assert len(speakers) == 1, "a validation fold holds one speaker"
            val = [float(v) for v in self.curve(params, speakers.pop(), seed)]
            assert len(val) == epochs
        hist = {"train_loss": [1.0] * epochs, "train_acc": [0.5] * epochs,
                "val_loss": [1.0 - v for v in val], "val_acc": val, "seconds": 0.0}
        return Trained(model={"name": params["name"], "seed": seed, "epochs": epochs}), hist

    def predict(self, trained, params, x):
        self.events.append("predict")
        return np.asarray(self.probs(params, trained.model["seed"], np.asarray(x)), float)

    @property
    def learner(self):
        return Learner(fit=self.fit, predict=self.predict)

    def final_fits(self):
        return [f for f in self.fits if f["x_val"] is None]

    def validation_fits(self):
        return [f for f in self.fits if f["x_val"] is not None]


def _split(name, ids, y, speakers=None):
    ids = np.asarray(ids)
    return EvalSplit(name, ids, np.asarray(y), [f"{name}/{i}.wav" for i in ids],
                     list(speakers) if speakers is not None else [None] * len(ids))


TEST = _split("Test", [100, 101, 102, 103], [1, 0, 2, 1], speakers=[5, 5, 6, 6])
CONFIRM = _split("Confirm", [200, 201, 202], [0, 1, 2], speakers=[9, 9, 9])


def _run(stub, candidates, *, epochs=4, smooth=1, val_seeds=(0,), seeds=(0, 1), final="chosen",
         splits=(TEST,), load_eval=None):
    pcfg = ProtocolConfig(max_epochs=epochs, smooth_epochs=smooth, val_seeds=val_seeds, seeds=seeds)
    return run_protocol(stub.learner, candidates, X, Y, GROUPS, classes=CLASSES,
                        load_eval=load_eval or (lambda: list(splits)), pcfg=pcfg, final=final, log=_quiet)


def _flat(level):
    """A candidate whose every validation run sits at ``level``."""
    return lambda params, speaker, seed: [level] * 4


def _by_name(levels):
    return lambda params, speaker, seed: [levels[params["name"]]] * 4


# ------------------------------------------------------------ the candidate

def test_validation_chooses_the_highest_score():
    stub = Stub(_by_name({"low": 0.3, "high": 0.8, "mid": 0.5}))
    res, trained = _run(stub, {n: {"name": n} for n in ("low", "high", "mid")})
    val = res["validation"]
    assert val["chosen"] == res["chosen"] == "high"
    assert val["runner_up"] == "mid" and val["margin"] == pytest.approx(0.3)
    assert {n: c["score"] for n, c in val["candidates"].items()} == pytest.approx(
        {"low": 0.3, "high": 0.8, "mid": 0.5})
    # the final models are the chosen candidate's, trained with its parameters
    assert list(res["models"]) == list(trained) == ["high"]
    assert {f["params"]["name"] for f in stub.final_fits()} == {"high"}


@pytest.mark.parametrize("levels, chosen", [
    ({"a": 0.6, "b": 0.6, "c": 0.2}, "a"),
    ({"a": 0.2, "b": 0.6, "c": 0.6}, "b"),
    ({"c": 0.6, "b": 0.6, "a": 0.6}, "c"),
])
def test_ties_go_to_the_first_listed_candidate(levels, chosen):
    res, _ = _run(Stub(_by_name(levels)), {n: {"name": n} for n in levels})
    assert res["chosen"] == chosen
    assert res["validation"]["margin"] == 0.0


def test_every_speaker_is_held_out_once_per_validation_seed_and_never_trained_on():
    stub = Stub(_flat(0.5))
    res, _ = _run(stub, {"a": {"name": "a"}, "b": {"name": "b"}}, val_seeds=(3, 4))
    runs = stub.validation_fits()
    assert len(runs) == 2 * 3 * 2  # candidates x speakers x validation seeds
    for f in runs:
        held_out = {int(GROUPS[i]) for i in f["x_val"]}
        assert len(held_out) == 1
        # the fold trains on every clip of the other speakers, and none of the held-out speaker's
        assert sorted(f["x"]) == [i for i in X.tolist() if GROUPS[i] not in held_out]
        assert sorted(f["x_val"]) == [i for i in X.tolist() if GROUPS[i] in held_out]
        assert f["y"] == Y[f["x"]].tolist()
        assert f["epochs"] == 4
    assert sorted((int(GROUPS[f["x_val"][0]]), f["seed"]) for f in runs[:6]) == [
        (a, s) for a in (1, 2, 3) for s in (3, 4)]
    assert res["validation"]["folds"] == ["1", "2", "3"] and res["validation"]["seeds"] == [3, 4]
    assert res["validation"]["scheme"] == "leave-one-speaker-out" and res["validation"]["speaker_independent"]


# --------------------------------------------------------------- the epochs

# Raw peak at epoch 2 (a spike); the 3-epoch moving average peaks at epoch 5.
SPIKY = [0.1, 0.9, 0.1, 0.5, 0.6, 0.55, 0.2]


def test_epochs_are_the_peak_of_the_smoothed_mean_validation_curve():
    sm = moving_average(SPIKY, 3)
    np.testing.assert_allclose(sm, [0.5, 1.1 / 3, 0.5, 0.4, 0.55, 0.45, 0.375])
    assert choose_epochs(SPIKY, 3) == (5, pytest.approx(0.55))
    assert choose_epochs(SPIKY, 1) == (2, pytest.approx(0.9))

    stub = Stub(lambda params, speaker, seed: SPIKY)
    res, _ = _run(stub, {"a": {"name": "a"}}, epochs=7, smooth=3)
    c = res["validation"]["candidates"]["a"]
    assert c["epochs"] == 5 and c["score"] == pytest.approx(0.55)
    assert c["val_acc_at_epochs"] == pytest.approx(0.6) and c["val_acc_last"] == pytest.approx(0.2)
    np.testing.assert_allclose(c["smoothed_val_acc"], sm)
    assert res["models"]["a"]["epochs"] == 5
    assert [f["epochs"] for f in stub.final_fits()] == [5, 5]


def test_the_mean_curve_weights_each_fold_by_its_clips():
    # speaker 1 (2 clips) peaks at epoch 1, speaker 2 (3 clips) at 2, speaker 3 (5 clips) at 3:
    # over all held-out clips the accuracy is [0.2, 0.3, 0.5], so epoch 3
    # (a plain mean of the folds would tie at 1/3 and take epoch 1).
    peaks = {1: [1, 0, 0], 2: [0, 1, 0], 3: [0, 0, 1]}
    stub = Stub(lambda params, speaker, seed: peaks[speaker])
    res, _ = _run(stub, {"a": {"name": "a"}}, epochs=3, smooth=1)
    c = res["validation"]["candidates"]["a"]
    np.testing.assert_allclose(c["mean_val_acc"], [0.2, 0.3, 0.5])
    assert c["epochs"] == 3 and c["score"] == pytest.approx(0.5)
    assert c["per_speaker_at_epochs"] == {"1": 0.0, "2": 0.0, "3": 1.0}


def test_first_peak_wins_ties_of_the_smoothed_curve():
    assert choose_epochs([0.2, 0.7, 0.7, 0.1], 1) == (2, pytest.approx(0.7))
    np.testing.assert_allclose(moving_average([0, 0, 3, 0, 0], 3), [0, 1, 1, 1, 0])
    np.testing.assert_allclose(moving_average([1, 2, 3], 1), [1, 2, 3])


def test_each_final_candidate_trains_for_its_own_epochs_when_final_is_all():
    curves = {"a": [0.1, 0.8, 0.2, 0.1], "b": [0.1, 0.2, 0.3, 0.9], "c": [0.7, 0.1, 0.1, 0.1]}
    stub = Stub(lambda params, speaker, seed: curves[params["name"]])
    res, trained = _run(stub, {n: {"name": n} for n in curves}, final="all", seeds=(0, 1, 2))
    assert res["chosen"] == "b"
    assert list(res["models"]) == list(trained) == ["a", "b", "c"]
    finals = stub.final_fits()
    assert [(f["params"]["name"], f["seed"], f["epochs"]) for f in finals] == [
        (n, s, e) for n, e in (("a", 2), ("b", 4), ("c", 1)) for s in (0, 1, 2)]
    for n, e in (("a", 2), ("b", 4), ("c", 1)):
        assert res["models"][n]["epochs"] == e and res["models"][n]["seeds"] == [0, 1, 2]
        assert [t.model["seed"] for t in trained[n]] == [0, 1, 2]
        assert [h["seed"] for h in res["models"][n]["train_histories"]] == [0, 1, 2]


def test_only_the_chosen_candidate_is_trained_when_final_is_chosen():
    curves = {"a": [0.1, 0.8, 0.2, 0.1], "b": [0.1, 0.2, 0.9, 0.1]}
    stub = Stub(lambda params, speaker, seed: curves[params["name"]])
    res, trained = _run(stub, {n: {"name": n} for n in curves}, seeds=(5, 6, 7))
    finals = stub.final_fits()
    assert [(f["params"]["name"], f["seed"], f["epochs"]) for f in finals] == [("b", s, 3) for s in (5, 6, 7)]
    assert list(trained) == ["b"] and len(trained["b"]) == 3
    # final models train on every training clip, without validation data
    assert all(f["x"] == X.tolist() and f["y"] == Y.tolist() for f in finals)


# ----------------------------------------------- evaluation splits stay out

def test_evaluation_splits_are_loaded_once_after_every_fit():
    events = []

    def load_eval():
        events.append("load_eval")
        return [TEST, CONFIRM]

    stub = Stub(_by_name({"a": 0.4, "b": 0.6}), events=events)
    res, _ = _run(stub, {"a": {"name": "a"}, "b": {"name": "b"}}, load_eval=load_eval, final="all")
    assert events.count("load_eval") == 1
    i = events.index("load_eval")
    assert "validation fit" in events[:i] and "final fit" in events[:i]
    assert set(events[:i]) == {"validation fit", "final fit"}  # nothing predicted before, nothing fitted after
    assert set(events[i + 1:]) == {"predict"}
    assert events.index("final fit") > max(j for j, e in enumerate(events) if e == "validation fit")


def test_validation_never_receives_a_test_or_confirm_clip():
    stub = Stub(_flat(0.5))
    res, _ = _run(stub, {"a": {"name": "a"}, "b": {"name": "b"}}, splits=(TEST, CONFIRM), final="all")
    eval_ids = set(TEST.x.tolist()) | set(CONFIRM.x.tolist())
    for f in stub.fits:
        assert not eval_ids & set(f["x"])
        assert not eval_ids & set(f["x_val"] or [])
    # ...but both splits are scored, by every final candidate
    for m in res["models"].values():
        assert list(m["splits"]) == ["Test", "Confirm"]
        assert m["splits"]["Confirm"]["n"] == 3


# ----------------------------------------------------------- the ensemble

# Four Test clips, three seeds. Clips 0 and 3 (true class 1): no seed predicts 1,
# their mean does. Clip 1 (true 0): two seeds say 0 by a hair, one says 1
# firmly; the mean says 1 (a majority vote would say 0). Clip 2: all say 2.
PROBS = {
    0: [[0.60, 0.40, 0.00], [0.51, 0.49, 0.00], [0.0, 0.0, 1.0], [0.60, 0.40, 0.00]],
    1: [[0.00, 0.40, 0.60], [0.51, 0.49, 0.00], [0.0, 0.0, 1.0], [0.00, 0.40, 0.60]],
    2: [[0.55, 0.45, 0.00], [0.00, 1.00, 0.00], [0.0, 0.0, 1.0], [0.55, 0.45, 0.00]],
}


def _scripted(params, seed, x):
    assert x.tolist() == TEST.x.tolist()
    return np.array(PROBS[seed])


def test_ensemble_is_the_argmax_of_the_mean_of_the_seeds_probabilities():
    stub = Stub(_flat(0.5), probs=_scripted)
    res, _ = _run(stub, {"a": {"name": "a"}}, seeds=(0, 1, 2))
    ev = res["models"]["a"]["splits"]["Test"]
    mean = np.mean([PROBS[s] for s in (0, 1, 2)], axis=0)
    assert mean.argmax(1).tolist() == [1, 1, 2, 1]
    per_seed = [r["accuracy"] for r in ev["per_seed"]]
    assert per_seed == [0.5, 0.5, 0.25]  # seeds 0 and 1: clips 1 and 2; seed 2: clip 2
    assert ev["ensemble"]["accuracy"] == 0.75  # not any seed's, nor the seeds' mean
    assert ev["ensemble"]["confusion"] == confusion(TEST.y, [1, 1, 2, 1], 3).tolist()
    assert ev["summary"]["per_seed"] == per_seed and ev["summary"]["mean"] == pytest.approx(5 / 12)
    # all seeds' predictions pooled
    assert ev["pooled"]["n"] == 12 and ev["pooled"]["correct"] == 5
    assert np.array(ev["pooled"]["confusion"]).tolist() == sum(
        np.array(r["confusion"]) for r in ev["per_seed"]).tolist()
    p = res["predictions"]["a"]["Test"]
    assert p["ensemble_pred"] == [1, 1, 2, 1]
    np.testing.assert_allclose(p["ensemble_proba"], mean, atol=1e-6)
    assert p["pred_per_seed"] == {"0": [0, 0, 2, 0], "1": [2, 0, 2, 2], "2": [0, 1, 2, 0]}
    assert p["y_true"] == TEST.y.tolist() and p["keys"] == TEST.keys and p["speakers"] == [5, 5, 6, 6]


def test_per_speaker_accuracy_of_the_seeds_and_the_ensemble():
    stub = Stub(_flat(0.5), probs=_scripted)
    res, _ = _run(stub, {"a": {"name": "a"}}, seeds=(0, 1, 2))
    pa = res["models"]["a"]["splits"]["Test"]["per_speaker"]
    # speaker 5: clips 0, 1; speaker 6: clips 2, 3
    assert pa["ensemble"] == {"5": 0.5, "6": 1.0}
    # seeds 0, 1, 2 get 1/2, 1/2, 0 of speaker 5's clips and 1/2 of speaker 6's each
    assert pa["seed_mean"] == pytest.approx({"5": 1 / 3, "6": 0.5})


def test_per_clip_predictions_agree_with_the_confusion_matrices():
    rng = np.random.default_rng(0)
    table = {s: rng.dirichlet(np.ones(3), size=len(TEST.x)) for s in (0, 1, 2)}
    stub = Stub(_flat(0.5), probs=lambda params, seed, x: table[seed])
    res, _ = _run(stub, {"a": {"name": "a"}}, seeds=(0, 1, 2))
    ev, p = res["models"]["a"]["splits"]["Test"], res["predictions"]["a"]["Test"]
    for r in ev["per_seed"]:
        assert r["confusion"] == confusion(p["y_true"], p["pred_per_seed"][str(r["seed"])], 3).tolist()
    assert ev["ensemble"]["confusion"] == confusion(p["y_true"], p["ensemble_pred"], 3).tolist()
    assert p["ensemble_pred"] == np.mean([table[s] for s in (0, 1, 2)], axis=0).argmax(1).tolist()


# ------------------------------------------------------------ the interval

def test_seed_interval_uses_student_t_not_z():
    accs = [0.5, 0.55, 0.6, 0.65, 0.7]
    # by hand: sd (ddof=1) = sqrt(0.025 / 4) = 0.0790569; t(0.975, 4 dof) = 2.776445
    half = 2.776445 * 0.0790569 / np.sqrt(5)  # 0.098162 (z = 1.96 would give 0.069296)
    s = seed_summary(accs)
    assert s["mean"] == pytest.approx(0.6) and s["std"] == pytest.approx(0.0790569, abs=1e-7)
    assert s["mean_ci95"] == pytest.approx([0.6 - half, 0.6 + half], abs=1e-6)
    assert t_interval(accs) == pytest.approx((0.6 - half, 0.6 + half), abs=1e-6)
    assert t_interval([0.4]) == (0.4, 0.4)


def test_protocol_reports_the_seed_summary_of_its_per_seed_accuracies():
    stub = Stub(_flat(0.5), probs=_scripted)
    res, _ = _run(stub, {"a": {"name": "a"}}, seeds=(0, 1, 2))
    ev = res["models"]["a"]["splits"]["Test"]
    assert ev["summary"] == seed_summary([0.5, 0.5, 0.25])


# --------------------------------------------------------- the real learner

def test_cnn1d_learner_fits_its_scale_on_the_rows_it_is_given_only():
    """The ``train_rms`` scale comes from the training rows of a fit, never
    from its validation rows, and predict uses the stored scale."""
    pytest.importorskip("torch")
    import dataclasses

    from ser.models.cnn1d import fit_scale, learner
    from ser.config import Cnn1dConfig

    cfg = dataclasses.replace(Cnn1dConfig(), sr_hz=8000, n_channels=4, n_hidden=8, n_blocks=2, batch_size=4,
                              grid_window=("start",))
    rng = np.random.default_rng(0)
    x = (0.05 * rng.standard_normal((6, 1, 400))).astype(np.float32)  # [clips, windows, samples]
    x_val = (0.9 * rng.standard_normal((2, 1, 400))).astype(np.float32)  # loud: would move a shared scale
    y, y_val = np.array([0, 1, 0, 1, 0, 1]), np.array([0, 1])
    lrn = learner(cfg, 2)
    params = {"window": "start", "norm": "train_rms", "shift_s": 0.0}
    trained, hist = lrn.fit(params, x, y, seed=0, epochs=1, x_val=x_val, y_val=y_val, log=_quiet)
    assert trained.state["train_rms_scale"] == pytest.approx(fit_scale(x), rel=1e-12)
    assert fit_scale(np.concatenate([x, x_val])) > 5 * fit_scale(x)
    assert len(hist["val_acc"]) == 1
    p = lrn.predict(trained, params, x_val)
    assert p.shape == (2, 2) and np.allclose(p.sum(1), 1, atol=1e-5)
    # a scale refitted on the inputs at prediction time would make a louder copy predict the same
    assert not np.allclose(lrn.predict(trained, params, 10 * x_val), p, atol=1e-4)
    other, _ = lrn.fit({"window": "start", "norm": "clip_std", "shift_s": 0.0}, x, y, seed=0, epochs=1, log=_quiet)
    assert other.state["train_rms_scale"] is None


def test_ensemble_curve_averages_the_seeds_probabilities_per_fold():
    from ser.models.protocol import declare, ensemble_curve

    y = np.array([0, 1])
    # seed 0 is right on clip 0 only, seed 1 on clip 1 only; averaged, both are right (epoch 1)
    p0 = np.array([[[0.9, 0.1], [0.6, 0.4]]])
    p1 = np.array([[[0.4, 0.6], [0.1, 0.9]]])
    runs = [{"speaker": 1, "seed": 0, "y_val": y, "val_proba": p0}, {"speaker": 1, "seed": 1, "y_val": y, "val_proba": p1}]
    assert ensemble_curve(runs).tolist() == [1.0]
    assert ensemble_curve(runs[:1]) is None  # one seed per fold: no ensemble
    assert declare({"score": 0.5, "ensemble_score": 0.5})["model"] == "ensemble"  # a tie goes to the ensemble
    assert declare({"score": 0.5, "ensemble_score": 0.49})["model"] == "single"
    assert declare({"score": 0.5, "ensemble_score": None})["model"] == "single"


def test_out_of_fold_probabilities_come_from_the_fold_that_held_the_clip_out():
    """Each training clip's out-of-fold row is the mean over validation seeds
    of the probabilities after the chosen number of epochs, from the run whose
    validation fold held that clip's speaker out."""
    from ser.models.protocol import out_of_fold_proba

    n_ep, n = 4, len(GROUPS)
    runs = []
    for speaker, _, va in loso_folds(GROUPS):
        for seed in (0, 1):
            # probability of class 0 encodes (epoch, speaker, seed): a wrong pick shows
            p = np.zeros((n_ep, len(va), 3))
            for e in range(n_ep):
                p[e, :, 0] = 0.1 * e + 0.01 * speaker + 0.001 * seed
            p[..., 1] = 1 - p[..., 0]
            runs.append({"speaker": speaker, "seed": seed, "val_idx": va, "val_proba": p})
    oof = out_of_fold_proba(runs, n, epochs=3)
    for i, a in enumerate(GROUPS):
        assert oof[i, 0] == pytest.approx(0.2 + 0.01 * a + 0.0005)
    assert np.allclose(oof.sum(1), 1)
    # a clip never held out: no out-of-fold probabilities
    assert out_of_fold_proba(runs[:-2], n, epochs=3) is None
    assert out_of_fold_proba([{k: v for k, v in r.items() if k != "val_proba"} for r in runs], n, 3) is None


def test_run_protocol_records_out_of_fold_probabilities_and_training_keys():
    def curve(params, speaker, seed):
        return [0.5, 0.6, 0.7]

    stub = Stub(curve)
    orig = stub.fit

    def fit(params, x, y, **kw):
        t, h = orig(params, x, y, **kw)
        if kw.get("x_val") is not None:  # probabilities saying "the speaker of the held-out clip, as a class"
            va = np.asarray(kw["x_val"])
            p = np.zeros((kw["epochs"], len(va), 3))
            p[:, np.arange(len(va)), GROUPS[va] - 1] = 1.0
            h["val_proba"] = p
        return t, h

    res, _ = run_protocol(Learner(fit=fit, predict=stub.predict), {"a": {"name": "a"}}, X, Y, GROUPS,
                          classes=CLASSES, load_eval=lambda: [], pcfg=ProtocolConfig(3, 1, (0, 1), (0,)),
                          log=_quiet, train_keys=[f"Train/{i}.wav" for i in X])
    oof = np.array(res["validation"]["candidates"]["a"]["oof_proba"])
    assert oof.shape == (10, 3) and np.array_equal(oof.argmax(1), GROUPS - 1)
    assert res["validation"]["train_keys"] == [f"Train/{i}.wav" for i in X]


# ---------------------------------------------- the validation ensemble's score

def _proba_stub(curve, ens_acc):
    """A :class:`Stub` whose validation runs also record class probabilities:
    at epoch ``e`` the first ``round(ens_acc[e] * 10)`` training clips (by id)
    are right for the seeds' mean and the others wrong. Seed 0 is sure (0.7
    on its class), seed 1 leans the other way (0.4): each seed alone would get
    other clips right than the mean does."""
    stub = Stub(curve)
    orig = stub.fit

    def fit(params, x, y, **kw):
        t, h = orig(params, x, y, **kw)
        if kw.get("x_val") is not None:
            va, seed = np.asarray(kw["x_val"]), kw["seed"]
            p = np.zeros((kw["epochs"], len(va), 3))
            for e in range(kw["epochs"]):
                right = va < round(ens_acc[e] * len(X))
                cls = np.where(right, Y[va], (Y[va] + 1) % 3)  # the class the mean will pick
                other = (cls + 1) % 3
                sure, lean = (0.7, 0.3) if seed == 0 else (0.4, 0.6)
                p[e, np.arange(len(va)), cls] = sure
                p[e, np.arange(len(va)), other] = lean
            h["val_proba"] = p
        return t, h

    return Learner(fit=fit, predict=stub.predict), stub


# the single seeds' mean curve peaks at epoch 3 (smoothed over 3 epochs as well);
# the ensemble's curve takes a different value at every epoch
SINGLE = [0.2, 0.4, 0.9, 0.5, 0.3]
ENSEMBLE = [1.0, 0.1, 0.9, 0.3, 0.2]


@pytest.mark.parametrize("smooth, score, ens_score, declared", [
    (1, 0.9, 0.9, "ensemble"),  # a tie goes to the ensemble
    (3, (0.4 + 0.9 + 0.5) / 3, (0.1 + 0.9 + 0.3) / 3, "single"),
])
def test_ensemble_score_is_read_at_the_chosen_epoch(smooth, score, ens_score, declared):
    """The ensemble's validation score is its (smoothed) curve at the epoch the
    single seeds' mean chose, not at its own peak (1.0 at epoch 1), its last
    epoch (0.2), a neighbour of the chosen epoch, or unsmoothed (0.9)."""
    lrn, _ = _proba_stub(lambda params, speaker, seed: SINGLE, ENSEMBLE)
    pcfg = ProtocolConfig(max_epochs=5, smooth_epochs=smooth, val_seeds=(0, 1), seeds=(0,))
    res, _ = run_protocol(lrn, {"a": {"name": "a"}}, X, Y, GROUPS, classes=CLASSES, load_eval=lambda: [],
                          pcfg=pcfg, log=_quiet)
    c = res["validation"]["candidates"]["a"]
    assert c["epochs"] == 3 and c["score"] == pytest.approx(score)
    np.testing.assert_allclose(c["ensemble_val_acc"], ENSEMBLE)
    assert c["ensemble_score"] == pytest.approx(ens_score)
    assert res["declared"] == {"model": declared, "val_single": pytest.approx(score),
                               "val_ensemble": pytest.approx(ens_score)}


def test_no_ensemble_score_with_one_validation_seed():
    lrn, _ = _proba_stub(lambda params, speaker, seed: SINGLE, ENSEMBLE)
    pcfg = ProtocolConfig(max_epochs=5, smooth_epochs=1, val_seeds=(0,), seeds=(0,))
    res, _ = run_protocol(lrn, {"a": {"name": "a"}}, X, Y, GROUPS, classes=CLASSES, load_eval=lambda: [],
                          pcfg=pcfg, log=_quiet)
    c = res["validation"]["candidates"]["a"]
    assert c["ensemble_val_acc"] is None and c["ensemble_score"] is None
    assert res["declared"]["model"] == "single"


def test_ensemble_curve_pools_the_folds_by_clips():
    from ser.models.protocol import ensemble_curve

    def run(speaker, seed, right):
        y = np.zeros(len(right), int)
        p = np.zeros((1, len(right), 2))
        p[0, :, 0] = np.where(right, 0.9, 0.1)
        p[0, :, 1] = 1 - p[0, :, 0]
        return {"speaker": speaker, "seed": seed, "y_val": y, "val_proba": p}

    # speaker 1: 1 clip, right; speaker 2: 3 clips, all wrong: 1 of 4 clips, not the folds' mean (0.5)
    runs = [run(1, s, [True]) for s in (0, 1)] + [run(2, s, [False] * 3) for s in (0, 1)]
    assert ensemble_curve(runs).tolist() == [0.25]
    # one fold without a second seed: no ensemble
    assert ensemble_curve(runs[:3]) is None


# ------------------------------------------------------ the chosen epoch, again

def test_chosen_epoch_is_the_peak_of_the_mean_over_seeds_not_of_any_run():
    # seed 0 peaks at epoch 2, seed 1 at epoch 3; their mean peaks at epoch 4
    curves = {0: [0.0, 1.0, 0.0, 0.6], 1: [0.0, 0.0, 0.7, 0.6]}
    stub = Stub(lambda params, speaker, seed: curves[seed])
    res, _ = _run(stub, {"a": {"name": "a"}}, val_seeds=(0, 1))
    c = res["validation"]["candidates"]["a"]
    np.testing.assert_allclose(c["mean_val_acc"], [0.0, 0.5, 0.35, 0.6])
    assert c["epochs"] == 4 and c["score"] == pytest.approx(0.6)
    assert [f["epochs"] for f in stub.final_fits()] == [4, 4]


def test_a_flat_validation_curve_trains_one_epoch():
    stub = Stub(_flat(0.5))
    res, _ = _run(stub, {"a": {"name": "a"}}, epochs=4, smooth=3)
    assert res["validation"]["candidates"]["a"]["epochs"] == 1
    assert [f["epochs"] for f in stub.final_fits()] == [1, 1]


def test_smoothing_ties_at_the_peak_go_to_the_earlier_epoch():
    # smoothed over 3: [1.5, 2, 2, 2, 1.5] (exactly, in floats): epochs 2-4 tie, 2 wins
    assert choose_epochs([1, 2, 3, 1, 2], 3) == (2, 2.0)
    # an even width is its odd neighbour below (half-width 1)
    np.testing.assert_allclose(moving_average([0, 3, 0, 0], 2), moving_average([0, 3, 0, 0], 3))
    np.testing.assert_allclose(moving_average([0, 3, 0, 0], 0), [0, 3, 0, 0])


def test_per_fold_records_at_the_chosen_epoch():
    """Each validation run's record: its held-out speaker, seed and clips, and
    its accuracy at the chosen epoch, at its best and at its last epoch; the
    per-speaker accuracy at the chosen epoch averages the seeds; the mean loss
    curve is weighted like the accuracy."""
    curves = {(1, 0): [0.1, 0.2, 0.3, 0.4], (1, 1): [0.3, 0.2, 0.5, 0.0],
              (2, 0): [0.9, 0.6, 0.7, 0.8], (2, 1): [0.5, 0.6, 0.9, 0.0],
              (3, 0): [0.0, 0.6, 1.0, 0.2], (3, 1): [0.2, 0.4, 0.8, 0.6]}
    stub = Stub(lambda params, speaker, seed: curves[speaker, seed])
    res, _ = _run(stub, {"a": {"name": "a"}}, val_seeds=(0, 1))
    c = res["validation"]["candidates"]["a"]
    assert c["epochs"] == 3
    n_val = {1: 2, 2: 3, 3: 5}
    assert [(f["speaker"], f["seed"], f["n_val"]) for f in c["per_fold"]] == [
        (str(a), s, n_val[a]) for a in (1, 2, 3) for s in (0, 1)]
    for f in c["per_fold"]:
        cv = curves[int(f["speaker"]), f["seed"]]
        assert (f["val_acc_at_epochs"], f["best_val_acc"], f["last_val_acc"]) == pytest.approx((cv[2], max(cv), cv[3]))
    assert c["per_speaker_at_epochs"] == pytest.approx({"1": 0.4, "2": 0.8, "3": 0.9})
    w = np.repeat([2, 3, 5], 2)
    mean = np.average([curves[k] for k in sorted(curves)], axis=0, weights=w)
    np.testing.assert_allclose(c["mean_val_acc"], mean)
    assert c["val_acc_at_epochs"] == pytest.approx(mean[2]) and c["val_acc_last"] == pytest.approx(mean[3])
    np.testing.assert_allclose(c["mean_val_loss"], 1 - mean)  # the stub's loss is 1 - accuracy
    assert c["min_val_loss"] == pytest.approx(1 - mean.max())
    # the arrays the protocol works with stay out of the results
    assert all({"y_val", "val_idx", "val_proba"}.isdisjoint(h) for h in c["histories"])


# --------------------------------------------- what each split's evaluation records

def test_evaluate_split_labels_every_number_with_its_seed():
    """Seeds given out of order (7, then 3): each seed's scores, the summary
    and the per-speaker means follow the seeds' own probabilities."""
    from ser.models.protocol import evaluate_split

    split = _split("Test", [100, 101, 102, 103], [0, 1, 1, 2], speakers=[5, 5, 6, None])
    right = np.eye(3)[[0, 1, 1, 2]]
    wrong = np.eye(3)[[1, 2, 2, 0]]
    half = np.eye(3)[[0, 2, 2, 2]]  # clips 0 and 3 right
    ev = evaluate_split([right, wrong, half], split, [7, 3, 9], CLASSES)
    assert set(ev) == {"n", "per_seed", "summary", "pooled", "ensemble", "per_speaker"}
    assert ev["n"] == 4
    assert [(r["seed"], r["accuracy"]) for r in ev["per_seed"]] == [(7, 1.0), (3, 0.0), (9, 0.5)]
    assert ev["summary"] == seed_summary([1.0, 0.0, 0.5])
    assert ev["pooled"]["n"] == 12 and ev["pooled"]["correct"] == 6
    # the mean of the three says 0, 2, 2, 2 (two votes of 2 for clips 1 and 2): clips 0 and 3 right
    assert np.mean([right, wrong, half], axis=0).argmax(1).tolist() == [0, 2, 2, 2]
    assert ev["ensemble"]["accuracy"] == 0.5
    # per speaker: a clip without a speaker is left out; seed means of 1.0, 0.0 and 0.5 / 0.0
    assert ev["per_speaker"]["seed_mean"] == pytest.approx({"5": (1 + 0 + 0.5) / 3, "6": (1 + 0 + 0) / 3})
    assert ev["per_speaker"]["ensemble"] == {"5": 0.5, "6": 0.0}


def test_predictions_take_the_ensemble_argmax_before_rounding():
    from ser.models.protocol import predictions

    split = _split("Test", [100, 101], [1, 0], speakers=[5, 6])
    p0 = np.array([[0.499996, 0.500004, 0.0], [0.9, 0.1, 0.0]])
    p1 = np.array([[0.499996, 0.500004, 0.0], [0.123456789, 0.876543211, 0.0]])
    out = predictions([p0, p1], split, [4, 2])
    assert out["ensemble_pred"] == [1, 0]  # rounded to 4 decimals the first clip would tie at 0.5 and say 0
    assert out["proba_per_seed"]["2"][1] == [0.1235, 0.8765, 0.0]
    assert out["pred_per_seed"] == {"4": [1, 0], "2": [1, 1]}
    np.testing.assert_allclose(out["ensemble_proba"][1], [0.511728, 0.488272, 0.0], atol=1e-6)
    assert out["keys"] == ["Test/100.wav", "Test/101.wav"] and out["y_true"] == [1, 0] and out["speakers"] == [5, 6]


def test_final_models_states_and_histories_follow_the_seeds():
    stub = Stub(_flat(0.5))
    res, trained = _run(stub, {"a": {"name": "a"}}, seeds=(9, 4, 6))
    m = res["models"]["a"]
    assert m["seeds"] == [9, 4, 6] and [t.model["seed"] for t in trained["a"]] == [9, 4, 6]
    assert [h["seed"] for h in m["train_histories"]] == [9, 4, 6]
    assert m["states"] == [{}, {}, {}] and m["params"] == {"name": "a"}
    assert [r["seed"] for r in m["splits"]["Test"]["per_seed"]] == [9, 4, 6]


# ------------------------------------------------- the entry points and what they record

def _timed(stub, seconds=1.5, proba=None):
    """``stub``'s learner whose runs last ``seconds`` and (optionally) record validation probabilities."""
    def fit(params, x, y, **kw):
        if kw.get("log"):
            kw["log"](f" epoch 1/{kw['epochs']}")
        t, h = stub.fit(params, x, y, **kw)
        h["seconds"] = seconds
        if proba is not None and kw.get("x_val") is not None:
            h["val_proba"] = proba(np.asarray(kw["x_val"]), kw["epochs"])
        return t, h

    return Learner(fit=fit, predict=stub.predict)


def test_validate_and_validate_candidate_without_a_runner():
    from ser.models.protocol import validate, validate_candidate

    pcfg = ProtocolConfig(max_epochs=4, smooth_epochs=1, val_seeds=(0,), seeds=(0,))
    stub = Stub(_by_name({"a": 0.3, "b": 0.7}))
    val = validate(stub.learner, {"a": {"name": "a"}, "b": {"name": "b"}}, X, Y, GROUPS, pcfg, log=_quiet)
    assert val["chosen"] == "b" and val["runner_up"] == "a" and val["margin"] == pytest.approx(0.4)
    assert val["folds"] == ["1", "2", "3"] and val["max_epochs"] == 4 and val["smooth_epochs"] == 1
    row = validate_candidate(Stub(_flat(0.6)).learner, {"name": "c"}, X, Y, loso_folds(GROUPS), pcfg, log=_quiet)
    assert row["score"] == pytest.approx(0.6) and row["params"] == {"name": "c"} and len(row["per_fold"]) == 3
    # one candidate: nobody to compare with
    one = validate(stub.learner, {"a": {"name": "a"}}, X, Y, GROUPS, pcfg, log=_quiet)
    assert one["runner_up"] is None and one["margin"] is None


def test_train_finals_one_model_per_seed_on_every_clip():
    from ser.models.protocol import train_finals

    stub = Stub(_flat(0.5))
    pcfg = ProtocolConfig(max_epochs=4, smooth_epochs=1, val_seeds=(0,), seeds=(3, 1))
    trained, hists = train_finals(stub.learner, {"name": "a"}, X, Y, pcfg, epochs=2, log=_quiet)
    assert [t.model["seed"] for t in trained] == [3, 1] and [h["seed"] for h in hists] == [3, 1]
    assert [(f["x"], f["epochs"], f["x_val"]) for f in stub.fits] == [(X.tolist(), 2, None)] * 2


def test_fold_options_reach_the_validation_folds():
    """Three speakers with ``max_loso=2``: 2 folds of StratifiedGroupKFold
    (stratified on the labels) instead of leaving each speaker out."""
    stub = Stub(lambda params, speaker, seed: [0.5] * 4)
    orig = stub.fit
    held = []

    def fit(params, x, y, **kw):
        if kw.get("x_val") is not None:
            held.append(sorted({int(GROUPS[i]) for i in kw["x_val"]}))
            kw = {**kw, "x_val": np.asarray(kw["x_val"])[:1]}  # the stub wants one speaker per fold
        return orig(params, x, y, **kw)

    pcfg = ProtocolConfig(max_epochs=4, smooth_epochs=1, val_seeds=(0,), seeds=(0,))
    res, _ = run_protocol(Learner(fit=fit, predict=stub.predict), {"a": {"name": "a"}}, X, Y, GROUPS,
                          classes=CLASSES, load_eval=lambda: [], pcfg=pcfg, log=_quiet,
                          fold_options={"max_loso": 2, "k": 2})
    assert res["validation"]["scheme"] != "leave-one-speaker-out" and len(held) == 2
    assert sorted(a for h in held for a in h) == [1, 2, 3]  # every speaker held out once


def test_candidate_row_records_time_and_rounded_out_of_fold_probabilities():
    def proba(va, epochs):
        p = np.full((epochs, len(va), 3), 0.12345678)
        p[..., 2] = 1 - 2 * 0.12345678
        return p

    lrn = _timed(Stub(_flat(0.5)), seconds=1.5, proba=proba)
    pcfg = ProtocolConfig(max_epochs=4, smooth_epochs=1, val_seeds=(0, 1), seeds=(0,))
    res, _ = run_protocol(lrn, {"a": {"name": "a"}}, X, Y, GROUPS, classes=CLASSES, load_eval=lambda: [],
                          pcfg=pcfg, log=_quiet)
    c = res["validation"]["candidates"]["a"]
    assert c["seconds"] == pytest.approx(1.5 * 6)  # 3 folds x 2 validation seeds
    assert c["oof_proba"][0] == [0.123457, 0.123457, 0.753086]  # 6 decimals


def test_predictions_round_the_ensemble_to_6_decimals():
    from ser.models.protocol import predictions

    split = _split("Test", [100], [0], speakers=[5])
    p = np.array([[0.12345678, 0.87654322, 0.0]])
    out = predictions([p, p], split, [0, 1])
    assert out["ensemble_proba"] == [[0.123457, 0.876543, 0.0]]
    assert out["proba_per_seed"]["0"] == [[0.1235, 0.8765, 0.0]]


def test_run_protocol_logs_each_stage_and_times_it():
    import time

    lines = []
    stub = Stub(_by_name({"a": 0.3, "b": 0.7}))
    pcfg = ProtocolConfig(max_epochs=4, smooth_epochs=1, val_seeds=(0,), seeds=(0, 1))
    t0 = time.perf_counter()
    res, _ = run_protocol(_timed(stub), {"a": {"name": "a"}, "b": {"name": "b"}}, X, Y, GROUPS, classes=CLASSES,
                          load_eval=lambda: [TEST], pcfg=pcfg, log=lines.append, name="net")
    elapsed = time.perf_counter() - t0
    assert all(isinstance(s, str) for s in lines) and not any("cached" in s for s in lines)  # no run cache here
    assert sum(s.startswith("net val a speaker ") for s in lines) == 3
    assert "net val 1/2 'a': smoothed val acc 0.300 at epoch 1 (last 0.300)" in lines
    assert "net val 2/2 'b': smoothed val acc 0.700 at epoch 1 (last 0.700)" in lines
    assert "net chose 'b', 1 epochs" in lines
    # each final run's per-epoch lines carry its name and seed, then its summary line
    assert "net 'b' seed 1 epoch 1/1" in lines
    assert "net 'b' seed 0: trained 1 epochs (2 s)" in lines
    assert any(s.startswith("net 'b' Test: seed mean ") for s in lines)
    assert any(s.startswith("net runs: 6 validation, 2 final; 8 trained, 0 read from the run cache") for s in lines)
    t = res["timings_s"]
    assert set(t) == {"validation", "final_training", "evaluation", "total"}
    assert all(0 <= t[k] <= t["total"] <= elapsed for k in t)
    # without a name, a final run's lines are labelled by the candidate alone
    lines.clear()
    run_protocol(_timed(stub), {"a": {"name": "a"}}, X, Y, GROUPS, classes=CLASSES, load_eval=lambda: [],
                 pcfg=pcfg, log=lines.append)
    assert "a seed 0 epoch 1/1" in lines and "a seed 0: trained 1 epochs (2 s)" in lines


def test_final_is_the_chosen_candidate_by_default_and_nothing_else_is_accepted():
    levels = {"a": 0.6, "b": 0.4}
    stub = Stub(lambda params, speaker, seed: [levels[params["name"]]] * 2)
    cands = {"a": {"name": "a"}, "b": {"name": "b"}}
    with pytest.raises(ValueError, match="final must be 'chosen' or 'all', got 'chosn'"):
        _run(stub, cands, final="chosn")
    assert stub.fits == []  # refused before any training
    pcfg = ProtocolConfig(max_epochs=2, smooth_epochs=1, val_seeds=(0,), seeds=(0,))
    res, trained = run_protocol(stub.learner, cands, X, Y, GROUPS, classes=CLASSES, load_eval=lambda: [TEST], pcfg=pcfg,
                                log=_quiet)
    assert res["chosen"] == "a" and list(trained) == list(res["models"]) == ["a"]
