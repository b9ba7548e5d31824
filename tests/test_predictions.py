"""The build's per-clip table (ser/evaluate/predictions.py): build/results/predictions.csv.

One synthetic set of results files (SVMs of two readings and two kinds, an
anchor SVM, two networks with two candidates and two seeds, a combined
model; Test and Confirm), in which every model predicts its own pattern of
classes, so that a row carrying another model's predictions shows.
"""
import csv
import io

import numpy as np
import pytest

from ser.evaluate.predictions import (CSV_FIELDS, anchor_rows, csv_text, fusion_rows, hardest_clips, network_rows,
                                      prediction_rows, svm_rows, write_csv)

CLASSES = ["Sad", "Angry", "Calm"]  # not alphabetical: each score column must follow the results' own order
SPLIT_ACTORS = {"Test": (5, 6), "Confirm": (9, 10)}
CODES = {"Angry": "05", "Calm": "02", "Sad": "04"}


def _keys(split):
    """Two clips per class and speaker: 12 per split, RAVDESS names."""
    return [f"{split}/{c}/03-01-{CODES[c]}-01-0{st}-01-{a:02d}.wav"
            for c in CLASSES for a in SPLIT_ACTORS[split] for st in (1, 2)]


KEYS = {s: _keys(s) for s in SPLIT_ACTORS}
N_CLIPS = len(KEYS["Test"])


def _speaker(key):
    """The speaker a build recorded for a clip: not readable from the name alone."""
    return f"spk{key[-6:-4]}"


SPEAKERS = {s: [_speaker(k) for k in keys] for s, keys in KEYS.items()}


class Patterns:
    """A new random prediction pattern per model and split, never one seen before."""

    def __init__(self):
        self.rng, self.seen = np.random.default_rng(7), set()

    def pred(self):
        while True:
            p = tuple(int(v) for v in self.rng.integers(0, len(CLASSES), N_CLIPS))
            if p not in self.seen:
                self.seen.add(p)
                return list(p)

    def decision(self, pred):
        """One-vs-rest decision values whose largest is the predicted class's."""
        d = self.rng.uniform(-1.5, 0.5, (len(pred), len(CLASSES)))
        d[np.arange(len(pred)), pred] = self.rng.uniform(1.0, 2.5, len(pred))
        return np.round(d, 4).tolist()

    def proba(self, pred):
        """Probabilities (rows sum to 1) whose largest is the predicted class's."""
        p = self.rng.uniform(0.0, 1.0, (len(pred), len(CLASSES)))
        p[np.arange(len(pred)), pred] += 2.0
        return (p / p.sum(1, keepdims=True)).tolist()


def _svm_kinds(pat, kinds):
    out = {}
    for kind in kinds:
        out[kind] = {}
        for m in ("spec", "tuned"):
            pred = {s: pat.pred() for s in KEYS}
            out[kind][m] = {"pred": pred, "decision": {s: pat.decision(p) for s, p in pred.items()}}
    return out


def _net(pat, candidates=("none", "mixup")):
    preds = {}
    for cand in candidates:
        preds[cand] = {}
        for split, keys in KEYS.items():
            order = keys[::-1] if cand == candidates[0] else keys  # a network may list its clips in its own order
            seeds = {s: pat.pred() for s in ("0", "1")}
            proba = {s: pat.proba(p) for s, p in seeds.items()}
            ens = np.mean([proba[s] for s in seeds], axis=0)
            ens_pred = ens.argmax(1).tolist()
            assert tuple(ens_pred) not in {tuple(p) for p in seeds.values()}  # an ensemble pattern of its own
            preds[cand][split] = {
                "keys": order, "speakers": [_speaker(k) for k in order],
                "y_true": [CLASSES.index(k.split("/")[1]) for k in order],
                "pred_per_seed": seeds, "proba_per_seed": proba,
                "ensemble_pred": ens_pred, "ensemble_proba": ens.tolist()}
    return {"classes": CLASSES, "predictions": preds}


