"""Benchmark `generate_demo`: wall seconds, entries per second and peak RSS per size.

Each size runs in its own subprocess on a fresh DuckDB file in a temp dir, so one size's memory
does not inflate the next one's peak. RSS (the whole process: Python, numpy and DuckDB) is
sampled every 50 ms by a thread. CPU seconds (user + system, all threads) and the 1-minute load
average at the start are reported too: on a shared box, wall time is only as good as the load.

    .venv/bin/python bench/demo_generation.py --sizes 1000000 10000000 --out bench/demo_generation.md
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


class PeakRss:
    """Highest resident set size of this process, sampled every `interval` seconds."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._process = psutil.Process()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)


def run_one(size: int, seed: int, end_date: date) -> dict:
    """Generate `size` entries into a fresh store; the measurements as a dict."""
    from analytics.demo.persistence import generate_demo
    from analytics.migrations import connect

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.duckdb"
        store = connect(str(path))
        process = psutil.Process()
        rss_before = process.memory_info().rss
        load = psutil.getloadavg()[0]
        with PeakRss() as rss:
            cpu0, t0 = process.cpu_times(), time.perf_counter()
            summary = generate_demo(store, entries=size, seed=seed, end_date=end_date)
            seconds, cpu1 = time.perf_counter() - t0, process.cpu_times()
        store.close()
        return {
            "target": size,
            "entries": summary.entries,
            "seconds": seconds,
            "cpu_seconds": (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system),
            "load": load,
            "entries_per_s": summary.entries / seconds,
            "rss_before_mib": rss_before / 2**20,
            "peak_rss_mib": rss.peak / 2**20,
            "file_mib": path.stat().st_size / 2**20,
            "rows": summary.counts,
        }


def markdown(results: list[dict]) -> str:
    head = ("| target entries | entries | seconds | entries/s | CPU s | load avg | peak RSS (MiB) | RSS before (MiB) "
            "| store file (MiB) | allocations | dunning runs | activities |")
    lines = [head, "|" + "---:|" * (head.count("|") - 1)]
    for r in results:
        rows = r["rows"]
        lines.append(
            f"| {r['target']:,} | {r['entries']:,} | {r['seconds']:.1f} | {r['entries_per_s']:,.0f} "
            f"| {r['cpu_seconds']:.1f} | {r['load']:.1f} | {r['peak_rss_mib']:,.0f} | {r['rss_before_mib']:,.0f} | {r['file_mib']:,.0f} "
            f"| {rows['allocations']:,} | {rows['dunning_runs']:,} | {rows['activities']:,} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000], help="target ledger entries")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--end-date", type=date.fromisoformat, default=date(2026, 10, 31))
    parser.add_argument("--out", type=Path, help="also write the Markdown table to this file")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: run one size, print JSON
    args = parser.parse_args(argv)

    if args.one:
        print(json.dumps(run_one(args.one, args.seed, args.end_date)))
        return 0
    results = []
    for size in args.sizes:
        print(f"generating {size:,} entries ...", file=sys.stderr, flush=True)
        out = subprocess.run(
            [sys.executable, __file__, "--one", str(size), "--seed", str(args.seed), "--end-date", args.end_date.isoformat()],
            check=True, capture_output=True, text=True,
        )
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    table = markdown(results)
    print(table)
    if args.out:
        args.out.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
