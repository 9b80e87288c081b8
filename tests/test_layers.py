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
