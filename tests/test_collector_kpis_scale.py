"""Collector KPIs on a store big enough to show a quadratic plan, on both engines, against pandas.

The hand-computed team (tests/test_kpi_dunning_collectors.py) has a handful of rows, where a plan
that rescans the ledger once per promise still passes; at 1M entries that plan kept PostgreSQL busy
for more than 10 minutes. Here 300 customers, 24,000 entries, about 2,400 promises and 7,500 actions
(two currencies, customers without a collector, actions by people who own no customer): every
figure must equal a pandas computation of the rules in `analytics.kpis.collector_kpis`, as of a past
date (open items from the ledger) and as of the horizon (open now), and on PostgreSQL the plan must
join: no large table scanned again per row (a SubPlan or the inner side of a nested loop).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

import analytics.kpis.collector_kpis as collector_module
from analytics.kpis.collector_kpis import collector_kpis, working_days
from analytics.settings import load_settings
from analytics.store.connection import Store, bulk_insert

COLLECTORS = ("ann", "bob", "cat", "dan", "eve")
CUSTOMERS, ENTRIES_EACH, ACTIONS_EACH, PROMISES_EACH = 300, 40, 25, 8
FIRST = date(2025, 1, 1)
BIG_TABLES = {"ledger_entries", "allocations", "activities"}


def _day(offsets: np.ndarray) -> list[date]:
    return [FIRST + timedelta(days=int(d)) for d in offsets]


def build(store: Store) -> dict[str, pd.DataFrame]:
    """Customers, invoices and payments (no allocations: every invoice is open), actions, promises, EUR rates."""
    rng = np.random.default_rng(42)
    reporting = load_settings().reporting_currency
    ids = [f"C{i:03d}" for i in range(CUSTOMERS)]
    owner = [None if i % 10 == 9 else COLLECTORS[i % len(COLLECTORS)] for i in range(CUSTOMERS)]
    currency = ["EUR" if i % 4 == 0 else reporting for i in range(CUSTOMERS)]
    customers = pd.DataFrame({"customer_id": ids, "name": ids, "segment": "smb", "currency": currency,
                              "collector": owner, "created_at": datetime(2024, 1, 1)})
    n = CUSTOMERS * ENTRIES_EACH
    who = np.repeat(np.arange(CUSTOMERS), ENTRIES_EACH)
    kind = np.where(np.arange(n) % 2 == 0, "invoice", "payment")
    posted = rng.integers(0, 365, n)
    cents = rng.integers(1_000, 500_000, n)
    entries = pd.DataFrame({
        "entry_id": np.arange(1, n + 1), "customer_id": [ids[i] for i in who], "entry_type": kind,
        "document_number": [f"D{i}" for i in range(n)], "posting_date": _day(posted),
        "due_date": [d if k == "invoice" else None for d, k in zip(_day(posted + 30), kind, strict=True)],
        "amount": np.where(kind == "invoice", cents, -cents) / 100, "currency": [currency[i] for i in who]})
    m = CUSTOMERS * (ACTIONS_EACH + PROMISES_EACH)
    on = np.repeat(np.arange(CUSTOMERS), ACTIONS_EACH + PROMISES_EACH)
    promise = np.tile(np.arange(ACTIONS_EACH + PROMISES_EACH) >= ACTIONS_EACH, CUSTOMERS)
    author = [owner[c] if owner[c] and r < 0.8 else ("zed" if r > 0.95 else COLLECTORS[int(r * 100) % 5])
              for c, r in zip(on, rng.random(m), strict=True)]
    at = rng.integers(-30, 365, m)
    activities = pd.DataFrame({
        "activity_id": np.arange(1, m + 1), "customer_id": [ids[i] for i in on],
        "kind": np.where(promise, "promise", rng.choice(["call", "email", "note"], m)),
        "occurred_at": [datetime(FIRST.year, FIRST.month, FIRST.day, 10) + timedelta(days=int(d)) for d in at],
        "author": author, "amount": [float(x) if p else None for x, p in zip(rng.integers(100, 8_000, m), promise,
                                                                               strict=True)],
        "due_date": [d if p else None for d, p in zip(_day(at + rng.integers(0, 21, m)), promise, strict=True)]})
    fx = pd.DataFrame({"rate_date": [date(2025, month, 1) for month in range(1, 13)], "currency": "EUR",
                       "rate": [1.05 + month / 100 for month in range(1, 13)]})
    with store.write() as conn:
        for table, frame in (("customers", customers), ("ledger_entries", entries), ("activities", activities),
                             ("fx_rates", fx)):
            bulk_insert(conn, table, frame)
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("ANALYZE"))
    return {"customers": customers, "entries": entries, "activities": activities, "fx": fx}


def expected(data: dict[str, pd.DataFrame], start: date, end: date) -> pd.DataFrame:
    """The rules of `analytics.kpis.collector_kpis`, in pandas, on the frames `build` stored."""
    customers, entries, acts, fx = data["customers"], data["entries"], data["activities"], data["fx"]
    rate = {load_settings().reporting_currency: 1.0,
            "EUR": float(fx[fx.rate_date <= end].sort_values("rate_date")["rate"].iloc[-1])}
    owner = customers.set_index("customer_id")["collector"]
    e = entries.assign(day=pd.to_datetime(entries.posting_date).dt.date, collector=entries.customer_id.map(owner),
                       value=entries.amount * entries.currency.map(rate))
    invoices = e[(e.entry_type == "invoice") & (e.day <= end)]
    overdue = invoices[pd.to_datetime(invoices.due_date).dt.date < end]
    payments = e[e.entry_type == "payment"]
    a = acts.assign(day=pd.to_datetime(acts.occurred_at).dt.date)
    in_period = a[(a.day >= start) & (a.day <= end)]
    counts = in_period[in_period.kind.isin(["call", "email", "note"])].groupby(["author", "kind"]).size()
    promised = in_period[in_period.kind == "promise"].assign(due=lambda f: pd.to_datetime(f.due_date).dt.date)
    paid = promised.merge(payments[["customer_id", "day", "amount"]], on="customer_id", suffixes=("", "_paid"))
    paid = paid[(paid.day_paid >= paid.day) & (paid.day_paid <= paid.due)]
    paid_by_promise = -paid.groupby("activity_id")["amount_paid"].sum()
    promised = promised.assign(is_due=promised.due <= end,
                               paid=promised.activity_id.map(paid_by_promise).fillna(0.0))
    promised = promised.assign(kept=promised.is_due & (promised.amount <= promised.paid + 1e-9))
    actions = a[a.kind.isin(["call", "email", "note"])][["customer_id", "author", "day"]]
    near = payments[(payments.day >= start) & (payments.day <= end)].merge(
        actions, on="customer_id", suffixes=("", "_acted"))
    near = near[[0 <= (p - q).days <= 14 for p, q in zip(near.day, near.day_acted, strict=True)]]
    credited = near.drop_duplicates(["author", "entry_id"])
    rows = []
    for name in sorted(owner.dropna().unique()):
        mine = promised[promised.author == name]
        calls, emails, notes = (int(counts.get((name, k), 0)) for k in ("call", "email", "note"))
        rows.append({"collector": name, "customers": int((owner == name).sum()),
                     "open_ar": invoices[invoices.collector == name].value.sum(),
                     "overdue_ar": overdue[overdue.collector == name].value.sum(),
                     "calls": calls, "emails": emails, "notes": notes,
                     "actions_per_day": round((calls + emails + notes) / working_days(start, end), 2),
                     "promises": len(mine), "promises_due": int(mine.is_due.sum()),
                     "promises_kept": int(mine.kept.sum()),
                     "collected_14d": -credited[credited.author == name].value.sum()})
    return pd.DataFrame(rows)


@pytest.fixture
def plans(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict]]:
    """The PostgreSQL plan (EXPLAIN, JSON) of each query collector KPIs runs; empty on DuckDB."""
    seen: list[dict] = []
    read = collector_module.read_df

    def explained(conn: sa.Connection, query: str, params: dict | None = None) -> pd.DataFrame:
        if conn.dialect.name == "postgresql":
            plan = conn.execute(sa.text(f"EXPLAIN (FORMAT JSON) {query}"), dict(params or {})).scalar()
            seen.append(plan[0]["Plan"])
        return read(conn, query, params)

    monkeypatch.setattr(collector_module, "read_df", explained)
    yield seen


def rescans(node: dict, again: bool = False) -> list[str]:
    """Large tables scanned sequentially under a SubPlan or the inner side of a nested loop (once per row)."""
    found = [node["Relation Name"]] if again and node.get("Node Type") == "Seq Scan" \
        and node.get("Relation Name") in BIG_TABLES else []
    for child in node.get("Plans", []):
        per_row = child.get("Parent Relationship") == "SubPlan" or (
            node.get("Node Type") == "Nested Loop" and child.get("Parent Relationship") == "Inner")
        found += rescans(child, again or per_row)
    return found


@pytest.mark.parametrize("end", [date(2025, 9, 30), None], ids=["past date", "horizon"])
def test_collector_kpis_at_scale_equal_pandas_and_join_on_postgres(
        store_on_each_engine: Store, plans: list[dict], end: date | None) -> None:
    store = store_on_each_engine
    data = build(store)
    end = end or max(data["entries"].posting_date)
    start = date(2025, 4, 1)
    got = collector_kpis(store, start, end)
    want = expected(data, start, end)
    assert want["promises_due"].sum() > 500 and want["collected_14d"].gt(0).all()  # the data exercises each rule
    exact = ["collector", "customers", "calls", "emails", "notes", "actions_per_day", "promises", "promises_due",
             "promises_kept"]
    assert got[exact].to_dict("records") == want[exact].to_dict("records")
    for money in ("open_ar", "overdue_ar", "collected_14d"):
        assert got[money].tolist() == pytest.approx(want[money].round(2).tolist(), abs=0.011), money
    if store.dialect == "postgresql":
        assert plans and not [t for plan in plans for t in rescans(plan)]
