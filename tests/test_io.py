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


# ------------------------------------------------ a failing write keeps the old target

def _half_then_fail(path, *args, **kwargs):
    """What a write that dies half-way (disk full, interrupt) leaves: part of the bytes."""
    with open(path, "wb") as f:
        f.write(b"\x00half")
    raise OSError("disk full")


def _only(tmp_path):
    return sorted(p.name for p in tmp_path.iterdir())


def test_save_json_that_fails_while_writing_keeps_the_old_file(tmp_path, monkeypatch):
    from pathlib import Path

    from ser.io import load_json

    target = tmp_path / "r.json"
    save_json(target, {"old": 1})
    monkeypatch.setattr(Path, "write_text", lambda self, *a, **k: _half_then_fail(self))
    with pytest.raises(OSError, match="disk full"):
        save_json(target, {"new": 2})
    monkeypatch.undo()
    assert load_json(target) == {"old": 1}
    assert _only(tmp_path) == ["r.json"]  # no temporary left behind
    save_json(target, {"new": 2})
    assert load_json(target) == {"new": 2}
    assert _only(tmp_path) == ["r.json"]


def test_save_npz_that_fails_while_writing_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "f.npz"
    save_npz(target, x=np.arange(3))
    monkeypatch.setattr(np, "savez_compressed", lambda f, **a: (f.write(b"half"), (_ for _ in ()).throw(OSError("disk full"))))
    with pytest.raises(OSError, match="disk full"):
        save_npz(target, x=np.arange(5))
    monkeypatch.undo()
    assert load_npz(target)["x"].tolist() == [0, 1, 2]
    assert _only(tmp_path) == ["f.npz"]
    save_npz(target, x=np.arange(5))
    assert load_npz(target)["x"].tolist() == [0, 1, 2, 3, 4]


