"""Atomic writers: a target is written under a temporary name and moved into
place with ``os.replace``, so an interrupted build never leaves half a file.

Temporary files and folders are created as a plain ``open()`` or ``mkdir()``
would (modes ``0o666`` and ``0o777`` less the umask), not private as
``tempfile.mkstemp`` makes them, so the final targets have the usual modes.
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
from pathlib import Path

import numpy as np


def _new_name(parent: Path, prefix: str, suffix: str, create) -> Path:
    """``parent/<prefix><random><suffix>``, created by ``create(path)`` (which must
    fail with FileExistsError when the name is taken)."""
    for _ in range(100):
        path = parent / f"{prefix}{secrets.token_hex(4)}{suffix}"
        try:
            create(path)
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"{parent}: no free temporary name {prefix}*{suffix}")


def _new_file(path: Path) -> None:
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None):
    """Yield a temporary path beside ``path``; move it onto ``path`` on success.

    On an exception the temporary file is removed and ``path`` is untouched.
    The temporary file exists (empty) and has the mode ``open(path, "w")``
    would give a new file (``0o666`` less the umask); a writer that truncates
    it keeps that mode.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_name(path.parent, f".{path.name}.", suffix or path.suffix, _new_file)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike):
    """Yield a new empty folder beside ``path``; swap it in for ``path`` on success.

    Whatever was at ``path`` is replaced whole, so files of an earlier run
    never mix with the new ones. On an exception the temporary folder is
    removed and ``path`` is untouched. The folder has the mode ``mkdir``
    would give it (``0o777`` less the umask).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_name(path.parent, f".{path.name}.", "", lambda p: os.mkdir(p, 0o777))
    try:
        yield tmp
        old = None
        if path.exists() or path.is_symlink():
            old = tmp.with_name(tmp.name + ".old")  # tmp's name is ours: so is this one
            os.replace(path, old)
        try:
            os.replace(tmp, path)
        except BaseException:
            if old is not None:
                os.replace(old, path)
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink()


def save_json(path, data) -> None:
    """Write ``data`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1) + "\n")  # keys in the order the build wrote them


def load_json(path):
    return json.loads(Path(path).read_text())


def save_npz(path, **arrays) -> None:
    """``np.savez_compressed`` without pickled objects, atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)


def load_npz(path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def save_state_dict(model, path) -> None:
    """``torch.save(model.state_dict())``, atomically (load with ``weights_only=True``)."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(model.state_dict(), tmp)


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def map_clips(fn, paths, *, workers: int | None = None, desc: str = ""):
    """``[fn(p) for p in paths]`` over a thread pool, with a progress bar.

    numpy's FFT, the sparse product and soundfile's decoding release the GIL,
    so threads use every core without copying arrays between processes.
    """
    from concurrent.futures import ThreadPoolExecutor

    from tqdm import tqdm

    workers = workers or default_workers()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        # tqdm writes to stderr; at most one refresh a second keeps a long build's log short
        return list(tqdm(pool.map(fn, paths), total=len(paths), desc=desc, disable=not desc, mininterval=1.0))
