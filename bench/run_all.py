"""`make bench`: run every benchmark in this folder, then write bench/RESULTS.md with the date and the machine.

Each benchmark prints its figures as one JSON object on its last line; this collects them. Benchmarks compare the
code against a baseline measured in the same run (ratios), so results from different machines stay comparable.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
GOALS = {
    "sync_ratio": ("<=", 1.5),
    "deal_import_peak_rss_mb": ("<=", 300),
    "commission_ratio": ("<=", 3.0),
    "build_ratio": ("<=", 1.5),
    "growth_deals_ratio": ("<=", 6),
    "growth_both_ratio": ("<=", 14),
    "intake_vs_floor": (">=", 0.8),
    "p99_vs_floor": ("<=", 2.0),
    "e2e_p95_s": ("<=", 2.0),
}


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    system = f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    return f"{platform.node()}: {cpu}, {os.cpu_count()} cores{memory}, {system}"


def verdict(key: str, value) -> str:
    goal = GOALS.get(key)
    if goal is None or not isinstance(value, int | float):
        return ""
    op, limit = goal
    ok = value <= limit if op == "<=" else value >= limit
    return f"{'met' if ok else 'MISSED'} (goal {op} {limit})"


def main() -> None:
    scripts = sorted(p for p in HERE.glob("*.py") if not p.name.startswith("_") and p.name != "run_all.py")
    sections = []
    for script in scripts:
        print(f"== {script.name}", flush=True)
        started = time.monotonic()
        result = subprocess.run([sys.executable, str(script)], cwd=HERE.parent, stdout=subprocess.PIPE, text=True)
        lines = [line for line in result.stdout.strip().splitlines() if line.strip()]
        if result.returncode != 0 or not lines:
            sections.append((script.name, None, f"failed (exit {result.returncode})", time.monotonic() - started))
            continue
        figures = json.loads(lines[-1])
        print(json.dumps(figures, indent=2), flush=True)
        sections.append((script.name, figures, "", time.monotonic() - started))

    out = [
        "# Benchmark results",
        "",
        f"Run by `make bench` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
        "",
        f"Machine: {machine()}.",
        "",
        "Every figure that matters is a ratio to a baseline measured in the same run, so it can be compared across",
        "machines; absolute times are given for context only.",
        "",
    ]
    for name, figures, error, seconds in sections:
        out += [f"## {name}", "", f"Took {seconds:.0f} s.", ""]
        if figures is None:
            out += [error, ""]
            continue
        out += ["| figure | value | goal |", "|---|---|---|"]
        out += [f"| `{key}` | {value} | {verdict(key, value)} |" for key, value in figures.items()]
        out.append("")
    (HERE / "RESULTS.md").write_text("\n".join(out))
    print(f"wrote {HERE / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
