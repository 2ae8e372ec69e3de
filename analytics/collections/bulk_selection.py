"""Customers for bulk actions: the set a collector picks by days past due, overdue amount, segment,
status, last contact and owner, filtered in SQL over the one open-items rule."""

from __future__ import annotations

from datetime import date

import pandas as pd

from analytics.ledger.open_items import OPEN_ITEMS_SQL
from analytics.settings import load_settings
from analytics.store.connection import Store


def select_customers(
    store: Store, as_of: date, *, days_past_due: tuple[int, int] | None = None, min_overdue: float = 0.0,
    segments: list[str] | None = None, statuses: list[str] | None = None,
    not_contacted_days: int | None = None, collector: str | None = None, limit: int = 5000,
) -> pd.DataFrame:
    """Customers for bulk actions, filtered in SQL:

    days_past_due (lo, hi): has an open invoice with lo <= days past due <= hi (exactly 4: (4, 4));
    min_overdue: overdue amount (reporting currency) >= it; segments / statuses: one of;
    not_contacted_days: no email, letter or call in that many days (or never); collector: owner.
    """
    where, params = ["cu.open_ar > 0"], {
        "as_of": as_of, "reporting": load_settings().reporting_currency, "limit": limit,
        "min_overdue": float(min_overdue)}
    if days_past_due is not None:
        params["dpd_lo"], params["dpd_hi"] = int(days_past_due[0]), int(days_past_due[1])
        where.append("cu.in_range > 0")
    if min_overdue:
        where.append("cu.overdue_ar >= :min_overdue")
    for name, values, column in (("seg", segments, "c.segment"), ("st", statuses, "c.status")):
        if values:
            binds = [f":{name}{i}" for i in range(len(values))]
            params.update({b[1:]: v for b, v in zip(binds, values, strict=True)})
            where.append(f"{column} IN ({', '.join(binds)})")
    if not_contacted_days is not None:
        params["contact_since"] = pd.Timestamp(as_of) - pd.Timedelta(days=int(not_contacted_days))
        where.append("(lc.last_contact IS NULL OR lc.last_contact < :contact_since)")
    if collector:
        params["collector"] = collector
        where.append("c.collector = :collector")
    in_range = ("SUM(CASE WHEN open_amount > 0 AND days_past_due BETWEEN :dpd_lo AND :dpd_hi THEN 1 ELSE 0 END)"
                if days_past_due is not None else "0")
    sql = f"""
    WITH items AS ({OPEN_ITEMS_SQL}),
    cu AS (
        SELECT customer_id,
               SUM(CASE WHEN open_amount > 0 THEN open_amount * fx_rate ELSE 0 END) AS open_ar,
               SUM(CASE WHEN open_amount > 0 AND days_past_due > 0 THEN open_amount * fx_rate ELSE 0 END) AS overdue_ar,
               MAX(CASE WHEN open_amount > 0 THEN days_past_due END) AS max_days_past_due,
               {in_range} AS in_range
        FROM items GROUP BY customer_id
    ), lc AS (
        SELECT customer_id, MAX(occurred_at) AS last_contact FROM activities
        WHERE kind IN ('email', 'letter', 'call') GROUP BY customer_id
    )
    SELECT c.customer_id, c.name, c.segment, c.status, c.collector, cu.open_ar, cu.overdue_ar,
           cu.max_days_past_due, lc.last_contact
    FROM customers c JOIN cu ON cu.customer_id = c.customer_id
    LEFT JOIN lc ON lc.customer_id = c.customer_id
    WHERE {' AND '.join(where)}
    ORDER BY cu.overdue_ar DESC, c.customer_id
    LIMIT :limit
    """  # noqa: S608 - composed from constants and generated bind names only
    frame = store.read(sql, params)
    for col in ("open_ar", "overdue_ar"):
        frame[col] = frame[col].astype(float).round(2)
    return frame
