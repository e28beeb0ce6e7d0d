"""The layout's import rules (docs/architecture.md): three applications side by side on one kernel, a thin top.

- ``cardkit`` (the kernel) imports no application and not the top;
- ``terminal``, ``ledger`` and ``hwsim`` import only the kernel (and themselves), never each other or the top;
- only ``cardpos`` (the command line and the demo) may import all of them.

Imports are read with ``ast`` from the source, including imports inside functions and ``importlib`` strings, so a
lazy import cannot slip past.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {
    "cardkit": ROOT / "cardkit",
    "cardpos": ROOT / "cardpos",
    "terminal": ROOT / "terminal",
    "ledger": ROOT / "ledger",
    "hwsim": ROOT / "hardware-sim" / "hwsim",
}
APPLICATIONS = ("terminal", "ledger", "hwsim")
ALLOWED: dict[str, set[str]] = {
    "cardkit": {"cardkit"},
    "terminal": {"terminal", "cardkit"},
    "ledger": {"ledger", "cardkit"},
    "hwsim": {"hwsim", "cardkit"},
    "cardpos": set(PACKAGES),
}


def imported_modules(path: Path) -> set[str]:
    """Every absolute module name a file imports: import statements anywhere, and string arguments of
    ``importlib.import_module`` / ``__import__``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in {"import_module", "__import__"} and isinstance(node.args[0].value, str):
                names.add(node.args[0].value)
    return names


def violations(package: str, root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        for name in sorted(imported_modules(path)):
            top = name.split(".")[0]
            if top in PACKAGES and top not in ALLOWED[package]:
                found.append(f"{path.relative_to(root.parent)} imports {name}")
    return found


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_package_imports_only_what_its_layer_allows(package: str) -> None:
    assert violations(package, PACKAGES[package]) == []


def test_every_application_and_the_kernel_exist_where_the_docs_say() -> None:
    for root in PACKAGES.values():
        assert (root / "__init__.py").is_file(), root


def test_the_checker_catches_each_kind_of_cross_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import ledger.store\n"
        "from hwsim import reader\n"
        "def later():\n"
        "    from terminal.ui import app\n"
        "    import importlib\n"
        "    importlib.import_module('cardpos.cli')\n"
    )
    assert {"ledger.store", "hwsim", "terminal.ui", "cardpos.cli"} <= imported_modules(bad)
    kernel_copy = tmp_path / "kernel"
    kernel_copy.mkdir()
    (kernel_copy / "leak.py").write_text("from terminal.offline import db\n")
    assert violations("cardkit", kernel_copy) == ["kernel/leak.py imports terminal.offline"]
