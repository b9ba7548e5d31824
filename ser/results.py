"""One definition of the build's results files: what each holds, who writes it, its version.

Every step of the build writes one JSON file ``build/results/<key>.json``; the
report, the figures, the summary, the combined models and ``ser.classify``
read them. This module is the one place their format is defined:

* :data:`FILES`, the table of results files in build order: the key, the doit
  task that writes it, its schema (a ``TypedDict``) and the schema's version.
  ``dodo.py``'s targets and the report's table of build steps both come from it.
* :func:`save` writes a file through the schema: the object is checked, and
  stamped with ``"schema": "<key>/<version>"``, before the atomic write.
* :func:`load` reads it back through the schema. A file that does not match
  (another version, a missing field, a value of the wrong type) stops with a
  :class:`ResultsError` that names the file and the field, e.g.
  ``build/results/svm.json: field readings.hz.kinds.SBE.spec.cv_mean: missing``,
  instead of an error at render time or a silently empty table.

A schema lists the fields the readers rely on. ``NotRequired`` marks a field
that only some builds have (a split the data set lacks, a model the
configuration leaves out); mappings keyed by data (splits, classes, speakers,
model names) are ``dict[str, X]``. Fields a schema does not list are kept
as they are and not checked: a writer may add a field before a reader needs it.
Raise the version when a field is renamed, removed or changes meaning.
"""

import math
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NotRequired, TypedDict, Union

from ser.errors import SerError
from ser.io import load_json, save_json

STAMP = "schema"
"""The field of every results file that holds ``"<key>/<version>"``."""


class ResultsError(SerError):
    """A results file does not match its schema (names the file and the field)."""


# -- records shared by several files -----------------------------------------

class Scores(TypedDict):
    """One model's predictions on one split, scored (``ser.metrics.scores``)."""

    n: int
    correct: int
    accuracy: float
    accuracy_ci95: list[float]
    uar: float
    recall: dict[str, float]
    confusion: list[list[int]]
    classes: list[str]


class SplitScores(Scores):
    """:class:`Scores` with the accuracy of each speaker of the split."""

    per_speaker: dict[str, Any]


class Folds(TypedDict):
    """How validation folds were made over the training speakers (``ser.data.speakers.speaker_folds``)."""

    scheme: str
    n_folds: int
    speaker_independent: bool
    folds: list[str]


class SvmFit(TypedDict):
    """An SVM's parameters, cross-validation over the folds, and its scores and predictions per split."""

    params: dict[str, Any]
    cv_mean: float
    cv_folds: list[float]
    splits: dict[str, SplitScores]
    pred: dict[str, list[int]]
    decision: dict[str, list[list[float]]]


class SvmKind(TypedDict):
    """One feature set: the spec SVM, the tuned SVM, and the tuned one with and without speaker normalisation."""

    cv: str
    folds: Folds
    spec: SvmFit
    tuned: SvmFit
    tuned_by_norm: dict[str, SvmFit]
    top_candidates: list[dict[str, Any]]
    n_candidates: int


class Onset(TypedDict):
    """The speech-onset detector's settings (``ser.data.audio.speech_onset_s``)."""

    rel_db: float
    margin_s: float
    frame_s: float
    hop_s: float


# -- data set card (data.json) ----------------------------------------------

class Range(TypedDict):
    min: float
    mean: float
    max: float


class CardSplit(TypedDict):
    n_clips: int
    per_class: dict[str, int]
    speakers: list[str]
    clips_per_speaker: dict[str, int]
    majority_rate: float
    speakers_known: bool
    sample_rates_hz: list[int]
    subtypes: list[str]
    channels: dict[str, int]
    multichannel_clips: list[str]
    duration_s: Range
    n_frames: Range
    shorter_than_200_frames: int


class Leakage(TypedDict):
    shared_speakers: list[Any]
    duplicate_audio: list[Any]
    clean: bool


class SpeakerSource(TypedDict):
    kind: str
    detail: str
    text: str
    word: str


class Card(TypedDict):
    """``data.json``: the data set card (``ser.evaluate.card.build_card``)."""

    data_dir: str
    data_name: str
    fingerprint_sha256: str
    classes: list[str]
    n_clips: int
    splits: dict[str, CardSplit]
    test_ci95_halfwidth_at_50: float
    leakage: Leakage
    speaker_source: SpeakerSource
    seconds: float


# -- features, SVMs, anchors ------------------------------------------------

