"""The pure layers must not import the UI, the database or the network (house rule 4)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PURE_PACKAGES = ["cardkit/core", "cardkit/cards"]
FORBIDDEN = {"textual", "peewee", "requests", "serial", "sqlite3", "socket", "fastapi", "uvicorn", "httpx",
             "terminal.offline.db", "terminal.ui", "terminal.reader.device", "terminal.sync.client", "ledger"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", PURE_PACKAGES)
def test_pure_packages_have_no_io_imports(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"{package} has no Python files: the check would pass on nothing"
    offenders = []
    for path in files:
        for name in _imports(path):
            if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN):
                offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert offenders == []


def test_the_checker_catches_an_offender(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import peewee\nfrom textual.app import App\n")
    assert {"peewee", "textual.app"} <= _imports(bad)
