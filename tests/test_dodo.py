"""The task graph from the outside, as a user runs it: the real doit.

The build tests work on a copy of the project (dodo.py, ser/, report/) in a
temporary folder, so their outputs land there (``PROJECT_DIR`` follows
``ser/config.py``), never in this project's build/ or figures/. They run on a
tiny synthetic data set, with a TOML override (``SER_CONFIG``) that makes the
networks tiny. doit prints ``.  name`` for a task it runs and ``-- name`` for
one it finds up to date; the tests compare those sets with what must run.
"""
import csv
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
TASKS = {"card", "features", "svm", "anchors", "cnn1d", "images", "cnn2d", "fusion", "summary", "figures:mel_examples",
         "figures:svm", "figures:cnn1d", "figures:cnn2d", "figures:summary", "design", "report"}
TINY = """\
# networks and searches as small as the build allows
[svm]
grid_C = [10.0]
grid_gamma = ["scale"]
grid_kernel = ["rbf"]
grid_transform = ["none"]

[cnn1d]
max_epochs = 2
smooth_epochs = 1
grid_norm = ["spec"]
grid_shift_s = [0.0]
seeds = [0]

[runs]
threads = 1

[cnn2d]
max_epochs = 2
smooth_epochs = 1
seeds = [0]

[anchors]
kinds = ["egemaps"]
"""
# doit's view of the task graph: {task: {"file_dep": [...], "uptodate": [checker class names]}}
DUMP = """\
import json
import dodo
from doit.loader import load_tasks
tasks = load_tasks(vars(dodo))
print(json.dumps({t.name: {"file_dep": [str(p) for p in t.file_dep],
                           "uptodate": [type(u).__name__ for u, _, _ in t.uptodate]}
                  for t in tasks if t.actions}))
"""


def task_graph(project: Path, env=None) -> dict:
    out = subprocess.run([sys.executable, "-c", DUMP], cwd=project, capture_output=True, text=True,
                         env={**os.environ, **(env or {})}, timeout=120, check=True)
    return json.loads(out.stdout)


def doit(*args, env=None, cwd=ROOT, umask=-1):
    return subprocess.run([sys.executable, "-m", "doit", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "MPLBACKEND": "Agg", **(env or {})}, timeout=300, umask=umask)


def ran(out) -> set[str]:
    """The tasks doit executed."""
    return set(re.findall(r"^\.  (\S+)$", out.stdout, re.M))


def up_to_date(out) -> set[str]:
    return set(re.findall(r"^-- (\S+)$", out.stdout, re.M))


def copy_project(dest: Path) -> Path:
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    dest.mkdir(parents=True)
    for name in ("dodo.py", "deps.py"):
        shutil.copy2(ROOT / name, dest / name)
    shutil.copytree(ROOT / "ser", dest / "ser", ignore=skip)
    shutil.copytree(ROOT / "report", dest / "report", ignore=skip)
    study = Path("bench") / "design_study_results" / "merged" / "summary.json"  # read by `doit design`
    (dest / study).parent.mkdir(parents=True)
    shutil.copy2(ROOT / study, dest / study)
    return dest


def make_dataset(root: Path, train=(1, 2), test=(5,), statements=(1, 2), sr=16000) -> Path:
    """RAVDESS-named clips, 1.75-2.25 s: per class a harmonic tone of its own
    pitch and its own loudness rhythm, shifted a little per speaker, in noise."""
    codes = {"Angry": "05", "Calm": "02", "Happy": "03", "Sad": "04"}
    for split, speakers in (("Train", train), ("Test", test)):
        for i, (name, code) in enumerate(codes.items()):
            for speaker in speakers:
                for st in statements:
                    rng = np.random.default_rng(1000 * i + 10 * speaker + st)
                    t = np.arange(int(sr * (1.5 + 0.25 * st))) / sr
                    f0 = 140.0 * (i + 1) * (1 + 0.03 * speaker)
                    y = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in (1, 2, 3))
                    y *= 0.5 + 0.5 * np.sin(2 * np.pi * (1 + i) * t) ** 2
                    y = 0.2 * y + 0.02 * rng.standard_normal(len(t))
                    path = root / split / name / f"03-01-{code}-01-{st:02d}-01-{speaker:02d}.wav"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    sf.write(str(path), y.astype(np.float32), sr, subtype="PCM_16")
    return root


def snapshot(*roots: Path) -> dict[str, str]:
    """{resolved path: sha256} of every file under ``roots`` (no __pycache__)."""
    out = {}
    for root in roots:
        files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
        for p in files:
            if "__pycache__" not in p.parts:
                out[str(p.resolve())] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