class Features(TypedDict):
    """``features.json``: how the hand-made features were computed."""

    mel: dict[str, Any]
    bands_hz: list[list[float]]
    kinds: list[str]
    readings: list[str]
    n_clips: int
    vector_length: int
    extract_seconds: float
    per_rate: list[dict[str, Any]]
    zero_energy_fraction: dict[str, float]


class SvmReading(TypedDict):
    """The three feature sets of one band reading, and how their rankings compare."""

    kinds: dict[str, SvmKind]
    order_by_test: list[str]
    best: str
    worst: str
    order_by_cv: list[str]


class Svm(TypedDict):
    """``svm.json``: the SVMs of items a and b (``ser.models.svm.run_svms``)."""

    classes: list[str]
    keys: dict[str, list[str]]
    speakers: dict[str, list[str | None]]  # beside keys: each evaluation clip's speaker
    readings: dict[str, SvmReading]
    seconds: float


class AnchorMeta(TypedDict):
    description: str
    package: str
    version: str
    licence: str
    dim: int
    label: str


class Anchors(TypedDict):
    """``anchors.json``: SVMs on the field's anchor features (``ser.features.anchors``)."""

    classes: list[str]
    keys: dict[str, list[str]]
    speakers: dict[str, list[str | None]]
    kinds: dict[str, SvmKind]
    meta: dict[str, AnchorMeta]
    timings_s: dict[str, float]


# -- networks (cnn1d.json, cnn2d.json) ---------------------------------------

class Candidate(TypedDict):
    """One candidate's validation over the training speakers' folds (``ser.models.protocol``)."""

    params: dict[str, Any]
    score: float
    epochs: int
    ensemble_val_acc: list[float] | None  # None with one validation seed
    ensemble_score: float | None
    mean_val_acc: list[float]
    mean_val_loss: list[float]
    smoothed_val_acc: list[float]
    per_fold: list[Any]
    histories: list[Any]


class Validation(TypedDict):
    scheme: str
    n_folds: int
    speaker_independent: bool
    folds: list[str]
    seeds: list[int]
    max_epochs: int
    smooth_epochs: int
    candidates: dict[str, Candidate]
    chosen: str
    runner_up: str | None  # None with one candidate
    margin: float | None
    train_keys: list[str]


class SeedSummary(TypedDict):
    per_seed: list[float]
    mean: float
    std: float


class NetSplit(TypedDict):
    """A network setting's final seeds on one split: each seed, their mean, pooled, the ensemble."""

    n: int
    per_seed: list[Scores]
    summary: SeedSummary
    pooled: Scores
    ensemble: Scores
    per_speaker: dict[str, dict[str, Any]]


class History(TypedDict):
    seed: int
    train_loss: list[float]
    train_acc: list[float]
    seconds: float


class NetModel(TypedDict):
    """One setting trained on all training clips with every final seed."""

    params: dict[str, Any]  # the candidate's settings (empty for the plain one)
    epochs: int
    seeds: list[int]
    states: list[dict[str, Any]]
    train_histories: list[History]
    splits: dict[str, NetSplit]
    checkpoints: list[str]


class NetPredictions(TypedDict):
    keys: list[str]
    speakers: list[str]
    y_true: list[int]
    pred_per_seed: dict[str, list[int]]
    proba_per_seed: dict[str, list[list[float]]]
    ensemble_pred: list[int]
    ensemble_proba: list[list[float]]


class Declared(TypedDict):
    model: str
    val_single: float
    val_ensemble: float | None  # None with one validation seed


class Network(TypedDict):
    """``cnn1d.json`` / ``cnn2d.json``: a network through the shared protocol (``ser.models.protocol``)."""

    classes: list[str]
    validation: Validation
    chosen: str
    declared: Declared
    models: dict[str, NetModel]
    predictions: dict[str, dict[str, NetPredictions]]
    timings_s: dict[str, float]
    runs: dict[str, Any]
    input: dict[str, Any]
    architecture: dict[str, Any]
    training: dict[str, Any]


# -- images, fusion, summary, figures' clips, design study -------------------

class ImageRecord(TypedDict):
    key: str
    split: str
    class_name: str
    label: int
    speaker: str
    path: str
    path_speaker: NotRequired[str]  # with [cnn2d] speaker_norm


class Images(TypedDict):
    """``images.json``: the manifest of the exported spectrogram images (``ser.features.images``)."""

    root: str
    classes: list[str]
    export: dict[str, Any]
    onset: Onset
    seconds: float
    records: list[ImageRecord]


