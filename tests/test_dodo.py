"""The task graph from the outside, as a user runs it."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def doit(*args, env=None, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "doit", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)


def test_list_explains_every_task():
    out = doit("list", "--all")
    assert out.returncode == 0, out.stderr
    lines = [l for l in out.stdout.splitlines() if l.strip()]
    assert {l.split()[0] for l in lines} >= {"card", "features", "svm", "figures", "report"}
    for l in lines:
        assert len(l.split(None, 1)) == 2, f"task without a description: {l}"


def test_bad_data_dir_fails_with_its_path_and_writes_nothing(tmp_path):
    db = tmp_path / "doit.db"
    out = doit("--db-file", str(db), "card", f"data_dir={tmp_path / 'nowhere'}")
    assert out.returncode != 0
    assert "nowhere" in out.stdout + out.stderr
    assert "no data set found" in out.stdout + out.stderr


def test_corrupt_clip_stops_the_build_naming_it_and_keeps_old_targets(tiny_dataset, tmp_path):
    bad = tiny_dataset / "Test" / "Calm" / "03-01-02-01-01-01-05.wav"
    bad.write_bytes(b"RIFF....WAVEnot really")
    cache = ROOT / "build" / "cache" / "features.npz"
    before = cache.stat().st_mtime_ns if cache.exists() else None
    out = doit("--db-file", str(tmp_path / "doit.db"), "features", f"data_dir={tiny_dataset}")
    assert out.returncode != 0
    text = out.stdout + out.stderr
    assert f"{bad}: cannot be read as audio" in text
    assert "Traceback" not in text
    assert (cache.stat().st_mtime_ns if cache.exists() else None) == before
    assert not list(cache.parent.glob(".features.npz.*")) if cache.parent.exists() else True
