"""Speakers: who speaks in each clip, the folds that keep them apart, and
speaker normalisation.

**Who speaks.** Every clip has a speaker, found in this order
(:func:`resolve_speakers`):

1. ``speakers.csv`` at the data set's root, columns ``path,speaker`` with
   ``path`` relative to the root (``Train/Angry/x.wav``);
2. ``[data] speaker_pattern`` in the configuration: a regular expression with
   a named group ``speaker``, matched against the file name;
3. a built-in recogniser (RAVDESS, CREMA-D, EmoDB), used when every file
   name of the data set matches it.

``speaker_pattern = "none"`` is the explicit opt-in to a data set without
speakers: validation folds are then stratified over clips, not speakers, and
the report says so. Otherwise a clip without a speaker stops the build.

**Folds** (:func:`speaker_folds`): leave one speaker out up to
``max_loso_speakers`` training speakers, ``StratifiedGroupKFold`` above that.
The SVM grid search and the networks' validation use the same folds.

**Speaker normalisation** (:func:`speaker_zscore`): each speaker's inputs
standardised by that speaker's own clips. Speaker shift dominates small
emotional-speech corpora: the same model scores from chance to 70 % across
held-out speakers. Taking each speaker's own average off their features
removes much of that shift. The statistics are computed from a speaker's
clips alone, never from labels, and the same rule applies to every speaker: a
training speaker, the speaker held out in a validation fold, and an
evaluation speaker. Because a speaker's statistics read only that speaker's
clips, the normalised inputs can be computed once, before any fold is made,
without leaking anything across speakers.

It is transductive: an evaluation speaker's unlabelled audio is read before
their clips are classified. It assumes that each speaker's clips cover the
classes roughly evenly (as in RAVDESS); a speaker recorded in one emotion
only has that emotion taken off as if it were their voice.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ser.errors import ConfigError, DataError

SPEAKERS_CSV = "speakers.csv"
NO_SPEAKERS = "none"
"""``speaker_pattern`` value that opts in to clip-level (not speaker-independent) folds."""

RECOGNISERS: dict[str, re.Pattern] = {
    # 03-01-EE-II-SS-RR-AA.wav: the actor AA, written without zero padding ("1" .. "24")
    "RAVDESS": re.compile(r"^\d\d-\d\d-\d\d-\d\d-\d\d-\d\d-(?P<speaker>\d\d)\.wav$", re.IGNORECASE),
    # 1001_DFA_ANG_XX.wav: the speaker 1001
    "CREMA-D": re.compile(r"^(?P<speaker>\d{4})_[A-Z]{3}_[A-Z]{3}_[A-Z]{2}\.wav$", re.IGNORECASE),
    # 03a01Fa.wav: speaker 03, text a01, emotion F, version a
    "EmoDB": re.compile(r"^(?P<speaker>\d\d)[a-z]\d\d[A-Z][a-z]\.wav$"),
}
HOW_TO_DECLARE = (f"declare speakers with a {SPEAKERS_CSV} at the data root (columns path,speaker), "
                  "[data] speaker_pattern in the configuration (a regular expression with a group (?P<speaker>...) "
                  "matched against the file name), or file names of RAVDESS, CREMA-D or EmoDB; "
                  f'speaker_pattern = "{NO_SPEAKERS}" opts in to folds that are not speaker-independent')


@dataclass(frozen=True)
class SpeakerSource:
    """How the speakers of a data set were found."""

    kind: str  # "csv", "pattern", "recogniser" or "none"
    detail: str  # the CSV's path, the pattern, the recogniser's corpus, or ""

    @property
    def word(self) -> str:
        """What the report calls a speaker: "actor" for RAVDESS, "speaker" otherwise."""
        return "actor" if self.kind == "recogniser" and self.detail == "RAVDESS" else "speaker"

    def describe(self) -> str:
        if self.kind == "csv":
            return f"listed in {SPEAKERS_CSV} at the data set's root"
        if self.kind == "pattern":
            return f"read from each file name by the pattern {self.detail}"
        if self.kind == "recogniser":
            return f"read from the {self.detail} file names"
        return "not known: validation folds are stratified over clips and are not speaker-independent"


def speaker_order(speaker: str):
    """Sort key: numeric speakers by their number ("2" before "10"), then the rest as text."""
    s = str(speaker)
    return (0, int(s), s) if s.isdigit() else (1, 0, s)


def _clean(value: str) -> str:
    """A speaker as written, with a RAVDESS-style number's zero padding kept
    (only :data:`RECOGNISERS` RAVDESS drops it, to match its actor numbers)."""
    return str(value).strip()


def read_speakers_csv(path: Path) -> dict[str, str]:
    """``{relative path: speaker}`` from a ``path,speaker`` CSV; errors name the file and the row."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    if not rows or [h.strip().lower() for h in rows[0][:2]] != ["path", "speaker"]:
        raise DataError(f"{path}: the first row must be the header path,speaker")
    out = {}
    for i, row in enumerate(rows[1:], start=2):
        if not row or not any(c.strip() for c in row):
            continue
        if len(row) < 2 or not row[0].strip() or not row[1].strip():
            raise DataError(f"{path}, row {i}: expected a path and a speaker, got {row}")
        rel = row[0].strip().replace("\\", "/")
        rel = rel[2:] if rel.startswith("./") else rel
        if rel in out and out[rel] != row[1].strip():
            raise DataError(f"{path}, row {i}: {rel} is listed twice with different speakers")
        out[rel] = _clean(row[1])
    return out


