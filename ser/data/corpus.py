"""Build the EmotionSpeech layout from a copy of an emotional speech corpus (`doit data`).

Each corpus is known by how it names its files (the folders around them do
not matter: the files are found at any depth of a folder or a zip):

``ravdess``
    ``MM-VV-EE-II-SS-RR-AA.wav``: modality (03 audio only), vocal channel
    (01 speech), emotion, intensity, statement, repetition, actor. Only the
    speech audio-only files (03-01) are taken. The speaker is the actor,
    written without zero padding ("1", "12").
``emodb``
    Berlin EmoDB, ``SSTTTEV.wav`` as in ``03a01Fa.wav``: speaker ("03"), text
    code ("a01"), emotion letter ("F", German: Freude), version letter.
``cremad``
    CREMA-D, ``SSSS_TTT_EEE_LL.wav`` as in ``1001_DFA_ANG_XX.wav``: speaker
    ("1001"), sentence, emotion, level.

The emotion code of a file gives its class folder through the corpus' mapping
in :class:`ser.config.DataConfig` (``ravdess_emotions``, ``emodb_emotions``,
``cremad_emotions``); files of other emotions are skipped and counted. Speakers
are chosen per split with lists such as ``03,08-11`` and compared as integers,
so ``8`` and ``08`` name the same EmoDB speaker. Beside the layout,
``speakers.csv`` gives each copied clip's speaker as the corpus writes it.
"""
from __future__ import annotations

import csv
import re
import shutil
import sys
import tempfile
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ser.errors import ConfigError, DataError
from ser.io import atomic_dir

SPLITS = ("Train", "Test", "Confirm")
SPEAKERS_CSV = "speakers.csv"


@dataclass(frozen=True)
class Corpus:
    """How one corpus names its files."""

    name: str
    title: str
    example: str  # a file name, for messages
    pattern: re.Pattern  # matched against the file's base name
    # match -> (speaker as the corpus writes it, emotion code), or a reason to skip the file
    read: Callable[[re.Match], tuple[str, str] | str]
    emotions_field: str  # the DataConfig field mapping its emotion codes to class folders

    def emotions(self) -> dict[str, str]:
        from ser.config import CONFIG

        return dict(getattr(CONFIG.data, self.emotions_field))


def _ravdess(m: re.Match) -> tuple[str, str] | str:
    modality, channel, emotion, _intensity, _statement, _repetition, actor = m.groups()
    if (modality, channel) != ("03", "01"):
        return "not speech audio-only (03-01)"
    return str(int(actor)), emotion


def _emodb(m: re.Match) -> tuple[str, str]:
    speaker, _text, emotion, _version = m.groups()
    return speaker, emotion.upper()


def _cremad(m: re.Match) -> tuple[str, str]:
    speaker, _sentence, emotion, _level = m.groups()
    return speaker, emotion.upper()


CORPORA: dict[str, Corpus] = {c.name: c for c in (
    Corpus("ravdess", "RAVDESS", "03-01-05-01-01-01-12.wav",
           re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)\.wav$", re.IGNORECASE),
           _ravdess, "ravdess_emotions"),
    Corpus("emodb", "EmoDB", "03a01Fa.wav",
           re.compile(r"^(\d\d)([a-z]\d\d)([a-z])([a-z])\.wav$", re.IGNORECASE),
           _emodb, "emodb_emotions"),
    Corpus("cremad", "CREMA-D", "1001_DFA_ANG_XX.wav",
           re.compile(r"^(\d{4})_([a-z]{3})_([a-z]{3})_([a-z]{1,2})\.wav$", re.IGNORECASE),
           _cremad, "cremad_emotions"),
)}


def get_corpus(name: str) -> Corpus:
    try:
        return CORPORA[str(name).strip().lower()]
    except KeyError:
        raise ConfigError(f"corpus {name!r}: unknown (known: {', '.join(CORPORA)})") from None


def parse_speakers(text: str | int | tuple | list) -> tuple[int, ...]:
    """'03,08-11' or '1-4' (or a sequence of numbers) -> (3, 8, 9, 10, 11), in order, without repeats."""
    if isinstance(text, (tuple, list)):
        parts = [str(a) for a in text]
    else:
        parts = str(text).split(",")
    out: list[int] = []
    for part in parts:
        part = part.strip()
        if not part:
            continue
        try:
            if "-" in part:
                lo, hi = (int(x) for x in part.split("-"))
                if hi < lo:
                    raise ConfigError(f"speakers {text!r}: the range {part!r} is empty (write low-high)")
                numbers = range(lo, hi + 1)
            else:
                numbers = [int(part)]
        except ValueError:
            raise ConfigError(f"speakers {text!r}: expected numbers like '1-4' or '03,08-11'") from None
        out.extend(n for n in numbers if n not in out)
    return tuple(out)


