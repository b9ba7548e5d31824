"""The EmotionSpeech layout: ``<root>/{Train,Test[,Confirm]}/<Class>/*.wav``.

``Confirm`` is optional: a confirmation split of speakers nobody designed
against, scored once by the final models (never used for a choice).

Classes are the class folders in alphabetical order, everywhere: labels,
matrices and plots. Every clip has a speaker (:mod:`ser.data.speakers`: a
``speakers.csv``, a file-name pattern, or RAVDESS / CREMA-D / EmoDB names),
used to keep validation folds speaker-disjoint and to check that no speaker
is in two splits.
"""
from __future__ import annotations

import hashlib
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

from ser.errors import DataError

SPLITS = ("Train", "Test")  # every data set has these
OPTIONAL_SPLITS = ("Confirm",)  # read when present
EVAL_SPLITS = ("Test", "Confirm")  # scored once by the final models, never used for a choice
AUDIO_SUFFIXES = (".wav",)
RAVDESS_NAME = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)\.wav$", re.IGNORECASE)


def ravdess_actor(name: str) -> int | None:
    """The speaker of a RAVDESS file name or stem (``03-01-EE-II-SS-RR-AA[.wav|.png]``), or None."""
    m = RAVDESS_NAME.match(Path(name).stem + ".wav")
    return int(m.group(7)) if m else None


@dataclass(frozen=True)
class Clip:
    """One audio file of the data set."""

    path: Path
    split: str
    label: int
    class_name: str
    speaker: str | None = None  # None only when the data set opts out of speakers

    @property
    def key(self) -> str:
        """``Split/Class/file.wav``: stable and independent of where the data is."""
        return f"{self.split}/{self.class_name}/{self.path.name}"


def candidate_data_dirs(explicit: str | os.PathLike | None = None) -> list[Path]:
    """Where the data set is looked for, in order."""
    from ser.config import PROJECT_DIR

    out = []
    if explicit:
        out.append(Path(explicit))
    elif os.environ.get("SER_DATA"):
        out.append(Path(os.environ["SER_DATA"]))
    else:
        out.append(PROJECT_DIR / "data" / "EmotionSpeech")
        out.append(PROJECT_DIR.parent / "shared" / "data" / "EmotionSpeech")
    return out