class FusionMember(TypedDict):
    label: str
    calibration: list[str] | None  # None for members whose probabilities are used as they are
    oof_accuracy: float
    splits: dict[str, float]  # the member's accuracy on each split


class FusionModel(TypedDict):
    members: list[str]
    weights: dict[str, float]
    oof_accuracy: float
    equal_weights_oof_accuracy: float
    splits: dict[str, SplitScores]
    pred: dict[str, list[int]]
    proba: dict[str, list[list[float]]]


class Fusion(TypedDict):
    """``fusion.json``: the combined models (``ser.models.fusion.run_fusion``)."""

    classes: list[str]
    keys: dict[str, list[str]]
    calibration: str
    members: dict[str, FusionMember]
    models: dict[str, FusionModel]
    timings_s: dict[str, float]


class Paired(TypedDict):
    """Paired evidence for model b against model a on the same clips (``ser.evaluate.stats.compare_paired``)."""

    n: int
    acc_a: float
    acc_b: float
    diff: float
    ci: list[float]
    level: float
    a_only: int
    b_only: int
    p: float


class SvmVerdict(TypedDict):
    kind: str
    accuracy: float
    accuracy_ci95: list[float]
    strict_accuracy: float
    strict_label: str


class SplitVerdicts(TypedDict):
    """What the report states in words about one split (``ser.evaluate.summary.build_summary``)."""

    svm: SvmVerdict
    cnn1d: NotRequired[dict[str, Any]]
    cnn2d: NotRequired[dict[str, Any]]
    combined_task: NotRequired[dict[str, Any]]
    combined_all: NotRequired[dict[str, Any]]
    augmentation: NotRequired[dict[str, Any]]


class HardClip(TypedDict):
    clip: str
    split: str
    speaker: str | int | None
    true_class: str
    n_models: int
    n_wrong: int
    share_wrong: float
    taken_for: str


class PredictionsFile(TypedDict):
    file: str
    n_rows: int
    n_models: int


class Summary(TypedDict):
    """``summary.json``: the comparisons and verdicts the report states in words."""

    eval_splits: list[str]
    splits: dict[str, SplitVerdicts]
    paired: dict[str, dict[str, Paired]]
    by_factor: dict[str, dict[str, Any]] | None  # None when clip names carry no factors
    augmentation_paired: dict[str, dict[str, Paired]]
    hardest_clips: list[HardClip]
    predictions: PredictionsFile


class MelExamples(TypedDict):
    """``mel_examples.json``: the clips drawn in the mel-spectrogram figure."""

    clips: list[str]


class DesignRow(TypedDict):
    name: str
    description: str
    runs: int
    n_seeds: int
    epochs: int
    acc: float
    std: float
    margin: float
    paired_se: float
    per_fold: dict[str, float]


class Design(TypedDict):
    """``design.json``: the design study's tables (``bench/design_study.py``)."""

    tables: dict[str, list[DesignRow]]
    folds: list[Any]
    source: str


# -- the table of results files ---------------------------------------------

@dataclass(frozen=True)
class ResultsFile:
    """A results file: ``build/results/<key>.json``, written by doit task ``task``."""

    key: str
    task: str
    schema: type
    version: int

    @property
    def name(self) -> str:
        return f"{self.key}.json"

    @property
    def stamp(self) -> str:
        return f"{self.key}/{self.version}"


FILES: dict[str, ResultsFile] = {f.key: f for f in (
    ResultsFile("data", "card", Card, 1),
    ResultsFile("features", "features", Features, 1),
    ResultsFile("svm", "svm", Svm, 2),
    ResultsFile("anchors", "anchors", Anchors, 2),
    ResultsFile("images", "images", Images, 1),
    ResultsFile("cnn1d", "cnn1d", Network, 2),
    ResultsFile("cnn2d", "cnn2d", Network, 2),
    ResultsFile("fusion", "fusion", Fusion, 1),
    ResultsFile("design", "design", Design, 1),
    ResultsFile("summary", "summary", Summary, 1),
    ResultsFile("mel_examples", "figures:mel_examples", MelExamples, 1),
)}
"""Every results file of the build, in build order."""


# -- checking ------------------------------------------------------------------

def problems(value, schema, where: str = "") -> list[str]:
    """Every mismatch of ``value`` against ``schema`` (a TypedDict or type
    expression), as ``"field a.b[3].c: what is wrong"``; empty when it matches."""
    found: list[str] = []
    _check(value, schema, where, found)
    return found


