"""Classifying new clips with the build's models (ser/classify.py; `doit predict`, `python -m ser.classify`).

The networks here are tiny untrained ones saved as checkpoints, each seed
leaning to a class of its own through its output bias, so that an ensemble
of some seeds differs from the ensemble of all; the batch tests stand the
three models in by probes that read every clip they are given. One slow
test refits the build's spec SVM and checks it against the report's number.
"""
import dataclasses
import functools
import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import tone, write_wav  # noqa: E402

import ser.classify as cl  # noqa: E402
from ser.config import CONFIG  # noqa: E402
from ser.errors import DataError, SerError  # noqa: E402

CLASSES = ["Angry", "Calm", "Happy", "Sad"]
CODES = {"Angry": "05", "Calm": "02", "Happy": "03", "Sad": "04"}
# tiny networks and a small mel filter bank: the probes' code paths, in milliseconds
CFG = dataclasses.replace(
    CONFIG, mel=dataclasses.replace(CONFIG.mel, n_mels=64, n_fft=1024),
    cnn1d=dataclasses.replace(CONFIG.cnn1d, n_channels=4, n_blocks=2, n_hidden=8),
    cnn2d=dataclasses.replace(CONFIG.cnn2d, widths=(4, 4)))


def _clip(folder, cls, actor, st=1, seconds=0.4):
    i = CLASSES.index(cls)
    return write_wav(Path(folder) / f"03-01-{CODES[cls]}-01-0{st}-01-{actor:02d}.wav",
                     tone(220 * (i + 1) + 7 * actor + 31 * st, 16000, seconds))


def _clips(folder):
    """Five clips: two of actor 5, one of actor 6, one of actor 7, and one named by no RAVDESS rule."""
    paths = [_clip(folder, "Angry", 5), _clip(folder, "Sad", 5, st=2), _clip(folder, "Calm", 6),
             _clip(folder, "Happy", 7)]
    paths.append(write_wav(Path(folder) / "my_take.wav", tone(500, 16000, 0.4)))
    return paths


# ------------------------------------------------------------------ tiny checkpoints


def _save(model, path, lean_to, strength):
    import torch

    with torch.no_grad():
        last = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
        last.bias.zero_()
        last.bias[lean_to] = strength
    torch.save(model.state_dict(), path)
    return str(path)


def _cnn1d_checkpoints(folder, n):
    import torch

    from ser.models import cnn1d

    out = []
    for s in range(n):
        torch.manual_seed(100 + s)
        model = cnn1d.build_model(len(CLASSES), sr_hz=CFG.cnn1d.sr_hz, **cnn1d.model_kwargs(CFG.cnn1d))
        out.append(_save(model, Path(folder) / f"cnn1d_seed{s}.pt", s % len(CLASSES), 1.5))
    return out


def _cnn2d_checkpoints(folder, name, n, lean_to, strength):
    import torch

    from ser.models import cnn2d

    out = []
    for s in range(n):
        torch.manual_seed(200 + 10 * (lean_to or 0) + s)
        model = cnn2d.build_model(len(CLASSES), **cnn2d.model_kwargs(CFG.cnn2d))
        lean = s % len(CLASSES) if lean_to is None else lean_to  # None: each seed a class of its own
        out.append(_save(model, Path(folder) / f"cnn2d_{name}_seed{s}.pt", lean, strength))
    return out


def _write(results, name, partial):
    """A results file of the build with the fields given (the schema's others left empty)."""
    import results_fixtures

    Path(results).mkdir(parents=True, exist_ok=True)
    results_fixtures.write(name[: -len(".json")], Path(results) / name, partial)


def _cnn1d_results(results, checkpoints, params, states):
    _write(results, "cnn1d.json", {"classes": CLASSES, "chosen": "c",
                                   "models": {"c": {"params": params, "checkpoints": checkpoints,
                                                    "states": states}}})


PARAMS_1D = {"clip_std": ({"window": "start", "norm": "clip_std", "shift_s": 0.0}, [None, None, None]),
             "train_rms": ({"window": "onset", "norm": "train_rms", "shift_s": 0.25}, [0.02, 0.1, 0.4])}


@pytest.mark.parametrize("norm", list(PARAMS_1D))
def test_cnn1d_seed_ensemble_is_the_mean_of_every_seed_s_probabilities(tmp_path, norm):
    """All seeds count, each with the state (scale) it was trained with."""
    paths = _clips(tmp_path / "clips")
    ckpts = _cnn1d_checkpoints(tmp_path, 3)
    params, scales = PARAMS_1D[norm]
    states = [{"train_rms_scale": s} for s in scales]
    singles = []
    for ck, st in zip(ckpts, states):  # each seed alone: a one-seed "ensemble"
        _cnn1d_results(tmp_path / "one", [ck], params, [st])
        singles.append(cl.cnn1d_probe(paths, CFG, tmp_path / "one", tmp_path, log=lambda m: None)[1])
    _cnn1d_results(tmp_path / "all", ckpts, params, states)
    name, probs = cl.cnn1d_probe(paths, CFG, tmp_path / "all", tmp_path, log=lambda m: None)
    assert name == "1D CNN, c, seed ensemble"
    assert probs.shape == (len(paths), len(CLASSES))
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(probs, np.mean(singles, axis=0), rtol=1e-5, atol=1e-7)
    # the seeds disagree, so leaving any one out would show
    for left_out in range(3):
        rest = np.mean([p for i, p in enumerate(singles) if i != left_out], axis=0)
        assert np.abs(rest - probs).max() > 1e-3


