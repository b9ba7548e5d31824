"""Atomic writers and array files (ser/io.py)."""
import contextlib
import os
import stat

import numpy as np
import pytest

from ser.io import atomic_dir, atomic_path, load_npz, save_json, save_npz


def test_interrupted_write_leaves_no_target_and_keeps_the_old_one(tmp_path):
    target = tmp_path / "out.json"
    save_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text().strip().startswith("{")
    assert list(tmp_path.iterdir()) == [target]


def test_npz_round_trip_has_no_pickle(tmp_path):
    save_npz(tmp_path / "f.npz", x=np.arange(3), key=np.array(["a", "b"]))
    d = load_npz(tmp_path / "f.npz")
    assert d["x"].tolist() == [0, 1, 2] and d["key"].tolist() == ["a", "b"]


def test_equal_arrays_give_equal_npz_bytes(tmp_path, monkeypatch):
    """doit compares checksums: a re-run computing the same features must not re-run the SVMs."""
    import time

    save_npz(tmp_path / "a.npz", x=np.arange(1000.0), y=np.eye(3))
    monkeypatch.setattr(time, "time", lambda: 2e9)  # as if written years later
    save_npz(tmp_path / "b.npz", x=np.arange(1000.0), y=np.eye(3))
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()


@contextlib.contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask, file_mode, dir_mode", [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700),
                                                       (0o002, 0o664, 0o775)])
def test_outputs_get_the_modes_a_plain_open_would(tmp_path, mask, file_mode, dir_mode):
    with umask(mask):
        save_json(tmp_path / "a.json", {"a": 1})
        save_npz(tmp_path / "b.npz", x=np.arange(2))
        with atomic_dir(tmp_path / "images") as d:
            save_json(d / "c.json", {})
        with open(tmp_path / "plain.txt", "w") as f:
            f.write("x")
        (tmp_path / "plain").mkdir()
    assert mode(tmp_path / "plain.txt") == file_mode and mode(tmp_path / "plain") == dir_mode
    assert mode(tmp_path / "a.json") == file_mode
    assert mode(tmp_path / "b.npz") == file_mode
    assert mode(tmp_path / "images") == dir_mode
    assert mode(tmp_path / "images" / "c.json") == file_mode


def test_atomic_dir_swaps_the_whole_folder_or_nothing(tmp_path):
    target = tmp_path / "images"
    with atomic_dir(target) as d:
        (d / "old.png").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as d:
            (d / "new.png").write_text("half")
            raise RuntimeError("interrupted")
    assert [p.name for p in target.iterdir()] == ["old.png"]  # untouched
    with atomic_dir(target) as d:
        (d / "new.png").write_text("new")
    assert [p.name for p in target.iterdir()] == ["new.png"]  # replaced whole: no mixing
    assert [p.name for p in tmp_path.iterdir()] == ["images"]  # no temporary left
