"""The house rules of the package layout, read from the source with ``ast``.

Every import of every module under ``src/transferlab`` (at the top and inside
functions) is mapped to the package it comes from. A package may import only
from a strictly lower layer of :data:`LAYERS` or from the base modules, only
public names, and only through the package (``from transferlab.models import
build_for``, never ``from transferlab.models._registry import build_for``).
The pure packages must import without torch and without ``sklearn.mixture``.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import transferlab

ROOT = Path(transferlab.__file__).resolve().parent

#: Layer of every package, lowest first. A package imports only from lower layers (and the
#: base modules, layer 0, which import only each other); packages of one layer never import
#: each other. The root ``transferlab`` package itself (``__version__``) counts as base.
LAYERS = {
    "_validation": 0,
    "_paths": 0,
    "_atomic": 0,
    "_progress": 0,
    "_denormals": 0,
    "_malloc": 0,
    "_cpus": 0,
    "_prefetch": 0,
    "_linalg": 0,
    "runner": 1,
    "report": 1,
    "data": 2,
    "models": 3,
    "train": 4,
    "features": 5,
    "scores": 6,
    "analysis": 6,
    "evaluate": 7,
    "zoo": 8,
    "rank": 9,
    "studies": 10,
    "cli": 11,
}

#: Packages that must import without these modules (checked in a fresh interpreter).
PURE_PACKAGES = ("transferlab.scores", "transferlab.evaluate", "transferlab.analysis")
HEAVY_MODULES = ("torch", "sklearn.mixture")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _package(module: str) -> str | None:
    """``transferlab.models._base`` -> ``models``; ``transferlab`` (the root) -> None."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _is_base(package: str | None) -> bool:
    return package is None or LAYERS.get(package) == 0


def imports_of(module: str, source: str, *, is_package: bool = False) -> list[tuple[int, str, list[str]]]:
    """Every ``transferlab`` import in ``source``: ``(line, imported module, imported names)``.

    Top-level imports and those inside functions or ``if`` blocks alike; relative
    imports are resolved against ``module``; ``from transferlab import data`` is an
    import of ``transferlab.data``; ``importlib.import_module("transferlab.x")`` with a
    literal name counts too.
    """
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                target = ".".join(anchor + ([target] if target else []))
            names = [alias.name for alias in node.names]
            if target == "transferlab":
                # ``from transferlab import data`` imports a subpackage; ``__version__`` is the root's own
                subpackages = [n for n in names if n in LAYERS]
                found += [(node.lineno, f"transferlab.{n}", []) for n in subpackages]
                rest = [n for n in names if n not in LAYERS]
                if rest:
                    found.append((node.lineno, "transferlab", rest))
            else:
                found.append((node.lineno, target, names))
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.args[0].value, []))
    return [(line, target, names) for line, target, names in found if target.split(".")[0] == "transferlab"]


def violations_of(module: str, source: str, *, is_package: bool = False) -> list[str]:
    """The house rules ``module`` breaks: upward/same-level imports, private names across packages."""
    me = _package(module)
    problems = []
    for line, target, names in imports_of(module, source, is_package=is_package):
        other = _package(target)
        where = f"{module}:{line}: {target}"
        if other == me:
            continue  # within one package everything is allowed
        if other is not None and other not in LAYERS:
            problems.append(f"{where}: unknown package {other!r} (add it to LAYERS in tests/test_layers.py)")
            continue
        if me is not None and me not in LAYERS:
            problems.append(f"{where}: module of unknown package {me!r} (add it to LAYERS)")
            continue
        if not _is_base(other):
            if _is_base(me) or LAYERS[other] >= LAYERS[me]:
                kind = "same-level" if not _is_base(me) and LAYERS[other] == LAYERS[me] else "upward"
                problems.append(
                    f"{where}: {kind} import ({me or 'transferlab'} may not import {other}: "
                    f"layer {LAYERS.get(me, 0) if me else 0} <= {LAYERS[other]})"
                )
            private_parts = [p for p in target.split(".")[2:] if p.startswith("_")]
            if private_parts:
                problems.append(f"{where}: private module across packages (import from transferlab.{other})")
        private_names = [n for n in names if n.startswith("_") and not (n.startswith("__") and n.endswith("__"))]
        if private_names:
            problems.append(f"{where}: private names across packages: {', '.join(private_names)}")
    return problems