def test_cnn1d_speaker_level_setting_names_the_clips_scaled_by_their_own_level(tmp_path):
    paths = _clips(tmp_path / "clips")
    ckpts = _cnn1d_checkpoints(tmp_path, 2)
    _cnn1d_results(tmp_path / "r", ckpts, {"window": "start", "norm": "speaker_rms", "shift_s": 0.0},
                   [{"train_rms_scale": None}] * 2)
    log = []
    name, probs = cl.cnn1d_probe(paths, CFG, tmp_path / "r", tmp_path, log=log.append)
    assert probs.shape == (5, 4) and np.all(np.isfinite(probs))
    assert len(log) == 1 and "3 clip(s)" in log[0]
    assert all(p.name in log[0] for p in paths[2:]) and paths[0].name not in log[0]


def test_new_speakers_pool_a_speaker_s_clips_and_leave_lone_clips_to_themselves(tmp_path):
    paths = [Path("a/03-01-05-01-01-01-05.wav"), Path("b/03-01-04-01-02-01-05.wav"),
             Path("03-01-02-01-01-01-06.wav"), Path("take.wav")]
    log = []
    assert cl.new_speakers(paths, log.append) == [("speaker", "5"), ("speaker", "5"), ("clip", str(paths[2])),
                                                  ("clip", str(paths[3]))]
    assert log == ["1D CNN, speaker_rms: no other clip of the same speaker for 2 clip(s), each scaled by its own "
                   "RMS level instead of its speaker's: 03-01-02-01-01-01-06.wav, take.wav"]
    log.clear()
    assert cl.new_speakers(paths[:2], log.append) == [("speaker", "5"), ("speaker", "5")] and log == []
    # the configuration's speaker_pattern is read
    pattern = dataclasses.replace(CONFIG, data=dataclasses.replace(CONFIG.data, speaker_pattern=r"^(?P<speaker>\w)"))
    assert [k for k, _ in cl.new_speakers(paths, log.append, cfg=pattern)] == ["speaker", "speaker", "speaker", "clip"]
    log.clear()
    # speakers given: they decide, not the names
    assert cl.new_speakers(paths, log.append, ["x", "y", "y", None]) == [
        ("clip", str(paths[0])), ("speaker", "y"), ("speaker", "y"), ("clip", str(paths[3]))]


def test_clip_speakers_read_a_speakers_csv_a_pattern_or_any_known_corpus_s_names(tmp_path):
    import dataclasses

    names = ["03a01Fa.wav", "1001_DFA_ANG_XX.wav", "03-01-05-01-01-01-12.wav", "take_7.wav"]
    paths = [tmp_path / "clips" / n for n in names]
    assert cl.clip_speakers(paths) == ["03", "1001", "12", None]  # EmoDB, CREMA-D, RAVDESS, none
    assert cl.clip_speakers([]) == []
    pattern = dataclasses.replace(CONFIG, data=dataclasses.replace(CONFIG.data, speaker_pattern=r"take_(?P<speaker>\d+)"))
    assert cl.clip_speakers(paths, cfg=pattern) == [None, None, None, "7"]
    (tmp_path / "clips" / "Sad").mkdir(parents=True)
    (tmp_path / "clips" / "speakers.csv").write_text("path,speaker\nSad/take_7.wav,ann\n03a01Fa.wav,bob\n")
    inside = [tmp_path / "clips" / "Sad" / "take_7.wav", paths[0], paths[1]]
    assert cl.clip_speakers(inside, tmp_path / "clips") == ["ann", "bob", None]  # the CSV wins; unlisted: None
    assert cl.clip_speakers(inside[:1]) == [None]  # default root: the clip's own folder, which has no CSV
    assert cl.clip_speakers(inside[:1], tmp_path / "clips") == ["ann"]  # the given root, not the clip's folder
    elsewhere = tmp_path / "other" / "03-01-05-01-01-01-09.wav"
    assert cl.clip_speakers([elsewhere, inside[0]], tmp_path / "clips") == [None, "ann"]  # outside root: by its name,
    # and the CSV, once there, is the only source


def _cnn2d_results(results, models, chosen):
    _write(results, "cnn2d.json", {
        "classes": CLASSES, "chosen": chosen,
        "validation": {"candidates": {n: {"score": m["score"]} for n, m in models.items()}},
        "models": {n: {"params": m["params"], "checkpoints": m["checkpoints"], "states": [{}] * len(m["checkpoints"])}
                   for n, m in models.items()}})