def test_save_state_dict_that_fails_while_writing_keeps_the_old_file(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    from ser.io import save_state_dict

    target = tmp_path / "m.pt"
    old = torch.nn.Linear(2, 1)
    save_state_dict(old, target)
    monkeypatch.setattr(torch, "save", lambda obj, f, *a, **k: _half_then_fail(f))
    with pytest.raises(OSError, match="disk full"):
        save_state_dict(torch.nn.Linear(2, 1), target)
    monkeypatch.undo()
    back = torch.load(target, weights_only=True)
    assert torch.equal(back["weight"], old.weight.detach())
    assert _only(tmp_path) == ["m.pt"]


@pytest.mark.parametrize("exc", [RuntimeError("boom"), KeyboardInterrupt()], ids=["error", "interrupt"])
def test_atomic_path_writes_to_a_new_name_and_cleans_up_on_any_exception(tmp_path, exc):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(type(exc)):
        with atomic_path(target) as tmp:
            assert tmp != target and tmp.parent == tmp_path and tmp.exists()
            assert tmp.name.startswith(".out.txt.") and tmp.suffix == ".txt"
            tmp.write_text("half")
            assert target.read_text() == "old"  # untouched while the new one is written
            raise exc
    assert target.read_text() == "old"
    assert _only(tmp_path) == ["out.txt"]
    with atomic_path(target, suffix=".png") as tmp:
        assert tmp.suffix == ".png"
        tmp.write_text("new")
    assert target.read_text() == "new" and _only(tmp_path) == ["out.txt"]


def test_atomic_path_makes_the_parent_folder(tmp_path):
    with atomic_path(tmp_path / "a" / "b" / "c.json") as tmp:
        tmp.write_text("{}")
    assert (tmp_path / "a" / "b" / "c.json").read_text() == "{}"


def test_a_taken_temporary_name_is_skipped(tmp_path, monkeypatch):
    import secrets

    # a name someone else holds is never written over: after 100 tries, an error
    monkeypatch.setattr(secrets, "token_hex", lambda n: "cccc")
    (tmp_path / ".z.txt.cccc.txt").write_text("someone else's")
    with pytest.raises(FileExistsError, match="no free temporary name"):
        with atomic_path(tmp_path / "z.txt"):
            pass
    assert (tmp_path / ".z.txt.cccc.txt").read_text() == "someone else's"
    # a taken name is retried with a new one
    names = iter(["dddd", "eeee"])
    monkeypatch.setattr(secrets, "token_hex", lambda n: next(names))
    (tmp_path / ".w.txt.dddd.txt").write_text("taken")
    with atomic_path(tmp_path / "w.txt") as tmp:
        assert tmp.name == ".w.txt.eeee.txt"
        tmp.write_text("w")
    assert (tmp_path / "w.txt").read_text() == "w" and (tmp_path / ".w.txt.dddd.txt").read_text() == "taken"


def test_atomic_dir_restores_the_old_folder_when_the_swap_fails(tmp_path, monkeypatch):
    target = tmp_path / "images"
    with atomic_dir(target) as d:
        (d / "old.png").write_text("old")
    real, calls = os.replace, []

    def failing_second(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:  # moving the new folder into place
            raise OSError("swap failed")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", failing_second)
    with pytest.raises(OSError, match="swap failed"):
        with atomic_dir(target) as d:
            (d / "new.png").write_text("new")
    monkeypatch.undo()
    assert [p.name for p in target.iterdir()] == ["old.png"]
    assert _only(tmp_path) == ["images"]


def test_atomic_dir_replaces_a_file_or_a_link(tmp_path):
    target = tmp_path / "out"
    target.write_text("a file")
    with atomic_dir(target) as d:
        (d / "a").write_text("1")
    assert target.is_dir() and [p.name for p in target.iterdir()] == ["a"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep").write_text("k")
    link = tmp_path / "link"
    link.symlink_to(elsewhere)
    with atomic_dir(link) as d:
        (d / "b").write_text("2")
    assert not link.is_symlink() and [p.name for p in link.iterdir()] == ["b"]
    assert (elsewhere / "keep").read_text() == "k"  # the link's target is not deleted
    assert _only(tmp_path) == ["elsewhere", "link", "out"]


# ------------------------------------------------ formats

def test_json_keeps_key_order_indent_and_a_final_newline(tmp_path):
    from ser.io import load_json

    save_json(tmp_path / "a.json", {"b": 1, "a": [1, 2]})
    text = (tmp_path / "a.json").read_text()
    assert text == '{\n "b": 1,\n "a": [\n  1,\n  2\n ]\n}\n'
    assert list(load_json(tmp_path / "a.json")) == ["b", "a"]


def test_npz_refuses_pickled_objects_on_load(tmp_path):
    with open(tmp_path / "o.npz", "wb") as f:
        np.savez(f, o=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="allow_pickle"):
        load_npz(tmp_path / "o.npz")


def test_map_clips_keeps_the_order_of_its_inputs():
    import time

    from ser.io import default_workers, map_clips

    def slow_first(i):
        time.sleep(0.02 if i == 0 else 0.0)
        return -i * i

    assert map_clips(slow_first, list(range(6)), workers=3) == [0, -1, -4, -9, -16, -25]
    assert map_clips(slow_first, [], workers=2) == []
    assert 1 <= default_workers() <= 8


def test_map_clips_runs_at_most_workers_calls_at_once():
    import threading
    import time

    from ser.io import map_clips

    lock, active, peak = threading.Lock(), [0], [0]

    def fn(i):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.01)
        with lock:
            active[0] -= 1
        return i

    for workers in (1, 2):
        peak[0] = 0
        assert map_clips(fn, list(range(8)), workers=workers) == list(range(8))
        assert peak[0] == workers


def test_map_clips_shows_progress_on_stderr_only_when_named(capsys):
    from ser.io import map_clips

    map_clips(str, [1, 2, 3], workers=1)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    map_clips(str, [1, 2, 3], workers=1, desc="clips")
    out = capsys.readouterr()
    assert out.out == "" and "clips" in out.err and "3/3" in out.err


def test_map_clips_refreshes_its_progress_at_most_once_a_second(monkeypatch):
    import tqdm

    from ser.io import map_clips

    seen = []
    real = tqdm.tqdm

    def spy(*args, **kw):
        seen.append(kw)
        return real(*args, **kw)

    monkeypatch.setattr(tqdm, "tqdm", spy)
    assert map_clips(str, [1, 2], workers=1, desc="clips") == ["1", "2"]
    assert seen[0]["mininterval"] == 1.0 and seen[0]["total"] == 2 and seen[0]["desc"] == "clips"


def test_temporary_names_are_hidden_random_and_tried_100_times(tmp_path, monkeypatch):
    import re
    import secrets

    with atomic_path(tmp_path / "r.json") as tmp:
        assert re.fullmatch(r"\.r\.json\.[0-9a-f]{8}\.json", tmp.name)
    with atomic_path(tmp_path / "r.json", suffix=".part") as tmp:
        assert re.fullmatch(r"\.r\.json\.[0-9a-f]{8}\.part", tmp.name)
    tries = []
    monkeypatch.setattr(secrets, "token_hex", lambda n: tries.append(n) or "cccc")
    (tmp_path / ".z.txt.cccc.txt").write_text("taken")
    with pytest.raises(FileExistsError, match=r"no free temporary name \.z\.txt\.\*\.txt"):
        with atomic_path(tmp_path / "z.txt"):
            pass
    assert tries == [4] * 100


@pytest.mark.parametrize("cpus, workers", [(None, 1), (1, 1), (2, 2), (6, 6), (64, 8)])
def test_default_workers_is_the_cores_up_to_8(monkeypatch, cpus, workers):
    from ser.io import default_workers

    monkeypatch.setattr(os, "cpu_count", lambda: cpus)
    assert default_workers() == workers