def _compile_pattern(pattern: str) -> re.Pattern:
    try:
        rx = re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"[data] speaker_pattern {pattern!r}: not a regular expression ({exc})") from None
    if "speaker" not in rx.groupindex:
        raise ConfigError(f"[data] speaker_pattern {pattern!r}: needs a named group (?P<speaker>...)")
    return rx


def _from_name(rx: re.Pattern, name: str, corpus: str = "") -> str | None:
    m = rx.match(name) if corpus else rx.search(name)
    if not m or not m.group("speaker"):
        return None
    s = m.group("speaker")
    return str(int(s)) if corpus == "RAVDESS" else _clean(s)


def _declared(root: Path, rel_paths: list[str], pattern: str):
    """The speakers a data set declares: a ``speakers.csv`` at ``root``, else
    ``pattern`` (or the opt-out ``"none"``). Returns ``(speakers, source,
    why)``, ``why`` saying what a clip without a speaker lacks (None for the
    opt-out), or None when nothing is declared (the names are read then)."""
    csv_path = root / SPEAKERS_CSV
    if csv_path.is_file():
        table = read_speakers_csv(csv_path)
        return [table.get(p) for p in rel_paths], SpeakerSource("csv", str(csv_path)), f"not listed in {csv_path}"
    if pattern.strip().lower() == NO_SPEAKERS:
        return [None] * len(rel_paths), SpeakerSource("none", ""), None
    if pattern:
        rx = _compile_pattern(pattern)
        return ([_from_name(rx, p.rsplit("/", 1)[-1]) for p in rel_paths], SpeakerSource("pattern", pattern),
                f"its name does not match [data] speaker_pattern {pattern!r}")
    return None