def test_cnn2d_seed_ensemble_is_the_mean_of_every_seed_s_probabilities(tmp_path):
    paths = _clips(tmp_path / "clips")
    ckpts = _cnn2d_checkpoints(tmp_path, "none", 3, None, 1.5)
    singles = []
    for ck in ckpts:
        _cnn2d_results(tmp_path / "one", {"none": {"params": {}, "score": 0.5, "checkpoints": [ck]}}, "none")
        singles.append(cl.cnn2d_probe(paths, CFG, tmp_path / "one", tmp_path)[1])
    _cnn2d_results(tmp_path / "all", {"none": {"params": {}, "score": 0.5, "checkpoints": ckpts}}, "none")
    name, probs = cl.cnn2d_probe(paths, CFG, tmp_path / "all", tmp_path)
    assert name == "2D CNN, none, seed ensemble"
    np.testing.assert_allclose(probs, np.mean(singles, axis=0), rtol=1e-5, atol=1e-7)
    for left_out in range(3):
        rest = np.mean([p for i, p in enumerate(singles) if i != left_out], axis=0)
        assert np.abs(rest - probs).max() > 1e-3


def test_cnn2d_speaker_setting_classifies_lone_clips_by_the_best_raw_setting(tmp_path):
    """Each setting's seeds lean hard to a class of their own: the speaker-normalised one to Angry, the raw
    "none" (validation 0.3) to Calm, the raw "image" (validation 0.5, the best raw) to Happy."""
    paths = _clips(tmp_path / "clips")
    spk = "spectrogram, speaker-normalised"
    models = {spk: {"params": {"input": "speaker"}, "score": 0.7,
                    "checkpoints": _cnn2d_checkpoints(tmp_path, "spk", 2, 0, 50.0)},
              "none": {"params": {}, "score": 0.3, "checkpoints": _cnn2d_checkpoints(tmp_path, "none", 2, 1, 50.0)},
              "image": {"params": {}, "score": 0.5, "checkpoints": _cnn2d_checkpoints(tmp_path, "image", 2, 2, 50.0)}}
    _cnn2d_results(tmp_path / "r", models, spk)
    log = []
    name, probs = cl.cnn2d_probe(paths, CFG, tmp_path / "r", tmp_path, log=log.append)
    # actor 5's two clips: speaker statistics, the chosen setting; the others: its best raw setting
    assert [CLASSES[k] for k in probs.argmax(1)] == ["Angry", "Angry", "Happy", "Happy", "Happy"]
    assert name == f"2D CNN, {spk}, seed ensemble ('image' for 3 clip(s) of single-clip speakers)"
    assert len(log) == 1 and "'image'" in log[0] and log[0].endswith(": " + ", ".join(p.name for p in paths[2:]))
    assert paths[0].name not in log[0]
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)


def test_cnn2d_speaker_setting_without_a_raw_one_names_the_results_file(tmp_path):
    paths = _clips(tmp_path / "clips")
    spk = "spectrogram, speaker-normalised"
    _cnn2d_results(tmp_path / "r", {spk: {"params": {"input": "speaker"}, "score": 0.7,
                                          "checkpoints": _cnn2d_checkpoints(tmp_path, "spk", 1, 0, 5.0)}}, spk)
    with pytest.raises(SerError, match=r"cnn2d\.json: no raw-input 2D model"):
        cl.cnn2d_probe(paths, CFG, tmp_path / "r", tmp_path, log=lambda m: None)


def test_a_missing_model_names_the_task_that_trains_it(tmp_path):
    paths = _clips(tmp_path / "clips")
    for probe, task in ((cl.svm_probe, "svm"), (cl.cnn1d_probe, "cnn1d"), (cl.cnn2d_probe, "cnn2d")):
        with pytest.raises(SerError, match=rf"{task}\.json: missing; train the models first with `doit {task}`"):
            probe(paths, CFG, tmp_path / "nothing", tmp_path)
    _cnn1d_results(tmp_path / "r", [str(tmp_path / "gone.pt")], PARAMS_1D["clip_std"][0], [{}])
    with pytest.raises(SerError, match=r"gone\.pt: missing; train the models first with `doit cnn1d`"):
        cl.cnn1d_probe(paths, CFG, tmp_path / "r", tmp_path, log=lambda m: None)
    _cnn2d_results(tmp_path / "r", {"none": {"params": {}, "score": 0.5, "checkpoints": [str(tmp_path / "g2.pt")]}},
                   "none")
    with pytest.raises(SerError, match=r"g2\.pt: missing; train the models first with `doit cnn2d`"):
        cl.cnn2d_probe(paths, CFG, tmp_path / "r", tmp_path, log=lambda m: None)
    _write(tmp_path / "r", "svm.json", {"readings": {"hz": {"best": "SC"}}})
    with pytest.raises(SerError, match=r"features\.npz: missing; train the models first with `doit features`"):
        cl.svm_probe(paths, CFG, tmp_path / "r", tmp_path / "no_cache")


# ------------------------------------------------------------------ the spec SVM


