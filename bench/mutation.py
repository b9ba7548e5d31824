"""Mutation testing of ``ser/`` modules with mutmut 3, one isolated copy per run.

    pip install -r requirements-dev.txt
    python bench/mutation.py                          # the default modules, one after another
    python bench/mutation.py ser/io.py ser/report/filters.py --out build/mutation.md
    python bench/mutation.py ser/evaluate/card.py --tests "tests/test_card.py tests/test_fingerprint.py"

Each module is mutated alone, in a fresh temporary copy of the project (``ser/``,
``tests/``, ``dodo.py``, ``deps.py``, ``report/``, ``configs/``, ``pytest.ini``,
and ``bench/``, which the design study's tests read) holding its own
``[tool.mutmut]`` config in a ``pyproject.toml``: two runs at the same time
never share a ``mutants/`` folder, and the repository gets none. The tests for
a module are, unless ``--tests`` says otherwise, the test files that import it
(else those that import a module of ``ser/`` that imports it; ``deps.py`` reads
the imports), always with ``-m "not slow"``. mutmut runs them once with its
trampolines to learn which tests reach each function, then per mutant only
those tests, in a child forked from a server that has collected them
(``process_isolation = "forkserver"``: torch is not safe to fork after use).
``--deselect-failing`` first leaves out the tests that fail before any mutation
(mutmut stops otherwise); ``--functions`` tests the mutants of some functions
only, for a shorter run. Functions that run only in worker processes (the
protocol's runs through joblib) get no tests: mutmut's trampolines record
calls in its own process only.

mutmut 3 mutates only code inside functions and methods (not module-level
constants) and names each mutant ``<module>.x_<function>__mutmut_<n>`` (for a
method ``<module>.xǁ<Class>ǁ<method>__mutmut_<n>``). The report counts, per
module, the mutants made, killed, survived, the others (timeout, suspicious,
segfault, caught by type check, not checked) and those no test reaches, and
shows the diff of every survivor (``mutmut show``): a test gap or an
equivalent mutant, for an engineer to decide.

Exit status: 0 when every mutmut run worked (survivors are results, not
failures), 1 when one did not (the end of its output is printed), 2 for bad
arguments.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import deps  # noqa: E402  (the project's import reader, beside dodo.py)

DEFAULT_MODULES = [
    "ser/evaluate/predictions.py", "ser/evaluate/card.py", "ser/evaluate/summary.py",
    "ser/classify.py", "ser/models/protocol.py", "ser/data/audio.py",
    "ser/features/images.py", "ser/models/augment.py", "ser/io.py", "ser/report/filters.py",
]
# What the tests need of the project; ser/ is mutmut's source path, tests/ it copies itself.
COPIED = ["ser", "tests", "dodo.py", "deps.py", "report", "configs", "pytest.ini", "bench"]
ALSO_COPY = [p for p in COPIED if p not in ("ser", "tests")]
DEFAULT_TESTS = ["tests/"]
FAST_ONLY = ["-m", "not slow", "-p", "no:cacheprovider", "-n", "0"]  # in mutmut's process: no xdist workers
# mutmut's statuses, grouped into the report's columns.
COLUMNS = ["made", "killed", "survived", "other", "no tests"]
COLUMN_OF = {"killed": "killed", "survived": "survived", "no tests": "no tests"}
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line: modules to mutate, the tests that kill, workers, report file."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("modules", nargs="*", default=DEFAULT_MODULES,
                   help="module files to mutate, e.g. ser/io.py (default: %(default)s)")
    p.add_argument("--tests", default=None,
                   help='pytest paths/args for killing mutants, one string for every module, e.g. '
                        '"tests/" or "tests/test_card.py"; always run with -m "not slow" (default: '
                        "per module, the test files that import it, else those that import a "
                        "module that imports it)")
    p.add_argument("--max-children", type=int, default=1,
                   help="mutants tested side by side (default: %(default)s; this box has 2 cores)")
    p.add_argument("--out", type=Path, default=None,
                   help="write the results here too: .json (machine-readable) or .md")
    p.add_argument("--functions", nargs="+", default=None, metavar="GLOB",
                   help="test only the mutants of these functions (globs; a method is Class.name), "
                        "e.g. --functions 'predict*' Card.row; all mutants are still made")
    p.add_argument("--deselect-failing", action="store_true",
                   help="first run the tests on the unmutated copy and leave out those that fail "
                        "(mutmut needs a passing suite; useful while others edit the tree)")
    p.add_argument("--keep", action="store_true",
                   help="keep each run's temporary copy (its path is printed) to rerun mutmut there")
    args = p.parse_args(argv)
    for m in args.modules:
        if not (m.startswith("ser/") and m.endswith(".py") and (ROOT / m).is_file()):
            p.error(f"{m}: not a module file under ser/")
    if args.max_children < 1:
        p.error("--max-children must be at least 1")
    return args


def dotted(module: str) -> str:
    """``ser/models/cnn1d.py`` -> ``ser.models.cnn1d``."""
    return module.removesuffix(".py").replace("/", ".")


def file_imports(path: Path) -> set[str]:
    """The ``ser`` modules a file imports, anywhere in it (read by ``deps.py``, not run;
    ``ser._`` names a file that is not part of the package)."""
    return deps._imports([ast.parse(path.read_text(encoding="utf-8"))], "ser._", False, ROOT)


def module_tests(module: str) -> list[str]:
    """The test files for ``module``: those that import it; when none does, those
    that import a module of ``ser/`` that imports it; when none does, all of tests/."""
    target = dotted(module)
    imports = {t: file_imports(t) for t in sorted((ROOT / "tests").glob("test_*.py"))}
    direct = [t for t, found in imports.items() if target in found]
    if not direct:
        users = {dotted(str(m.relative_to(ROOT))) for m in (ROOT / "ser").rglob("*.py")}
        users = {u for u in users if target in deps._module_imports(u, ROOT)}
        direct = [t for t, found in imports.items() if found & users]
    return [str(t.relative_to(ROOT)) for t in direct] or DEFAULT_TESTS


def mutant_globs(module: str, functions: list[str] | None) -> list[str]:
    """mutmut's mutant-name globs for ``functions`` of ``module`` (none: every mutant)."""
    globs = []
    for f in functions or []:
        cls, _, name = f.rpartition(".")
        globs.append(f"{dotted(module)}.xǁ{cls}ǁ{name}__mutmut_*" if cls else f"{dotted(module)}.x_{f}__mutmut_*")
    return globs


