"""Run every benchmark, print one markdown table, write a JSON result file.

Usage: ``python -m bench [--quick] [--only NAME ...] [--json-out FILE]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import importlib.metadata
import json
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
LIBRARIES = ["cryptography", "cbor2", "peewee", "textual", "pyserial", "fastapi", "uvicorn", "requests"]


def machine_line() -> dict[str, Any]:
    try:
        cpu = next(
            (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
             if line.startswith("model name")),
            platform.processor(),
        )
    except OSError:
        cpu = platform.processor()
    versions = {}
    for lib in LIBRARIES:
        try:
            versions[lib] = importlib.metadata.version(lib)
        except importlib.metadata.PackageNotFoundError:
            versions[lib] = "absent"
    import os

    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "libraries": versions,
    }


def discover() -> list[str]:
    return sorted(p.stem for p in HERE.glob("bench_*.py"))


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def table(rows: list[dict[str, Any]]) -> str:
    head = "| benchmark | figure | value | baseline | ratio | target | result |\n|---|---|---|---|---|---|---|"
    lines = [head]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['bench']} | (failed) | {r['error']} | | | | FAIL |")
            continue
        lines.append(
            f"| {r['bench']} | {r['figure']} | {fmt(r['value'])} {r.get('unit', '')} | "
            f"{fmt(r['baseline'])} ({r.get('baseline_label', '')}) | {fmt(r['ratio'])} | {r['target']} | "
            f"{'pass' if r['passed'] else 'FAIL'} |"
        )
    return "\n".join(lines)


BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def write_docs(doc: Path, machine: str, rendered: str, seconds: float) -> None:
    """Put this run's table between the markers in docs/benchmarks.md (the prose around it stays)."""
    text = doc.read_text(encoding="utf-8")
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    block = f"\n{machine}; whole run {seconds:.0f} s (raw figures: `docs/benchmarks-latest.json`).\n\n{rendered}\n"
    doc.write_text(text[:start] + block + text[end:], encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller workloads (smoke run)")
    parser.add_argument("--only", nargs="*", default=None, help="benchmark module names, e.g. bench_verify")
    parser.add_argument("--json-out", type=Path, default=None)
    parser.add_argument("--write-docs", action="store_true",
                        help="replace the results table in docs/benchmarks.md with this run's")
    args = parser.parse_args(argv)
    names = args.only or discover()
    rows: list[dict[str, Any]] = []
    started = time.monotonic()
    for name in names:
        t0 = time.monotonic()
        print(f"running {name} ...", file=sys.stderr, flush=True)
        try:
            module = importlib.import_module(f"bench.{name}")
            for row in module.run(quick=args.quick):
                rows.append({"bench": name.removeprefix("bench_"), **row})
        except Exception as exc:  # a broken benchmark is reported in the table, the others still run
            traceback.print_exc()
            rows.append({"bench": name.removeprefix("bench_"), "error": f"{type(exc).__name__}: {exc}"})
        print(f"  {name}: {time.monotonic() - t0:.1f} s", file=sys.stderr, flush=True)
    result = {"machine": machine_line(), "quick": args.quick, "seconds": round(time.monotonic() - started, 1),
              "rows": rows}
    out = args.json_out or HERE / "results" / f"bench-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str))
    m = result["machine"]
    machine = f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, {m['date']}"
    print(f"\n{machine}\n")
    print(table(rows))
    if args.write_docs:
        docs = HERE.parent / "docs"
        (docs / "benchmarks-latest.json").write_text(out.read_text())
        write_docs(docs / "benchmarks.md", machine, table(rows), result["seconds"])
    print(f"\nTotal {result['seconds']} s; JSON: {out}")
    # Missed targets show as FAIL in the table; only a benchmark that crashed fails the command.
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
