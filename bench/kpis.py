"""Time every KPI report on demo stores, on DuckDB and PostgreSQL side by side, against pandas and a ledger scan.

    python bench/kpis.py                                  # 1M entries, both engines when PostgreSQL can start
    python bench/kpis.py --sizes 1000000 10000000 --engine duckdb
    python bench/kpis.py --engine postgresql --pg-url postgresql+psycopg://user@host/db   # a server of yours (emptied!)
    python bench/kpis.py --only aging "KPI summary" --pandas-runs -1
    python bench/kpis.py --sizes 10000000 --engine postgresql --pg-url URL --pg-keep  # no second 10M copy

Each store is generated once (`analytics.demo.persistence.generate_demo`, seed 42, ending 2026-10-31) into
<tmp>/ardesk-bench/demo_<N>.duckdb and reused by later runs. PostgreSQL: a throwaway server
(tests/postgres_server.py, Debian's `postgresql` package) unless `--pg-url`; the DuckDB store is
moved into it with `ardesk db copy` (`analytics.store.copy`), then ANALYZEd. Each report runs once
(the first run, reported separately) and then `--runs` more times; the table shows the median of
those. Ratios: each report against a plain SQL scan of the ledger on the same engine (`SELECT
entry_type, currency, COUNT(*), SUM(amount) FROM ledger_entries GROUP BY 1, 2`), PostgreSQL
against DuckDB, and the pandas baseline (aging as of the last posting date and the 12-month AR/DSO
series, computed on frames loaded once through DuckDB `.df()`, outside the timing; `--pandas-runs`,
2 by default) against each engine; pandas results are checked against the engine's first.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analytics.kpis import aging, bad_debt, collector_kpis, dso, dunning_effectiveness  # noqa: E402
from analytics.kpis import summary as kpi_summary
from analytics.ledger.filters import Filters  # noqa: E402
from analytics.ledger.months import month_ends  # noqa: E402
from analytics.ledger.open_items import ledger_bounds
from analytics.migrations import connect  # noqa: E402
from analytics.settings import load_settings  # noqa: E402
from analytics.store.connection import Store
from analytics.store.copy import copy_store  # noqa: E402

END = date(2026, 10, 31)
ENGINES = ("duckdb", "postgresql")
SCAN = "SELECT entry_type, currency, COUNT(*) AS n, SUM(amount) AS amount FROM ledger_entries GROUP BY 1, 2"
SCAN_NAME = "plain SQL scan of the ledger"


def demo_store(entries: int, directory: Path) -> Store:
    path = directory / f"demo_{entries}.duckdb"
    if not path.exists():
        from analytics.demo.persistence import generate_demo

        building = path.with_suffix(".building")
        building.unlink(missing_ok=True)
        started = time.perf_counter()
        s = connect(str(building))
        generate_demo(s, entries=entries, seed=42, end_date=END)
        s.close()
        building.rename(path)
        print(f"built {path} in {time.perf_counter() - started:.0f} s", flush=True)
    return connect(str(path))


def timed(fn: Callable[[], object], runs: int) -> tuple[float, float, object]:
    """(first run, median of `runs` further runs, last result)."""
    t = time.perf_counter()
    result = fn()
    first = time.perf_counter() - t
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return first, statistics.median(times), result


class PandasBaseline:
    """The same aging and AR/DSO series in plain pandas, on frames loaded once through DuckDB."""

    def __init__(self, store: Store) -> None:
        self.entries = store.read("SELECT entry_id, customer_id, entry_type, posting_date, due_date, amount, currency "
                                  "FROM ledger_entries")
        self.allocations = store.read("SELECT from_entry_id, to_entry_id, amount, allocation_date FROM allocations")
        self.fx = store.read("SELECT rate_date, currency, rate FROM fx_rates")
        for frame, col in ((self.entries, "posting_date"), (self.entries, "due_date"),
                           (self.allocations, "allocation_date"), (self.fx, "rate_date")):
            frame[col] = pd.to_datetime(frame[col])
        self.reporting = load_settings().reporting_currency
        self.edges = load_settings().aging_edges

    def _rates(self, as_of: pd.Timestamp) -> pd.Series:
        latest = self.fx[self.fx.rate_date <= as_of].sort_values("rate_date").groupby("currency")["rate"].last()
        latest[self.reporting] = 1.0
        return latest

    def open_items(self, as_of: pd.Timestamp) -> pd.DataFrame:
        e = self.entries[self.entries.posting_date <= as_of]
        a = self.allocations[self.allocations.allocation_date <= as_of]
        to = a.groupby("to_entry_id")["amount"].sum()
        frm = a.groupby("from_entry_id")["amount"].sum()
        applied_to = e["entry_id"].map(to).fillna(0.0)
        applied_from = e["entry_id"].map(frm).fillna(0.0)
        open_amount = np.where(e["amount"] > 0, e["amount"] - applied_to, e["amount"] + applied_from)
        out = e.assign(open_amount=open_amount)
        out = out[out.open_amount != 0]
        out = out.assign(fx_rate=out["currency"].map(self._rates(as_of)))
        due = out["due_date"].fillna(out["posting_date"])
        return out.assign(days_past_due=(as_of - due).dt.days)

    def aging(self, as_of: date) -> dict[str, float]:
        items = self.open_items(pd.Timestamp(as_of))
        debit = items[items.open_amount > 0]
        value = debit.open_amount * debit.fx_rate
        bins = [-np.inf, 0, *self.edges, np.inf]
        labels = aging.bucket_labels()
        buckets = pd.cut(debit.days_past_due, bins=bins, labels=labels, right=True)
        out = value.groupby(buckets, observed=False).sum().to_dict()
        credit = items[items.open_amount < 0]
        out["Total"] = float(value.sum())
        out["Unapplied"] = float((credit.open_amount * credit.fx_rate).sum())
        return out

    def dso(self, start: date, end: date) -> pd.DataFrame:
        rows = []
        for point in month_ends(start, end):
            ts = pd.Timestamp(point)
            items = self.open_items(ts)
            debit = items[items.open_amount > 0]
            ar = float((debit.open_amount * debit.fx_rate).sum())
            first = ts.replace(day=1)
            inv = self.entries[(self.entries.entry_type == "invoice") & (self.entries.posting_date >= first)
                               & (self.entries.posting_date <= ts)]
            sales = float((inv.amount * inv.currency.map(self._rates(ts))).sum())
            days = (ts - first).days + 1
            rows.append({"month_end": point, "ar_end": ar, "credit_sales": sales,
                         "dso_standard": ar / sales * days if sales else np.nan})
        return pd.DataFrame(rows)


def reports_of(store: Store, as_of: date, start: date) -> dict[str, Callable[[], object]]:
    enterprise = Filters(segment="enterprise")
    return {
        SCAN_NAME: lambda: store.read(SCAN),
        "aging (total)": lambda: aging.aging_buckets(store, as_of),
        "aging by customer": lambda: aging.aging_buckets(store, as_of, by="customer"),
        "aging by collector, one segment": lambda: aging.aging_buckets(store, as_of, enterprise, by="collector"),
        "open invoices in 120+": lambda: aging.open_invoices(store, as_of, bucket=aging.bucket_labels()[-1]),
        "aging trend (12 month ends)": lambda: aging.aging_trend(store, start, as_of),
        "DSO monthly (12)": lambda: dso.dso_monthly(store, start, as_of),
        "days to pay (12)": lambda: dso.days_to_pay(store, start, as_of),
        "KPI summary": lambda: kpi_summary.kpi_summary(store, as_of),
        "KPI summary, month to date": lambda: kpi_summary.kpi_summary(store, as_of.replace(day=17)),
        "top overdue customers": lambda: kpi_summary.top_overdue_customers(store, as_of),
        "bad debt (12)": lambda: bad_debt.bad_debt_monthly(store, start, as_of),
        "roll rates (12)": lambda: bad_debt.roll_rates(store, start, as_of),
        "dunning effectiveness (12)": lambda: dunning_effectiveness.dunning_effectiveness(store, start, as_of),
        "recovery curves (12)": lambda: dunning_effectiveness.recovery_curve(store, start, as_of),
        "collector KPIs (12)": lambda: collector_kpis.collector_kpis(store, start, as_of),
    }


def holds_the_same_store(duck: Store, pg_url: str) -> bool:
    """Whether the PostgreSQL at `pg_url` already holds this DuckDB store: the same schema version and
    the same row counts and sums in the ledger and allocations (`--pg-keep` then skips the copy)."""
    from analytics.migrations import SCHEMA_VERSION, current_version
    from analytics.store.copy import table_fingerprint
    from analytics.store.schema import allocations, ledger_entries

    target = connect(pg_url, migrate=False)
    try:
        if current_version(target) != SCHEMA_VERSION:
            return False
        return all(table_fingerprint(duck, t) == table_fingerprint(target, t) for t in (ledger_entries, allocations))
    except Exception:  # noqa: BLE001 - an empty or foreign database: copy
        return False
    finally:
        target.close()


@contextmanager
def postgres_copy(duck: Store, pg_url: str | None, keep: bool = False) -> Iterator[Store]:
    """The DuckDB store moved into PostgreSQL (`pg_url`, emptied first, else a throwaway server);
    with `keep`, a `pg_url` that already holds it is used as it is."""
    from tests.conftest import empty_postgres
    from tests.postgres_server import find_bindir, throwaway_postgres

    @contextmanager
    def server() -> Iterator[str]:
        if pg_url:
            yield pg_url
            return
        bindir = find_bindir()
        if bindir is None:
            raise SystemExit("no PostgreSQL server binaries (Debian package postgresql); pass --pg-url or --engine duckdb")
        with throwaway_postgres(bindir) as url:
            yield url

    with server() as url:
        if keep and pg_url and holds_the_same_store(duck, url):
            print("PostgreSQL already holds this store: not copied", flush=True)
            target = connect(url)
            try:
                yield target
            finally:
                target.close()
            return
        target = connect(empty_postgres(url))
        t = time.perf_counter()
        checks = copy_store(duck, target)
        assert all(c.equal for c in checks), [c for c in checks if not c.equal]
        with target.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
        print(f"copied into PostgreSQL and analyzed in {time.perf_counter() - t:.0f} s", flush=True)
        try:
            yield target
        finally:
            target.close()


def bench(entries: int, directory: Path, engines: list[str], runs: int, pandas_runs: int,
          only: list[str] | None = None, pg_url: str | None = None, pg_keep: bool = False) -> list[dict]:
    """One row per (engine, report): first_s, median_s; plus pandas rows (engine "pandas")."""
    duck = demo_store(entries, directory)
    _, last = ledger_bounds(duck)
    as_of = last or END
    start = (pd.Timestamp(as_of.replace(day=1)) - pd.DateOffset(months=11)).date()
    rows: list[dict] = []
    results: dict[tuple[str, str], object] = {}

    def run(engine: str, store: Store) -> None:
        reports = reports_of(store, as_of, start)
        if only:
            reports = {n: fn for n, fn in reports.items() if n == SCAN_NAME or any(w in n for w in only)}
        for name, fn in reports.items():
            first, median, result = timed(fn, runs)
            results[(engine, name)] = result
            rows.append({"entries": entries, "engine": engine, "report": name, "first_s": first, "median_s": median})
            print(f"{entries:>10,} {engine:<10} {name:<34} first {first:7.3f} s  median {median:7.3f} s", flush=True)

    if "duckdb" in engines:
        run("duckdb", duck)
    if "postgresql" in engines:
        with postgres_copy(duck, pg_url, pg_keep) as pg:
            run("postgresql", pg)
    engine = engines[0]
    if pandas_runs >= 0 and (engine, "aging (total)") in results and (engine, "DSO monthly (12)") in results:
        t = time.perf_counter()
        baseline = PandasBaseline(duck)
        print(f"{entries:>10,} pandas load (not timed below): {time.perf_counter() - t:.1f} s", flush=True)
        _, pandas_aging, expected = timed(lambda: baseline.aging(as_of), pandas_runs)
        got = results[(engine, "aging (total)")].iloc[0]
        for key, value in expected.items():
            assert abs(float(got[key]) - value) < 0.05 * max(1, len(baseline.entries) / 1e6), (key, got[key], value)
        _, pandas_dso, expected_dso = timed(lambda: baseline.dso(start, as_of), pandas_runs)
        ours = results[(engine, "DSO monthly (12)")]
        assert np.allclose(ours["ar_end"].astype(float), expected_dso["ar_end"], atol=1.0), "AR series differ from pandas"
        assert np.allclose(ours["credit_sales"].astype(float), expected_dso["credit_sales"], atol=1.0), "sales differ"
        rows += [{"entries": entries, "engine": "pandas", "report": "aging (total)", "first_s": None, "median_s": pandas_aging},
                 {"entries": entries, "engine": "pandas", "report": "DSO monthly (12)", "first_s": None,
                  "median_s": pandas_dso}]
    duck.close()
    return rows


def table(rows: list[dict], engines: list[str]) -> list[str]:
    """Markdown: per size and report, each engine's median (first) and its ratio to the ledger scan,
    PostgreSQL / DuckDB, and pandas / each engine."""
    names = {"duckdb": "DuckDB", "postgresql": "PostgreSQL"}
    head = ["entries", "report"] + [f"{names[e]} median (first), x scan" for e in engines]
    if len(engines) == 2:
        head.append("PostgreSQL / DuckDB")
    head.append("pandas (x slower than " + " / ".join(names[e] for e in engines) + ")")
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    at = {(r["entries"], r["engine"], r["report"]): r for r in rows}
    for size, name in dict.fromkeys((r["entries"], r["report"]) for r in rows if r["engine"] != "pandas"):
        cells = [f"{size:,}", name]
        for e in engines:
            r, scan = at.get((size, e, name)), at.get((size, e, SCAN_NAME))
            cells.append("" if r is None else f"{r['median_s']:.3f} s ({r['first_s']:.3f} s), "
                         f"{r['median_s'] / scan['median_s']:.1f}x")
        if len(engines) == 2:
            d, p = at.get((size, "duckdb", name)), at.get((size, "postgresql", name))
            cells.append(f"{p['median_s'] / d['median_s']:.1f}x" if d and p else "")
        pandas = at.get((size, "pandas", name))
        cells.append("" if pandas is None else f"{pandas['median_s']:.2f} s ("
                     + " / ".join(f"{pandas['median_s'] / at[(size, e, name)]['median_s']:.0f}x" for e in engines) + ")")
        out.append("| " + " | ".join(cells) + " |")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--engine", nargs="+", choices=ENGINES, default=None,
                        help="default: both when a PostgreSQL can be started (or --pg-url), else duckdb")
    parser.add_argument("--pg-url", help="a PostgreSQL to bench on (its public schema is emptied); "
                                         "default: a throwaway server")
    parser.add_argument("--pg-keep", action="store_true",
                        help="with --pg-url: use it as it is when it already holds the store (no copy)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--pandas-runs", type=int, default=2,
                        help="pandas runs after its first (slow at 10M); -1 skips the pandas baseline")
    parser.add_argument("--only", nargs="+", help="time only the reports whose name contains one of these")
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "ardesk-bench")
    args = parser.parse_args()
    # a kill runs the `finally`s, so a throwaway PostgreSQL is stopped and deleted
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.engine is None:
        from tests.postgres_server import find_bindir

        args.engine = list(ENGINES) if args.pg_url or find_bindir() else ["duckdb"]
    engines = [e for e in ENGINES if e in args.engine]
    args.dir.mkdir(parents=True, exist_ok=True)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load_before = os.getloadavg()[0]
    rows = [row for size in args.sizes
            for row in bench(size, args.dir, engines, args.runs, args.pandas_runs, args.only, args.pg_url, args.pg_keep)]
    print(f"\nTaken {started}, load average {load_before:.1f} before / {os.getloadavg()[0]:.1f} after "
          f"({os.cpu_count()} cores); engines: median of {args.runs} runs after a first run; pandas: median of "
          f"{args.pandas_runs} after a first.\n")
    print("\n".join(table(rows, engines)))


if __name__ == "__main__":
    main()