@pytest.fixture  # per test, so that mutmut sees every test that reaches the code
def results():
    pat = Patterns()
    svm = {"classes": CLASSES, "keys": KEYS, "speakers": SPEAKERS,
           "readings": {"hz": {"kinds": _svm_kinds(pat, ("SC", "SBW"))},
                        "index": {"kinds": _svm_kinds(pat, ("SC", "SBW"))}}}
    anchors = {"classes": CLASSES, "keys": KEYS, "speakers": SPEAKERS, "kinds": _svm_kinds(pat, ("egemaps",))}
    nets = {"cnn1d": _net(pat), "cnn2d": _net(pat, ("none", "spectrogram")), "wav2vec": None}
    fused = {}
    for name in ("svm+cnn", "all"):
        pred = {s: pat.pred() for s in KEYS}
        fused[name] = {"pred": pred, "proba": {s: pat.proba(p) for s, p in pred.items()}}
    fusion = {"classes": CLASSES, "keys": KEYS, "models": fused}
    return svm, nets, anchors, fusion


def _expected(svm, nets, anchors, fusion):
    """{(model, split): (clip keys, predicted classes, scores, scores kind)} straight from the results files."""
    out = {}
    for reading, r in svm["readings"].items():
        for kind, k in r["kinds"].items():
            for m in ("spec", "tuned"):
                for s, keys in svm["keys"].items():
                    out[(f"svm {m} {kind} ({reading} bands)", s)] = (keys, k[m]["pred"][s], k[m]["decision"][s],
                                                                      "decision")
    for kind, k in anchors["kinds"].items():
        for m in ("spec", "tuned"):
            for s, keys in anchors["keys"].items():
                out[(f"svm {m} {kind}", s)] = (keys, k[m]["pred"][s], k[m]["decision"][s], "decision")
    for name, net in nets.items():
        if net is None:
            continue
        for cand, per_split in net["predictions"].items():
            for s, pr in per_split.items():
                for seed in pr["pred_per_seed"]:
                    out[(f"{name} '{cand}' seed {seed}", s)] = (pr["keys"], pr["pred_per_seed"][seed],
                                                                 pr["proba_per_seed"][seed], "probability")
                out[(f"{name} '{cand}' seed ensemble", s)] = (pr["keys"], pr["ensemble_pred"], pr["ensemble_proba"],
                                                              "probability")
    for name, f in fusion["models"].items():
        for s, keys in fusion["keys"].items():
            out[(f"combined {name}", s)] = (keys, f["pred"][s], f["proba"][s], "probability")
    return out


@pytest.fixture  # per test, so that mutmut sees every test that reaches the code
def table(results):
    """The rows as a reader of predictions.csv gets them back."""
    text = csv_text(prediction_rows(*results))
    return list(csv.DictReader(io.StringIO(text))), text


def _scores(row):
    return np.array([float(row[f"score_{c}"]) for c in CLASSES])


def _family(model):
    if model.startswith("combined "):
        return "combined"
    if model.startswith("svm "):
        return "anchor svm" if "bands)" not in model else "svm"
    return "seed ensemble" if model.endswith("seed ensemble") else "network seed"


def test_every_row_predicts_the_argmax_of_its_own_scores(table):
    rows, _ = table
    assert len(rows) > 0
    for r in rows:
        assert r["predicted_class"] == CLASSES[int(_scores(r).argmax())], (r["model"], r["split"], r["clip"])


def test_every_model_and_split_has_one_row_per_clip_with_that_models_own_predictions(results, table):
    rows, _ = table
    expected = _expected(*results)
    got = {}
    for r in rows:
        got.setdefault((r["model"], r["split"]), {})[r["clip"]] = r
    assert set(got) == set(expected)  # every model of every family, no other; the missing network gives none
    assert len(rows) == sum(len(v[0]) for v in expected.values())
    for (model, split), (keys, pred, scores, kind) in expected.items():
        by_clip = got[(model, split)]
        assert sorted(by_clip) == sorted(keys), (model, split)
        for key, p, sc in zip(keys, pred, scores):
            r = by_clip[key]
            assert r["predicted_class"] == CLASSES[p], (model, split, key)
            np.testing.assert_allclose(_scores(r), sc, atol=1e-12, err_msg=f"{model} {split} {key}")
            assert r["scores_kind"] == kind


