"""The layer contract of issue 11, checked on the source (AST, no import): imports point down only, no cycles, and
function-level imports only for optional or heavy dependencies.

Layers, top to bottom (a module may import its own layer and the layers below it):
pipelines > factors, signals, plots, abuse, cartography, studies > models > training, checkpoint >
encode, cohort, io, synthetic > data > device, utils, errors, metrics, optim.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pathways"
LAYERS = [
    ("device", "utils", "errors", "metrics", "optim", "version", "disclosure", "progress"),
    ("data",),
    ("encode", "cohort", "io", "synthetic"),
    ("training", "checkpoint"),
    ("models",),
    ("factors", "signals", "plots", "abuse", "cartography", "studies"),
    ("pipelines",),
]
RANK = {top: rank for rank, names in enumerate(LAYERS) for top in names}
# function-level imports allowed: optional or heavy dependencies (roots of the imported module name)
LAZY_ALLOWED = {"torch", "matplotlib", "duckdb", "tensorboard", "optuna", "importlib.metadata", "mlflow", "pyspark",
                "pathways.plots"}  # pathways.plots is the matplotlib layer: loaded only when figures are drawn
# hydra / omegaconf are imported lazily only by the CLI
LAZY_ALLOWED_IN = {"pipelines/cli.py": {"hydra", "omegaconf"}}
# `import pathways` stays light: the package facade loads the checkpoint reader (torch) on first use
FACADE_LAZY = {("__init__.py", "pathways.checkpoint")}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return RANK.get(parts[1]) if len(parts) > 1 else None  # the root facade `pathways` has no layer


def _resolve(node: ast.ImportFrom | ast.Import, module: str, is_package: bool) -> list[str]:
    """The modules an import statement names (``from pathways.a import b`` -> pathways.a.b when b is a module)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        anchor = module.split(".") if is_package else module.split(".")[:-1]
        anchor = anchor[: len(anchor) - node.level + 1]
        base = ".".join(anchor + ([base] if base else []))
    names = [f"{base}.{alias.name}" for alias in node.names]
    return list(dict.fromkeys(sub if sub in MODULES else base for sub in names))


def _type_checking(node: ast.AST) -> bool:
    """An ``if TYPE_CHECKING:`` block: imports for type hints only, never executed."""
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (getattr(test, "id", None) == "TYPE_CHECKING"
                                         or getattr(test, "attr", None) == "TYPE_CHECKING")


def _imports(path: Path) -> list[tuple[str, int, bool, bool]]:
    """(imported module, line, at function level, for type hints only) for every import of ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    module, is_package = _module_name(path), path.name == "__init__.py"
    found: list[tuple[str, int, bool, bool]] = []

    def visit(node: ast.AST, in_function: bool, typing_only: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.extend((name, child.lineno, in_function, typing_only)
                             for name in _resolve(child, module, is_package))
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)),
                  typing_only or _type_checking(child))

    visit(tree, False, False)
    return found


IMPORTS = {module: _imports(path) for module, path in MODULES.items()}


def _where(module: str, line: int) -> str:
    return f"{MODULES[module].relative_to(PACKAGE.parent)}:{line}"


def test_every_subpackage_has_a_layer():
    unknown = sorted({m.split(".")[1] for m in MODULES if "." in m} - set(RANK))
    assert not unknown, f"modules of pathways/ outside the layer map (add them to LAYERS): {unknown}"


def test_no_upward_imports():
    upward = []
    for module, imports in IMPORTS.items():
        own = _layer(module)
        for name, line, _, _ in imports:
            theirs = _layer(name) if name.startswith("pathways.") else None
            if own is not None and theirs is not None and theirs > own:
                upward.append(f"{_where(module, line)}: {module} imports {name} (layer {theirs} > {own})")
    assert not upward, "upward imports:\n" + "\n".join(upward)


def test_function_level_imports_only_for_optional_dependencies():
    offenders = []
    for module, imports in IMPORTS.items():
        rel = str(MODULES[module].relative_to(PACKAGE))
        allowed = LAZY_ALLOWED | LAZY_ALLOWED_IN.get(rel, set())
        for name, line, lazy, _ in imports:
            ok = any(name == a or name.startswith(a + ".") for a in allowed) or (rel, name) in FACADE_LAZY
            if lazy and not ok:
                offenders.append(f"{_where(module, line)}: import of {name} inside a function")
    assert not offenders, "function-level imports of non-optional modules:\n" + "\n".join(offenders)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return out


def test_no_import_cycles_between_modules():
    # a package's __init__ re-exporting its own submodules is not a cycle of concepts; imports under
    # `if TYPE_CHECKING:` (type hints only, never executed) do not count either
    graph: dict[str, set[str]] = {m: set() for m in MODULES if m != "pathways"}
    for module, imports in IMPORTS.items():
        if module == "pathways":
            continue
        for name, _, _, typing_only in imports:
            if not typing_only and name in graph and name != module and not module.startswith(name + "."):
                graph[module].add(name)
    cycles = _cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


@pytest.mark.parametrize("module", ["pathways.data", "pathways.pipelines.cli"])
def test_the_contract_sees_the_package(module):
    assert module in MODULES and IMPORTS[module]
