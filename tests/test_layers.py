"""The package's layers only look down: the API and the pages never import each other,
and nothing below them imports either (``chathooks.app`` and the CLI assemble them)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "chathooks"
ASSEMBLERS = {"app.py", "cli.py", "__main__.py"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "chathooks" else None


def test_api_and_pages_do_not_import_each_other_and_services_import_neither() -> None:
    wrong = []
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        own = relative.parts[0] if len(relative.parts) > 1 else None
        if str(relative) in ASSEMBLERS:
            continue
        for module in _imports(path):
            layer = _layer(module)
            if layer in ("api", "web") and layer != own:
                wrong.append(f"{relative} imports {module}")
    assert wrong == []


SOURCES = PACKAGE / "sources"
KIND_MODULES = {"whatsapp_cloud", "waha", "evolution"}
KIND_HELPERS = {"protocol", "fields"}


def _source_imports(path: Path) -> set[str]:
    """The ``chathooks.sources`` modules a module imports (``from chathooks.sources import
    waha`` imports ``waha``; the package itself is ``__init__``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "chathooks.sources":
            for alias in node.names:  # a submodule, or a name the package defines
                found.add(alias.name if (SOURCES / f"{alias.name}.py").exists() else "__init__")
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.update(_source_module(node.module))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                found.update(_source_module(alias.name))
    return found


def _source_module(module: str) -> set[str]:
    if module == "chathooks.sources":
        return {"__init__"}
    prefix = "chathooks.sources."
    return {module.removeprefix(prefix).split(".")[0]} if module.startswith(prefix) else set()


def test_source_kind_modules_never_import_each_other() -> None:
    """A kind reads one sender's JSON with the shared helpers only: no kind loads another,
    nor the registry or the package that would load them all."""
    wrong = {
        kind: sorted(imported - KIND_HELPERS)
        for kind in KIND_MODULES
        if (imported := _source_imports(SOURCES / f"{kind}.py")) - KIND_HELPERS
    }
    assert wrong == {}


def test_source_modules_form_no_import_cycle() -> None:
    graph = {path.stem: _source_imports(path) for path in SOURCES.glob("*.py")}
    assert graph["__init__"] == set()  # importing any source module loads only itself

    def cycle_from(start: str, path: tuple[str, ...]) -> tuple[str, ...] | None:
        for target in sorted(graph.get(path[-1], set())):
            if target == start:
                return (*path, start)
            if target not in path and (found := cycle_from(start, (*path, target))):
                return found
        return None

    cycles = [cycle for name in graph if (cycle := cycle_from(name, (name,)))]
    assert cycles == []
