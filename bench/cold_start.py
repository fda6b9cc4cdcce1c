"""Benchmark 3: cold start. Time to import `function_app` in a fresh interpreter vs `azure.functions`
alone (docs/architecture.md, "Performance budgets": lean imports, handlers import their connector modules
on first use)."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

from bench.report import table

ROOT = Path(__file__).resolve().parent.parent
PROBE = """
import json, sys, time
before = set(sys.modules)
t = time.perf_counter()
{stmt}
elapsed = time.perf_counter() - t
print(json.dumps({{"s": elapsed, "modules": sorted(set(sys.modules) - before)}}))
"""
VARIANTS = {
    "azure.functions alone": "import azure.functions",
    "function_app": "import function_app",
}


def _probe(stmt: str) -> tuple[float, list[str]]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(stmt=stmt)], cwd=ROOT, capture_output=True, text=True, check=True
    )
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return float(data["s"]), list(data["modules"])


def _packages(modules: list[str]) -> list[str]:
    return sorted({m.split(".")[0] for m in modules if not m.startswith("_")})


def run(*, repeat: int = 5) -> str:
    results: dict[str, tuple[list[float], list[str]]] = {}
    for name, stmt in VARIANTS.items():
        _probe(stmt)  # warm the OS file cache and __pycache__: a real cold start is not a first-ever run
        times, modules = [], []
        for _ in range(repeat):
            seconds, modules = _probe(stmt)
            times.append(seconds)
        results[name] = (times, modules)
    base = statistics.median(results["azure.functions alone"][0])
    rows = [
        (name, f"{statistics.median(t) * 1000:.0f}", f"{min(t) * 1000:.0f}", f"{max(t) * 1000:.0f}",
         f"{(statistics.median(t) - base) * 1000:+.0f}", len(mods))
        for name, (t, mods) in results.items()
    ]  # fmt: skip
    extra = sorted(set(results["function_app"][1]) - set(results["azure.functions alone"][1]))
    return table(
        f"3. Cold start: import time in a fresh interpreter ({repeat} runs each, after one warm-up run)",
        ["import", "median ms", "min ms", "max ms", "vs azure.functions", "modules loaded"],
        rows,
        [f"function_app loads {len(extra)} modules beyond azure.functions, packages: {', '.join(_packages(extra))}"],
    )