def resolve_speakers(root: str | Path, rel_paths: Sequence[str], pattern: str = "") -> tuple[list[str | None], SpeakerSource]:
    """The speaker of every clip (``rel_paths``: paths relative to ``root``,
    with forward slashes) and how they were found (see the module's text).

    Raises :class:`~ser.errors.DataError` naming a clip without a speaker
    (and the three ways to declare them), and
    :class:`~ser.errors.ConfigError` for a pattern that is not a regular
    expression with a ``speaker`` group.
    """
    root = Path(root)
    rel_paths = [str(p).replace("\\", "/") for p in rel_paths]
    declared = _declared(root, rel_paths, pattern)
    if declared is not None:
        out, source, why = declared
        if why is not None:
            _check_all(out, rel_paths, root, why)
        return out, source
    names = [p.rsplit("/", 1)[-1] for p in rel_paths]
    for corpus, rx in RECOGNISERS.items():
        out = [_from_name(rx, n, corpus) for n in names]
        if names and all(s is not None for s in out):
            return out, SpeakerSource("recogniser", corpus)
    first = rel_paths[0] if rel_paths else "(no clips)"
    raise DataError(f"{root / first}: no speaker known for this clip (no {SPEAKERS_CSV}, no [data] speaker_pattern, "
                    f"and the file names are not all of one known corpus); {HOW_TO_DECLARE}")


def speakers_if_known(root: str | Path, rel_paths: Sequence[str], pattern: str = "") -> list[str | None]:
    """The speaker of each clip where one is declared, else None: the same
    sources as :func:`resolve_speakers` (``speakers.csv`` at ``root``, then
    ``pattern``), else each file name read by any known corpus's recogniser,
    for clips that need not all have one (new clips to classify)."""
    rel_paths = [str(p).replace("\\", "/") for p in rel_paths]
    declared = _declared(Path(root), rel_paths, pattern)
    if declared is not None:
        return declared[0]
    return [next((s for corpus, rx in RECOGNISERS.items() if (s := _from_name(rx, p.rsplit("/", 1)[-1], corpus))
                  is not None), None) for p in rel_paths]


def _check_all(speakers, rel_paths, root, why: str) -> None:
    missing = [p for p, s in zip(rel_paths, speakers) if s is None]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise DataError(f"{Path(root) / missing[0]}: no speaker known for this clip: {why}{more}; {HOW_TO_DECLARE}")


FOLD_DEFAULTS = {"max_loso": 8, "k": 5, "seed": 0}
""":func:`ser.data.speakers.speaker_folds`'s options when a caller gives none ([data] of the configuration)."""


def fold_options(cfg) -> dict:
    """:func:`ser.data.speakers.speaker_folds`'s options from a :class:`ser.config.Config`."""
    return {"max_loso": cfg.data.max_loso_speakers, "k": cfg.data.k_folds, "seed": cfg.seed}