def test_svm_probe_refits_the_spec_svm_of_the_best_kind_on_training_rows_only(tmp_path):
    """The cache's training rows of the best kind (SBW) teach each class its tone; its SC rows and every
    Test row teach the classes in another order, so a probe that read them would answer otherwise; the
    tuned parameters cannot even be fitted."""
    from ser.features.extract import clip_features
    from ser.io import save_npz

    train = [_clip(tmp_path / "train", c, a, st=1, seconds=0.4) for c in CLASSES for a in (1, 2)]
    feats = [clip_features(p, CFG) for p in train]
    y = np.repeat(np.arange(4), 2)
    shifted = np.roll(np.arange(8), 2)  # another class's features in each row
    X = {f"X_hz_{k}": np.stack([f[f"hz_{k}"] for f in feats]) for k in ("SC", "SBW", "SBE")}
    X["X_hz_SC"] = X["X_hz_SC"][shifted]
    cache = {k: np.concatenate([v, v[shifted]]) for k, v in X.items()}  # Test rows: shifted classes
    save_npz(tmp_path / "cache" / "features.npz", **cache, label=np.concatenate([y, y]),
             split=np.array(["Train"] * 8 + ["Test"] * 8))
    spec = {"transform": "none", "norm": "none", "kernel": "rbf", "C": 10.0, "gamma": "scale"}
    kinds = {k: {"spec": {"params": spec}, "tuned": {"params": {**spec, "norm": "speaker_z"}}}
             for k in ("SC", "SBW", "SBE")}
    _write(tmp_path / "res", "svm.json", {"readings": {"hz": {"best": "SBW", "kinds": kinds},
                                                       "index": {"best": "SC", "kinds": kinds}}})
    name, dec = cl.svm_probe(train, CFG, tmp_path / "res", tmp_path / "cache")
    assert name == "spec SVM, SBW"
    assert dec.shape == (8, 4)
    assert dec.argmax(1).tolist() == y.tolist()
    # the decision values are the spec parameters' own, fitted on the training rows: another C moves them
    from ser.models.svm import pipeline_of

    Xtr = X["X_hz_SBW"]
    want = pipeline_of(spec).fit(Xtr, y).decision_function(Xtr)
    np.testing.assert_allclose(dec, want, rtol=1e-9, atol=1e-12)
    other_c = pipeline_of({**spec, "C": 1.0}).fit(Xtr, y).decision_function(Xtr)
    assert not np.allclose(other_c, want, atol=1e-3)


@pytest.mark.slow
def test_svm_probe_reproduces_the_report_s_spec_svm_test_accuracy():
    """On the real Test split, the refitted spec SVM scores what build/results/svm.json reports."""
    from ser.config import CACHE_DIR, RESULTS_DIR
    from ser.data.dataset import find_data_dir

    from ser import results

    # SER_REQUIRE_BUILD=1 (.ci/run, after its build): a missing or stale build fails instead of skipping
    missing = pytest.fail if os.environ.get("SER_REQUIRE_BUILD") == "1" else pytest.skip
    if not (RESULTS_DIR / "svm.json").is_file() or not (CACHE_DIR / "features.npz").is_file():
        missing("no finished build (build/results/svm.json, build/cache/features.npz)")
    try:
        svm = results.load("svm", RESULTS_DIR / "svm.json")
        data = find_data_dir()
    except SerError as exc:  # a build of another version, or no data set
        missing(str(exc))
    best = svm["readings"]["hz"]["best"]
    spec_test = svm["readings"]["hz"]["kinds"][best]["spec"]["splits"]["Test"]
    paths, labels = cl.find_clips(data / "Test")
    assert [f"Test/{lb}/{p.name}" for p, lb in zip(paths, labels)] == svm["keys"]["Test"]
    name, dec = cl.svm_probe(paths)
    assert name == f"spec SVM, {best}"
    pred = dec.argmax(1)
    assert pred.tolist() == svm["readings"]["hz"]["kinds"][best]["spec"]["pred"]["Test"]
    y = np.array([svm["classes"].index(lb) for lb in labels])
    assert np.mean(pred == y) == pytest.approx(spec_test["accuracy"])


# ------------------------------------------------------------------ a batch: classify() and main()


def _expected_class(path):
    """What the stand-in models answer for a clip: its class folder's class, or Calm for a loose clip."""
    parent = Path(path).parent.name
    return CLASSES.index(parent) if parent in CLASSES else 1


def _stand_in(name, offset, probability, where):
    """A probe that reads every clip (an unreadable one would raise), checks it is handed the configuration
    and the build's folders, and answers class (expected + offset)."""
    def probe(paths, cfg, results_dir, cache_dir, **kw):
        from ser.data.audio import read_mono

        assert set(kw) == ({"log", "speakers"} if probability else set())
        if probability:
            assert kw["speakers"] == cl.clip_speakers(paths, where / "clips") and len(kw["speakers"]) == len(paths)
            kw["log"](f"{name}: a word from the probe")  # reaches classify's log, not stdout

        assert (cfg, results_dir, cache_dir) == (CONFIG, where / "res", where / "cache")
        out = np.full((len(paths), len(CLASSES)), 0.1 if probability else -1.000049)
        for i, p in enumerate(paths):
            read_mono(p)
            out[i, (_expected_class(p) + offset) % len(CLASSES)] = 0.700051 if probability else 2.123456
        return name, out
    return probe


