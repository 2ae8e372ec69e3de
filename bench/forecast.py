"""Time the payment-date model at scale: training, and scoring the open items, on a demo store.

    python bench/forecast.py                       # 1M entries (target: train < 60 s, score < 2 s)
    python bench/forecast.py --entries 200000 --backtest
    python bench/forecast.py --db /tmp/demo_1m.duckdb   # an existing store instead

The store is generated once (seed 42, ending 2026-10-31) into <tmp>/ardesk-bench/demo_<N>.duckdb
(shared with bench/kpis.py) and reused. Training = `payment_dates.train_as_of` at the last posting
date (six monthly snapshots in SQL, then the model); scoring = `predict_open_items` with that model
(the features of every open invoice in SQL, then the model). Each is timed by `timing.best`.
`--backtest` also times the 12-month walk-forward backtest once and prints its summary.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analytics.access.roles import SYSTEM  # noqa: E402
from analytics.forecasts.backtest import run_backtest  # noqa: E402
from analytics.forecasts.payment_dates import predict_open_items, train_as_of  # noqa: E402
from analytics.ledger.open_items import ledger_bounds  # noqa: E402
from analytics.migrations import connect  # noqa: E402
from bench.kpis import demo_store  # noqa: E402
from bench.timing import best  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--backtest", action="store_true")
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "ardesk-bench")
    parser.add_argument("--db", type=Path, default=None, help="time on this store instead of a generated demo")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    store = connect(str(args.db)) if args.db else demo_store(args.entries, args.dir)
    args.entries = store.scalar("SELECT COUNT(*) FROM ledger_entries")
    _, last = ledger_bounds(store)
    train_s, model = best(lambda: train_as_of(store, last), args.runs)
    score_s, scored = best(lambda: predict_open_items(store, last, model=model), args.runs)
    print(f"{args.entries:,} entries · trained on {model.trained_rows:,} rows in {train_s:.1f} s (target < 60 s) · "
          f"scored {len(scored):,} open invoices in {score_s:.2f} s (target < 2 s)")
    if args.backtest:
        started = time.perf_counter()
        result = run_backtest(store, SYSTEM)
        print(f"backtest: {time.perf_counter() - started:.0f} s")
        for key, value in result.summary.items():
            print(f"  {key:24} {value}")


if __name__ == "__main__":
    main()