class Build:
    """A project copy with its data set, override file and doit database."""

    def __init__(self, base: Path):
        self.project = copy_project(base / "project")
        self.data = make_dataset(base / "EmotionSpeech")
        self.toml = base / "tiny.toml"
        self.toml.write_text(TINY)
        self.db = base / "doit.db"

    @property
    def env(self):
        return {"SER_CONFIG": str(self.toml), "SER_DATA": str(self.data)}

    def doit(self, *args, **kw):
        return doit("-f", str(self.project / "dodo.py"), "--db-file", str(self.db), *args,
                    f"data_dir={self.data}", env=self.env, cwd=self.project, **kw)

    settled = False  # every task up to date: the last run was a whole successful build

    def run(self, *args) -> set[str]:
        """Run doit; the set of tasks it executed (it must succeed)."""
        self.settled = False
        out = self.doit(*args)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        self.settled = not args
        return ran(out)

    def graph(self) -> dict[str, set[str]]:
        """{task: its file_dep, resolved}, as doit sees the copy."""
        return {k: {str(Path(p).resolve()) for p in v["file_dep"]}
                for k, v in task_graph(self.project, self.env).items()}

    def files(self) -> dict[str, str]:
        return snapshot(self.project, self.data, self.toml)

    def change_and_run(self, edit) -> tuple[set[str], set[str]]:
        """Settle the build, apply ``edit()``, run doit once: (tasks run, files whose content changed)."""
        if not self.settled:
            self.run()
        before = self.files()
        self.settled = False
        edit()
        executed = self.run()
        after = self.files()
        changed = {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}
        return executed, changed


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One full build on the tiny data set (under umask 022), shared by the tests
    below; then a second doit run at once. A test's change stays in the copy
    (discarded afterwards) and leaves the build settled by its own run; one
    that did not is settled by the next test first, so order does not matter."""
    b = Build(tmp_path_factory.mktemp("build"))
    first = b.doit(umask=0o022)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    b.first = ran(first)
    b.second = b.doit()
    b.settled = b.second.returncode == 0
    b.graph_ = b.graph()
    return b


def must_run(graph, config_changed: set[str], changed: set[str]) -> set[str]:
    """What doit must execute: the tasks whose parameters or code changed, and
    every task with a file_dep whose content changed (doit compares checksums,
    so a re-run that rewrote the same bytes re-runs nothing after it)."""
    return set(config_changed) | {t for t, deps in graph.items() if deps & changed}


def test_list_explains_every_task_in_build_order(tmp_path):
    out = doit("list", "--all", "--db-file", str(tmp_path / "doit.db"))
    assert out.returncode == 0, out.stderr
    lines = [l for l in out.stdout.splitlines() if l.strip()]
    for l in lines:
        assert len(l.split(None, 1)) == 2, f"task without a description: {l}"
    names = [l.split()[0] for l in lines if ":" not in l.split()[0]]
    assert names == ["card", "features", "svm", "anchors", "cnn1d", "images", "cnn2d", "fusion", "design", "summary",
                     "figures", "report", "data", "predict"]


def test_every_task_has_one_config_changed_and_derived_code_deps():
    """doit saves every config_changed under one key: two per task make it stale forever."""
    tasks = {k: (v["file_dep"], v["uptodate"]) for k, v in task_graph(ROOT).items()}
    assert set(tasks) == TASKS | {"data", "predict"}
    ser = ROOT / "ser"
    for name, (file_dep, uptodate) in tasks.items():
        if name in ("data", "predict"):  # commands, not build steps: always run
            continue
        assert uptodate == ["config_changed"], name
        code = {Path(p).name for p in file_dep if Path(p).parent == ser}
        # config.py is tracked by value, pipeline.py by function; ser/__init__.py always runs
        assert "__init__.py" in code and not code & {"config.py", "pipeline.py"}, name
    modules = {name: {Path(p).relative_to(ser).with_suffix("").as_posix() for p in file_dep if ser in Path(p).parents}
               for name, (file_dep, _) in tasks.items() if name not in ("data", "predict")}
    assert "models/svm" in modules["svm"] and "models/cnn1d" not in modules["svm"]
    assert {"models/cnn1d", "models/training", "models/__init__"} <= modules["cnn1d"]
    assert "models/svm" not in modules["cnn1d"]
    assert "report/render" in modules["report"] and "models/training" not in modules["report"]


def test_bad_data_dir_fails_with_its_path_and_writes_nothing(tmp_path):
    project = copy_project(tmp_path / "project")
    before = snapshot(project)
    out = doit("-f", str(project / "dodo.py"), "--db-file", str(tmp_path / "doit.db"), "--continue",
               f"data_dir={tmp_path / 'nowhere'}", cwd=project)
    text = out.stdout + out.stderr
    assert out.returncode != 0
    assert f"no data set found (looked in: {tmp_path / 'nowhere'})" in text
    assert "Traceback" not in text
    assert snapshot(project) == before  # nothing written: no build/, no figures/, no temporaries
    assert sorted(p.name for p in project.iterdir() if p.name != "__pycache__") == ["bench", "deps.py", "dodo.py", "report", "ser"]


def test_bad_override_file_stops_doit_naming_file_and_key(tmp_path):
    toml = tmp_path / "bad.toml"
    toml.write_text("[cnn1d]\nmax_epoch = 2\n")
    out = doit("list", "--db-file", str(tmp_path / "doit.db"), env={"SER_CONFIG": str(toml)})
    assert out.returncode != 0
    assert f"ERROR: {toml}: [cnn1d] max_epoch: unknown key" in out.stderr
    assert "Traceback" not in out.stderr


def _renamed_copy(data: Path, dest: Path, *, with_csv: bool) -> Path:
    """``data`` with every clip renamed ``take_NNNN.wav`` (in the old name order, so the clip
    order is kept), and a speakers.csv giving each renamed clip its old speaker."""
    rows = ["path,speaker"]
    for i, src in enumerate(sorted(data.rglob("*.wav"))):
        rel = src.relative_to(data)
        new = dest / rel.parent / f"take_{i:04d}.wav"
        new.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, new)
        rows.append(f"{new.relative_to(dest).as_posix()},{int(src.stem[-2:])}")
    if with_csv:
        (dest / "speakers.csv").write_text("\n".join(rows) + "\n")
    return dest


@pytest.mark.slow
def test_renamed_clips_with_speakers_csv_give_the_same_results(tmp_path):
    b = Build(tmp_path)
    assert b.run("card", "svm") == {"card", "features", "svm"}
    res = b.project / "build" / "results"
    named = {k: json.loads((res / f"{k}.json").read_text()) for k in ("svm", "data")}
    renamed = _renamed_copy(b.data, tmp_path / "Renamed", with_csv=True)
    out = doit("-f", str(b.project / "dodo.py"), "--db-file", str(b.db), "card", "svm", f"data_dir={renamed}",
               env={**b.env, "SER_DATA": str(renamed)}, cwd=b.project)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert ran(out) == {"card", "features", "svm"}
    card = json.loads((res / "data.json").read_text())
    assert card["speaker_source"]["kind"] == "csv"
    assert {s: v["speakers"] for s, v in card["splits"].items()} == \
        {s: v["speakers"] for s, v in named["data"]["splits"].items()}
    svm = json.loads((res / "svm.json").read_text())
    for reading, r in named["svm"]["readings"].items():
        for kind, k in r["kinds"].items():
            got = svm["readings"][reading]["kinds"][kind]
            for model in ("spec", "tuned"):
                assert got[model]["cv_folds"] == k[model]["cv_folds"]
                assert got[model]["splits"] == k[model]["splits"]  # accuracies, per speaker, confusion
                assert got[model]["pred"] == k[model]["pred"]


def test_renamed_clips_without_speakers_stop_the_build_naming_a_clip(tmp_path):
    project = copy_project(tmp_path / "project")
    data = _renamed_copy(make_dataset(tmp_path / "EmotionSpeech"), tmp_path / "Renamed", with_csv=False)
    before = snapshot(project)
    out = doit("-f", str(project / "dodo.py"), "--db-file", str(tmp_path / "doit.db"), "--continue",
               f"data_dir={data}", cwd=project, env={"SER_DATA": str(data)})
    text = out.stdout + out.stderr
    assert out.returncode != 0, text
    first = sorted((data / "Train" / "Angry").glob("*.wav"))[0]  # the data set's first clip
    assert f"{first}: no speaker known for this clip" in text, text
    assert "speakers.csv" in text and "speaker_pattern" in text
    assert "Traceback" not in text
    assert snapshot(project) == before  # nothing written


@pytest.mark.slow
def test_corrupt_clip_stops_the_build_naming_it_and_keeps_old_targets(tmp_path):
    b = Build(tmp_path)
    assert b.run("card", "features") == {"card", "features"}
    targets = [b.project / "build" / "results" / "data.json", b.project / "build" / "cache" / "features.npz",
               b.project / "build" / "results" / "features.json"]
    old = {p: p.read_bytes() for p in targets}
    bad_data = tmp_path / "BadSpeech"
    shutil.copytree(b.data, bad_data)
    bad = bad_data / "Test" / "Calm" / "03-01-02-01-01-01-05.wav"
    bad.write_bytes(b"RIFF....WAVEnot really")
    out = doit("-f", str(b.project / "dodo.py"), "--db-file", str(b.db), "--continue", "card", "features",
               f"data_dir={bad_data}", env=b.env, cwd=b.project)
    text = out.stdout + out.stderr
    assert out.returncode != 0
    assert ran(out) == {"card", "features"}  # both tried, both failed
    assert f"{bad}: cannot be read as audio" in text
    assert "Traceback" not in text
    assert {p: p.read_bytes() for p in targets} == old  # byte for byte
    leftovers = [p for p in (b.project / "build").rglob(".*")]
    assert leftovers == []  # no temporary files


@pytest.mark.slow
def test_full_build_then_a_second_run_executes_nothing(built):
    assert built.first == TASKS
    assert built.second.returncode == 0
    assert ran(built.second) == set()
    assert up_to_date(built.second) == TASKS
    assert (built.project / "build" / "report.pdf").stat().st_size > 0
    # outputs follow the umask (022 here): 0644 files, 0755 folders
    for p in [built.project / "build", built.project / "figures",
              *(built.project / "build").rglob("*"), *(built.project / "figures").rglob("*")]:
        assert stat.S_IMODE(p.stat().st_mode) == (0o755 if p.is_dir() else 0o644), p


@pytest.mark.slow
def test_editing_a_template_rerenders_the_report_only(built):
    template = built.project / "report" / "sections" / "30-svm.html.j2"
    executed, changed = built.change_and_run(
        lambda: template.write_text(template.read_text() + "\n<p>One more sentence.</p>\n"))
    assert executed == {"report"}, sorted(changed)


@pytest.mark.slow
@pytest.mark.parametrize("old, new, readers", [
    # [svm] is read by the SVMs and by the anchors' SVMs
    ("grid_C = [10.0]\n", "grid_C = [10.0, 100.0]\n", {"svm", "anchors", "report"}),
    # read by `doit data` alone among the tasks, and printed by the report's appendix
    ("[cnn2d]\n", "[data]\ntest_actors = [5, 6, 7]\n\n[cnn2d]\n", {"report"}),
])
def test_a_parameter_change_reruns_the_tasks_that_read_it(built, old, new, readers):
    def edit():
        text = built.toml.read_text()
        assert old in text
        built.toml.write_text(text.replace(old, new, 1))

    executed, changed = built.change_and_run(edit)
    assert readers <= executed
    assert executed == must_run(built.graph_, readers, changed), sorted(changed)
    assert not executed & {"card", "features", "cnn1d", "images", "cnn2d", "figures:mel_examples"}


@pytest.mark.slow
@pytest.mark.parametrize("module, importers, others", [
    # the anchors and the combined models fit SVMs too
    ("models/svm.py", {"svm", "anchors", "fusion"}, {"card", "features", "cnn1d", "images", "cnn2d", "figures:mel_examples",
                         "figures:cnn1d", "figures:cnn2d"}),
    ("evaluate/summary.py", {"summary"}, TASKS - {"summary", "report"}),
])
def test_editing_a_module_reruns_the_tasks_whose_code_imports_it(built, module, importers, others):
    path = built.project / "ser" / module
    assert {t for t, deps in built.graph_.items() if str(path.resolve()) in deps} == importers
    executed, changed = built.change_and_run(lambda: path.write_text(path.read_text() + "\n# edited\n"))
    assert importers <= executed
    assert executed == must_run(built.graph_, set(), changed), sorted(changed)
    assert not executed & others


@pytest.mark.slow
def test_editing_one_pipeline_function_reruns_its_task_only(built):
    pipeline = built.project / "ser" / "pipeline.py"
    text = pipeline.read_text()
    head = ("def build_summary(svm_json, cnn1d_json, cnn2d_json, out_json, predictions_csv, anchors_json=None,\n"
            "                  fusion_json=None) -> None:\n")
    assert head in text

    def edit():
        pipeline.write_text(text.replace(head, head + "    # edited: only this function's task re-runs\n"))

    executed, changed = built.change_and_run(edit)
    assert "summary" in executed
    assert executed == must_run(built.graph_, {"summary"}, changed), sorted(changed)
    assert executed <= {"summary", "report"}


@pytest.mark.slow
def test_predict_applies_the_trained_models_to_new_clips(built, tmp_path):
    """`doit predict` on the Test folder gives back the build's own Test scores."""
    out_csv = tmp_path / "p.csv"
    out = built.doit("predict", "--clips", str(built.data / "Test"), "--out", str(out_csv))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    rows = list(csv.DictReader(out_csv.open()))
    results = built.project / "build" / "results"
    svm = json.loads((results / "svm.json").read_text())
    best = svm["readings"]["hz"]["best"]
    expected = {f"spec SVM, {best}": svm["readings"]["hz"]["kinds"][best]["spec"]["splits"]["Test"]["accuracy"]}
    for key in ("cnn1d", "cnn2d"):
        net = json.loads((results / f"{key}.json").read_text())
        name = f"{key[3:].upper()} CNN, {net['chosen']}, seed ensemble"
        expected[name] = net["models"][net["chosen"]]["splits"]["Test"]["ensemble"]["accuracy"]
    got = {}
    for r in rows:
        got.setdefault(r["model"], []).append(int(r["correct"]))
    assert set(got) == set(expected)
    for model, acc in expected.items():
        assert np.mean(got[model]) == pytest.approx(acc), model
    assert "accuracy" in out.stdout