@pytest.fixture
def batch(tmp_path, monkeypatch):
    """The three models stood in (SVM right, 1D CNN one class off, 2D CNN right), the build's data.json in a
    temporary results folder, and ``main`` reading that folder."""
    monkeypatch.setattr(cl, "svm_probe", _stand_in("spec SVM, SC", 0, False, tmp_path))
    monkeypatch.setattr(cl, "cnn1d_probe", _stand_in("1D CNN, x, seed ensemble", 1, True, tmp_path))
    monkeypatch.setattr(cl, "cnn2d_probe", _stand_in("2D CNN, y, seed ensemble", 0, True, tmp_path))
    _write(tmp_path / "res", "data.json", {"classes": CLASSES})
    monkeypatch.setattr(cl, "classify", functools.partial(cl.classify, results_dir=tmp_path / "res",
                                                          cache_dir=tmp_path / "cache"))
    return tmp_path


def _labelled(root):
    """Class folders, two clips each for Angry and Sad, one for Calm."""
    return [_clip(root / c, c, a, seconds=0.1) for c, actors in (("Angry", (5, 6)), ("Calm", (5,)), ("Sad", (5, 6)))
            for a in actors]


def _rows(path):
    import csv

    return list(csv.DictReader(Path(path).open()))


def test_classify_predicts_every_clip_with_every_model_and_scores_labelled_clips(batch):
    paths = _labelled(batch / "clips")
    log = []
    result = cl.classify(batch / "clips", batch / "p.csv", log=log.append)
    assert result["clips"] == [str(p) for p in paths] and result["skipped"] == []
    svm, c1, c2 = (result["models"][m] for m in ("spec SVM, SC", "1D CNN, x, seed ensemble", "2D CNN, y, seed ensemble"))
    assert svm["pred"] == ["Angry", "Angry", "Calm", "Sad", "Sad"] == c2["pred"]
    assert c1["pred"] == ["Calm", "Calm", "Happy", "Angry", "Angry"]
    assert (svm["scores"]["accuracy"], svm["scores"]["correct"], svm["scores"]["n"]) == (1.0, 5, 5)
    assert (c1["scores"]["accuracy"], c1["scores"]["correct"]) == (0.0, 0)
    assert c1["scores"]["confusion"][0] == [0, 2, 0, 0]  # Angry taken for Calm, twice
    rows = _rows(batch / "p.csv")
    assert len(rows) == 15
    for r in rows:
        scores = [float(r[f"score_{c}"]) for c in CLASSES]
        assert r["predicted_class"] == CLASSES[int(np.argmax(scores))]
        assert r["true_class"] == Path(r["clip"]).parent.name
        assert r["correct"] == str(int(r["true_class"] == r["predicted_class"]))
        assert r["scores_kind"] == ("decision" if r["model"].startswith("spec SVM") else "probability")
        assert (r["split"], r["speaker"]) == ("", str(int(Path(r["clip"]).stem[-2:])))  # no split; the named actor
        assert set(scores) <= ({-1.0, 2.1235} if r["scores_kind"] == "decision" else {0.1, 0.7001})  # 4 decimals
    text = "\n".join(log)
    assert "spec SVM, SC: accuracy 100.0% (5/5)" in text and "1D CNN, x, seed ensemble: accuracy 0.0% (0/5)" in text
    assert "  Angry                  0       2       0       0" in text
    assert "1D CNN, x, seed ensemble: a word from the probe" in text and "2D CNN, y, seed ensemble: a word" in text


def test_the_csv_names_each_clip_s_speaker_from_a_speakers_csv_in_the_folder_given(batch):
    """One class folder: the folder given, not the clips' own folder, holds the speakers.csv."""
    clips = batch / "clips"
    for name in ("take_1.wav", "take_2.wav", "take_3.wav"):
        write_wav(clips / "Sad" / name, tone(300, 16000, 0.1))
    (clips / "speakers.csv").write_text("path,speaker\nSad/take_1.wav,ann\nSad/take_2.wav,bob\n")
    cl.classify(clips, batch / "p.csv", log=lambda m: None)
    rows = _rows(batch / "p.csv")
    assert len(rows) == 9
    assert {(Path(r["clip"]).name, r["speaker"]) for r in rows} == {("take_1.wav", "ann"), ("take_2.wav", "bob"),
                                                                  ("take_3.wav", "")}  # not listed: no speaker


def test_loose_clips_are_classified_without_truth_or_accuracy(batch):
    paths = [_clip(batch / "clips", c, 5, seconds=0.1) for c in ("Angry", "Sad")]
    log = []
    result = cl.classify(batch / "clips", batch / "p.csv", log=log.append)
    assert result["models"]["spec SVM, SC"] == {"pred": ["Calm", "Calm"]}  # no "scores"
    rows = _rows(batch / "p.csv")
    assert {(Path(r["clip"]).name, r["true_class"], r["correct"]) for r in rows} == {
        (p.name, "", "") for p in paths}
    assert "accuracy" not in "\n".join(log) and not log[0].splitlines()[0].startswith("clip  true")


