"""The package's layers only look down: the API and the pages never import each other,
and nothing below them imports either (``chathooks.app`` and the CLI assemble them)."""

from __future__ import annotations

import ast
from pathlib import Path

from chathooks.states import SourceKind

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


PLUMBING = {
    "Session",
    "SessionTransaction",
    "sessionmaker",
    "event",
    "Connection",
    "Engine",
    "make_url",
}
"""What the layers above ``store/`` may take from SQLAlchemy: sessions and engines to hand
down and their transaction events, never a statement."""
SQL_HOMES = ("store", "migrations")


def _sql_outside_store(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        module = node.module or "" if isinstance(node, ast.ImportFrom) else ""
        if module == "sqlalchemy.exc":
            continue  # its errors name what went wrong; catching one runs no statement
        if isinstance(node, ast.ImportFrom) and module.split(".")[0] == "sqlalchemy":
            found += [f"imports {a.name}" for a in node.names if a.name not in PLUMBING]
        elif isinstance(node, ast.Import):
            found += [f"imports {a.name}" for a in node.names if a.name.startswith("sqlalchemy")]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in {"execute", "executescript", "scalar", "scalars", "query"}
        ):
            found.append(f"calls .{node.func.attr}() on line {node.lineno}")
    return found


def test_no_sql_outside_store_and_migrations() -> None:
    wrong = [
        f"{path.relative_to(PACKAGE)} {what}"
        for path in PACKAGE.rglob("*.py")
        if path.relative_to(PACKAGE).parts[0] not in SQL_HOMES
        for what in _sql_outside_store(path)
    ]
    assert wrong == []


def _chathooks_imports(path: Path) -> set[str]:
    return {m for m in _imports(path) if m.split(".")[0] == "chathooks"}


def _module_path(module: str) -> Path | None:
    base = PACKAGE.parent / Path(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def test_store_imports_nothing_above_itself() -> None:
    """``store/`` may use its own modules and leaf helpers that import no chathooks module
    themselves (``storable``, ``clock``); anything else would be a layer above it."""
    wrong = []
    for path in (PACKAGE / "store").rglob("*.py"):
        for module in _chathooks_imports(path):
            if module == "chathooks.store" or module.startswith("chathooks.store."):
                continue
            target = _module_path(module)
            if target is None or _chathooks_imports(target):
                wrong.append(f"store/{path.relative_to(PACKAGE / 'store')} imports {module}")
    assert wrong == []


def test_tests_read_nothing_outside_the_repository() -> None:
    """A fresh clone passes alone: no test reaches for ``../shared`` or another checkout."""
    tests = Path(__file__).resolve().parent
    wrong = [
        f"{path.name}:{number}"
        for path in tests.rglob("*.py")
        if path.name != Path(__file__).name
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if "../shared" in line or '"shared"' in line or "parents[2]" in line
    ]
    assert wrong == []


SOURCES = PACKAGE / "sources"
KIND_MODULES = {kind.value for kind in SourceKind}
KIND_HELPERS = {"protocol", "fields", "bodies", "screening", "answers"}


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
