"""The layout is a contract: qcore's folders follow the data flow and import only from earlier stages, without
cycles; qcore knows no UI; pages do no tensor work; modules and functions stay short."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

QCORE = ROOT / "qcore"
# The stages in data-flow order (DESIGN.md); a module may import its own stage and earlier ones only.
STAGE = {
    "errors": 0, "progress": 0, "format": 0, "labels": 0, "runtime": 0,  # foundations every stage shares
    "models": 1, "methods": 2, "formats": 3, "measure": 4, "analysis": 5, "api": 6, "cli": 7, "__main__": 8,
}  # fmt: skip
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
LONG_LOOPS = {"gptq_loop", "optimize_groups"}  # algorithms that are one loop in their paper


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def qcore_modules() -> dict[str, Path]:
    return {module_name(p): p for p in QCORE.rglob("*.py")}


def imports_of(path: Path, root: Path = ROOT) -> list[tuple[str, int]]:
    """(imported module, line) for every import in the file, function bodies included, relative ones resolved."""
    package = module_name(path, root).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [f"{target}.{a.name}" for a in node.names]
            out += [(n, node.lineno) for n in [target, *names]]
        elif isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
    return out


def resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The qcore module an import names (a name imported from a module resolves to the module)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name if name.startswith("qcore") else None


def stage(module: str) -> int | None:
    parts = module.split(".")
    return STAGE.get(parts[1]) if len(parts) > 1 else None


def graph() -> dict[str, set[str]]:
    modules = qcore_modules()
    edges: dict[str, set[str]] = {}
    for name, path in modules.items():
        if name == "qcore":  # the package's public API re-exports everything; it is nobody's dependency
            continue
        targets = {resolve(n, modules) for n, _ in imports_of(path)}
        edges[name] = {t for t in targets if t and t not in (name, "qcore")}
    return edges


def test_every_qcore_module_belongs_to_a_stage():
    unknown = [m for m in qcore_modules() if m != "qcore" and stage(m) is None]
    assert not unknown, f"modules outside the stages of DESIGN.md: {unknown}"


def test_imports_run_from_a_later_stage_to_an_earlier_one_only():
    upward = [
        f"{m} (stage {stage(m)}) imports {t} (stage {stage(t)})"
        for m, targets in graph().items()
        for t in targets
        if stage(t) > stage(m)
    ]
    assert not upward, "\n".join(upward)


def find_cycles(edges: dict[str, set[str]]) -> list[str]:
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        for nxt in sorted(edges.get(node, ())):
            if nxt in path:
                cycles.append(" -> ".join(path[path.index(nxt) :] + [nxt]))
            elif len(path) < 20:
                visit(nxt, path + [nxt])

    for start in edges:
        visit(start, [start])
    return cycles


def test_qcore_has_no_import_cycle():
    cycles = find_cycles(graph())
    assert not cycles, min(cycles, key=len)


def test_the_checks_see_what_they_must(tmp_path):
    """A late import inside a function, written relatively, is resolved; a two-module loop is a cycle."""
    f = tmp_path / "qcore" / "methods" / "x.py"
    f.parent.mkdir(parents=True)
    f.write_text("def late():\n    from ..cli import main\n")
    assert ("qcore.cli.main", 2) in imports_of(f, tmp_path)
    assert stage("qcore.cli") > stage("qcore.methods.x")
    assert find_cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}})
    assert not find_cycles({"a": {"b"}, "b": set()})


@pytest.mark.parametrize("folder", ["qcore"])
def test_qcore_never_imports_streamlit_or_plotly(folder):
    hits = [
        f"{p.relative_to(ROOT)}:{line} {n}"
        for p in (ROOT / folder).rglob("*.py")
        for n, line in imports_of(p)
        if n.split(".")[0] in ("streamlit", "plotly")
    ]
    assert not hits, hits


def test_pages_do_no_tensor_work():
    hits = [
        f"{p.name}:{line} {n}"
        for p in (ROOT / "app_pages").glob("*.py")
        for n, line in imports_of(p)
        if n.split(".")[0] in ("torch", "numpy")
    ]
    assert not hits, hits


def source_files() -> list[Path]:
    return [p for folder in ("qcore", "ui", "app_pages", "bench") for p in (ROOT / folder).rglob("*.py")]


def test_modules_stay_short():
    long = {
        str(p.relative_to(ROOT)): n for p in source_files() if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not long, long


def test_functions_stay_short_except_the_algorithm_loops():
    long = {}
    for p in source_files():
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name not in LONG_LOOPS:
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long[f"{p.relative_to(ROOT)}:{node.name}"] = n
    assert not long, long