@dataclass
class Plan:
    """What a source holds for a layout: the copies to make and what is left out."""

    jobs: list[tuple[str, str, str]] = field(default_factory=list)  # (source name, 'Split/Class/file.wav', speaker)
    skipped: Counter = field(default_factory=Counter)  # reason -> number of files
    skipped_emotions: Counter = field(default_factory=Counter)  # emotion code -> number of files
    found: dict[int, Counter] = field(default_factory=dict)  # speaker -> emotion code -> files, of all named files


def _check_splits(splits: dict[str, tuple[int, ...]]) -> None:
    names = [s for s in SPLITS if s in splits]
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            both = sorted(set(splits[a]) & set(splits[b]))
            if both:
                raise ConfigError(f"speakers {both} are in both the {a} and the {b} split")


def plan(names: list[str], corpus: Corpus | str, emotions: dict[str, str], splits: dict[str, tuple[int, ...]],
         sizes: dict[str, int] | None = None) -> Plan:
    """Which of the source files ``names`` go where.

    ``splits`` maps a split name to its speakers (integers). A file whose base
    name is found twice is taken once when both copies have the same size
    (``sizes``) and is an error otherwise.
    """
    corpus = get_corpus(corpus) if isinstance(corpus, str) else corpus
    _check_splits(splits)
    split_of = {spk: s for s, speakers in splits.items() for spk in speakers}
    out = Plan()
    by_dest: dict[str, str] = {}
    for name in sorted(names):
        base = name.replace("\\", "/").rsplit("/", 1)[-1]
        if not base.lower().endswith(".wav"):
            continue
        m = corpus.pattern.match(base)
        if not m:
            out.skipped[f"not named like {corpus.title} ({corpus.example})"] += 1
            continue
        read = corpus.read(m)
        if isinstance(read, str):
            out.skipped[read] += 1
            continue
        speaker, emotion = read
        out.found.setdefault(int(speaker), Counter())[emotion] += 1
        if emotion not in emotions:
            out.skipped_emotions[emotion] += 1
            continue
        split = split_of.get(int(speaker))
        if split is None:
            out.skipped["speaker in no split"] += 1
            continue
        rel = f"{split}/{emotions[emotion]}/{base}"
        if rel in by_dest:
            first = by_dest[rel]
            if sizes is None or sizes.get(first) != sizes.get(name):
                raise DataError(f"{first} and {name}: two different files with one name ({base})")
            out.skipped["the same file twice"] += 1
            continue
        by_dest[rel] = name
        out.jobs.append((name, rel, speaker))
    out.jobs.sort(key=lambda j: j[1])
    return out


def _problems(p: Plan, corpus: Corpus, emotions: dict[str, str], splits: dict[str, tuple[int, ...]],
              source: str) -> list[str]:
    """Listed speakers without clips, and split/class folders that would stay empty."""
    wanted = sorted(emotions)
    out = []
    kept = {int(spk) for _, _, spk in p.jobs}
    for split, speakers in splits.items():
        for spk in speakers:
            if spk in kept:
                continue
            if spk not in p.found:
                out.append(f"speaker {spk} ({split} split) has no {corpus.title} clips in {source}")
            else:
                out.append(f"speaker {spk} ({split} split) has no clips of the emotions {wanted} "
                           f"(only {sorted(p.found[spk])})")
    have = {rel.rsplit("/", 1)[0] for _, rel, _ in p.jobs}
    missing = [f"{s}/{c}" for s in splits for c in sorted(set(emotions.values())) if f"{s}/{c}" not in have]
    if missing:
        out.append(f"no clips for {', '.join(missing)} with these speakers")
    return out


def _download(url: str, dest: Path) -> Path:
    import urllib.request

    print(f"downloading {url} ...", file=sys.stderr, flush=True)
    try:
        with urllib.request.urlopen(url, timeout=60) as r, open(dest, "wb") as f:
            shutil.copyfileobj(r, f)
    except OSError as exc:
        raise DataError(f"{url}: download failed ({exc}); download it by hand and pass its path") from exc
    return dest