def test_every_family_fills_every_column(table):
    rows, text = table
    assert text.splitlines()[0].split(",") == list(CSV_FIELDS) + [f"score_{c}" for c in CLASSES]
    families = {}
    for r in rows:
        families.setdefault(_family(r["model"]), []).append(r)
    assert set(families) == {"svm", "anchor svm", "network seed", "seed ensemble", "combined"}
    for fam, rs in families.items():
        for r in rs:
            assert None not in r, (fam, r)  # no cell beyond the header
            empty = [k for k, v in r.items() if v in ("", None)]
            assert not empty, (fam, r["model"], empty)


@pytest.mark.parametrize("family, kind", [("svm", "decision"), ("anchor svm", "decision"),
                                          ("network seed", "probability"), ("seed ensemble", "probability"),
                                          ("combined", "probability")])
def test_each_family_says_what_its_scores_are(table, family, kind):
    rows = [r for r in table[0] if _family(r["model"]) == family]
    assert rows and {r["scores_kind"] for r in rows} == {kind}
    sums = np.array([_scores(r).sum() for r in rows])
    if kind == "probability":
        np.testing.assert_allclose(sums, 1.0, atol=1e-9)
    else:  # decision values: not probabilities
        assert not np.allclose(sums, 1.0)


def test_truth_speaker_and_correctness_come_from_the_clip(table):
    rows, _ = table
    for r in rows:
        split, cls, name = r["clip"].split("/")
        assert (r["split"], r["true_class"]) == (split, cls)
        assert r["speaker"] == _speaker(name)  # the build's speaker of the clip, for every family
        assert r["correct"] == str(int(r["true_class"] == r["predicted_class"]))
    assert {r["correct"] for r in rows} == {"0", "1"}


def test_each_part_alone_gives_its_own_rows(results):
    svm, nets, anchors, fusion = results
    assert {r["model"] for r in svm_rows(svm)} == {f"svm {m} {k} ({rd} bands)" for m in ("spec", "tuned")
                                                  for k in ("SC", "SBW") for rd in ("hz", "index")}
    assert {r["model"] for r in anchor_rows(anchors)} == {"svm spec egemaps", "svm tuned egemaps"}
    speaker_of = {k: _speaker(k) for keys in KEYS.values() for k in keys}
    assert {r["model"] for r in fusion_rows(fusion, speaker_of)} == {"combined svm+cnn", "combined all"}
    assert {r["model"] for r in network_rows(nets["cnn2d"], "cnn2d")} == {
        f"cnn2d '{c}' {m}" for c in ("none", "spectrogram") for m in ("seed 0", "seed 1", "seed ensemble")}
    only_svm = prediction_rows(svm, {"cnn1d": None})
    assert only_svm == svm_rows(svm)  # no anchors, networks or combined models: their rows are absent


def test_the_csv_file_is_the_csv_text(results, tmp_path):
    rows = prediction_rows(*results)
    write_csv(rows, tmp_path / "p.csv")
    assert (tmp_path / "p.csv").read_text() == csv_text(rows)
    assert csv_text([]) == ",".join(CSV_FIELDS) + "\n"  # no rows: the header alone


# ------------------------------------------------------------------ the hardest clips


def _row(clip, model, true, pred, split="Test", speaker="5"):
    return {"clip": clip, "split": split, "speaker": speaker, "true_class": true, "model": model,
            "predicted_class": pred, "correct": int(true == pred)}


FINAL = ("svm spec SC (hz bands)", "cnn1d 'none' seed ensemble", "combined all", "svm tuned egemaps")


def _hard_rows():
    """In row order: clip e wrong for 4 of 4 final models (Sad); a: 2 of 4 (Sad twice); d: 2 of 4 (Calm, Sad:
    a tie); b: 4 of 4 (Calm 3, Sad 1); c: 0; f, scored by two final models only: 1 of 2. The seeds' rows get
    every clip wrong."""
    wrong = {"e": ["Sad"] * 4, "a": ["Sad", "Sad", None, None], "d": [None, "Calm", "Sad", None],
             "b": ["Calm", "Sad", "Calm", "Calm"], "c": [None] * 4, "f": ["Calm", None]}
    rows = []
    for clip, preds in wrong.items():
        for model, p in zip(FINAL, preds):
            rows.append(_row(clip, model, "Angry", p or "Angry"))
        rows.append(_row(clip, "cnn1d 'none' seed 0", "Angry", "Happy"))
        rows.append(_row(clip, "cnn1d 'none' seed 12", "Angry", "Happy"))
    return rows


