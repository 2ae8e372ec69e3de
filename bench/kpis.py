"""Time every KPI report on demo stores of 1M and 10M ledger entries, against plain pandas.

    python bench/kpis.py                      # 1M and 10M
    python bench/kpis.py --sizes 1000000 --runs 5
    python bench/kpis.py --only aging "open invoices" "KPI summary" --pandas-runs -1

Each store is generated once (`analytics.demo.persistence.generate_demo`, seed 42, ending 2026-10-31) into
<tmp>/ardesk-bench/demo_<N>.duckdb and reused by later runs. Each report runs once (the first run,
reported separately) and then `--runs` more times; the table shows the median of those (pandas:
`--pandas-runs`, 2 by default, because its 12-month DSO takes minutes at 10M). The pandas
baseline loads the tables once through DuckDB `.df()` (outside the timing) and computes the same
aging (as of the last posting date) and the same monthly AR/DSO series (12 month ends) in plain
pandas; its results are checked against the engine's before the ratio is printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
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

END = date(2026, 10, 31)


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


def bench(entries: int, directory: Path, runs: int, pandas_runs: int, only: list[str] | None = None) -> list[dict]:
    store = demo_store(entries, directory)
    _, last = ledger_bounds(store)
    as_of = last or END
    start = (pd.Timestamp(as_of.replace(day=1)) - pd.DateOffset(months=11)).date()
    enterprise = Filters(segment="enterprise")
    reports: dict[str, Callable[[], object]] = {
        "aging (total)": lambda: aging.aging_buckets(store, as_of),
        "aging by customer": lambda: aging.aging_buckets(store, as_of, by="customer"),
        "aging by collector, one segment": lambda: aging.aging_buckets(store, as_of, enterprise, by="collector"),
        "open invoices in 120+": lambda: aging.open_invoices(store, as_of, bucket=aging.bucket_labels()[-1]),
        "aging trend (12 month ends)": lambda: aging.aging_trend(store, start, as_of),
        "DSO monthly (12)": lambda: dso.dso_monthly(store, start, as_of),
        "days to pay (12)": lambda: dso.days_to_pay(store, start, as_of),
        "KPI summary": lambda: kpi_summary.kpi_summary(store, as_of),
        "top overdue customers": lambda: kpi_summary.top_overdue_customers(store, as_of),
        "bad debt (12)": lambda: bad_debt.bad_debt_monthly(store, start, as_of),
        "roll rates (12)": lambda: bad_debt.roll_rates(store, start, as_of),
        "dunning effectiveness (12)": lambda: dunning_effectiveness.dunning_effectiveness(store, start, as_of),
        "recovery curves (12)": lambda: dunning_effectiveness.recovery_curve(store, start, as_of),
        "collector KPIs (12)": lambda: collector_kpis.collector_kpis(store, start, as_of),
    }
    if only:
        reports = {name: fn for name, fn in reports.items() if any(word in name for word in only)}
    rows = []
    results: dict[str, object] = {}
    for name, fn in reports.items():
        first, median, result = timed(fn, runs)
        results[name] = result
        rows.append({"entries": entries, "report": name, "first_s": first, "median_s": median, "pandas_s": None})
        print(f"{entries:>10,} {name:<34} first {first:7.3f} s  median {median:7.3f} s", flush=True)
    if pandas_runs < 0 or "aging (total)" not in results or "DSO monthly (12)" not in results:
        store.close()
        return rows
    t = time.perf_counter()
    baseline = PandasBaseline(store)
    load = time.perf_counter() - t
    print(f"{entries:>10,} pandas load (not timed below): {load:.1f} s", flush=True)
    _, pandas_aging, expected = timed(lambda: baseline.aging(as_of), pandas_runs)
    got = results["aging (total)"].iloc[0]
    for key, value in expected.items():
        assert abs(got[key] - value) < 0.05 * max(1, len(baseline.entries) / 1e6), (key, got[key], value)
    _, pandas_dso, expected_dso = timed(lambda: baseline.dso(start, as_of), pandas_runs)
    ours = results["DSO monthly (12)"]
    assert np.allclose(ours["ar_end"], expected_dso["ar_end"], atol=1.0), "AR series differ from pandas"
    assert np.allclose(ours["credit_sales"], expected_dso["credit_sales"], atol=1.0), "sales differ from pandas"
    for row in rows:
        if row["report"] == "aging (total)":
            row["pandas_s"] = pandas_aging
        if row["report"] == "DSO monthly (12)":
            row["pandas_s"] = pandas_dso
    store.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--pandas-runs", type=int, default=2,
                        help="pandas runs after its first (slow at 10M); -1 skips the pandas baseline")
    parser.add_argument("--only", nargs="+", help="time only the reports whose name contains one of these")
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "ardesk-bench")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load_before = os.getloadavg()[0]
    rows = [row for size in args.sizes for row in bench(size, args.dir, args.runs, args.pandas_runs, args.only)]
    print(f"\nTaken {started}, load average {load_before:.1f} before / {os.getloadavg()[0]:.1f} after "
          f"(2 cores); engine: median of {args.runs} runs after a first run; pandas: median of "
          f"{args.pandas_runs} after a first.\n")
    print("| report | " + " | ".join(f"{s:,} entries: median (first)" for s in args.sizes) + " |")
    print("|---|" + "---|" * len(args.sizes))
    for name in dict.fromkeys(r["report"] for r in rows):
        cells = []
        for size in args.sizes:
            r = next(x for x in rows if x["report"] == name and x["entries"] == size)
            cell = f"{r['median_s']:.3f} s ({r['first_s']:.3f} s)"
            if r["pandas_s"]:
                cell += f"; pandas {r['pandas_s']:.2f} s = {r['pandas_s'] / r['median_s']:.1f}x"
            cells.append(cell)
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
