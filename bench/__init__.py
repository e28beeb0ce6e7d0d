"""Benchmarks for cardpos (``make bench``); never collected by pytest.

Each ``bench/bench_<area>.py`` exposes ``run(quick: bool = False) -> list[dict]`` with rows of
``figure, value, unit, baseline, baseline_label, ratio, target, passed``; the baseline is measured in the same run.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

Measure = Callable[[str, "str | None", Path, int], list[dict[str, Any]]]


def figure_row(figure: str, value: float, unit: str, baseline: float, label: str, target: str, passed: bool, *,
               ratio_digits: int = 3) -> dict[str, Any]:
    """One result row: a figure, its baseline measured in the same run, their ratio, the target and whether it
    was met."""
    return {"figure": figure, "value": round(value, 3), "unit": unit, "baseline": round(baseline, 3),
            "baseline_label": label, "ratio": round(value / baseline, ratio_digits) if baseline else 0.0,
            "target": target, "passed": passed}


def on_sqlite_and_postgres(measure: Measure, count: int, prefix: str) -> list[dict[str, Any]]:
    """``measure(label, db_url, root, count)`` on SQLite (db_url None) and then on a PostgreSQL server started for
    it, in one temporary folder removed afterwards."""
    from tests.fixtures.postgres import start_postgres, stop_postgres

    root = Path(tempfile.mkdtemp(prefix=prefix))
    rows: list[dict[str, Any]] = []
    try:
        rows += measure("SQLite", None, root, count)
        server = start_postgres()
        try:
            rows += measure("PostgreSQL", server.url(server.create_database()), root, count)
        finally:
            stop_postgres(server)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return rows