@pytest.mark.slow
def test_predict_on_a_batch_with_a_bad_file_classifies_the_rest_and_fails(built, tmp_path):
    clips = tmp_path / "batch"
    good = sorted((built.data / "Test" / "Calm").glob("*.wav"))[:2]
    clips.mkdir()
    for p in good:
        shutil.copy(p, clips / p.name)
    (clips / "broken.wav").write_bytes(b"RIFF....WAVEnot audio")
    out_csv = tmp_path / "p.csv"
    out = built.doit("predict", "--clips", str(clips), "--out", str(out_csv))
    text = out.stdout + out.stderr
    assert out.returncode != 0
    assert "Traceback" not in text
    assert f"{clips / 'broken.wav'}: cannot be read as audio" in text
    assert "1 file(s) could not be read" in text
    rows = list(csv.DictReader(out_csv.open()))
    assert sorted({Path(r["clip"]).name for r in rows}) == sorted(p.name for p in good)
    assert len(rows) == 3 * len(good)  # every readable clip, by each of the three models


@pytest.mark.slow
def test_predict_without_trained_models_names_the_task(tmp_path):
    project = copy_project(tmp_path / "project")
    data = make_dataset(tmp_path / "ES")
    out = doit("-f", str(project / "dodo.py"), "--db-file", str(tmp_path / "db"), "predict", "--clips",
               str(data / "Test"), f"data_dir={data}", cwd=project)
    assert out.returncode != 0
    assert "train the models first with `doit" in out.stdout + out.stderr
    assert "Traceback" not in out.stdout + out.stderr


