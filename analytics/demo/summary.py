"""What a demo run wrote and the collection picture it produced, and its plain-text table for the CLI."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd

from analytics.demo.customers import Customers
from analytics.demo.parameters import BEHAVIOURS, SEGMENTS
from analytics.store.schema import CUSTOMER_STATUSES


@dataclass
class DemoSummary:
    """What `generate_demo` wrote, and the collection picture it produced."""

    entries_target: int
    seed: int
    start_date: date
    end_date: date
    counts: dict[str, int] = field(default_factory=dict)  # rows written per table
    entries_by_type: dict[str, int] = field(default_factory=dict)
    date_ranges: dict[str, tuple[date, date]] = field(default_factory=dict)
    customers_by_segment: dict[str, int] = field(default_factory=dict)
    customers_by_status: dict[str, int] = field(default_factory=dict)
    customers_by_behaviour: dict[str, int] = field(default_factory=dict)
    # Late = invoices due by end_date that were not fully settled on their due date (incl. still open).
    late_rate_by_segment: dict[str, float] = field(default_factory=dict)
    avg_days_late_by_segment: dict[str, float] = field(default_factory=dict)  # of invoices paid late
    late_rate_by_behaviour: dict[str, float] = field(default_factory=dict)
    open_ar_usd_by_bucket: dict[str, float] = field(default_factory=dict)  # at end_date, in USD
    chunks: int = 0
    redraws: int = 0
    seconds: float = 0.0

    @property
    def entries(self) -> int:
        return self.counts.get("ledger_entries", 0)


def fill_summary(s: DemoSummary, c: Customers, stats: dict[str, np.ndarray], dates: pd.Series) -> None:
    def as_date(value: object) -> date:
        return pd.Timestamp(value).date()

    s.date_ranges = {
        "ledger_entries": (as_date(dates.l0), as_date(dates.l1)),
        "dunning_runs": (as_date(dates.r0), as_date(dates.r1)),
        "activities": (as_date(dates.a0), as_date(dates.a1)),
    }
    s.customers_by_segment = {seg: int((c.seg == i).sum()) for i, seg in enumerate(SEGMENTS)}
    s.customers_by_status = {st: int((c.status == i).sum()) for i, st in enumerate(CUSTOMER_STATUSES)
                             if (c.status == i).any()}
    s.customers_by_behaviour = {b: int((c.beh == i).sum()) for i, b in enumerate(BEHAVIOURS)}
    due, late = stats["seg_due"], stats["seg_late"]
    s.late_rate_by_segment = {seg: float(late[i] / due[i]) if due[i] else 0.0 for i, seg in enumerate(SEGMENTS)}
    paid_late, days = stats["seg_paid_late"], stats["seg_days_late"]
    s.avg_days_late_by_segment = {seg: float(days[i] / paid_late[i]) if paid_late[i] else 0.0
                                  for i, seg in enumerate(SEGMENTS)}
    bdue, blate = stats["beh_due"], stats["beh_late"]
    s.late_rate_by_behaviour = {b: float(blate[i] / bdue[i]) if bdue[i] else 0.0 for i, b in enumerate(BEHAVIOURS)}
    buckets = ("current", "1-30", "31-60", "61-90", "91-120", "120+")
    s.open_ar_usd_by_bucket = {b: round(float(v) / 100, 2) for b, v in zip(buckets, stats["open_usd"], strict=True)}


def demo_summary_table(summary: DemoSummary) -> str:
    """Plain text for the CLI: rows per table, date ranges, late-payment rates per segment, open AR."""
    s = summary
    lines = [
        f"Demo data: {s.entries:,} ledger entries (target {s.entries_target:,}), seed {s.seed}, "
        f"{s.start_date} to {s.end_date}, {s.seconds:.1f} s",
        "",
        "Rows written",
    ]
    lines += [f"  {table:<16} {rows:>12,}" for table, rows in s.counts.items()]
    lines += ["", "Ledger entries by type"]
    lines += [f"  {kind:<16} {rows:>12,}" for kind, rows in s.entries_by_type.items()]
    lines += ["", "Date ranges"]
    lines += [f"  {table:<16} {lo} to {hi}" for table, (lo, hi) in s.date_ranges.items()]
    lines += ["", f"  {'segment':<16} {'customers':>10} {'late rate':>10} {'avg days late':>14}"]
    lines += [
        f"  {seg:<16} {s.customers_by_segment.get(seg, 0):>10,} {s.late_rate_by_segment.get(seg, 0):>10.1%} "
        f"{s.avg_days_late_by_segment.get(seg, 0):>14.1f}"
        for seg in SEGMENTS
    ]
    lines += ["", "Customer status"]
    lines += [f"  {st:<16} {n:>12,}" for st, n in s.customers_by_status.items()]
    lines += ["", f"Open AR at {s.end_date} (USD) by days past due"]
    lines += [f"  {bucket:<16} {amount:>16,.2f}" for bucket, amount in s.open_ar_usd_by_bucket.items()]
    lines.append("")
    lines.append("Late rate: invoices due by the end date that were not settled on their due date (or are still open).")
    return "\n".join(lines)