def test_hardest_clips_rank_by_share_of_final_models_wrong_ties_in_clip_order():
    out = hardest_clips(_hard_rows(), 10)
    assert [c["clip"] for c in out] == ["e", "b", "a", "d", "f", "c"]  # ties: the order of the rows, not names
    b = out[1]
    assert (b["n_models"], b["n_wrong"], b["share_wrong"], b["taken_for"]) == (4, 4, 1.0, "Calm")
    a = out[2]
    assert (a["n_models"], a["n_wrong"], a["share_wrong"], a["taken_for"]) == (4, 2, 0.5, "Sad")
    f = out[4]
    assert (f["n_models"], f["n_wrong"], f["share_wrong"], f["taken_for"]) == (2, 1, 0.5, "Calm")
    assert out[5]["taken_for"] is None and out[5]["share_wrong"] == 0.0
    assert {c["true_class"] for c in out} == {"Angry"} and b["split"] == "Test" and b["speaker"] == "5"


def test_hardest_clips_keep_n_and_may_count_chosen_models_only():
    rows = _hard_rows()
    assert [c["clip"] for c in hardest_clips(rows, 2)] == ["e", "b"]
    assert [c["clip"] for c in hardest_clips(rows, 1)] == ["e"]
    seeds = hardest_clips(rows, 3, models={"cnn1d 'none' seed 0"})
    assert [(c["clip"], c["n_models"], c["taken_for"]) for c in seeds] == [("e", 1, "Happy"), ("a", 1, "Happy"),
                                                                           ("d", 1, "Happy")]
    two = hardest_clips(rows, 10, models={"combined all", "svm tuned egemaps"})
    assert [(c["clip"], c["n_wrong"]) for c in two] == [("e", 2), ("b", 2), ("d", 1), ("a", 0), ("c", 0)]


def test_a_clip_without_a_known_speaker_has_an_empty_speaker_cell():
    keys = {"Test": ["Test/Sad/take_01.wav", "Test/Angry/03-01-05-01-01-01-05.wav"]}
    kinds = {"SC": {m: {"pred": {"Test": [0, 1]}, "decision": {"Test": [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]}}
                    for m in ("spec", "tuned")}}
    svm = {"classes": CLASSES, "keys": keys, "speakers": {"Test": [None, "05"]}, "readings": {"hz": {"kinds": kinds}}}
    fusion = {"classes": CLASSES, "keys": keys,
              "models": {"all": {"pred": {"Test": [0, 1]}, "proba": {"Test": [[0.8, 0.1, 0.1], [0.1, 0.8, 0.1]]}}}}
    rows = prediction_rows(svm, {}, fusion=fusion)
    assert {(r["clip"].rsplit("/", 1)[1], r["speaker"]) for r in rows} == {("take_01.wav", ""),
                                                                           ("03-01-05-01-01-01-05.wav", "05")}
    assert len(rows) == 6
    back = list(csv.DictReader(io.StringIO(csv_text(rows))))
    assert {(r["clip"].rsplit("/", 1)[1], r["speaker"]) for r in back} == {("take_01.wav", ""),
                                                                           ("03-01-05-01-01-01-05.wav", "05")}


def test_a_table_of_one_row_has_its_score_columns():
    row = {"clip": "Test/Sad/x.wav", "split": "Test", "speaker": "", "true_class": "Sad", "model": "m",
           "predicted_class": "Sad", "correct": 1, "scores_kind": "probability", "score_Sad": 1.0}
    assert csv_text([row]).splitlines() == [",".join(CSV_FIELDS) + ",score_Sad", "Test/Sad/x.wav,Test,,Sad,m,Sad,1,probability,1.0"]


def test_hardest_clips_default_to_ten_and_count_a_final_model_whose_name_ends_in_a_number():
    rows = [_row(f"c{i:02d}", "combined top 3", "Angry", "Sad" if i % 2 else "Angry") for i in range(12)]
    out = hardest_clips(rows)
    assert len(out) == 10 and all(c["n_models"] == 1 for c in out)
    assert [c["clip"] for c in out[:6]] == ["c01", "c03", "c05", "c07", "c09", "c11"]