@pytest.mark.slow
def test_predictions_csv_rows_match_the_confusion_matrices(built):
    """Every model's rows in predictions.csv rebuild the confusion matrices of the results files."""
    results = built.project / "build" / "results"
    rows = list(csv.DictReader((results / "predictions.csv").open()))
    svm = json.loads((results / "svm.json").read_text())
    classes = svm["classes"]

    def confusion(model, split):
        m = np.zeros((len(classes), len(classes)), int)
        for r in rows:
            if r["model"] == model and r["split"] == split:
                m[classes.index(r["true_class"]), classes.index(r["predicted_class"])] += 1
        return m.tolist()

    expected = {}
    for reading, rd in svm["readings"].items():
        for kind, k in rd["kinds"].items():
            for m in ("spec", "tuned"):
                for split, sc in k[m]["splits"].items():
                    expected[(f"svm {m} {kind} ({reading} bands)", split)] = sc["confusion"]
    for key in ("cnn1d", "cnn2d"):
        net = json.loads((results / f"{key}.json").read_text())
        for cand, model in net["models"].items():
            for split, ev in model["splits"].items():
                expected[(f"{key} '{cand}' seed ensemble", split)] = ev["ensemble"]["confusion"]
                for r in ev["per_seed"]:
                    expected[(f"{key} '{cand}' seed {r['seed']}", split)] = r["confusion"]
    anchors = json.loads((results / "anchors.json").read_text())
    for kind, k in anchors["kinds"].items():
        for m in ("spec", "tuned"):
            for split, sc in k[m]["splits"].items():
                expected[(f"svm {m} {kind}", split)] = sc["confusion"]
    fusion = json.loads((results / "fusion.json").read_text())
    for name, f in fusion["models"].items():
        for split, sc in f["splits"].items():
            expected[(f"combined {name}", split)] = sc["confusion"]
    assert {(r["model"], r["split"]) for r in rows} == set(expected)
    for (model, split), cm in expected.items():
        assert confusion(model, split) == cm, (model, split)
    assert all(r["correct"] == str(int(r["true_class"] == r["predicted_class"])) for r in rows)
