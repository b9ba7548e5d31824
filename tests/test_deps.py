"""deps.py (beside dodo.py) on a small fake package: which files a function's code runs."""
import textwrap
from pathlib import Path

import pytest

import deps


def write_package(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


@pytest.fixture
def fake(tmp_path) -> Path:
    """pkg: steps.py imports lazily per function, like ser/pipeline.py."""
    return write_package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/steps.py": """
            import os
            from .common import helper

            LIMIT = 3

            def say(msg):
                print(msg)

            def step_a():
                from .alpha import run
                say("a")
                return run()

            def step_b():
                from pkg.beta import run
                return run(LIMIT)

            def step_c():
                import pkg.sub.gamma
                from . import delta
                return delta

            def step_d():
                from .sub import gamma  # a submodule imported by name
                return gamma
        """,
        "pkg/common.py": "import numpy\n",
        "pkg/alpha.py": "from .shared import x\n",
        "pkg/shared.py": "x = 1\n",
        "pkg/beta.py": """
            def run(n):
                from .lazy import y  # inside a function body: followed too
                return y
        """,
        "pkg/lazy.py": "y = 2\n",
        "pkg/sub/__init__.py": "",
        "pkg/sub/gamma.py": "from ..shared import x\nfrom .. import cyc1\n",
        "pkg/delta.py": "from pkg.cyc1 import a\n",
        "pkg/cyc1.py": "from .cyc2 import b\na = 1\n",
        "pkg/cyc2.py": "from .cyc1 import a\nb = 2\nfrom ... import outside  # beyond the package: ignored\n",
        "pkg/config.py": "from .shared import x\n",
        "pkg/uses_config.py": "from .config import x\n",
    })


def names(files, root) -> set[str]:
    return {str(Path(f).relative_to(root)) for f in files}


def test_function_code_is_its_own_imports_plus_module_level_ones(fake):
    code = deps.code_deps("pkg.steps", "step_a", fake)
    assert names(code.files, fake) == {"pkg/__init__.py", "pkg/common.py", "pkg/alpha.py", "pkg/shared.py"}
    # not the other functions' lazy imports, and not its own module (its text is tracked instead)
    assert "pkg/steps.py" not in names(code.files, fake)


def test_imports_inside_function_bodies_are_followed_transitively(fake):
    code = deps.code_deps("pkg.steps", "step_b", fake)
    assert names(code.files, fake) == {"pkg/__init__.py", "pkg/common.py", "pkg/beta.py", "pkg/lazy.py"}


def test_relative_levels_packages_and_cycles(fake):
    code = deps.code_deps("pkg.steps", "step_c", fake)
    assert names(code.files, fake) == {
        "pkg/__init__.py", "pkg/common.py", "pkg/sub/__init__.py", "pkg/sub/gamma.py", "pkg/shared.py",
        "pkg/delta.py", "pkg/cyc1.py", "pkg/cyc2.py"}


def test_from_package_import_submodule(fake):
    files = names(deps.code_deps("pkg.steps", "step_d", fake).files, fake)
    assert {"pkg/sub/__init__.py", "pkg/sub/gamma.py", "pkg/cyc1.py"} <= files


def test_source_holds_the_function_and_the_same_module_names_it_uses(fake):
    a = deps.code_deps("pkg.steps", "step_a", fake).source
    assert "def step_a" in a and "def say" in a and "LIMIT" not in a and "def step_b" not in a
    b = deps.code_deps("pkg.steps", "step_b", fake).source
    assert "LIMIT = 3" in b and "def say" not in b


def test_editing_one_function_changes_only_its_digest(fake):
    before = {f: deps.code_deps("pkg.steps", f, fake).digest for f in ("step_a", "step_b", "step_c")}
    steps = fake / "pkg" / "steps.py"
    steps.write_text(steps.read_text().replace('say("a")', 'say("A")'))
    after = {f: deps.code_deps("pkg.steps", f, fake).digest for f in before}
    assert [f for f in before if before[f] != after[f]] == ["step_a"]


def test_a_helper_edit_changes_its_callers(fake):
    before = deps.code_deps("pkg.steps", "step_a", fake).digest
    steps = fake / "pkg" / "steps.py"
    steps.write_text(steps.read_text().replace("print(msg)", "print(msg, flush=True)"))
    assert deps.code_deps("pkg.steps", "step_a", fake).digest != before


def test_module_deps_and_exclude(fake):
    assert names(deps.module_deps(["pkg.uses_config"], fake), fake) == {
        "pkg/__init__.py", "pkg/uses_config.py", "pkg/config.py", "pkg/shared.py"}
    # an excluded module is left out, but what it imports is still followed
    assert names(deps.module_deps(["pkg.uses_config"], fake, exclude=["pkg.config"]), fake) == {
        "pkg/__init__.py", "pkg/uses_config.py", "pkg/shared.py"}


def test_unknown_function_is_an_error(fake):
    with pytest.raises(LookupError, match="no top-level definition named nope"):
        deps.code_deps("pkg.steps", "nope", fake)


def test_real_pipeline_function():
    from ser import pipeline

    code = deps.function_deps(pipeline.build_svm, exclude=["ser.config"])
    stems = {f.stem for f in code.files}
    assert {"svm", "io", "dataset"} <= stems  # its lazy import, pipeline's module-level ones
    assert not stems & {"pipeline", "config", "cnn1d", "cnn2d", "report"}
    assert "def build_svm" in code.source and "def say" in code.source