def per_speaker(y_true, y_pred, speakers) -> dict[str, float]:
    """Accuracy per speaker (keys are the speakers as text, for JSON), in
    :func:`ser.data.speakers.speaker_order`; clips without a speaker are left out."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    speakers = np.asarray([None if a is None else str(a) for a in speakers], dtype=object)
    return {a: float((y_pred[speakers == a] == y_true[speakers == a]).mean())
            for a in sorted({a for a in speakers.tolist() if a is not None}, key=speaker_order)}


def speaker_folds(groups: Sequence | None, y: Sequence[int], *, max_loso: int, k: int,
                  seed: int = 0) -> tuple[list[tuple[str, np.ndarray, np.ndarray]], dict]:
    """Validation folds over the training clips and their scheme.

    ``groups``: each training clip's speaker, or None when the data set has
    no speakers (``speaker_pattern = "none"``). Leave one speaker out with up
    to ``max_loso`` speakers (folds named by their speaker, in
    :func:`speaker_order`); above that ``StratifiedGroupKFold(k)`` (folds
    "1" .. "k"); without speakers ``StratifiedKFold(k)``, which is not
    speaker-independent. Returns ``[(name, train_idx, val_idx), ...]`` and
    ``{"scheme", "n_folds", "speaker_independent", "folds"}``.
    """
    from sklearn.model_selection import LeaveOneGroupOut, StratifiedGroupKFold, StratifiedKFold

    y = np.asarray(y)
    if groups is None:
        if k < 2:
            raise ConfigError(f"[data] k_folds = {k}: need at least 2 folds")
        counts = np.bincount(y)
        if counts[counts > 0].min() < k:
            raise DataError(f"stratified {k}-fold validation needs at least {k} training clips per class, "
                            f"the smallest class has {counts[counts > 0].min()}")
        splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        folds = [(str(i + 1), tr, va) for i, (tr, va) in enumerate(splitter.split(np.zeros(len(y)), y))]
        scheme = "stratified k-fold over clips"
        independent = False
    else:
        groups = np.asarray([str(g) for g in groups], dtype=object)
        speakers = sorted(set(groups.tolist()), key=speaker_order)
        if len(speakers) < 2:
            raise DataError(f"validation needs at least 2 training speakers, found {len(speakers)} ({speakers})")
        if len(speakers) <= max_loso:
            folds = []
            for s in speakers:
                va = np.flatnonzero(groups == s)
                folds.append((s, np.flatnonzero(groups != s), va))
            scheme = "leave-one-speaker-out"
        else:
            if k < 2:
                raise ConfigError(f"[data] k_folds = {k}: need at least 2 folds")
            splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
            folds = [(str(i + 1), tr, va) for i, (tr, va) in
                     enumerate(splitter.split(np.zeros(len(y)), y, groups=groups))]
            scheme = "stratified group k-fold over speakers"
        independent = True
    return folds, {"scheme": scheme, "n_folds": len(folds), "speaker_independent": independent,
                   "folds": [f[0] for f in folds]}


STD_FLOOR = 1e-8
"""Smallest standard deviation divided by: a column constant within a speaker becomes 0."""


def speaker_keys(splits: Sequence[str], speakers: Sequence[str | None], keys: Sequence[str] | None = None) -> np.ndarray:
    """One speaker identifier per clip: ``"<split>/<speaker>"``.

    A speaker is taken per split, so that no statistic ever mixes splits.
    A clip without a speaker (``None`` or empty) is a
    :class:`~ser.errors.DataError` naming the clip (``keys``) when known:
    speaker normalisation cannot guess a speaker.
    """
    out = []
    for i, (s, a) in enumerate(zip(splits, speakers)):
        if a is None or str(a) == "":
            who = keys[i] if keys is not None else f"clip {i} of split {s}"
            raise DataError(f"{who}: no speaker known for this clip; speaker normalisation needs one")
        out.append(f"{s}/{a}")
    return np.array(out)


def speaker_zscore(X: np.ndarray, speakers: Sequence, *, rows: np.ndarray | None = None) -> np.ndarray:
    """Every clip's features minus its speaker's mean, over its speaker's
    standard deviation, per column.

    Parameters
    ----------
    X : np.ndarray [shape=(n_clips, n_features)]
    speakers : sequence [shape=(n_clips,)]
        The speaker of each row (any hashable value).
    rows : np.ndarray of bool [shape=(n_clips,)], optional
        The rows a speaker's statistics are computed from (default: all of
        that speaker's rows). Every row of the speaker is normalised by them.
        Used to show what happens when a speaker's clips do not cover the
        classes.

    Returns
    -------
    np.ndarray [shape=(n_clips, n_features), dtype=float64]
    """
    X = np.asarray(X, dtype=np.float64)
    speakers = np.asarray(speakers)
    if X.ndim != 2 or len(speakers) != len(X):
        raise ValueError(f"X must be 2-D with one speaker per row, got {X.shape} and {len(speakers)} speakers")
    use = np.ones(len(X), bool) if rows is None else np.asarray(rows, bool)
    out = np.empty_like(X)
    for s in np.unique(speakers):
        mine = speakers == s
        ref = X[mine & use]
        if len(ref) == 0:
            raise ValueError(f"speaker {s}: no rows to compute the statistics from")
        mean, std = ref.mean(axis=0), ref.std(axis=0)
        out[mine] = (X[mine] - mean) / np.maximum(std, STD_FLOOR)
    return out
