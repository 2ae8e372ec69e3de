"""Segmentation at scale: 100,000 customers built with numpy and loaded through the store's bulk path;
after a save, every customer's policy (and the preview's count per rule) equals an independent pandas
first-match over the same attributes and the ledger's behaviour computed from the raw rows."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analytics.access.roles import SYSTEM
from analytics.collections.segmentation import parse_rules, preview_rules, save_rules
from analytics.ledger.settlement import refresh_settled_on
from analytics.migrations import connect
from analytics.settings import load_settings
from analytics.store.connection import bulk_insert

N = 100_000
D = date(2026, 10, 31)
RULES = [
    {"name": "Large and late", "policy_id": 2, "conditions": [
        {"field": "open_ar", "op": ">=", "value": 15000}, {"field": "avg_days_late", "op": ">", "value": 20}]},
    {"name": "Promise breakers", "policy_id": 2, "conditions": [{"field": "broken_promises_90d", "op": ">=", "value": 1}]},
    {"name": "Disputed", "policy_id": 3, "conditions": [{"field": "open_disputes", "op": ">=", "value": 1}]},
    {"name": "North, half late", "policy_id": 2, "conditions": [
        {"field": "attr:region", "op": "in", "value": ["north"]}, {"field": "paid_late_pct", "op": ">=", "value": 50}]},
    {"name": "Large accounts abroad", "policy_id": 3, "conditions": [
        {"field": "segment", "op": "in", "value": ["enterprise", "public sector"]},
        {"field": "country", "op": "!=", "value": "DE"}]},
    {"name": "Middle band", "policy_id": 1, "conditions": [{"field": "open_ar", "op": "between", "value": [5000, 10000]}]},
    {"name": "Default", "policy_id": 3},
]


def _build(store) -> dict[str, pd.DataFrame]:  # noqa: ANN001
    """Customers (segment; country, None for 1 in 10; region, absent for 1 in 4), three invoices each
    (two paid early or late, one open), a broken promise for 1 in 20 (due 15 days before D; 1 in 60 due
    120 days before: too old), a dispute for 1 in 50 (open; every 7th of them resolved before D)."""
    rng = np.random.default_rng(11)
    currency = load_settings().reporting_currency
    ids = np.array([f"C{i:06d}" for i in range(N)])
    country = rng.choice(np.array(["DE", "FR", "NL", "US"], dtype=object), N)
    country[rng.random(N) < 0.1] = None
    customers = pd.DataFrame({"customer_id": ids, "name": "x", "currency": currency, "created_at": datetime(2026, 1, 1),
                              "segment": rng.choice(["enterprise", "mid-market", "small business", "public sector"], N),
                              "country": country})
    has_region = rng.random(N) >= 0.25
    attributes = pd.DataFrame({"customer_id": ids[has_region], "name": "region", "updated_at": datetime(2026, 1, 1),
                               "value": rng.choice(["north", "south", "east"], int(has_region.sum()))})
    posting = pd.Timestamp(D) - pd.to_timedelta(rng.integers(20, 300, 3 * N), unit="D")
    invoices = pd.DataFrame({
        "entry_id": np.arange(1, 3 * N + 1), "customer_id": np.repeat(ids, 3), "entry_type": "invoice",
        "document_number": [f"I{i}" for i in range(3 * N)], "posting_date": posting.date,
        "due_date": (posting + pd.Timedelta(days=30)).date, "amount": np.round(rng.uniform(100, 20_000, 3 * N), 2),
        "currency": currency})
    paid = invoices[invoices["entry_id"] % 3 != 0]
    paid_on = (pd.to_datetime(paid["due_date"]) + pd.to_timedelta(rng.integers(-10, 60, len(paid)), unit="D"))
    paid_on = paid_on.clip(upper=pd.Timestamp(D)).dt.date.to_numpy()
    payments = pd.DataFrame({
        "entry_id": np.arange(3 * N + 1, 3 * N + 1 + len(paid)), "customer_id": paid["customer_id"].to_numpy(),
        "entry_type": "payment", "document_number": [f"P{i}" for i in range(len(paid))], "posting_date": paid_on,
        "due_date": None, "amount": -paid["amount"].to_numpy(), "currency": currency})
    allocations = pd.DataFrame({
        "allocation_id": np.arange(1, len(paid) + 1), "customer_id": paid["customer_id"].to_numpy(),
        "from_entry_id": payments["entry_id"].to_numpy(), "to_entry_id": paid["entry_id"].to_numpy(),
        "amount": paid["amount"].to_numpy(), "allocation_date": paid_on})
    promised, old = ids[::20], ids[5::60]
    disputed = ids[3::50]
    activities = pd.DataFrame({
        "activity_id": np.arange(1, len(promised) + len(old) + len(disputed) + 1),
        "customer_id": np.concatenate([promised, old, disputed]),
        "kind": ["promise"] * (len(promised) + len(old)) + ["dispute"] * len(disputed),
        "status": ["broken"] * (len(promised) + len(old)) + ["open"] * len(disputed),
        "due_date": [D - timedelta(days=15)] * len(promised) + [D - timedelta(days=120)] * len(old)
                    + [None] * len(disputed),
        "occurred_at": datetime(2026, 9, 1), "author": "system",
        "resolved_at": [None] * (len(promised) + len(old))
                       + [datetime(2026, 10, 1) if k % 7 == 0 else None for k in range(len(disputed))]})
    configs = pd.DataFrame({"config_id": [1, 2, 3], "version": 1, "name": ["Standard", "Firm", "Gentle"],
                            "grace_days": 0, "active": True, "created_at": datetime(2026, 1, 1)})
    with store.write() as conn:
        for table, frame in (("customers", customers), ("customer_attributes", attributes),
                             ("ledger_entries", pd.concat([invoices, payments])), ("allocations", allocations),
                             ("activities", activities), ("dunning_configs", configs)):
            bulk_insert(conn, table, frame)
        refresh_settled_on(conn)
    return {"customers": customers, "attributes": attributes, "invoices": invoices, "allocations": allocations,
            "activities": activities}


def _first_match(raw: dict[str, pd.DataFrame]) -> pd.Series:
    """The rule position of every customer, computed with pandas from the rows as built."""
    day = pd.Timestamp(D)
    c = raw["customers"].set_index("customer_id")
    inv = raw["invoices"].assign(posting_date=lambda f: pd.to_datetime(f["posting_date"]),
                                 due_date=lambda f: pd.to_datetime(f["due_date"]))
    alloc = raw["allocations"].assign(allocation_date=lambda f: pd.to_datetime(f["allocation_date"]))
    applied = alloc[alloc["allocation_date"] <= day].groupby("to_entry_id")["amount"].sum()
    inv["open"] = inv["amount"] - inv["entry_id"].map(applied).fillna(0)
    posted = inv[(inv["posting_date"] <= day) & (inv["open"] > 0)]
    open_ar = posted.groupby("customer_id")["open"].sum().reindex(c.index, fill_value=0)
    window = alloc[(alloc["allocation_date"] <= day) & (alloc["allocation_date"] > day - pd.Timedelta(days=365))]
    window = window.join(inv.set_index("entry_id")["due_date"], on="to_entry_id")
    window = window.assign(  # days late clipped at 0 per payment: paying early is not "negative late"
        weighted=window["amount"] * (window["allocation_date"] - window["due_date"]).dt.days.clip(lower=0))
    sums = window.groupby("customer_id")[["weighted", "amount"]].sum()
    late = (sums["weighted"] / sums["amount"]).reindex(c.index)
    settled = inv.join(alloc.groupby("to_entry_id")["allocation_date"].max().rename("settled_on"), on="entry_id")
    settled = settled[(settled["settled_on"] <= day) & (settled["settled_on"] > day - pd.Timedelta(days=365))]
    paid_late = ((settled["settled_on"] > settled["due_date"]).groupby(settled["customer_id"]).mean() * 100
                 ).reindex(c.index)
    acts = raw["activities"]
    due = pd.to_datetime(acts["due_date"])
    broken = acts[(acts["kind"] == "promise") & (due >= day - pd.Timedelta(days=90)) & (due < day)]
    broken = broken.groupby("customer_id").size().reindex(c.index, fill_value=0)
    resolved = pd.to_datetime(acts["resolved_at"])
    disputes = acts[(acts["kind"] == "dispute") & (acts["occurred_at"] <= day) & (resolved.isna() | (resolved > day))]
    disputes = disputes.groupby("customer_id").size().reindex(c.index, fill_value=0)
    region = raw["attributes"].set_index("customer_id")["value"].reindex(c.index)
    conditions = [
        (open_ar >= 15000) & (late > 20),  # NaN (no payment in 12 months) compares False
        broken >= 1,
        disputes >= 1,
        (region == "north") & (paid_late >= 50),
        c["segment"].isin(["enterprise", "public sector"]) & (c["country"].isna() | (c["country"] != "DE")),
        (open_ar >= 5000) & (open_ar <= 10000),
    ]
    return pd.Series(np.select([x.to_numpy() for x in conditions], range(1, 7), default=7), index=c.index)


@pytest.mark.slow
def test_first_match_at_100k_customers_equals_pandas(tmp_path: Path) -> None:
    store = connect(str(tmp_path / "scale.duckdb"))
    try:
        raw = _build(store)
        rules = parse_rules(RULES)
        preview = preview_rules(store, rules, D)
        saved = save_rules(store, SYSTEM, rules, "scale check", D)
        assigned = store.read("SELECT customer_id, dunning_config_id FROM customers").set_index("customer_id")
    finally:
        store.close()
    position = _first_match(raw)
    expected = position.map({i + 1: r["policy_id"] for i, r in enumerate(RULES)})
    assert saved["customers_changed"] == N  # nobody had a policy
    got = assigned["dunning_config_id"].astype(int).sort_index()
    assert got.equals(expected.sort_index().astype(int)), (got != expected.sort_index()).sum()
    assert preview["customers"].tolist() == [int((position == k).sum()) for k in range(1, 8)]
    assert min(preview["customers"]) > 100  # every rule takes many: the comparison is not vacuous
