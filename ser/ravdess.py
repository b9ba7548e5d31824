"""Build the EmotionSpeech layout from a RAVDESS copy (`doit data`).

RAVDESS names its files ``MM-VV-EE-II-SS-RR-AA.wav``: modality (03 audio
only), vocal channel (01 speech), emotion, intensity, statement, repetition,
actor. The source is a folder holding ``Actor_NN`` folders (or the files
themselves, at any depth), the official ``Audio_Speech_Actors_01-24.zip``, or a
URL of that archive (downloaded when the network allows).
"""
from __future__ import annotations

import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

from .dataset import RAVDESS_NAME
from .errors import ConfigError, DataError
from .io import atomic_dir


def parse_actors(text: str | tuple | list) -> tuple[int, ...]:
    """'1-4' or '1,2,3,4' (or a sequence) -> (1, 2, 3, 4)."""
    if isinstance(text, (tuple, list)):
        return tuple(int(a) for a in text)
    out = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if "-" in part:
                lo, hi = (int(x) for x in part.split("-"))
                out.extend(range(lo, hi + 1))
            else:
                out.append(int(part))
        except ValueError:
            raise ConfigError(f"actors {text!r}: expected numbers like '1-4' or '1,2,3,4'") from None
    return tuple(out)


def plan(names: list[str], emotions: dict[str, str], train: tuple[int, ...], test: tuple[int, ...],
         confirm: tuple[int, ...] = ()) -> list[tuple[str, str]]:
    """``[(source name, 'Split/Class/file.wav')]`` for the speech clips wanted
    (``confirm``: actors of the optional Confirm split)."""
    splits = {"Train": set(train), "Test": set(test), "Confirm": set(confirm)}
    for a, b in (("Train", "Test"), ("Train", "Confirm"), ("Test", "Confirm")):
        if splits[a] & splits[b]:
            raise ConfigError(f"actors {sorted(splits[a] & splits[b])} are in both the {a} and the {b} split")
    out = []
    for name in names:
        base = name.replace("\\", "/").rsplit("/", 1)[-1]
        m = RAVDESS_NAME.match(base)
        if not m or m.group(1) != "03" or m.group(2) != "01":
            continue
        emotion, actor = m.group(3), int(m.group(7))
        if emotion not in emotions:
            continue
        split = next((s for s, actors in splits.items() if actor in actors), None)
        if split:
            out.append((name, f"{split}/{emotions[emotion]}/{base}"))
    return sorted(out, key=lambda p: p[1])


def _download(url: str, dest: Path) -> Path:
    import urllib.request

    print(f"downloading {url} ...", file=sys.stderr, flush=True)
    try:
        with urllib.request.urlopen(url, timeout=60) as r, open(dest, "wb") as f:
            shutil.copyfileobj(r, f)
    except OSError as exc:
        raise DataError(f"{url}: download failed ({exc}); download it by hand and pass its path") from exc
    return dest


def build_layout(source: str, out_dir: str | Path, *, emotions: dict[str, str], train, test, confirm=()) -> dict:
    """Copy the wanted RAVDESS clips into ``out_dir/{Train,Test[,Confirm]}/<Class>/``.

    The tree is built beside ``out_dir`` and swapped into place at the end
    (:func:`ser.io.atomic_dir`), so an interrupted run leaves no half-built
    data set. An existing non-empty ``out_dir`` is refused, never overwritten.
    """
    out_dir = Path(out_dir)
    train, test, confirm = parse_actors(train), parse_actors(test), parse_actors(confirm)
    splits = ("Train", "Test") + (("Confirm",) if confirm else ())
    if out_dir.exists() and any(out_dir.iterdir()):
        raise DataError(f"{out_dir}: already exists and is not empty; remove it or choose another output")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir.parent, prefix=f".{out_dir.name}.download.") as scratch, \
            atomic_dir(out_dir) as tree:
        src = source
        if "://" in source:
            src = str(_download(source, Path(scratch) / "ravdess.zip"))
        src_path = Path(src)
        if not src_path.exists():
            raise DataError(f"{src_path}: no such file or folder (expected RAVDESS Actor_NN folders or its zip)")
        if src_path.is_file():
            if not zipfile.is_zipfile(src_path):
                raise DataError(f"{src_path}: not a zip archive")
            with zipfile.ZipFile(src_path) as z:
                jobs = plan(z.namelist(), emotions, train, test, confirm)
                for name, rel in jobs:
                    (tree / rel).parent.mkdir(parents=True, exist_ok=True)
                    with z.open(name) as f, open(tree / rel, "wb") as g:
                        shutil.copyfileobj(f, g)
        else:
            files = [str(p.relative_to(src_path)) for p in src_path.rglob("*.wav")]
            jobs = plan(files, emotions, train, test, confirm)
            for name, rel in jobs:
                (tree / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src_path / name, tree / rel)
        if not jobs:
            raise DataError(f"{src_path}: holds no RAVDESS speech clips of emotions {sorted(emotions)} "
                            f"for actors {train} / {test} / {confirm}")
        missing = [f"{s}/{c}" for s in splits for c in sorted(set(emotions.values()))
                   if not (tree / s / c).is_dir()]
        if missing:
            raise DataError(f"{src_path}: no clips for {', '.join(missing)} with these actors")
    counts = {f"{s}/{c}": len(list((out_dir / s / c).glob("*.wav")))
              for s in splits for c in sorted(set(emotions.values()))}
    return {"out_dir": str(out_dir), "n_clips": len(jobs), "per_folder": counts}
