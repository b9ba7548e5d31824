"""Which modules of a package a piece of code runs, read from its imports.

``dodo.py`` uses this to give each task the ``ser/`` files it depends on
(``file_dep``) instead of a hand-typed list that goes stale. Imports are read
with :mod:`ast`, never executed: ``import ser.x``, ``from ser.x import y``,
``from . import x``, ``from ser.x import y`` and ``from ..x import y``, at module
level or inside function bodies (``ser.pipeline`` imports lazily inside each
function). Only modules of the same top-level package are followed; imports
built at run time (``importlib.import_module``) are not seen.

A function's code is

* the modules its body (and the same-module helpers it uses) imports, plus
  the imports at the top of its own module, each followed transitively through
  *every* import of the module reached (a module is run whole once imported),
  and the package ``__init__.py`` files on the way;
* the source text of the function and of the same-module definitions it
  refers to by name (functions, classes, module-level assignments), followed
  transitively: its own module is *not* a file dependency, so editing one
  function of ``ser/pipeline.py`` changes only that function's code.

No doit inside.
"""
from __future__ import annotations

import ast
import hashlib
import inspect
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

_FUNCTION_NODES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
_PARSED: dict[tuple[str, str], ast.Module] = {}


@dataclass(frozen=True)
class Code:
    """What a function runs: module files, and its own source text."""

    files: tuple[Path, ...]  # sorted
    source: str  # the function and the same-module definitions it uses

    @property
    def digest(self) -> str:
        """SHA-256 of :attr:`source`."""
        return hashlib.sha256(self.source.encode()).hexdigest()


def module_file(name: str, root: str | os.PathLike) -> Path | None:
    """``root/a/b.py`` or ``root/a/b/__init__.py`` for module ``a.b``; None if neither exists."""
    base = Path(root).joinpath(*name.split("."))
    for path in (base.with_name(base.name + ".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _parse(path: Path) -> ast.Module:
    text = path.read_text(encoding="utf-8")
    key = (str(path), text)  # keyed by content: an edit within the same mtime tick is seen
    if key not in _PARSED:
        _PARSED[key] = ast.parse(text, filename=str(path))
    return _PARSED[key]


def _walk(node: ast.AST, *, into_functions: bool = True):
    """``ast.walk``, optionally without descending into function bodies."""
    if not into_functions and isinstance(node, _FUNCTION_NODES):
        return
    pending = [node]
    while pending:
        n = pending.pop()
        yield n
        for child in ast.iter_child_nodes(n):
            if into_functions or not isinstance(child, _FUNCTION_NODES):
                pending.append(child)


def _imports(nodes: Iterable[ast.AST], module: str, is_package: bool, root: Path,
             *, into_functions: bool = True) -> set[str]:
    """Names of the modules of ``module``'s package that ``nodes`` import."""
    top = module.split(".")[0]
    package = module if is_package else module.rpartition(".")[0]
    found = set()
    for tree in nodes:
        for n in _walk(tree, into_functions=into_functions):
            if isinstance(n, ast.Import):
                found.update(a.name for a in n.names)
            elif isinstance(n, ast.ImportFrom):
                if n.level:
                    parts = package.split(".") if package else []
                    if n.level - 1 > len(parts):
                        continue  # beyond the top package: not ours
                    parts = parts[:len(parts) - (n.level - 1)]
                    base = ".".join(parts + ([n.module] if n.module else []))
                else:
                    base = n.module or ""
                found.add(base)
                # ``from ser.x import y``: y may be a submodule, or just a name in x
                found.update(f"{base}.{a.name}" for a in n.names
                             if a.name != "*" and module_file(f"{base}.{a.name}", root))
    ours = set()
    for name in found:
        if name == top or name.startswith(top + "."):
            parts = name.split(".")
            # importing a.b.c runs a/__init__.py and a/b/__init__.py first
            ours.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return {m for m in ours if module_file(m, root)}


def _module_imports(module: str, root: Path) -> set[str]:
    """Every module of the package that ``module`` imports, anywhere in it."""
    path = module_file(module, root)
    if path is None:
        return set()
    return _imports([_parse(path)], module, path.name == "__init__.py", root)


def _closure(modules: Iterable[str], root: Path) -> set[str]:
    """``modules`` and everything they import, transitively (cycles are fine)."""
    seen: set[str] = set()
    pending = [m for m in modules if module_file(m, root)]
    while pending:
        m = pending.pop()
        if m not in seen:
            seen.add(m)
            pending.extend(_module_imports(m, root) - seen)
    return seen


def _files(modules: Iterable[str], root: Path, exclude: Iterable[str]) -> tuple[Path, ...]:
    exclude = set(exclude)
    return tuple(sorted(module_file(m, root) for m in modules if m not in exclude))


def module_deps(modules: Iterable[str], root: str | os.PathLike, *, exclude: Iterable[str] = ()) -> tuple[Path, ...]:
    """The files of ``modules`` (dotted names under ``root``) and of every
    module of their package they import, transitively.

    ``exclude``: module names left out of the answer (their imports are still
    followed).
    """
    root = Path(root)
    return _files(_closure(modules, root), root, exclude)


def code_deps(module: str, name: str, root: str | os.PathLike, *, exclude: Iterable[str] = ()) -> Code:
    """The code the top-level function ``name`` of ``module`` runs (see the module docstring)."""
    root = Path(root)
    path = module_file(module, root)
    if path is None:
        raise FileNotFoundError(f"module {module} not found under {root}")
    tree = _parse(path)
    is_package = path.name == "__init__.py"
    defs: dict[str, ast.stmt] = {}
    for stmt in tree.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defs[stmt.name] = stmt
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            for t in targets:
                for n in ast.walk(t):
                    if isinstance(n, ast.Name):
                        defs[n.id] = stmt
    if name not in defs:
        raise LookupError(f"{path}: no top-level definition named {name}")
    used, pending = [], [defs[name]]
    while pending:  # the definitions the function refers to, transitively
        stmt = pending.pop()
        if any(stmt is u for u in used):
            continue
        used.append(stmt)
        pending.extend(defs[n.id] for n in ast.walk(stmt) if isinstance(n, ast.Name) and n.id in defs)
    used.sort(key=lambda s: s.lineno)
    text = path.read_text(encoding="utf-8")
    source = "\n\n".join(ast.get_source_segment(text, s, padded=True) for s in used)
    direct = _imports(used, module, is_package, root)
    direct |= _imports(tree.body, module, is_package, root, into_functions=False)
    direct.discard(module)  # its own module is tracked by ``source``, not as a file
    modules = _closure(direct, root)
    # a cycle back into the function's own module makes the whole module a dependency
    return Code(files=_files(modules, root, exclude), source=source)


def function_deps(fn, *, exclude: Iterable[str] = ()) -> Code:
    """:func:`code_deps` of a function object (defined at the top of a module
    of a package, such as ``ser.pipeline.build_svm``)."""
    module = fn.__module__
    path = Path(inspect.getsourcefile(fn)).resolve()
    depth = module.count(".") + (1 if path.name == "__init__.py" else 0)
    root = path.parents[depth]
    return code_deps(module, fn.__name__, root, exclude=exclude)
