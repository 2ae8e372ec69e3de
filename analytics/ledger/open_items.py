"""Open items and balances as of a date: the definitions every KPI builds on.

Open as of D:
- only entries posted on or before D count, and only allocations dated on or before D;
- a debit entry (invoice, debit adjustment: amount > 0) is open for
  amount - allocations to it dated <= D;
- a credit entry (payment, credit note, write-off, credit adjustment: amount < 0) is unapplied for
  amount + allocations from it dated <= D (a negative number: cash or credit on account);
- days past due = D - due date (due today is 0, "current"); a debit without a due date (an
  adjustment) is due on its posting date.
A report for a past D therefore reproduces what was open then, whatever was paid later.

Installments: an invoice with a payment schedule (`invoice_installments`) is open as its
installments. What was allocated to the invoice by D (paid_D) pays them oldest due date first
(ties by installment_no): with cum_k the running sum of the installment amounts in that order,
installment k is open for min(amount_k, max(0, cum_k - paid_D)) = max(0, cum_k - paid_D) -
max(0, cum_(k-1) - paid_D), and ages on its own due date; the last installment's cum is the
invoice's amount, so the installments' open amounts always sum to the invoice's. An invoice without
a schedule is one item, as above (`SCHEDULE_SQL`, `installment_open_sql`).

`ledger_entries.settled_on` is the first date from which the entry's open amount is 0 and stays 0
(the allocations to a debit, or from a credit, dated on or before it sum to |amount|, and no later
allocation changes that); NULL while open. It only prunes: an entry with settled_on <= D is closed
at D. `ledger_entries.open_now` is the open amount after every allocation in the store (NULL
until the entry's first allocation: then the amount itself). When D is on or after the activity
horizon (the last posting and allocation date), open as of D is exactly open now, so aging reads
`open_now` instead of summing allocations (`current_open_amounts`). Every write of allocations or
entry amounts calls `refresh_settled_on` (which keeps both) in its transaction.

Amounts are in each entry's own currency; `fx_rate` converts to the reporting currency at the
latest rate on or before D (the reporting currency itself converts at 1; no rate gives NULL, and
the item is left out of converted sums and counted as `missing_fx` where reported).
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import sqlalchemy as sa

from analytics.ledger.filters import Filters, filter_sql
from analytics.ledger.fx import FX_AT_SPINE, fx_at_sql, reporting_params
from analytics.store.connection import Store

# Only entries still open at D are candidates: posted by D and not settled by D (`settled_on`, kept
# by `refresh_settled_on`); the allocation sums read only the candidates' allocations, so a point in
# time touches the open items, not the whole history. `settled_on` only prunes: the open amount is
# still computed from the allocations, and `<> 0` still decides. `applied` holds, per candidate, the
# change its allocations make: minus those to a debit, plus those from a credit (each entry is one or
# the other, so one join serves both). The one text of the rule; the {placeholders} only choose which
# columns travel with it (and the customer filters).
_OPEN_ITEMS_TEMPLATE = """
WITH candidates AS (
    SELECT e.entry_id, {candidate_columns}e.posting_date, e.due_date, e.currency, e.amount
    FROM ledger_entries e
    WHERE e.posting_date <= :as_of AND (e.settled_on IS NULL OR e.settled_on > :as_of){entry_filter}
), applied AS (
    SELECT a.to_entry_id AS entry_id, -SUM(a.amount) AS change
    FROM allocations a
    WHERE a.allocation_date <= :as_of{alloc_filter}
      AND a.to_entry_id IN (SELECT c.entry_id FROM candidates c WHERE c.amount > 0)
    GROUP BY a.to_entry_id
    UNION ALL
    SELECT a.from_entry_id AS entry_id, SUM(a.amount) AS change
    FROM allocations a
    WHERE a.allocation_date <= :as_of{alloc_filter}
      AND a.from_entry_id IN (SELECT c.entry_id FROM candidates c WHERE c.amount <= 0)
    GROUP BY a.from_entry_id
), {schedule}{fx_cte}
SELECT {item_columns},
       {open_amount} AS open_amount,{fx_column}
       CAST(:as_of AS DATE) - COALESCE(s.due_date, e.due_date, e.posting_date) AS days_past_due,
       CAST(:as_of AS DATE) - e.posting_date AS age_days