def mutmut_config(module: str, tests: list[str]) -> str:
    """The ``[tool.mutmut]`` table (pyproject.toml) that mutates ``module`` only."""
    def toml_list(items: list[str]) -> str:
        """A TOML array of strings (JSON strings are TOML basic strings)."""
        return "[" + ", ".join(json.dumps(i) for i in items) + "]"

    return "\n".join([
        "[tool.mutmut]",
        'source_paths = ["ser"]',  # the whole package is copied and importable as ser.*
        f"only_mutate = {toml_list([module])}",  # ... but only this file is mutated
        f"also_copy = {toml_list(ALSO_COPY)}",
        f"pytest_add_cli_args = {toml_list(FAST_ONLY)}",
        f"pytest_add_cli_args_test_selection = {toml_list(tests)}",
        'process_isolation = "forkserver"',
        "use_git_change_detection = false",
        "",
    ])


def make_workspace() -> Path:
    """A fresh temporary copy of what the tests need (mutmut's config comes later)."""
    work = Path(tempfile.mkdtemp(prefix="ser-mutation-"))
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    for rel in COPIED:
        src, dest = ROOT / rel, work / rel
        if src.is_dir():
            shutil.copytree(src, dest, ignore=skip)
        elif src.is_file():
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest)
    return work


def failing_tests(work: Path, tests: list[str], env: dict[str, str]) -> tuple[list[str], str]:
    """The selected fast tests that fail on the unmutated copy (mutmut needs them all to
    pass), and pytest's summary of them."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-rfE", "--tb=line", "-p", "no:randomly",
           *FAST_ONLY, *tests]
    proc = subprocess.run(cmd, cwd=work, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, errors="replace")
    failed = [line.split(" ", 1)[1].split(" - ", 1)[0] for line in proc.stdout.splitlines()
              if line.startswith(("FAILED ", "ERROR "))]
    if proc.returncode not in (0, 1) or (proc.returncode == 1 and not failed):
        raise SystemExit(f"pytest could not run the tests ({' '.join(tests)}):\n{tail(proc.stdout)}")
    return failed, tail(proc.stdout, 20)


def tail(output: str, n: int = 60) -> str:
    """The last ``n`` lines of ``output`` without mutmut's spinner redraws."""
    lines = [line.rsplit("\r", 1)[-1] for line in output.splitlines()]
    return "\n".join([line for line in lines if line.strip() and line[0] not in SPINNER][-n:])


