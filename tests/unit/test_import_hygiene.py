"""The pure layers must not import the UI, the database or the network (house rule 4), and the cashier UI meets
the terminal's services through one typed seam (``terminal/ui/services.py``) and one facade (``terminal/ui/ops.py``).
"""

from __future__ import annotations

import ast
import subprocess
import sys
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


# -- the cashier UI's seam ----------------------------------------------------------------------------------------
UI = ROOT / "terminal" / "ui"
UI_SEAM_MODULES = {"terminal/ui/services.py"}
"""The only modules of ``terminal/ui`` that may name ``terminal.offline`` or ``terminal.sync`` (even for types)."""
UI_FACADE_MODULES = {"terminal/ui/ops.py"}
"""The only modules of ``terminal/ui`` that call the counter, store, reader and sync service on ``AppServices``."""
SEAM_INTERNALS = ("terminal.offline", "terminal.sync")
UI_TYPED_FILES = ["terminal/ui/services.py", "terminal/ui/messages.py", "terminal/ui/app.py"]
SERVICE_ATTRIBUTES = {"counter", "store", "reader", "sync"}
NOT_LOADED_BY_THE_UI = ("peewee", "sqlite3", "serial", "requests", "httpx", *SEAM_INTERNALS)


def _imported_names(path: Path) -> set[str]:
    """Every module a file names in an import, anywhere (functions and ``if TYPE_CHECKING:`` blocks included);
    ``from terminal import offline`` counts as ``terminal.offline``."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _is_under(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == package or name.startswith(package + ".") for package in packages)


def _ui_files() -> list[Path]:
    files = sorted(UI.rglob("*.py"))
    assert files, "terminal/ui has no Python files: the checks would pass on nothing"
    return files


def test_ui_names_offline_and_sync_only_in_the_seam() -> None:
    offenders = [
        f"{path.relative_to(ROOT).as_posix()} imports {name}"
        for path in _ui_files() if path.relative_to(ROOT).as_posix() not in UI_SEAM_MODULES
        for name in sorted(_imported_names(path)) if _is_under(name, SEAM_INTERNALS)
    ]
    assert offenders == []


def test_the_seam_modules_exist() -> None:
    for module in UI_SEAM_MODULES | UI_FACADE_MODULES:
        assert (ROOT / module).is_file(), f"{module} is listed as the UI's seam but does not exist"


def _service_calls(source: str) -> list[str]:
    """Where ``<something>.services.counter`` (or ``.store``, ``.reader``, ``.sync``) is read in a module."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in SERVICE_ATTRIBUTES:
            owner = node.value
            if (isinstance(owner, ast.Attribute) and owner.attr in {"services", "_services"}) or (
                    isinstance(owner, ast.Name) and owner.id in {"services", "_services"}):
                found.append(f"line {node.lineno} reads services.{node.attr}")
    return found


def test_screens_call_services_only_through_the_facade() -> None:
    offenders = [f"{path.relative_to(ROOT).as_posix()} {found}"
                 for path in _ui_files() if path.relative_to(ROOT).as_posix() not in UI_FACADE_MODULES
                 for found in _service_calls(path.read_text(encoding="utf-8"))]
    assert offenders == []


def _any_annotations(source: str) -> list[str]:
    """Where ``Any`` is imported from typing or named in an annotation (quoted annotations are read too)."""
    found: list[str] = []

    def names_any(expr: ast.expr) -> bool:
        for node in ast.walk(expr):
            if isinstance(node, ast.Name) and node.id == "Any":
                return True
            if isinstance(node, ast.Attribute) and node.attr == "Any":
                return True
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                try:
                    quoted = ast.parse(node.value, mode="eval").body
                except SyntaxError:
                    continue
                if names_any(quoted):
                    return True
        return False

    for node in ast.walk(ast.parse(source)):
        annotations: list[ast.expr | None] = []
        if isinstance(node, ast.ImportFrom) and node.module == "typing":
            if any(alias.name == "Any" for alias in node.names):
                found.append(f"line {node.lineno}: imports typing.Any")
        elif isinstance(node, ast.AnnAssign):
            annotations.append(node.annotation)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            args = node.args
            every = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
            annotations += [arg.annotation for arg in every if arg is not None]
            annotations.append(node.returns)
        found += [f"line {node.lineno}: annotation names Any" for annotation in annotations
                  if annotation is not None and names_any(annotation)]
    return found


@pytest.mark.parametrize("module", UI_TYPED_FILES)
def test_no_any_where_the_ui_meets_the_services(module: str) -> None:
    assert _any_annotations((ROOT / module).read_text(encoding="utf-8")) == []


def test_the_any_checker_catches_an_offender() -> None:
    source = ("from typing import Any\n"
              "import typing\n"
              "x: dict[str, Any] = {}\n"
              "def f(a: 'list[Any]', *rest: typing.Any) -> None: ...\n"
              "def g() -> Any: ...\n"
              "def h(a: int) -> 'int': ...\n")
    lines = sorted({where.split(":")[0] for where in _any_annotations(source)})
    assert lines == ["line 1", "line 3", "line 4", "line 5"]


def test_the_seam_checkers_catch_offenders(tmp_path: Path) -> None:
    screen = tmp_path / "screen.py"
    screen.write_text("from typing import TYPE_CHECKING\n"
                      "from terminal import sync\n"
                      "if TYPE_CHECKING:\n"
                      "    from terminal.offline.cashiers import Cashier\n"
                      "def f(app):\n"
                      "    return app.services.counter.tap(b'')\n")
    assert {"terminal.sync", "terminal.offline.cashiers"} <= _imported_names(screen)
    assert _service_calls(screen.read_text(encoding="utf-8")) == ["line 6 reads services.counter"]


def test_the_ui_imports_without_the_database_or_the_network() -> None:
    """The seam names the store's and the sync's types for the type checker only: importing every UI module
    loads no database, serial port or HTTP code."""
    probe = ("import importlib, pkgutil, sys\n"
             "import terminal.ui\n"
             "for found in pkgutil.walk_packages(terminal.ui.__path__, 'terminal.ui.'):\n"
             "    importlib.import_module(found.name)\n"
             "print('\\n'.join(sorted(sys.modules)))\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    loaded = result.stdout.split()
    assert "terminal.ui.app" in loaded
    assert [name for name in loaded if _is_under(name, NOT_LOADED_BY_THE_UI)] == []