def test_main_classifies_the_readable_clips_lists_the_bad_one_and_fails(batch, capsys):
    paths = _labelled(batch / "clips")
    bad = batch / "clips" / "Calm" / "broken.wav"
    bad.write_bytes(b"RIFF....WAVEnot audio")
    empty = batch / "clips" / "Sad" / "03-01-04-01-01-01-09.wav"
    empty.write_bytes(b"")
    code = cl.main([str(batch / "clips"), "--out", str(batch / "p.csv")])
    out = capsys.readouterr().out
    assert code == 1
    assert "not classified (2 file(s) could not be read):" in out
    assert f"  {bad}: cannot be read as audio (" in out and f"  {empty}: " in out
    assert f"written: {batch / 'p.csv'}" in out
    rows = _rows(batch / "p.csv")
    assert sorted({r["clip"] for r in rows}) == sorted(str(p) for p in paths)  # every readable clip ...
    assert len(rows) == 3 * len(paths)  # ... by each model
    assert "broken.wav" not in "".join(r["clip"] for r in rows)


def test_classify_reports_each_unreadable_clip_with_its_reason(batch):
    _labelled(batch / "clips")
    bad = batch / "clips" / "Angry" / "broken.wav"
    bad.write_bytes(b"RIFF....WAVEnot audio")
    result = cl.classify(batch / "clips", None, log=lambda m: None)
    assert len(result["clips"]) == 5 and str(bad) not in result["clips"]
    assert [s["clip"] for s in result["skipped"]] == [str(bad)]
    assert result["skipped"][0]["reason"].startswith("cannot be read as audio (")  # without the path again
    assert result["models"]["spec SVM, SC"]["scores"]["n"] == 5  # scored on the readable clips


def test_main_exits_zero_on_a_clean_batch(batch, capsys):
    _labelled(batch / "clips")
    assert cl.main([str(batch / "clips"), "--out", str(batch / "p.csv")]) == 0
    out = capsys.readouterr().out
    assert "not classified" not in out and f"written: {batch / 'p.csv'}" in out


