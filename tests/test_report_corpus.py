"""The report words itself for any corpus: the speaker word of the card, the
fold scheme of the results, UAR and the majority-class chance when the classes
are unbalanced, and figures and tables that stay readable with many classes,
folds and speakers. Rendered with the real templates on small synthetic
results (no data set, no training)."""
import re
from pathlib import Path

import numpy as np
import pytest

from ser.metrics import scores
from ser.report.render import corpus_facts, describe_folds, report_env, speaker_words

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "report"
EMODB = ["Angry", "Boredom", "Disgust", "Fear", "Happy", "Neutral", "Sad"]
RAVDESS = ["Angry", "Calm", "Happy", "Sad"]


# -- synthetic results -----------------------------------------------------------

def split_card(per_class: dict, speakers: list[str] | None) -> dict:
    n = sum(per_class.values())
    cps = {} if speakers is None else {s: n // len(speakers) + (i < n % len(speakers)) for i, s in enumerate(speakers)}
    return {"n_clips": n, "per_class": per_class, "speakers": speakers or [], "clips_per_speaker": cps,
            "majority_rate": max(per_class.values()) / n, "speakers_known": speakers is not None,
            "sample_rates_hz": [16000], "subtypes": ["PCM_16"], "channels": {"1": n}, "multichannel_clips": [],
            "duration_s": {"min": 1.0, "mean": 2.5, "max": 8.0}, "n_frames": {"min": 66.0, "mean": 166.0, "max": 533.0},
            "shorter_than_200_frames": n // 2}


def card(classes, train, test, *, train_speakers, test_speakers, word="speaker", kind="csv") -> dict:
    """A data-set card (ser/evaluate/card.py) of two splits; ``train``/``test``: clips per class."""
    text = {"csv": "listed in speakers.csv at the data set's root", "recogniser": "read from the RAVDESS file names",
            "none": "not known: validation folds are stratified over clips and are not speaker-independent"}[kind]
    return {"data_dir": "/somewhere/Corpus", "data_name": "Corpus", "fingerprint_sha256": "ab" * 32,
            "classes": classes, "n_clips": sum(train) + sum(test),
            "splits": {"Train": split_card(dict(zip(classes, train)), train_speakers),
                       "Test": split_card(dict(zip(classes, test)), test_speakers)},
            "test_ci95_halfwidth_at_50": 0.07, "leakage": {"shared_speakers": [], "duplicate_audio": [], "clean": True},
            "speaker_source": {"kind": kind, "detail": "RAVDESS" if kind == "recogniser" else "x", "text": text,
                               "word": word}}


EMO_CARD = dict(classes=EMODB, train=[76, 43, 20, 41, 42, 50, 40], test=[51, 38, 26, 28, 29, 29, 22],
                train_speakers=["03", "08", "09", "10", "11", "14"], test_speakers=["12", "13", "15", "16"])
RAV_CARD = dict(classes=RAVDESS, train=[32] * 4, test=[32] * 4, train_speakers=["1", "2", "3", "4"],
                test_speakers=["5", "6", "7", "8"], word="actor", kind="recogniser")


def scheme(kind: str, folds) -> dict:
    return {"leave-one-speaker-out": {"scheme": kind, "speaker_independent": True},
            "stratified group k-fold over speakers": {"scheme": kind, "speaker_independent": True},
            "stratified k-fold over clips": {"scheme": kind, "speaker_independent": False}}[kind] | {
        "n_folds": len(folds), "folds": [str(f) for f in folds]}


RAV_FOLDS = scheme("leave-one-speaker-out", [1, 2, 3, 4])


def svm_results(classes, test_counts, folds: dict) -> dict:
    """svm.json as far as the corpus facts read it: classes, Test keys, the fold scheme."""
    keys = [f"Test/{c}/{c.lower()}{i:03d}.wav" for c, n in zip(classes, test_counts) for i in range(n)]
    kind = {"folds": folds, "cv": folds["scheme"], "spec": {"splits": {}}, "tuned": {"splits": {}}}
    return {"classes": classes, "keys": {"Test": keys}, "readings": {"hz": {"kinds": {"SC": kind}}}}


def validation(folds: dict) -> dict:
    """A network's validation record (ser/models/protocol.py) with two candidates."""
    cands = {name: {"score": 0.5 + 0.01 * i, "epochs": 20, "val_acc_last": 0.48,
                    "per_speaker_at_epochs": {f: 0.3 + 0.01 * j for j, f in enumerate(folds["folds"])}}
             for i, name in enumerate(["plain", "shifted"])}
    return {**folds, "seeds": [0], "max_epochs": 30, "smooth_epochs": 3, "candidates": cands, "chosen": "shifted",
            "runner_up": "plain", "margin": 0.01}


def network_model(classes, test_counts, seeds=(0, 1, 2)) -> dict:
    """One network setting's results on Test (ser/models/protocol.py's evaluate_split, by hand)."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(len(classes)), test_counts)
    per_seed = [{"seed": s, **scores(y, np.where(rng.random(len(y)) < 0.5, y, 0), classes)} for s in seeds]
    acc = [p["accuracy"] for p in per_seed]
    ens = scores(y, np.where(rng.random(len(y)) < 0.6, y, 0), classes)
    return {"seeds": list(seeds), "splits": {"Test": {
        "n": len(y), "per_seed": per_seed, "pooled": ens, "ensemble": ens,
        "summary": {"mean": float(np.mean(acc)), "std": float(np.std(acc, ddof=1)), "mean_ci95": [0.3, 0.6],
                    "per_seed": acc}}}}


def render(template: str, results: dict, **context) -> str:
    """``template`` (a file under report/, or template text) rendered with the report's environment."""
    env = report_env(REPORT, results)
    t = env.get_template(template) if template.endswith(".j2") else env.from_string(template)
    context = {"results": results, "fig": "figures", "meta": {}, "screen": None, **context}
    return re.sub(r"\s+", " ", t.render(**context))


def visible(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html)


def data_section(results: dict) -> str:
    return render("sections/10-data.html.j2", results, r=results["data"])


def macro(call: str, results: dict, **context) -> str:
    return render('{% import "macros.html.j2" as m %}' + call, results, **context)


# -- 1. the speaker word -----------------------------------------------------------

def test_ravdess_says_actor_and_another_corpus_says_speaker():
    rav = {"data": card(**RAV_CARD), "svm": svm_results(RAVDESS, [32] * 4, RAV_FOLDS)}
    emo = {"data": card(**EMO_CARD),
           "svm": svm_results(EMODB, EMO_CARD["test"], scheme("leave-one-speaker-out", EMO_CARD["train_speakers"]))}
    assert speaker_words(rav["data"])["Spks"] == "Actors" and speaker_words(emo["data"])["spk"] == "speaker"

    text = data_section(rav)
    assert "<th>Actors</th>" in text and "leave-one-actor-out over the 4 training actors" in text
    assert "The actors of the clips are read from the RAVDESS file names" in text
    assert "32 for each of the 4 actors" in text and "No actor appears in two splits" in text
    assert "speakers" not in visible(text).replace("Speakers differ", "")  # every other mention is "actors"
    table = macro("{{ m.validation_table(v, 'V.') }}", rav, v=validation(scheme("leave-one-speaker-out", [1, 2, 3, 4])))
    assert "<th>Actor 1 held out</th>" in table and "<th>Actor 4 held out</th>" in table

    text = data_section(emo)
    assert "<th>Speakers</th>" in text and "leave-one-speaker-out over the 6 training speakers" in text
    assert "The speakers of the clips are listed in speakers.csv" in text
    assert "Train 52 for each of the 6 speakers; Test 12&nbsp;(56), 13&nbsp;(56)" in text
    assert "actor" not in visible(text).lower()
    table = macro("{{ m.validation_table(v, 'V.') }}", emo,
                  v=validation(scheme("leave-one-speaker-out", EMO_CARD["train_speakers"])))
    assert "Speaker held out</th>" in table and '<th class="sub">03</th>' in table and "Actor" not in table


def test_many_speakers_are_counted_with_the_range_of_their_clips():
    many = card(EMODB, [41] * 7, [20] * 7, train_speakers=[f"s{i}" for i in range(40)],
                test_speakers=[f"t{i}" for i in range(20)])
    text = data_section({"data": many})
    assert "Train 7–8 (median 7) over 40 speakers" in text
    assert "s17" not in text  # no list of 40 names


# -- 2. the fold scheme ------------------------------------------------------------

def test_a_k_fold_scheme_is_named_with_its_fold_count():
    folds = scheme("stratified group k-fold over speakers", range(1, 6))
    res = {"data": card(EMODB, [40] * 7, [20] * 7, train_speakers=[f"{i:02d}" for i in range(20)],
                        test_speakers=["90", "91"]), "svm": svm_results(EMODB, [20] * 7, folds),
           "cnn1d": {"validation": validation(folds)}}
    text = data_section(res)
    assert "5-fold stratified group cross-validation over 20 training speakers" in text
    assert "leave-one" not in text
    table = macro("{{ m.validation_table(v, 'V.') }}", res, v=validation(folds))
    assert "5 stratified group folds" in table
    assert '<th colspan="5" class="group">fold</th>' in table
    assert [f'<th class="sub">{i}</th>' in table for i in range(1, 6)] == [True] * 5
    assert "held out" not in table


def test_twenty_folds_go_to_a_table_of_their_own():
    folds = scheme("stratified group k-fold over speakers", range(1, 21))
    res = {"data": card(EMODB, [40] * 7, [20] * 7, train_speakers=[f"{i:02d}" for i in range(60)],
                        test_speakers=["90", "91"])}
    table = macro("{{ m.validation_table(v, 'V.') }}", res, v=validation(folds))
    first, second = table.split("</table>")[:2]
    assert "Lowest–highest fold" in first and "fold 20" not in first and "<th>20</th>" not in first
    rows = re.findall(r"<tr><td>(\d+)</td>", second)
    assert rows == [str(i) for i in range(1, 21)]


def test_folds_in_words():
    words = speaker_words(None)
    assert describe_folds(scheme("leave-one-speaker-out", [5, 6]), speaker_words(card(**RAV_CARD)))["labels"] == [
        "Actor 5 held out", "Actor 6 held out"]
    k = describe_folds(scheme("stratified group k-fold over speakers", range(1, 4)), words, 20)
    assert k["labels"] == ["fold 1", "fold 2", "fold 3"] and k["independent"]
    assert k["text"].startswith("3-fold stratified group cross-validation over 20 training speakers")
    clips = describe_folds(scheme("stratified k-fold over clips", range(1, 6)), words)
    assert not clips["independent"] and clips["text"] == "5-fold stratified cross-validation over the training clips"


def test_folds_that_are_not_speaker_independent_are_said_to_overstate():
    folds = scheme("stratified k-fold over clips", range(1, 6))
    res = {"data": card(**{**EMO_CARD, "train_speakers": None, "test_speakers": None, "kind": "none"}),
           "svm": svm_results(EMODB, EMO_CARD["test"], folds)}
    text = data_section(res)
    assert "Validation is not speaker-independent" in text
    assert "clips of one speaker can be on both sides of a fold" in text
    assert "overstates the accuracy to expect on new speakers" in text
    table = macro("{{ m.validation_table(v, 'V.') }}", res, v=validation(folds))
    assert "These folds are not speaker-independent" in table

    group = scheme("stratified group k-fold over speakers", range(1, 6))
    independent = {"data": card(**EMO_CARD), "svm": svm_results(EMODB, EMO_CARD["test"], group)}
    assert "not speaker-independent" not in data_section(independent)


# -- 3. classes and balance ----------------------------------------------------------

def test_seven_unbalanced_classes_show_uar_and_the_majority_rate_as_chance():
    res = {"data": card(**EMO_CARD),
           "svm": svm_results(EMODB, EMO_CARD["test"], scheme("leave-one-speaker-out", EMO_CARD["train_speakers"]))}
    facts = corpus_facts(res)
    assert facts["show_uar"] and facts["unbalanced_splits"] == ["Test"]
    assert facts["splits"]["Test"]["balance"]["chance"] == pytest.approx(51 / 223)
    assert facts["chance_text"] == "chance, the majority class's share of Test (Angry, 22.9%)"

    text = data_section(res)
    assert "in Test the largest class, Angry, holds 22.9% of the clips" in text
    assert "<th>Majority</th>" in text and "unweighted average recall" in text
    model = network_model(EMODB, EMO_CARD["test"])
    table = macro("{{ m.results_table(model, 'Net') }}", res, model=model)
    assert table.count("<th>UAR</th>") == 1
    assert f"{100 * model['splits']['Test']['ensemble']['uar']:.1f}%" in table
    recall = macro("{{ m.recall_table(model, classes, 'the net') }}", res, model=model, classes=EMODB)
    assert "<th>UAR</th>" in recall and all(f"<th>{c}</th>" in recall for c in EMODB)
    assert 'class="data compact"' in recall  # seven classes: the smaller type


def test_balanced_classes_keep_accuracy_alone_and_one_in_n_as_chance():
    res = {"data": card(**RAV_CARD), "svm": svm_results(RAVDESS, [32] * 4, RAV_FOLDS)}
    facts = corpus_facts(res)
    assert not facts["show_uar"] and facts["chance_text"] == "chance (25%)"
    model = network_model(RAVDESS, [32] * 4)
    assert "UAR" not in macro("{{ m.results_table(model, 'Net') }}", res, model=model)
    assert "Every class has the same share of Test (one in 4, 25.0%)" in data_section(res)


def test_seven_classes_fit_the_page():
    """The data section's tables and a recall table of seven classes keep to the A4 text width."""
    from weasyprint import CSS, HTML

    res = {"data": card(**EMO_CARD),
           "svm": svm_results(EMODB, EMO_CARD["test"], scheme("leave-one-speaker-out", EMO_CARD["train_speakers"]))}
    model = network_model(EMODB, EMO_CARD["test"])
    body = data_section(res) + macro("{{ m.recall_table(model, classes, 'the net') }}{{ m.results_table(model, 'N') }}",
                                     res, model=model, classes=EMODB)
    doc = HTML(string=f"<html><body>{body}</body></html>").render(stylesheets=[CSS(filename=str(REPORT / "print.css"))])
    widths = []

    def tables(box):
        if type(box).__name__ == "TableBox":
            widths.append(box.width)
        for child in getattr(box, "children", None) or []:
            tables(child)

    for page in doc.pages:
        tables(page._page_box)
    text_width = doc.pages[0]._page_box.width
    assert len(widths) == 4 and max(widths) <= text_width


# -- 4. figures with many speakers and classes ---------------------------------------

def per_speaker_inputs(n_speakers: int, classes=EMODB):
    """svm and network results as the per-speaker figure reads them, ``n_speakers`` on Test."""
    rng = np.random.default_rng(1)
    speakers = [f"{100 + i}" for i in range(n_speakers)]
    acc = lambda: {s: float(rng.uniform(0.1, 0.9)) for s in speakers}  # noqa: E731
    ev = lambda: {"accuracy": 0.5, "accuracy_ci95": [0.4, 0.6], "per_speaker": acc()}  # noqa: E731
    kinds = {k: {"spec": {"splits": {"Test": ev()}}, "tuned": {"splits": {"Test": ev()}}} for k in ("SC", "SBW", "SBE")}
    keys = [f"Test/{c}/{s}_{i}.wav" for s in speakers for i, c in enumerate(classes)] + [f"Test/{classes[0]}/x.wav"]
    svm = {"classes": classes, "keys": {"Test": keys},
           "readings": {"hz": {"kinds": kinds, "best": "SC", "best_by_cv": "SBE"}}}
    net = {"chosen": "a", "models": {"a": {"splits": {"Test": {
        "per_seed": [0.5, 0.5], "summary": {"mean": 0.5, "mean_ci95": [0.4, 0.6]},
        "ensemble": {"accuracy": 0.5, "accuracy_ci95": [0.4, 0.6]},
        "per_speaker": {"seed_mean": acc(), "ensemble": acc()}}}}}}
    return svm, {"1D CNN": net, "2D CNN": net}


def test_forty_speakers_give_a_distribution_per_approach(tmp_path):
    from ser.report.figures import MAX_SPEAKERS_AS_LINES, compact_per_speaker, majority_rate, per_speaker_figure

    svm, nets = per_speaker_inputs(40)
    assert compact_per_speaker(svm)
    per_speaker_figure(svm, nets, tmp_path / "per_speaker.svg")
    svg = (tmp_path / "per_speaker.svg").read_text()
    assert "Test (40 speakers)" in svg and "accuracy per Test speaker (%)" in svg
    assert "1D CNN, seed ensemble" in svg  # approaches on the y axis, not 40 speakers on the x axis
    assert ">139<" not in svg
    assert majority_rate(svm["keys"]["Test"]) == pytest.approx(41 / 281)

    few, nets = per_speaker_inputs(MAX_SPEAKERS_AS_LINES)
    assert not compact_per_speaker(few)
    per_speaker_figure(few, nets, tmp_path / "lines.svg")
    svg = (tmp_path / "lines.svg").read_text()
    assert "speakers)" not in svg and ">115<" in svg  # one tick per speaker


def test_chance_line_of_unbalanced_classes_is_the_majority_class(tmp_path):
    from ser.report.figures import chance_label, svm_accuracy_figure

    kind = {m: {"splits": {"Test": {"accuracy": 0.4, "accuracy_ci95": [0.3, 0.5]}}} for m in ("spec", "tuned")}
    svm = svm_results(EMODB, EMO_CARD["test"], scheme("leave-one-speaker-out", ["1", "2"]))
    svm["readings"] = {"hz": {"kinds": {"SC": kind}}}
    svm_accuracy_figure(svm, tmp_path / "acc.svg")
    assert "chance (majority class)" in (tmp_path / "acc.svg").read_text()
    assert chance_label(0.25, 4) == "chance" and chance_label(51 / 223, 7) == "chance (majority class)"


def test_confusion_matrices_of_seven_classes_slant_their_names(tmp_path):
    from ser.report.figures import network_confusion_figure

    model = network_model(EMODB, EMO_CARD["test"])
    res = {"classes": EMODB, "chosen": "a", "models": {"a": model}}
    network_confusion_figure(res, tmp_path / "c.svg")
    svg = (tmp_path / "c.svg").read_text()
    assert all(c in svg for c in EMODB) and "rotate(-40" in svg


def test_the_title_page_names_and_credits_the_corpus():
    meta = {"title": "T", "subtitle": "S", "dataset_name": "EmotionSpeech (RAVDESS speech subset)", "data_name": "ES",
            "n_clips": 535, "split_clips": {"Train": 312, "Test": 223}, "classes": EMODB, "fingerprint": "ab",
            "build": {"source": None, "python": "3.11", "packages": {"torch": "2"}}}
    emo = card(**EMO_CARD)
    emo["speaker_source"].update(kind="recogniser", detail="EmoDB", word="speaker")
    page = render("base.html.j2", {"data": emo}, body="", toc=[], meta=meta)
    assert "<th>Data set</th><td>EmoDB: folder" in page and "Burkhardt F" in page and "RAVDESS" not in page
    page = render("base.html.j2", {"data": card(**RAV_CARD)}, body="", toc=[], meta=meta)
    assert "EmotionSpeech (RAVDESS speech subset): folder" in page and "Livingstone SR" in page
