"""How well each dunning configuration (and version) and each of its stages gets invoices paid.

A stage run counts when it was sent or done (`dunning_runs.outcome` in sent, done) on a date in
[start, end], for an invoice of a customer matching the filters; per invoice and stage the first
such run is the one measured. Reporting currency at the rate on `end`.
- invoices, amount = invoices that reached the stage, and their open amount on the run date
  (open-as-of rule of `analytics.ledger`);
- paid_7d_pct / paid_14d_pct / paid_30d_pct = share of that amount allocated from payments and
  credit notes in the N days after the run, over the runs whose N-day window ended by `end`
  (so young runs do not drag a share down);
- recovered = amount allocated from payments and credit notes after the run, up to `end`;
- median_days_to_pay = median days from the run to full payment (payments and credit notes only,
  no write-off), invoices paid by `end`;
- reached_final_pct = share of the invoices that later (by `end`) reached the last stage of their
  configuration version or an escalation-channel stage.
Comparable across configurations over the same period and segment (pass the same filters).
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from analytics.filters import ALL, Filters, filter_sql
from analytics.ledger import fx_at_sql, reporting_params
from analytics.store import Store

EFFECTIVENESS_COLUMNS = [
    "config_id", "config_name", "config_version", "stage_no", "stage_name", "channel", "invoices", "amount",
    "paid_7d_pct", "paid_14d_pct", "paid_30d_pct", "recovered", "median_days_to_pay", "reached_final_pct",
]
WINDOWS = (7, 14, 30)


def _runs_sql(filters: Filters) -> tuple[str, dict[str, object]]:
    """CTEs `runs` (first sent/done run per invoice and stage in [start, end], with the open amount
    on the run date, FX at `end` and days after the run still inside the report: age) and `paid`
    (allocations from payments and credit notes to those invoices after their run, up to `end`)."""
    run_filter, params = filter_sql(filters, "r.customer_id")
    sql = f"""
    {fx_at_sql("end")}, first_runs AS (
        SELECT r.entry_id, r.config_id, r.config_version, r.stage_no, MIN(r.run_date) AS run_date
        FROM dunning_runs r
        WHERE r.outcome IN ('sent', 'done') AND r.run_date >= :start AND r.run_date <= :end{run_filter}
        GROUP BY r.entry_id, r.config_id, r.config_version, r.stage_no
    ), dunned AS (
        SELECT DISTINCT entry_id FROM first_runs
    ), allocs AS (
        SELECT a.to_entry_id AS entry_id, a.allocation_date, a.amount,
               CASE WHEN c.entry_type IN ('payment', 'credit_note') THEN 1 ELSE 0 END AS is_payment
        FROM allocations a
        JOIN dunned d ON d.entry_id = a.to_entry_id
        JOIN ledger_entries c ON c.entry_id = a.from_entry_id
        WHERE a.allocation_date <= :end
    ), settled AS (
        SELECT e.entry_id,
               CASE WHEN SUM(al.amount) >= MAX(e.amount) AND MIN(al.is_payment) = 1
                    THEN MAX(al.allocation_date) END AS paid_date
        FROM ledger_entries e JOIN dunned d ON d.entry_id = e.entry_id
        JOIN allocs al ON al.entry_id = e.entry_id
        GROUP BY e.entry_id
    ), runs AS (
        SELECT fr.entry_id, fr.config_id, fr.config_version, fr.stage_no, fr.run_date,
               CAST(:end AS DATE) - fr.run_date AS age,
               (e.amount - COALESCE((SELECT SUM(al.amount) FROM allocs al
                                     WHERE al.entry_id = fr.entry_id AND al.allocation_date <= fr.run_date), 0))
                   * CASE WHEN e.currency = :reporting THEN 1 ELSE fx.rate END AS open_at_run,
               CASE WHEN e.currency = :reporting THEN 1 ELSE fx.rate END AS rate,
               st.paid_date
        FROM first_runs fr
        JOIN ledger_entries e ON e.entry_id = fr.entry_id
        LEFT JOIN fx ON fx.currency = e.currency
        LEFT JOIN settled st ON st.entry_id = fr.entry_id
    ), paid AS (
        SELECT ru.entry_id, ru.config_id, ru.config_version, ru.stage_no, ru.age,
               al.allocation_date - ru.run_date AS offset_days, al.amount * ru.rate AS amount
        FROM runs ru JOIN allocs al ON al.entry_id = ru.entry_id
        WHERE al.is_payment = 1 AND al.allocation_date > ru.run_date AND ru.open_at_run > 0
    )"""  # noqa: S608 - constants and bind names only
    return sql, params


def dunning_effectiveness(store: Store, start: date, end: date, filters: Filters = ALL) -> pd.DataFrame:
    """One row per (config_id, config_version, stage_no): config_name, stage_name, channel, invoices,
    amount, paid_7d_pct, paid_14d_pct, paid_30d_pct, recovered, median_days_to_pay, reached_final_pct."""
    ctes, params = _runs_sql(filters)
    windows = ", ".join(
        f"SUM(CASE WHEN ru.age >= {n} THEN ru.open_at_run ELSE 0 END) AS base_{n}, "
        f"SUM(CASE WHEN ru.age >= {n} THEN COALESCE(pw.paid_{n}, 0) ELSE 0 END) AS paid_{n}"
        for n in WINDOWS)
    paid_windows = ", ".join(f"SUM(CASE WHEN p.offset_days <= {n} THEN p.amount ELSE 0 END) AS paid_{n}"
                             for n in WINDOWS)
    frame = store.read(f"""
    WITH {ctes},
    paid_per_run AS (
        SELECT p.entry_id, p.config_id, p.config_version, p.stage_no, {paid_windows},
               SUM(p.amount) AS recovered
        FROM paid p GROUP BY p.entry_id, p.config_id, p.config_version, p.stage_no
    ), final_stages AS (
        SELECT s.config_id, s.version, s.stage_no FROM dunning_stages s
        WHERE s.channel = 'escalation'
           OR s.stage_no = (SELECT MAX(s2.stage_no) FROM dunning_stages s2
                            WHERE s2.config_id = s.config_id AND s2.version = s.version)
    ), reached_final AS (
        SELECT DISTINCT r.entry_id, r.config_id, r.config_version, r.run_date
        FROM dunning_runs r
        JOIN final_stages fs ON fs.config_id = r.config_id AND fs.version = r.config_version
                            AND fs.stage_no = r.stage_no
        JOIN dunned d ON d.entry_id = r.entry_id
        WHERE r.outcome IN ('sent', 'done') AND r.run_date <= :end
    )
    SELECT ru.config_id, ru.config_version, ru.stage_no, COUNT(*) AS invoices,
           SUM(ru.open_at_run) AS amount, {windows},
           SUM(COALESCE(pw.recovered, 0)) AS recovered,
           PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY ru.paid_date - ru.run_date) AS median_days_to_pay,
           SUM(CASE WHEN EXISTS (SELECT 1 FROM reached_final rf
                                 WHERE rf.entry_id = ru.entry_id AND rf.config_id = ru.config_id
                                   AND rf.config_version = ru.config_version AND rf.run_date >= ru.run_date)
                    THEN 1 ELSE 0 END) AS reached_final
    FROM runs ru
    LEFT JOIN paid_per_run pw ON pw.entry_id = ru.entry_id AND pw.config_id = ru.config_id
                             AND pw.config_version = ru.config_version AND pw.stage_no = ru.stage_no
    WHERE ru.open_at_run > 0
    GROUP BY ru.config_id, ru.config_version, ru.stage_no
    """, {**reporting_params(), **params, "start": start, "end": end})  # noqa: S608 - constants and bind names only
    names = store.read("""
        SELECT s.config_id, s.version AS config_version, s.stage_no, c.name AS config_name,
               s.name AS stage_name, s.channel
        FROM dunning_stages s JOIN dunning_configs c ON c.config_id = s.config_id AND c.version = s.version
    """)
    frame = frame.merge(names, on=["config_id", "config_version", "stage_no"], how="left")
    for n in WINDOWS:
        base = frame[f"base_{n}"].astype(float)
        frame[f"paid_{n}d_pct"] = frame[f"paid_{n}"].astype(float) / base.where(base != 0, np.nan) * 100
    frame["reached_final_pct"] = frame["reached_final"] / frame["invoices"] * 100
    frame["invoices"] = frame["invoices"].astype(int)
    for col in ("amount", "recovered"):
        frame[col] = frame[col].astype(float)
    frame["median_days_to_pay"] = frame["median_days_to_pay"].astype(float)
    rounded = ["amount", "recovered", "reached_final_pct", "median_days_to_pay"] + [f"paid_{n}d_pct" for n in WINDOWS]
    frame[rounded] = frame[rounded].round(2)
    return frame.sort_values(["config_id", "config_version", "stage_no"]).reset_index(drop=True)[EFFECTIVENESS_COLUMNS]


def recovery_curve(store: Store, start: date, end: date, filters: Filters = ALL,
                   max_days: int = 60) -> pd.DataFrame:
    """Share of the open amount at each stage paid within 0..max_days days after it (cumulative).

    Long format: config_id, config_version, stage_no, days, share_paid_pct; each stage's runs count
    only for the days their window has reached by `end` (share at day d = paid within d days / open
    amount, over the runs at least d days old).
    """
    ctes, params = _runs_sql(filters)
    binds = {**reporting_params(), **params, "start": start, "end": end, "max_days": int(max_days)}
    keys = ["config_id", "config_version", "stage_no"]
    bases = store.read(f"""
    WITH {ctes}
    SELECT ru.config_id, ru.config_version, ru.stage_no,
           CASE WHEN ru.age > :max_days THEN :max_days ELSE ru.age END AS age, SUM(ru.open_at_run) AS amount
    FROM runs ru WHERE ru.open_at_run > 0
    GROUP BY ru.config_id, ru.config_version, ru.stage_no, CASE WHEN ru.age > :max_days THEN :max_days ELSE ru.age END
    """, binds)  # noqa: S608 - constants and bind names only
    paid = store.read(f"""
    WITH {ctes}
    SELECT p.config_id, p.config_version, p.stage_no,
           CASE WHEN p.age > :max_days THEN :max_days ELSE p.age END AS age, p.offset_days, SUM(p.amount) AS amount
    FROM paid p WHERE p.offset_days <= :max_days
    GROUP BY p.config_id, p.config_version, p.stage_no, CASE WHEN p.age > :max_days THEN :max_days ELSE p.age END,
             p.offset_days
    """, binds)  # noqa: S608 - constants and bind names only
    rows = []
    for stage, base in bases.groupby(keys):
        stage_paid = paid.merge(pd.DataFrame([dict(zip(keys, stage, strict=True))]), on=keys)
        for d in range(max_days + 1):
            denominator = float(base.loc[base["age"] >= d, "amount"].sum())
            mature = stage_paid[(stage_paid["age"] >= d) & (stage_paid["offset_days"] <= d)]
            share = float(mature["amount"].sum()) / denominator * 100 if denominator else np.nan
            rows.append(dict(zip(keys, stage, strict=True)) | {"days": d, "share_paid_pct": round(share, 2)})
    return pd.DataFrame(rows, columns=keys + ["days", "share_paid_pct"])