def _sources() -> list[tuple[str, str, bool]]:
    return [
        (_module_name(path), path.read_text(encoding="utf-8"), path.name == "__init__.py")
        for path in sorted(ROOT.rglob("*.py"))
    ]


def package_graph(sources) -> dict[str, set[str]]:
    """Package -> the packages it imports (cross-package edges only; the root counts as ``transferlab``)."""
    graph: dict[str, set[str]] = {}
    for module, source, is_package in sources:
        me = _package(module) or "transferlab"
        for _, target, _ in imports_of(module, source, is_package=is_package):
            other = _package(target) or "transferlab"
            if other != me:
                graph.setdefault(me, set()).add(other)
    return graph


def cycles_of(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one package (each one holds a cycle)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(set(graph) | {n for targets in graph.values() for n in targets}):
        if node not in index:
            visit(node)
    return components


# --------------------------------------------------------------------------- the checker itself


@pytest.mark.parametrize(
    "module, source, expected",
    [
        ("transferlab.train._probe", "from transferlab.features._extract import extract", ["upward", "private module"]),
        ("transferlab.scores._x", "from transferlab.analysis import cka", ["same-level"]),
        ("transferlab.features._x", "def f():\n    from transferlab.train._fit import _as_arrays", ["private module",
                                                                                                  "private names"]),
        ("transferlab.analysis._x", "from transferlab._validation import _check_matrix", ["private names"]),
        ("transferlab._validation", "import transferlab.data", ["upward"]),
        ("transferlab.zoo._x", "from transferlab import __version__, data", []),
        ("transferlab.data._x", "from transferlab import models", ["upward"]),
        ("transferlab.models._x", "from transferlab.models._base import _private\nfrom . import _mlp", []),
        ("transferlab.features._x", "from transferlab.models import StagedModel\nimport numpy", []),
        ("transferlab.rank._x", "import importlib\nimportlib.import_module('transferlab.studies')", ["upward"]),
        ("transferlab.data._x", "from transferlab.plugins import thing", ["unknown package"]),
    ],
)
def test_checker_finds_what_it_should(module, source, expected):
    problems = violations_of(module, source)
    assert len(problems) == len(expected), problems
    for problem, words in zip(problems, expected, strict=True):
        assert words in problem


def test_relative_imports_resolve_to_their_package():
    assert imports_of("transferlab.train._probe", "from ..features import extract") == [
        (1, "transferlab.features", ["extract"])
    ]
    assert imports_of("transferlab.models", "from ._base import X", is_package=True) == [
        (1, "transferlab.models._base", ["X"])
    ]


def test_cycles_are_found():
    assert cycles_of({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles_of({"a": {"b"}, "b": set()}) == []


# --------------------------------------------------------------------------- the package


def test_every_package_has_a_layer():
    packages = {_package(module) for module, _, _ in _sources()} - {None}
    assert packages <= set(LAYERS), f"add to LAYERS: {sorted(packages - set(LAYERS))}"


def test_imports_follow_the_layers_and_use_public_names():
    problems = [p for module, source, is_package in _sources() for p in violations_of(module, source,
                                                                                       is_package=is_package)]
    assert not problems, "layering violations:\n" + "\n".join(problems)


def test_no_import_cycle_between_packages():
    assert cycles_of(package_graph(_sources())) == []


@pytest.mark.parametrize("package", PURE_PACKAGES)
def test_pure_packages_import_without_torch_or_sklearn_mixture(package):
    code = (
        f"import sys, json\nimport {package}\n"
        f"print(json.dumps([m for m in {list(HEAVY_MODULES)!r} if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [], f"import {package} loaded {out.stdout.strip()}"
