"""The EmotionSpeech layout: ``<root>/{Train,Test}/<Class>/*.wav``.

Classes are the class folders in alphabetical order, everywhere: labels,
matrices and plots. RAVDESS file names (``03-01-EE-II-SS-RR-AA.wav``) give the
actor, used to keep cross-validation folds actor-disjoint and to check that no
actor is in both splits.
"""
from __future__ import annotations

import hashlib
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

from .errors import DataError

SPLITS = ("Train", "Test")
AUDIO_SUFFIXES = (".wav",)
RAVDESS_NAME = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)\.wav$", re.IGNORECASE)


@dataclass(frozen=True)
class Clip:
    """One audio file of the data set."""

    path: Path
    split: str
    label: int
    class_name: str

    @property
    def actor(self) -> int | None:
        """RAVDESS actor number, or None when the name is not RAVDESS."""
        m = RAVDESS_NAME.match(self.path.name)
        return int(m.group(7)) if m else None

    @property
    def key(self) -> str:
        """``Split/Class/file.wav``: stable and independent of where the data is."""
        return f"{self.split}/{self.class_name}/{self.path.name}"


def candidate_data_dirs(explicit: str | os.PathLike | None = None) -> list[Path]:
    """Where the data set is looked for, in order."""
    from .config import PROJECT_DIR

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


def list_clips(root: str | os.PathLike) -> list[Clip]:
    """Every clip of both splits, sorted by split, class, then file name.

    The classes are Train's class folders in alphabetical order; Test must
    have the same ones (see :func:`folder_clips` for the other checks).
    """
    root = Path(root)
    names = class_names(root)
    return [c for split in SPLITS for c in folder_clips(root / split, names)]


def split_clips(clips: list[Clip], split: str) -> list[Clip]:
    return [c for c in clips if c.split == split]


def content_hash(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
