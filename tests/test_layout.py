"""The package's stages import one way, down the build: data, features, models, evaluation, report.

``ser/`` is cut by stage (ser/__init__.py). A module may import its own stage
and the stages before it, and the shared base (errors, config, io, metrics,
results) that every stage uses; the base imports only itself, and only the
pipeline and the classifier of new clips import everything. Imports inside
function bodies count too: a lazy import is still a dependency.
"""
import ast
from pathlib import Path

import pytest

SER = Path(__file__).resolve().parent.parent / "ser"
BASE = {"ser", "ser.errors", "ser.config", "ser.io", "ser.metrics", "ser.results"}
STAGES = ["data", "features", "models", "evaluate", "report"]
APPS = {"ser.pipeline", "ser.classify"}


def rank(module: str) -> int:
    """0 for the base, 1.. for the stages in build order, 99 for the applications."""
    if module in BASE:
        return 0
    if module in APPS:
        return 99
    stage = module.split(".")[1]
    return 1 + STAGES.index(stage)


def ser_imports(path: Path, module: str) -> set[str]:
    """Every ``ser`` module that ``path`` imports, resolved to a dotted name."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            for a in node.names:  # "from ser.models import cnn1d" imports the module ser.models.cnn1d
                sub = f"{base}.{a.name}"
                found.add(sub if module_path(sub) else base)
    return {m for m in found if m == "ser" or m.startswith("ser.")}


def module_path(module: str) -> Path | None:
    p = SER.parent.joinpath(*module.split("."))
    for c in (p.with_suffix(".py"), p / "__init__.py"):
        if c.is_file():
            return c
    return None


MODULES = sorted(".".join(p.relative_to(SER.parent).with_suffix("").parts).removesuffix(".__init__")
                 for p in SER.rglob("*.py"))


def test_every_module_is_in_a_known_stage():
    for m in MODULES:
        rank(m)  # raises for a module outside the base, the stages and the applications
    assert {m.split(".")[1] for m in MODULES if m.count(".") >= 2} == set(STAGES)


@pytest.mark.parametrize("module", MODULES)
def test_imports_run_down_the_stages(module):
    path = module_path(module)
    upward = sorted(m for m in ser_imports(path, module) if rank(m) > rank(module))
    assert not upward, f"{module} (stage {rank(module)}) imports later stages: {upward}"


def test_the_rule_sees_a_lazy_upward_import(tmp_path):
    f = tmp_path / "x.py"
    f.write_text("def f():\n    from ser.report.render import write_report\n    from .speakers import x\n")
    assert ser_imports(f, "ser.data.audio") == {"ser.report.render", "ser.data.speakers"}