FROM candidates e
LEFT JOIN applied t ON t.entry_id = e.entry_id
LEFT JOIN schedule s ON s.entry_id = e.entry_id{fx_join}
WHERE {open_amount} <> 0
"""
# The installments of the scheduled invoices (`schedule` CTE, joined as `s`): `before` = the sum of
# the installments due earlier (cum_(k-1)), `is_last` marks the last one (its cum is the invoice's amount).
SCHEDULE_SQL = """schedule AS (
    SELECT x.entry_id, x.installment_no, x.due_date, x.amount,
           COALESCE(SUM(x.amount) OVER (PARTITION BY x.entry_id ORDER BY x.due_date, x.installment_no
                                        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before,
           CASE WHEN LEAD(x.installment_no) OVER (PARTITION BY x.entry_id ORDER BY x.due_date, x.installment_no)
                IS NULL THEN 1 ELSE 0 END AS is_last
    FROM invoice_installments x{restrict}
)"""


def installment_open_sql(paid: str, amount: str = "e.amount", item: str = "s") -> str:
    """SQL: installment `item`'s open amount once `paid` was allocated to its invoice of `amount`:
    max(0, cum_k - paid) - max(0, cum_(k-1) - paid), cum of the last installment = the invoice's amount.

    Every cum is capped at the invoice's amount, so the installments sum to the invoice's open amount
    even when the invoice's amount changed after its schedule was imported (the last installment takes
    a rise; a cut takes the latest installments first), and no installment is ever negative."""
    upto = f"CASE WHEN {item}.is_last = 1 THEN {amount} ELSE LEAST({item}.before + {item}.amount, {amount}) END"
    before = f"LEAST({item}.before, {amount})"
    return f"(GREATEST(0, {upto} - ({paid})) - GREATEST(0, {before} - ({paid})))"


def _open_amount(invoice_open: str) -> str:
    """An item's open amount: the invoice's own (`invoice_open`) without a schedule, else installment s's."""
    return (f"CASE WHEN s.entry_id IS NULL THEN {invoice_open} "
            f"ELSE {installment_open_sql(f'e.amount - ({invoice_open})')} END")


_CANDIDATE_SCHEDULE = SCHEDULE_SQL.format(
    restrict="\n    WHERE x.entry_id IN (SELECT c.entry_id FROM candidates c WHERE c.amount > 0)")
_ALLOCATED_OPEN = _open_amount("e.amount + COALESCE(t.change, 0)")
# Every column of an open item, with its FX rate at D (OPEN_ITEMS_SQL and its narrowed forms).
_ITEM_PARTS = {
    "candidate_columns": "e.customer_id, e.entry_type, e.document_number, ",
    "item_columns": ("e.entry_id, e.customer_id, e.entry_type, e.document_number, e.posting_date,\n"
                     "       COALESCE(s.due_date, e.due_date) AS due_date, e.currency, e.amount"),
    "schedule": _CANDIDATE_SCHEDULE, "open_amount": _ALLOCATED_OPEN,
    "fx_cte": ", " + fx_at_sql("as_of"),
    "fx_column": "\n       CASE WHEN e.currency = :reporting THEN 1 ELSE fx.rate END AS fx_rate,",
    "fx_join": "\nLEFT JOIN fx ON fx.currency = e.currency",
}

OPEN_ITEMS_SQL = _OPEN_ITEMS_TEMPLATE.format(alloc_filter="", entry_filter="", **_ITEM_PARTS)
# The same rule for one customer (:customer_id). A direct equality, not the filter semi-join, so a
# customer's page reads only that customer's allocations (1.07 s -> 0.09 s on the 200k demo).
CUSTOMER_OPEN_ITEMS_SQL = _OPEN_ITEMS_TEMPLATE.format(
    alloc_filter=" AND a.customer_id = :customer_id", entry_filter=" AND e.customer_id = :customer_id",
    **_ITEM_PARTS)


def open_items_sql(filters: Filters | None = None, path: str | None = None) -> tuple[str, dict[str, object]]:
    """`OPEN_ITEMS_SQL` narrowed to the customers matching `filters`, and the filter's params.

    Binds still needed from the caller: `:as_of` and `:reporting` (see `_params`).
    One row per open item; an invoice with a payment schedule gives one row per open installment
    (same entry_id; due_date, open_amount and days_past_due are the installment's, amount the invoice's).
    Columns: entry_id, customer_id, entry_type, document_number, posting_date, due_date, currency,
    amount, open_amount (own currency; > 0 open debit, < 0 unapplied credit), fx_rate (reporting
    currency per unit at the latest rate on or before D; NULL when none), days_past_due
    (D - due date; a debit without a due date is due on its posting date), age_days (D - posting date).
    `path` as in `open_amounts_sql` (`reads_open_now`): the same rows, read from `open_now`.
    """
    if path not in (None, "allocations"):
        entry_filter, params = filter_sql(filters or Filters(), "e.customer_id")
        parts = {**(_NOW_PARTS if path == "current" else _READ_BACK_PARTS),
                 **{k: _ITEM_PARTS[k] for k in ("item_columns", "fx_cte", "fx_column", "fx_join")}}
        return _OPEN_NOW_TEMPLATE.format(entry_filter=entry_filter, **parts), params
    if filters is None or filters.is_empty:
        return OPEN_ITEMS_SQL, {}
    alloc_filter, params = filter_sql(filters, "a.customer_id")
    entry_filter, _ = filter_sql(filters, "e.customer_id")
    return _OPEN_ITEMS_TEMPLATE.format(alloc_filter=alloc_filter, entry_filter=entry_filter, **_ITEM_PARTS), params


# Open as of D read back from now (`open_now`): an entry open at D (posted by D, not settled by D) is
# open for its open amount now, plus what its allocations dated after D took off (a debit) or minus
# what they put on (a credit); the same sum as the allocations dated on or before D, exactly
# (amount - applied by D = amount - applied in all + applied after D). On or after the activity
# horizon nothing is dated after D: the entries not settled at all, at `open_now`. Its cost follows
# the allocations after D, so reports use it for D near the horizon (`reads_open_now`). The open
# entries come as two sets (never settled; settled after D) so PostgreSQL reads each by its index.
_OPEN_NOW_TEMPLATE = """
WITH {later}{schedule}{fx_cte}
SELECT {item_columns},
       {open_amount} AS open_amount,{fx_column}
       CAST(:as_of AS DATE) - COALESCE(s.due_date, e.due_date, e.posting_date) AS days_past_due,
       CAST(:as_of AS DATE) - e.posting_date AS age_days
FROM ({open_entries}) e{later_join}
LEFT JOIN schedule s ON s.entry_id = e.entry_id{fx_join}
WHERE {open_amount} <> 0{entry_filter}
"""
_ENTRY_COLUMNS = ("entry_id, customer_id, entry_type, document_number, posting_date, due_date, currency, amount, "
                  "open_now")
_NEVER_SETTLED = f"SELECT {_ENTRY_COLUMNS} FROM ledger_entries WHERE settled_on IS NULL"  # noqa: S608 - constants
_LATER = """later AS (
    SELECT a.to_entry_id AS entry_id, 1 AS debit, SUM(a.amount) AS change
    FROM allocations a WHERE a.allocation_date > :as_of GROUP BY a.to_entry_id
    UNION ALL
    SELECT a.from_entry_id AS entry_id, 0 AS debit, -SUM(a.amount) AS change
    FROM allocations a WHERE a.allocation_date > :as_of GROUP BY a.from_entry_id
), """
_NOW_PARTS = {"schedule": SCHEDULE_SQL.format(restrict=""), "later": "", "later_join": "",
              "open_entries": _NEVER_SETTLED, "open_amount": _open_amount("COALESCE(e.open_now, e.amount)")}
_READ_BACK_PARTS = {
    "schedule": SCHEDULE_SQL.format(restrict=""), "later": _LATER,
    "later_join": "\nLEFT JOIN later t ON t.entry_id = e.entry_id AND t.debit = CASE WHEN e.amount > 0 THEN 1 ELSE 0 END",
    "open_entries": (f"{_NEVER_SETTLED} AND posting_date <= :as_of\nUNION ALL\nSELECT {_ENTRY_COLUMNS} "
                     "FROM ledger_entries WHERE settled_on > :as_of AND posting_date <= :as_of"),
    "open_amount": _open_amount("COALESCE(e.open_now, e.amount) + COALESCE(t.change, 0)")}
_NO_FX = {"fx_cte": "", "fx_column": "", "fx_join": ""}
READ_BACK_DAYS = 92  # D at most this many days before the horizon: read back from now (few later allocations)


def activity_horizon(conn: sa.Connection) -> date | None:
    """The last date anything is dated: the latest posting or allocation date (None when empty)."""
    row = conn.execute(sa.text("SELECT (SELECT MAX(posting_date) FROM ledger_entries) AS p, "
                               "(SELECT MAX(allocation_date) FROM allocations) AS a")).fetchall()[0]
    dates = [pd.Timestamp(d).date() for d in row if d is not None]
    return max(dates) if dates else None


def current_open_amounts(conn: sa.Connection, as_of: date) -> bool:
    """Whether open as of D equals open now (D on or after the activity horizon), so a report may
    read `open_amounts_sql(..., current=True)`. Ask on the connection that then runs the report."""
    horizon = activity_horizon(conn)
    return horizon is None or as_of >= horizon


def reads_open_now(conn: sa.Connection, as_of: date) -> str:
    """How a report as of D reads open amounts, for `open_amounts_sql(path=...)`: "current" on or
    after the activity horizon, "read back" from now within `READ_BACK_DAYS` before it, else
    "allocations" (the allocations dated by D). Ask on the connection that then runs the report."""
    horizon = activity_horizon(conn)
    if horizon is None or as_of >= horizon:
        return "current"
    return "read back" if (horizon - as_of).days <= READ_BACK_DAYS else "allocations"


def open_amounts_sql(filters: Filters | None = None, customer: bool = True, current: bool = False,
                     path: str | None = None, debit: bool = False) -> tuple[str, dict[str, object]]:
    """The open items of `open_items_sql` (the same rule and filters), only what sums need.

    Columns: customer_id (only with `customer`), currency, open_amount (own currency),
    days_past_due, age_days; with `debit`, also debit (1: the entry is a debit, amount > 0; an
    over-allocated debit is still one, with a negative open amount). No FX rate: a caller sums open_amount per currency first and converts
    the sums with `fx_at_sql`, which gives the same numbers (DECIMAL arithmetic is exact, so
    sum(amount x rate) = sum(amount) x rate) from far fewer multiplications. Binds: `:as_of`.
    `path` (see `reads_open_now`): "current" reads `open_now` (only when `current_open_amounts`;
    `current=True` says the same), "read back" reads `open_now` and the allocations after D (right
    for any D), "allocations" (the default) sums the allocations dated by D.
    """
    path = path or ("current" if current else "allocations")
    alloc_filter, params = filter_sql(filters or Filters(), "a.customer_id")
    entry_filter, _ = filter_sql(filters or Filters(), "e.customer_id")
    columns = ("e.customer_id, " if customer else "") + "e.currency"
    columns += ", CASE WHEN e.amount > 0 THEN 1 ELSE 0 END AS debit" if debit else ""
    if path != "allocations":
        parts = {**(_NOW_PARTS if path == "current" else _READ_BACK_PARTS), **_NO_FX}
        return _OPEN_NOW_TEMPLATE.format(item_columns=columns, entry_filter=entry_filter, **parts), params
    parts = {"candidate_columns": "e.customer_id, " if customer else "", **_NO_FX,
             "schedule": _CANDIDATE_SCHEDULE, "open_amount": _ALLOCATED_OPEN, "item_columns": columns}
    return _OPEN_ITEMS_TEMPLATE.format(alloc_filter=alloc_filter, entry_filter=entry_filter, **parts), params


def portfolio_summary(store: Store, as_of: date) -> pd.DataFrame:
    """One row: open AR, overdue AR, unapplied credits and customer counts as of D.

    open_ar = sum of open debit items (invoices, debit adjustments) in the reporting currency;
    overdue_ar = the part of open_ar with days_past_due > 0;
    unapplied_credits = sum of unapplied cash and open credit notes (<= 0);
    net_balance = open_ar + unapplied_credits; customers_with_balance counts customers with open items.
    `missing_fx` counts open items whose currency has no rate on or before D (left out of the sums).
    """
    sql = f"""
    WITH items AS ({OPEN_ITEMS_SQL})
    SELECT
        COALESCE(SUM(CASE WHEN open_amount > 0 THEN open_amount * fx_rate END), 0) AS open_ar,
        COALESCE(SUM(CASE WHEN open_amount > 0 AND days_past_due > 0 THEN open_amount * fx_rate END), 0)
            AS overdue_ar,
        COALESCE(SUM(CASE WHEN open_amount < 0 THEN open_amount * fx_rate END), 0) AS unapplied_credits,
        COUNT(DISTINCT CASE WHEN open_amount > 0 THEN customer_id END) AS customers_with_balance,
        (SELECT COUNT(*) FROM customers) AS customers,
        SUM(CASE WHEN fx_rate IS NULL THEN 1 ELSE 0 END) AS missing_fx
    FROM items
    """  # noqa: S608 - composed from constants only
    frame = store.read(sql, reporting_params(as_of))
    frame["net_balance"] = frame["open_ar"] + frame["unapplied_credits"]
    frame["missing_fx"] = frame["missing_fx"].fillna(0).astype(int)
    return frame


def ledger_bounds(store: Store) -> tuple[date | None, date | None]:
    """First and last posting dates in the ledger (None, None when empty)."""
    row = store.read("SELECT MIN(posting_date) AS first, MAX(posting_date) AS last FROM ledger_entries")
    first, last = row.iloc[0]["first"], row.iloc[0]["last"]
    if pd.isna(first):
        return None, None
    return pd.Timestamp(first).date(), pd.Timestamp(last).date()


def spine_key(column: str, count: int, prefix: str = "s") -> str:
    """CASE mapping a date column to the index of the first spine date on or after it."""
    return "CASE " + " ".join(f"WHEN {column} <= :{prefix}{i} THEN {i}" for i in range(count)) + " END"


def spine_sql(dates: list[date], prefix: str = "s") -> tuple[str, dict[str, object]]:
    """A small `spine(k, d)` VALUES list of report dates (built here, never per row), and its params.

    Portable alternative to generate_series, whose signature differs between DuckDB and PostgreSQL.
    """
    if not dates:
        raise ValueError("a report needs at least one date")
    rows = ", ".join(f"({i}, CAST(:{prefix}{i} AS DATE))" for i in range(len(dates)))
    return f"spine(k, d) AS (VALUES {rows})", {f"{prefix}{i}": d for i, d in enumerate(dates)}


def open_debits_by_due_sql(dates: list[date], filters: Filters | None = None, *, by_customer: bool = False,
                           entry_scope: str | None = None) -> tuple[str, dict[str, object]]:
    """Open debit balances (open AR) at each report date, grouped by due date and currency.

    The same open-as-of-D rule as `OPEN_ITEMS_SQL`, evaluated at many dates at once without
    joining dates x invoices: a debit counts from its posting date; an allocation to it counts from
    max(allocation date, the debit's posting date). Both flows are summed per (effective date, due
    date, currency), each flow is keyed to the first report date on or after it, a running sum per
    (due date, currency) gives the balance, and the balance is carried to the following report dates
    until it next changes. Rows only where the balance is non-zero.

    A scheduled invoice's flows (above, on its own due date) are cancelled and replaced by its
    installments' (`_scheduled_flows`): at each date its paid amount changes, each installment's
    open amount changes by open_k(paid after) - open_k(paid before), on the installment's due date.

    Columns: k (index into `dates`), at_date, due_date (a debit without one: its posting date),
    currency, open_amount (own currency), fx_rate (latest on or before at_date; 1 for the reporting
    currency; NULL when none), days_past_due = at_date - due_date. Binds: `:reporting` + returned params.
    `by_customer` adds customer_id (balances per customer, due date and currency); `entry_scope`, an
    SQL predicate fragment on `e` (" AND e.customer_id IN (...)"), replaces the filters' (the
    monthly summaries narrow to the customers a write touched).
    """
    dates = sorted(set(dates))
    spine, params = spine_sql(dates)
    last = f":s{len(dates) - 1}"
    key = spine_key("eff", len(dates))
    entry_filter, fparams = filter_sql(filters or Filters(), "e.customer_id")
    if entry_scope is not None:
        entry_filter, fparams = entry_scope, {}
    # a debit settled by the first date is closed at every date (settled_on only prunes): a spine of
    # today alone (a month to date after the monthly summaries) reads the open items, not the history
    entry_filter += " AND (e.settled_on IS NULL OR e.settled_on > :s0)"
    params.update(fparams)
    cust = "e.customer_id, " if by_customer else ""
    c = "customer_id, " if by_customer else ""
    sql = f"""
    WITH {spine},
    {_scheduled_flows(last, entry_filter, cust)},
    flows AS (
        SELECT {cust}e.posting_date AS eff, COALESCE(e.due_date, e.posting_date) AS due_date, e.currency,
               SUM(e.amount) AS amount
        FROM ledger_entries e
        WHERE e.amount > 0 AND e.posting_date <= {last}{entry_filter}
        GROUP BY {cust}e.posting_date, COALESCE(e.due_date, e.posting_date), e.currency
        UNION ALL
        SELECT {cust}GREATEST(a.allocation_date, e.posting_date) AS eff,
               COALESCE(e.due_date, e.posting_date) AS due_date, e.currency, -SUM(a.amount) AS amount
        FROM allocations a JOIN ledger_entries e ON e.entry_id = a.to_entry_id
        WHERE e.amount > 0 AND a.allocation_date <= {last} AND e.posting_date <= {last}{entry_filter}
        GROUP BY {cust}GREATEST(a.allocation_date, e.posting_date), COALESCE(e.due_date, e.posting_date), e.currency
        UNION ALL
        SELECT {c}p.eff, p.due_date, p.currency, SUM(p.amount) AS amount FROM scheduled_flows p
        GROUP BY {c}p.eff, p.due_date, p.currency
    ), keyed AS (
        SELECT {c}{key} AS k, due_date, currency, SUM(amount) AS amount
        FROM flows GROUP BY {c}{key}, due_date, currency
    ), running AS (
        SELECT {c}k, due_date, currency,
               SUM(amount) OVER (PARTITION BY {c}due_date, currency ORDER BY k
                                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS open_amount,
               LEAD(k, 1, {len(dates)}) OVER (PARTITION BY {c}due_date, currency ORDER BY k) AS next_k
        FROM keyed
    ), {FX_AT_SPINE}
    SELECT {"r.customer_id, " if by_customer else ""}s.k, s.d AS at_date, r.due_date, r.currency, r.open_amount,
           CASE WHEN r.currency = :reporting THEN 1 ELSE fx.rate END AS fx_rate,
           s.d - r.due_date AS days_past_due
    FROM running r
    JOIN spine s ON s.k >= r.k AND s.k < r.next_k
    LEFT JOIN fx ON fx.k = s.k AND fx.currency = r.currency
    WHERE r.open_amount <> 0
    """  # noqa: S608 - composed from constants and bind names only
    return sql, params


def _scheduled_flows(last: str, entry_filter: str, cust: str = "") -> str:
    """CTEs ending in `scheduled_flows(eff, due_date, currency, amount)`: for each invoice with a
    schedule, the reverse of its invoice-level flows (its amount at posting, its allocations) on its
    own due date, plus the changes of each installment's open amount on the installment's due date.
    Driven from `invoice_installments`, so a store without schedules reads nothing more. `cust`
    ("e.customer_id, " or "") carries the customer along."""
    before = installment_open_sql("p.paid_before")
    after = installment_open_sql("p.paid_after")
    return f"""{SCHEDULE_SQL.format(restrict="")}, scheduled AS (
        SELECT {cust}e.entry_id, e.posting_date, COALESCE(e.due_date, e.posting_date) AS own_due, e.currency, e.amount
        FROM ledger_entries e
        WHERE e.entry_id IN (SELECT x.entry_id FROM invoice_installments x)
          AND e.amount > 0 AND e.posting_date <= {last}{entry_filter}
    ), paid_steps AS (
        SELECT a.to_entry_id AS entry_id, GREATEST(a.allocation_date, e.posting_date) AS eff, SUM(a.amount) AS step
        FROM allocations a JOIN scheduled e ON e.entry_id = a.to_entry_id
        WHERE a.allocation_date <= {last}
        GROUP BY a.to_entry_id, GREATEST(a.allocation_date, e.posting_date)
    ), paid_running AS (
        SELECT entry_id, eff, step,
               SUM(step) OVER (PARTITION BY entry_id ORDER BY eff ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
                 AS paid_after
        FROM paid_steps
    ), paid_events AS (  -- the invoice posted (nothing paid yet), then each date its paid amount changed
        SELECT e.entry_id, e.posting_date AS eff, NULL AS paid_before, 0 AS paid_after FROM scheduled e
        UNION ALL
        SELECT r.entry_id, r.eff, r.paid_after - r.step AS paid_before, r.paid_after FROM paid_running r
    ), scheduled_flows AS (
        SELECT {cust}e.posting_date AS eff, e.own_due AS due_date, e.currency, -e.amount AS amount FROM scheduled e
        UNION ALL
        SELECT {cust}r.eff, e.own_due, e.currency, r.step FROM paid_steps r JOIN scheduled e ON e.entry_id = r.entry_id
        UNION ALL
        SELECT {cust}p.eff, s.due_date, e.currency,
               {after} - CASE WHEN p.paid_before IS NULL THEN 0 ELSE {before} END
        FROM paid_events p JOIN scheduled e ON e.entry_id = p.entry_id JOIN schedule s ON s.entry_id = p.entry_id
    )"""  # noqa: S608 - composed from constants and bind names only
