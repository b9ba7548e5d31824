"""Per-clip predictions of every final model, as one table.

:func:`prediction_rows` flattens the results files (every SVM, every network
seed and seed ensemble) into one row per clip and model; :func:`write_csv`
writes them as ``build/results/predictions.csv``; :func:`hardest_clips` finds
the clips that most models get wrong, for the report.
"""
from __future__ import annotations

import csv
import io
from collections import Counter

CSV_FIELDS = ("clip", "split", "speaker", "true_class", "model", "predicted_class", "correct", "scores_kind")


def _row(key, split, speaker, classes, y_true, model, y_pred, values, kind) -> dict:
    row = {"clip": key, "split": split, "speaker": "" if speaker is None else speaker, "true_class": classes[y_true],
           "model": model, "predicted_class": classes[y_pred], "correct": int(y_true == y_pred), "scores_kind": kind}
    row.update({f"score_{c}": v for c, v in zip(classes, values)})
    return row


def _svm_kind_rows(res: dict, kinds: dict, name) -> list[dict]:
    """Rows of SVM results (``svm.json`` or ``anchors.json``: ``keys`` and
    ``speakers`` per split) for each kind of ``kinds``, spec and tuned."""
    classes, rows = res["classes"], []
    for kind, k in kinds.items():
        for m in ("spec", "tuned"):
            for split, keys in res["keys"].items():
                for key, speaker, t, p, d in zip(keys, res["speakers"][split], _labels(keys, classes),
                                                 k[m]["pred"][split], k[m]["decision"][split]):
                    rows.append(_row(key, split, speaker, classes, t, name(m, kind), p, d, "decision"))
    return rows


def svm_rows(svm: dict) -> list[dict]:
    """One row per clip per SVM (reading, feature kind, spec or tuned); scores
    are the SVC's one-vs-rest decision values."""
    rows = []
    for reading, r in svm["readings"].items():
        rows += _svm_kind_rows(svm, r["kinds"], lambda m, kind, rd=reading: f"svm {m} {kind} ({rd} bands)")
    return rows


def anchor_rows(anchors: dict) -> list[dict]:
    """One row per clip per anchor SVM (spec or tuned); decision values."""
    return _svm_kind_rows(anchors, anchors["kinds"], lambda m, kind: f"svm {m} {kind}")


def fusion_rows(fusion: dict, speaker_of: dict[str, str | None]) -> list[dict]:
    """One row per clip per combined model; scores are the fused probabilities;
    ``speaker_of`` maps each clip key to its speaker (the SVMs' ``speakers``)."""
    classes, rows = fusion["classes"], []
    for name, r in fusion["models"].items():
        for split, keys in fusion["keys"].items():
            for key, t, p, v in zip(keys, _labels(keys, classes), r["pred"][split], r["proba"][split]):
                rows.append(_row(key, split, speaker_of[key], classes, t, f"combined {name}", p, v, "probability"))
    return rows


def network_rows(net: dict, name: str) -> list[dict]:
    """One row per clip per network model: each seed, and the seed ensemble;
    scores are softmax probabilities."""
    classes, rows = net["classes"], []
    for cand, per_split in net["predictions"].items():
        for split, pr in per_split.items():
            models = [(f"{name} '{cand}' seed {s}", pr["pred_per_seed"][s], pr["proba_per_seed"][s])
                      for s in pr["pred_per_seed"]]
            models.append((f"{name} '{cand}' seed ensemble", pr["ensemble_pred"], pr["ensemble_proba"]))
            for model, preds, probas in models:
                for key, speaker, t, p, v in zip(pr["keys"], pr["speakers"], pr["y_true"], preds, probas):
                    rows.append(_row(key, split, speaker, classes, t, model, p, v, "probability"))
    return rows


def _labels(keys, classes) -> list[int]:
    return [classes.index(k.split("/")[1]) for k in keys]


def prediction_rows(svm: dict, nets: dict[str, dict | None], anchors: dict | None = None,
                    fusion: dict | None = None) -> list[dict]:
    rows = svm_rows(svm)
    if anchors is not None:
        rows += anchor_rows(anchors)
    for name, net in nets.items():
        if net is not None:
            rows += network_rows(net, name)
    if fusion is not None:
        rows += fusion_rows(fusion, {k: a for s, keys in svm["keys"].items()
                                     for k, a in zip(keys, svm["speakers"][s])})
    return rows


def csv_text(rows: list[dict]) -> str:
    """The rows as CSV text: fixed columns, then one score column per class."""
    extra = [k for k in rows[0] if k.startswith("score_")] if rows else []
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(CSV_FIELDS) + extra, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def write_csv(rows: list[dict], path) -> None:
    from ser.io import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(csv_text(rows))


def hardest_clips(rows: list[dict], n: int = 10, *, models: set[str] | None = None) -> list[dict]:
    """The ``n`` clips that the most models get wrong (ties: clip order), with
    the class they are most often taken for.

    ``models`` restricts the count to those model names (default: the final
    models a reader compares: every SVM and every seed ensemble).
    """
    keep = models or {r["model"] for r in rows if not r["model"].split(" seed ")[-1].isdigit()}
    per_clip: dict[str, dict] = {}
    for r in rows:
        if r["model"] not in keep:
            continue
        c = per_clip.setdefault(r["clip"], {"clip": r["clip"], "split": r["split"], "speaker": r["speaker"],
                                            "true_class": r["true_class"], "n_models": 0, "wrong": Counter()})
        c["n_models"] += 1
        if not r["correct"]:
            c["wrong"][r["predicted_class"]] += 1
    out = []
    for c in per_clip.values():
        n_wrong = sum(c["wrong"].values())
        out.append({**{k: c[k] for k in ("clip", "split", "speaker", "true_class", "n_models")},
                    "n_wrong": n_wrong, "share_wrong": n_wrong / c["n_models"],
                    "taken_for": c["wrong"].most_common(1)[0][0] if n_wrong else None})
    out.sort(key=lambda c: -c["share_wrong"])  # stable: clip order on ties
    return out[:n]