def _field(where: str) -> str:
    return f"field {where}" if where else "the file"


def _check(value, schema, where: str, found: list[str]) -> None:
    if schema is Any:
        return
    origin = typing.get_origin(schema)
    if typing.is_typeddict(schema):
        _check_typeddict(value, schema, where, found)
    elif origin in (Union, types.UnionType):
        options = typing.get_args(schema)
        if not any(not problems(value, o, where) for o in options):
            found.append(f"{_field(where)}: expected {_name(schema)}, got {_got(value)}")
    elif origin is dict:
        if not isinstance(value, dict):
            found.append(f"{_field(where)}: expected a mapping, got {_got(value)}")
            return
        _, item = typing.get_args(schema)
        for k, v in value.items():
            _check(v, item, f"{where}.{k}" if where else str(k), found)
    elif origin is list:
        if not isinstance(value, list):
            found.append(f"{_field(where)}: expected a list, got {_got(value)}")
            return
        (item,) = typing.get_args(schema)
        for i, v in enumerate(value):
            _check(v, item, f"{where}[{i}]", found)
    elif schema is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            found.append(f"{_field(where)}: expected a number, got {_got(value)}")
    elif schema is int:
        if isinstance(value, bool) or not isinstance(value, int):
            found.append(f"{_field(where)}: expected a whole number, got {_got(value)}")
    elif schema is type(None):
        if value is not None:
            found.append(f"{_field(where)}: expected null, got {_got(value)}")
    elif not isinstance(value, schema):
        found.append(f"{_field(where)}: expected {_name(schema)}, got {_got(value)}")


def _check_typeddict(value, schema, where: str, found: list[str]) -> None:
    if not isinstance(value, dict):
        found.append(f"{_field(where)}: expected a mapping ({schema.__name__}), got {_got(value)}")
        return
    hints = typing.get_type_hints(schema)
    for name, hint in hints.items():
        sub = f"{where}.{name}" if where else name
        if name not in value:
            if name in schema.__required_keys__:
                found.append(f"{_field(sub)}: missing")
            continue
        if typing.get_origin(hint) is NotRequired:
            (hint,) = typing.get_args(hint)
        _check(value[name], hint, sub, found)


def _name(schema) -> str:
    return getattr(schema, "__name__", None) or str(schema).replace("typing.", "")


def _got(value) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    text = repr(value)
    return f"{type(value).__name__} {text[:40] + '…' if len(text) > 40 else text}"


def check(key: str, obj: dict, path: str | Path) -> dict:
    """``obj`` if it matches the schema of results file ``key``; else a
    :class:`ResultsError` naming ``path`` and the first fields that do not."""
    spec = FILES[key]
    bad = problems(obj, spec.schema)
    if bad:
        more = f" (and {len(bad) - 3} more)" if len(bad) > 3 else ""
        raise ResultsError(f"{path}: does not match the {key} results schema, version {spec.version}: "
                           + "; ".join(bad[:3]) + more)
    return obj


def save(key: str, path: str | Path, obj: dict) -> None:
    """Check ``obj`` against results file ``key``'s schema, stamp it with the
    schema's version, and write it atomically to ``path``."""
    stamped = {STAMP: FILES[key].stamp, **{k: v for k, v in obj.items() if k != STAMP}}
    check(key, stamped, path)
    save_json(path, stamped)


def load(key: str, path: str | Path) -> dict:
    """Results file ``key`` read from ``path`` and checked against its schema:
    a file of another version, or one that does not match, stops here."""
    obj = load_json(path)
    stamp = obj.get(STAMP) if isinstance(obj, dict) else None
    if stamp != FILES[key].stamp:
        found = f"'{stamp}'" if stamp else "no schema version"
        raise ResultsError(f"{path}: field {STAMP}: expected '{FILES[key].stamp}', found {found} "
                           "(written by another version of the build: run doit again)")
    return check(key, obj, path)


def load_dir(results_dir: str | Path) -> dict[str, dict]:
    """Every ``<key>.json`` of ``results_dir``: the build's files through
    :func:`load`, any other (a section a user added) as plain JSON."""
    out = {}
    for p in sorted(Path(results_dir).glob("*.json")):
        key = p.name[: -len(".json")]
        out[key] = load(key, p) if key in FILES else load_json(p)
    return out