def run_environment() -> dict[str, str]:
    """The environment of the mutmut run: the data set found from the repository
    (the copy has no ``../shared``), no display, no stray caches."""
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONDONTWRITEBYTECODE="1")
    if "SER_DATA" not in env:
        from ser.data.dataset import find_data_dir
        from ser.errors import DataError
        try:
            env["SER_DATA"] = str(find_data_dir())
        except DataError:
            pass  # the tests that need it skip, as in the repository
    env.pop("PYTHONPATH", None)  # ser must come from the mutated copy, not from here
    return env


def mutmut(work: Path, *args: str, env: dict[str, str]) -> str:
    """Run ``mutmut ARGS`` in ``work``; its output, or SystemExit with it when mutmut fails."""
    cmd = [sys.executable, "-c", "import sys; from mutmut.__main__ import cli; sys.exit(cli())", *args]
    # its own session: when this script is stopped, mutmut's fork server and workers go too
    with subprocess.Popen(cmd, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, errors="replace", start_new_session=True) as proc:
        try:
            out, _ = proc.communicate()
        except BaseException:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    if proc.returncode != 0:
        raise SystemExit(f"mutmut {' '.join(args)} failed (exit {proc.returncode}) in {work}:\n{tail(out)}")
    return out


def read_statuses(work: Path, env: dict[str, str]) -> dict[str, str]:
    """Every mutant's status, from ``mutmut results --all true``."""
    out = mutmut(work, "results", "--all", "true", env=env)
    statuses = {}
    for line in out.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if sep and "__mutmut_" in name:
            statuses[name] = status
    return statuses


def summarise(statuses: dict[str, str]) -> dict[str, float]:
    """Counts per report column, and the kill percentage over the mutants some test reaches."""
    counts = dict.fromkeys(COLUMNS, 0)
    counts["made"] = len(statuses)
    for status in statuses.values():
        counts[COLUMN_OF.get(status, "other")] += 1
    tested = counts["made"] - counts["no tests"]
    counts["killed %"] = round(100 * counts["killed"] / tested, 1) if tested else 0.0
    return counts


def function_of(mutant: str) -> str:
    """``ser.io.x_write_json__mutmut_3`` -> ``write_json``; ``...xǁCardǁrow__mutmut_1`` -> ``Card.row``."""
    mangled = mutant.rsplit(".", 1)[1].rsplit("__mutmut_", 1)[0]
    if mangled.startswith("xǁ"):
        return ".".join(mangled[2:].split("ǁ"))
    return mangled.removeprefix("x_")


def run_mutmut(work: Path, module: str, tests: list[str], env: dict[str, str],
               args: argparse.Namespace) -> None:
    """``mutmut run`` over ``module`` in ``work``; when it fails, say which unmutated tests fail."""
    (work / "pyproject.toml").write_text(mutmut_config(module, tests), encoding="utf-8")
    try:
        mutmut(work, "run", "--max-children", str(args.max_children),
               *mutant_globs(module, args.functions), env=env)
    except SystemExit as exc:
        failed, summary = failing_tests(work, tests, env)
        if not failed:
            raise
        raise SystemExit(f"{exc}\n\nThe unmutated copy fails {len(failed)} of these tests (mutmut needs "
                         f"them to pass; --deselect-failing leaves them out):\n{summary}") from None