def find_data_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The data set's root: an explicit path, ``$SER_DATA``, ``data/EmotionSpeech``
    in the project, then ``../shared/data/EmotionSpeech``.

    An explicit path or ``$SER_DATA`` is used as given (never silently replaced
    by another copy); a wrong one is an error.
    """
    candidates = candidate_data_dirs(explicit)
    for c in candidates:
        if c.is_dir():
            return c.resolve()
    tried = ", ".join(str(c) for c in candidates)
    raise DataError(f"no data set found (looked in: {tried}); pass data_dir=PATH to doit or set SER_DATA")


def class_names(root: Path) -> list[str]:
    """Class folders of the training split, in alphabetical order."""
    train = Path(root) / "Train"
    if not train.is_dir():
        raise DataError(f"{train}: missing split folder (expected {root}/Train/<Class>/*.wav)")
    names = sorted(p.name for p in train.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not names:
        raise DataError(f"{train}: holds no class folders")
    return names


def folder_clips(split_dir: str | os.PathLike, class_names: list[str] | None = None) -> list[Clip]:
    """The clips of one split folder ``<split_dir>/<Class>/*.wav``.

    ``class_names`` fixes the classes and their order (default: the folder's
    class folders, alphabetical). Stray files are skipped with a warning; a
    missing split or class folder, or a class without clips, is an error.
    """
    split_dir = Path(split_dir)
    if not split_dir.is_dir():
        raise DataError(f"{split_dir}: missing split folder")
    found = sorted(p.name for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    names = found if class_names is None else list(class_names)
    if not names:
        raise DataError(f"{split_dir}: holds no class folders")
    if found != names:
        raise DataError(f"{split_dir}: class folders {found} differ from {names}")
    clips = []
    for label, name in enumerate(names):
        class_dir = split_dir / name
        files = []
        for p in sorted(class_dir.iterdir()):
            if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES and not p.name.startswith("."):
                files.append(p)
            else:
                warnings.warn(f"{p}: skipped (not a .wav file)", stacklevel=3)
        if not files:
            raise DataError(f"{class_dir}: class '{name}' has no .wav clips")
        clips.extend(Clip(p, split_dir.name, label, name) for p in files)
    return clips


def present_splits(root: str | os.PathLike) -> tuple[str, ...]:
    """Train, Test, and each optional split (Confirm) whose folder exists."""
    return SPLITS + tuple(s for s in OPTIONAL_SPLITS if (Path(root) / s).is_dir())


def list_clips(root: str | os.PathLike, speaker_pattern: str | None = None) -> list[Clip]:
    """Every clip of every split present, sorted by split (Train, Test,
    Confirm), class, then file name, each with its speaker.

    The classes are Train's class folders in alphabetical order; every other
    split must have the same ones (see :func:`folder_clips` for the other
    checks). Speakers are found by :func:`ser.data.speakers.resolve_speakers`
    (``speaker_pattern``: default ``[data] speaker_pattern`` of the
    configuration); a clip without one is a :class:`DataError`.
    """
    return list_clips_and_speakers(root, speaker_pattern)[0]


def list_clips_and_speakers(root: str | os.PathLike, speaker_pattern: str | None = None):
    """:func:`list_clips` and the :class:`ser.data.speakers.SpeakerSource` that says how the speakers were found."""
    import dataclasses

    from ser.data.speakers import resolve_speakers

    if speaker_pattern is None:
        from ser.config import CONFIG

        speaker_pattern = CONFIG.data.speaker_pattern
    root = Path(root)
    names = class_names(root)
    clips = [c for split in present_splits(root) for c in folder_clips(root / split, names)]
    speakers, source = resolve_speakers(root, [c.key.rsplit("/", 1)[0] + "/" + c.path.name for c in clips],
                                        speaker_pattern)
    return [dataclasses.replace(c, speaker=s) for c, s in zip(clips, speakers)], source


def eval_splits_of(clips: list[Clip]) -> tuple[str, ...]:
    """The evaluation splits among ``clips`` (Test, and Confirm when present)."""
    have = {c.split for c in clips}
    return tuple(s for s in EVAL_SPLITS if s in have)


def split_clips(clips: list[Clip], split: str) -> list[Clip]:
    return [c for c in clips if c.split == split]


def _field(clip, name: str):
    """``name`` of a :class:`Clip` or of an image record (a dict with the same keys)."""
    return clip[name] if isinstance(clip, dict) else getattr(clip, name)


def training_speakers(train) -> "np.ndarray | None":
    """The speaker of every training clip (a :class:`Clip` or an image
    record), for speaker-disjoint validation folds; None when the data set
    has no speakers at all (``speaker_pattern = "none"``), an error when only
    some clips have one."""
    import numpy as np

    speakers = [_field(c, "speaker") for c in train]
    if not speakers:
        raise DataError("no training clips")
    if all(s is None for s in speakers):
        return None
    missing = [_field(c, "path") for c, s in zip(train, speakers) if s is None]
    if missing:
        raise DataError(f"{missing[0]}: no speaker known for this training clip; the speaker sets the validation folds")
    return np.array(speakers, dtype=object)


def check_speaker_disjoint(train, others) -> None:
    """An error when a speaker of the training clips (Clips or image records)
    is also in another split: validation by speaker would then be no guide to
    unseen speakers, and an evaluation split would not be unseen."""
    seen = {_field(c, "speaker") for c in train} - {None}
    for c in others:
        if _field(c, "speaker") in seen:
            raise DataError(f"speaker {_field(c, 'speaker')} is in both Train and {_field(c, 'split')} "
                            f"(e.g. {_field(c, 'key')})")


def image_records(image_root: str | os.PathLike, split: str, *, classes: list[str] | None = None) -> list[dict]:
    """The images of one split of an image tree ``<root>/<split>/<Class>/*.png``.

    Classes are ``classes`` or the folders of ``<root>/Train`` in alphabetical
    order; the speaker is the RAVDESS actor of the name (as text), else None
    (a build reads the image manifest instead, whose records carry every
    clip's speaker: :func:`ser.features.images.export_images`). Returns records (``key``,
    ``split``, ``class_name``, ``label``, ``speaker``, ``path``) sorted by class
    then file name.
    """
    root = Path(image_root)
    if classes is None:
        train = root / "Train"
        if not train.is_dir():
            raise DataError(f"{train}: missing (expected an image tree <root>/Train/<Class>/*.png)")
        classes = sorted(p.name for p in train.iterdir() if p.is_dir() and not p.name.startswith("."))
    out = []
    for label, name in enumerate(classes):
        d = root / split / name
        if not d.is_dir():
            raise DataError(f"{d}: missing class folder")
        files = sorted(p for p in d.iterdir() if p.suffix.lower() == ".png" and not p.name.startswith("."))
        if not files:
            raise DataError(f"{d}: holds no .png images")
        out += [{"key": f"{split}/{name}/{p.stem}.wav", "split": split, "class_name": name, "label": label,
                 "speaker": _text(ravdess_actor(p.name)), "path": str(p)} for p in files]
    return out


def _text(value) -> str | None:
    return None if value is None else str(value)


def content_hash(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