def test_main_fails_with_the_message_when_no_clip_can_be_read(batch, capsys):
    (batch / "clips").mkdir()
    for name in ("a.wav", "b.wav"):
        (batch / "clips" / name).write_bytes(b"not audio")
    assert cl.main([str(batch / "clips"), "--out", str(batch / "p.csv")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"ERROR: {batch / 'clips'}: no clip could be read: ")
    reasons = err.split("no clip could be read: ", 1)[1].split("; ")
    assert [r.split(": cannot be read as audio")[0] for r in reasons] == [str(batch / "clips" / n)
                                                                          for n in ("a.wav", "b.wav")]
    assert not (batch / "p.csv").exists()


def test_main_fails_on_an_unknown_class_folder_naming_it(batch, capsys):
    _labelled(batch / "clips")
    _clip(batch / "clips" / "Bored", "Sad", 5, seconds=0.1)
    assert cl.main([str(batch / "clips"), "--out", str(batch / "p.csv")]) == 1
    err = capsys.readouterr().err
    assert "class folders ['Bored'] are not among the trained classes" in err and "Traceback" not in err


def test_main_without_a_build_names_the_task(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cl, "classify", functools.partial(cl.classify, results_dir=tmp_path / "none"))
    _clip(tmp_path / "clips", "Sad", 5, seconds=0.1)
    assert cl.main([str(tmp_path / "clips")]) == 1
    assert "data.json: missing; train the models first with `doit card`" in capsys.readouterr().err


# ------------------------------------------------------------------ finding and reading clips


def test_find_clips_takes_loose_wavs_sorted_or_class_folders_and_skips_hidden_files(tmp_path):
    loose = tmp_path / "loose"
    for name in ("b.wav", "a.WAV", "._a.wav", "notes.txt"):
        write_wav(loose / name, tone(300, 16000, 0.05)) if name.lower().endswith(".wav") else \
            (loose / name).write_text("x")
    assert cl.find_clips(loose) == ([loose / "a.WAV", loose / "b.wav"], [None, None])
    tree = tmp_path / "tree"
    for cls, name in (("Sad", "2.wav"), ("Sad", "1.wav"), ("Angry", "9.wav"), ("Angry", "._9.wav"),
                      (".hidden", "x.wav")):
        write_wav(tree / cls / name, tone(300, 16000, 0.05))
    assert cl.find_clips(tree) == ([tree / "Angry" / "9.wav", tree / "Sad" / "1.wav", tree / "Sad" / "2.wav"],
                                   ["Angry", "Sad", "Sad"])


def test_find_clips_names_a_missing_or_empty_folder(tmp_path):
    with pytest.raises(DataError, match=r"gone: no such folder"):
        cl.find_clips(tmp_path / "gone")
    (tmp_path / "empty" / "Sad").mkdir(parents=True)
    with pytest.raises(DataError, match=r"empty: holds no \.wav files"):
        cl.find_clips(tmp_path / "empty")


def test_readable_clips_keep_the_order_and_give_each_bad_file_its_reason(tmp_path):
    good = [write_wav(tmp_path / f"{i}.wav", tone(300, 16000, 0.05)) for i in range(3)]
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF")
    ok, skipped = cl.readable_clips([good[2], bad, good[0], tmp_path / "gone.wav", good[1]])
    assert ok == [good[2], good[0], good[1]]
    assert [(p, why.split(" (")[0]) for p, why in skipped] == [(bad, "cannot be read as audio"),
                                                             (tmp_path / "gone.wav", "no such file")]


def test_format_table_lists_each_clip_with_each_model_s_class():
    result = {"models": {"spec SVM, SC": {"pred": ["Sad", "Calm"]}, "2D CNN, none, seed ensemble":
                         {"pred": ["Angry", "Calm"]}}}
    lines = cl.format_table(result, ["a.wav", "long_name.wav"], [None, None], CLASSES).splitlines()
    assert lines[0].split() == ["clip", "spec", "SVM", "2D", "CNN"]
    assert lines[1].split() == ["a.wav", "Sad", "Angry"] and lines[2].split() == ["long_name.wav", "Calm", "Calm"]
    assert len(lines) == 3


# ------------------------------------------------------------------ the networks read what the build fed them

CLASSES3 = ["Angry", "Calm", "Sad"]  # three classes: a checkpoint loaded as four would not fit
# settings unlike the defaults, so that a probe that dropped one would read another input than the build
CFG_B = dataclasses.replace(
    CFG, onset=dataclasses.replace(CONFIG.onset, rel_db=-20.0, margin_s=0.05),
    cnn1d=dataclasses.replace(CFG.cnn1d, n_frames=60, hop_s=0.01, sr_hz=8000),
    cnn2d=dataclasses.replace(CFG.cnn2d, n_frames=40, window="onset", fix_floor=False, dynamic_range=4.0,
                              low_at_bottom=False, size_hw=(48, 24), interpolation="linear", speaker_norm=()))


def _recording(seed, sr=48000):
    """0.05 s of digital silence, 0.25 s of near silence, then 0.9 s of a pitched, noisy, rising sound (48 kHz)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(0.9 * sr)) / sr
    voice = 0.3 * np.sin(2 * np.pi * (150 + 40 * seed) * t * (1 + t)) + 0.05 * rng.standard_normal(len(t))
    return np.concatenate([np.zeros(int(0.05 * sr)), 0.001 * rng.standard_normal(int(0.25 * sr)),
                           voice * np.linspace(0.5, 1, len(t))])


def _build_data(root):
    """Train (actors 1, 2) and Test (actors 5, 6), classes Angry and Sad, 48 kHz."""
    seed = 0
    for split, actors in (("Train", (1, 2)), ("Test", (5, 6))):
        for cls, code in (("Angry", "05"), ("Sad", "04")):
            for a in actors:
                seed += 1
                write_wav(root / split / cls / f"03-01-{code}-01-01-01-{a:02d}.wav", _recording(seed), sr=48000)
    return root


def _seed_models(folder, build, n, n_classes=3):
    """``n`` random models from ``build(n_classes)``, each leaning to a class of its own, saved."""
    import torch

    out = []
    for s in range(n):
        torch.manual_seed(300 + s)
        out.append(_save(build(n_classes), Path(folder) / f"m{s}.pt", s % n_classes, 1.0))
    return out


def test_cnn1d_probe_reads_each_clip_as_the_build_fed_it_to_the_network(tmp_path):
    """Resampled to [cnn1d] sr_hz, (n_frames + 1) hops long, from the start or the onset ([onset] margin)."""
    from ser.models import cnn1d
    from ser.models.protocol import Trained

    paths = [p for p in sorted((_build_data(tmp_path / "d") / "Test").rglob("*.wav"))]
    c = CFG_B.cnn1d
    ckpts = _seed_models(tmp_path, lambda n: cnn1d.build_model(n, sr_hz=c.sr_hz, **cnn1d.model_kwargs(c)), 2)
    states = [{"train_rms_scale": None}] * 2
    for window in ("start", "onset"):
        params = {"window": window, "norm": "clip_std", "shift_s": 0.0}
        _write(tmp_path / window, "cnn1d.json", {"classes": CLASSES3, "chosen": "c", "models": {
            "c": {"params": params, "checkpoints": ckpts, "states": states}}})
        probs = cl.cnn1d_probe(paths, CFG_B, tmp_path / window, tmp_path, log=lambda m: None)[1]
        # the build's inputs (ser.models.cnn1d.run_cnn1d) and its learner's predictions, seed by seed
        x = cnn1d.load_waveforms(paths, n_frames=c.n_frames, hop_s=c.hop_s, sr_hz=c.sr_hz,
                                 window=tuple(c.grid_window), onset=CFG_B.onset)
        assert x.shape == (4, 2, 61 * 80)
        lrn = cnn1d.learner(c, 3)
        expected = np.mean([lrn.predict(Trained(cnn1d.load_model(ck, c, n_classes=3), st), params, x)
                            for ck, st in zip(ckpts, states)], axis=0)
        np.testing.assert_allclose(probs, expected, rtol=1e-5, atol=1e-7, err_msg=window)


@pytest.mark.parametrize("speaker, image", [
    (False, dict(fix_floor=False, low_at_bottom=True)),
    (False, dict(fix_floor=True, low_at_bottom=False, dynamic_range=None, window="start")),  # the floor in sight
    (False, dict(fix_floor=False, dynamic_range=None, window="start")),  # the raw floor in sight
    (True, dict(fix_floor=True, low_at_bottom=True, dynamic_range=None, speaker_norm=("spectrogram",))),
    (True, dict(fix_floor=True, low_at_bottom=False, dynamic_range=None, speaker_norm=("spectrogram",)))],
    ids=["raw images", "raw images, other floor, orientation and window", "raw images, the floor unfixed",
         "speaker-normalised images",
         "speaker-normalised images, low bands on top"])
def test_cnn2d_probe_classifies_each_clip_from_the_image_the_build_exported(tmp_path, speaker, image):
    """The build's own export (ser.pipeline.build_images), read back as the build's 2D CNN reads it."""
    from ser import results
    from ser.models import cnn2d
    from ser.models.protocol import Trained
    from ser.pipeline import build_images

    cfg = dataclasses.replace(CFG_B, cnn2d=dataclasses.replace(CFG_B.cnn2d, **image))
    c = cfg.cnn2d
    data = _build_data(tmp_path / "d")
    build_images(data, tmp_path / "images", tmp_path / "images.json", cfg)
    recs = [r for r in results.load("images", tmp_path / "images.json")["records"] if r["split"] == "Test"]
    x = cnn2d.load_images(recs, c)[0]
    params = {"input": "speaker"} if speaker else {}
    if speaker:
        x = np.concatenate([x, cnn2d.load_speaker_images(recs, c)], axis=1)
    ckpts = _seed_models(tmp_path, lambda n: cnn2d.build_model(n, **cnn2d.model_kwargs(c)), 2)
    _write(tmp_path / "r", "cnn2d.json", {
        "classes": CLASSES3, "chosen": "s", "validation": {"candidates": {"s": {"score": 0.5}}},
        "models": {"s": {"params": params, "checkpoints": ckpts, "states": [{}, {}]}}})
    probs = cl.cnn2d_probe([data / r["key"] for r in recs], cfg, tmp_path / "r", tmp_path, log=lambda m: None)[1]
    lrn = cnn2d.learner(c, 3)
    expected = np.mean([lrn.predict(Trained(cnn2d.load_checkpoint(ck, c, n_classes=3)), params, x) for ck in ckpts],
                       axis=0)
    np.testing.assert_allclose(probs, expected, rtol=1e-5, atol=1e-7)


# ------------------------------------------------------------------ what the user reads


def test_format_table_with_labels_lays_out_predictions_accuracy_and_confusion():
    result = {"models": {"spec SVM, SC": {"pred": ["Sad", "Calm"], "scores": {
        "accuracy": 0.5, "correct": 1, "n": 2, "confusion": [[0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0],
                                                             [0, 1, 0, 0]]}},
                         "1D CNN, c, seed ensemble": {"pred": ["Sad", "Sad"]}}}
    classes = ["Angry", "Calm", "Surprised", "Sad"]  # a long name is cut to its column
    text = cl.format_table(result, ["a.wav", "long_name.wav"], ["Sad", "Calm"], classes)
    assert text == "\n".join([
        "clip           true    spec SVM      1D CNN        ",
        "a.wav          Sad     Sad           Sad           ",
        "long_name.wav  Calm    Calm          Sad           ",
        "",
        "spec SVM, SC: accuracy 50.0% (1/2)",
        "  true \\ predicted    Angry    Calm Surpris     Sad",
        "  Angry                  0       0       0       0",
        "  Calm                   0       1       0       0",
        "  Surprised              0       0       0       0",
        "  Sad                    0       1       0       0"])


def test_format_table_without_labels_has_no_truth_column_and_takes_one_clip():
    result = {"models": {"spec SVM, SC": {"pred": ["Sad"]}, "2D CNN, n, seed ensemble": {"pred": ["Calm"]}}}
    assert cl.format_table(result, ["one.wav"], [None], CLASSES) == "\n".join([
        "clip     spec SVM      2D CNN        ",
        "one.wav  Sad           Calm          "])


def test_a_batch_of_one_clip_is_classified(batch):
    _clip(batch / "clips", "Sad", 5, seconds=0.1)
    result = cl.classify(batch / "clips", batch / "p.csv", log=lambda m: None)
    assert result["models"]["spec SVM, SC"]["pred"] == ["Calm"] and len(_rows(batch / "p.csv")) == 3


def test_main_help_names_the_command_its_argument_and_the_default_csv(capsys):
    with pytest.raises(SystemExit) as exit_:
        cl.main(["--help"])
    assert exit_.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert out.startswith("usage: python -m ser.classify [-h] [--out OUT] clips")
    assert " Classify new clips with the models the build trained. " in out
    assert "DIR [--out predictions.csv]" not in out  # the first paragraph of the docstring only
    assert " folder of WAV files, or of class folders of WAV files " in out
    assert " CSV written here (default: predictions_new.csv)" in out


def test_main_writes_predictions_new_csv_by_default(batch, monkeypatch, capsys):
    _labelled(batch / "clips")
    monkeypatch.chdir(batch)
    assert cl.main([str(batch / "clips")]) == 0
    assert len(_rows(batch / "predictions_new.csv")) == 15
    assert "written: predictions_new.csv" in capsys.readouterr().out