def mutate_module(module: str, tests: list[str], args: argparse.Namespace) -> dict:
    """One mutmut run over ``module`` in its own copy; its counts, survivors' diffs and wall time."""
    start = time.monotonic()
    env = run_environment()
    work = make_workspace()
    deselected: list[str] = []
    try:
        if args.deselect_failing:
            deselected, summary = failing_tests(work, tests, env)
            if deselected:
                print(f"   left out, failing before any mutation:\n{summary}", file=sys.stderr)
        selection = tests + [arg for t in deselected for arg in ("--deselect", t)]
        run_mutmut(work, module, selection, env, args)
        statuses = read_statuses(work, env)
        if args.functions:
            globs = mutant_globs(module, args.functions)
            statuses = {n: s for n, s in statuses.items() if any(fnmatch(n, g) for g in globs)}
        if not statuses:
            raise SystemExit(f"mutmut made no mutants of {module}")
        survivors = {name: mutmut(work, "show", name, env=env).strip()
                     for name, status in sorted(statuses.items()) if status == "survived"}
    finally:
        if args.keep:
            print(f"   kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    others = {n: s for n, s in statuses.items() if s not in ("killed", "survived")}
    return {"module": module, "functions": args.functions, "tests": tests, "deselected": deselected,
            "wall_s": round(time.monotonic() - start, 1), **summarise(statuses),
            "survivors": survivors, "others": others}


def describe(diff: str) -> str:
    """A survivor's diff in one line: ``old -> new`` of its first changed lines."""
    changed = [line for line in diff.splitlines() if line[:1] in "-+" and line[:3] not in ("---", "+++")]
    old = next((line[1:].strip() for line in changed if line[0] == "-"), "")
    new = next((line[1:].strip() for line in changed if line[0] == "+"), "")
    return f"`{old}` -> `{new}`"


def table(results: list[dict]) -> str:
    """The per-module counts as a markdown table."""
    head = ["module", *COLUMNS, "killed %", "wall s"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        cells = [r["module"], *(str(r[c]) for c in COLUMNS), f"{r['killed %']:.1f}", f"{r['wall_s']:.0f}"]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def details(results: list[dict]) -> str:
    """Every surviving mutant's diff, and the mutants neither killed nor surviving, by module."""
    parts = []
    for r in results:
        parts.append(f"\n## {r['module']}: {len(r['survivors'])} surviving\n")
        for name, diff in r["survivors"].items():
            parts.append(f"### {function_of(name)}: {describe(diff)}\n\n```diff\n{diff}\n```\n")
        for name, status in sorted(r["others"].items()):
            parts.append(f"- {status}: `{name}` ({function_of(name)})")
    return "\n".join(parts)


def write_out(path: Path, results: list[dict]) -> None:
    """The results as JSON (``.json``) or markdown (anything else)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".json":
        path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    else:
        path.write_text("# Mutation testing\n\n" + table(results) + "\n" + details(results) + "\n",
                        encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """Mutate each module in turn, print the table and the survivors, write ``--out``."""
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped (SIGTERM)"))  # clean up as on Ctrl-C
    results = []
    for module in args.modules:
        tests = shlex.split(args.tests) if args.tests else module_tests(module)
        print(f"== {module} (tests: {' '.join(tests)})", file=sys.stderr, flush=True)
        try:
            results.append(mutate_module(module, tests, args))
        except SystemExit as exc:
            print(exc, file=sys.stderr)
            return 1
        print(f"   {table(results[-1:]).splitlines()[-1]}", file=sys.stderr, flush=True)
        if args.out:
            write_out(args.out, results)  # after each module: a long run keeps what it did
    print(details(results))
    print()
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