def _check_audio(path: Path, name: str) -> None:
    """A copied file must be audio with samples (a Git LFS pointer or a truncated file is not)."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except Exception as exc:  # soundfile raises RuntimeError/LibsndfileError/TypeError
        raise DataError(f"{name}: not a readable audio file ({exc})") from None
    if info.frames <= 0:
        raise DataError(f"{name}: an audio file without samples")


def build_layout(source: str, out_dir: str | Path, *, corpus: str = "ravdess", train, test, confirm=(),
                 emotions: dict[str, str] | None = None) -> dict:
    """Copy the wanted clips of ``corpus`` from ``source`` (a folder, a zip or
    its URL) into ``out_dir/{Train,Test[,Confirm]}/<Class>/``, with
    ``out_dir/speakers.csv`` (``path,speaker``).

    ``train``, ``test`` and ``confirm`` are speaker lists (see
    :func:`parse_speakers`); ``emotions`` maps the corpus' emotion codes to
    class folders (default: the corpus' mapping in ``CONFIG.data``). Every
    listed speaker must have clips, and every split every class.

    The tree is built beside ``out_dir`` and swapped into place at the end
    (:func:`ser.io.atomic_dir`), so a failure leaves no half-built data set.
    An existing non-empty ``out_dir`` is refused, never overwritten.
    """
    c = get_corpus(corpus)
    emotions = dict(emotions) if emotions is not None else c.emotions()
    if not emotions:
        raise ConfigError(f"corpus {c.name}: its emotion mapping ({c.emotions_field}) is empty")
    splits = {"Train": parse_speakers(train), "Test": parse_speakers(test)}
    confirm = parse_speakers(confirm)
    if confirm:
        splits["Confirm"] = confirm
    for s in ("Train", "Test"):
        if not splits[s]:
            raise ConfigError(f"the {s} split has no speakers: give --{s.lower()} (e.g. {'03,08-12'})")
    _check_splits(splits)
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise DataError(f"{out_dir}: already exists and is not empty; remove it or choose another output")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir.parent, prefix=f".{out_dir.name}.download.") as scratch, \
            atomic_dir(out_dir) as tree:
        src = source
        if "://" in source:
            src = str(_download(source, Path(scratch) / f"{c.name}.zip"))
        src_path = Path(src)
        if not src_path.exists():
            raise DataError(f"{src_path}: no such file or folder (expected a folder or zip of {c.title} clips)")
        if src_path.is_file():
            if not zipfile.is_zipfile(src_path):
                raise DataError(f"{src_path}: not a zip archive")
            archive = zipfile.ZipFile(src_path)
            members = {i.filename: i.file_size for i in archive.infolist() if not i.is_dir()}
        else:
            archive = None
            members = {str(p.relative_to(src_path)): p.stat().st_size
                       for p in src_path.rglob("*") if p.is_file() and p.suffix.lower() == ".wav"}
        try:
            p = plan(list(members), c, emotions, splits, sizes=members)
            if not p.jobs:
                raise DataError(f"{src_path}: holds no {c.title} clips (named like {c.example}) of the emotions "
                                f"{sorted(emotions)} for the speakers " + " / ".join(
                                    f"{s} {list(v)}" for s, v in splits.items()))
            problems = _problems(p, c, emotions, splits, str(src_path))
            if problems:
                raise DataError(f"{src_path}: " + "; ".join(problems))
            for name, rel, _ in p.jobs:
                dest = tree / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                if archive is not None:
                    with archive.open(name) as f, open(dest, "wb") as g:
                        shutil.copyfileobj(f, g)
                else:
                    shutil.copyfile(src_path / name, dest)
                _check_audio(dest, f"{src_path}/{name}" if archive is None else f"{src_path}:{name}")
        finally:
            if archive is not None:
                archive.close()
        with open(tree / SPEAKERS_CSV, "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["path", "speaker"])
            w.writerows((rel, spk) for _, rel, spk in p.jobs)
    classes = sorted(set(emotions.values()))
    counts = {f"{s}/{k}": sum(1 for _, rel, _ in p.jobs if rel.startswith(f"{s}/{k}/")) for s in splits for k in classes}
    speakers = {s: sorted({spk for _, rel, spk in p.jobs if rel.startswith(f"{s}/")}, key=int) for s in splits}
    skipped = dict(p.skipped)
    if p.skipped_emotions:
        skipped.update({f"emotion {e} (not mapped)": n for e, n in sorted(p.skipped_emotions.items())})
    return {"out_dir": str(out_dir), "corpus": c.name, "n_clips": len(p.jobs), "per_folder": counts,
            "speakers": speakers, "skipped": skipped}

