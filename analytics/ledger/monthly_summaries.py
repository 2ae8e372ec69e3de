"""Monthly summaries: month-end open debits and monthly flows per customer, kept with every write.

Two derived tables (own currency, converted by the reports at their FX rates):
- `monthly_balances`: at each month end M from the month of the first posting through the month of
  the last activity (`open_items.activity_horizon`), the open debits (invoices, debit adjustments,
  installments on their own due dates) by the one open-as-of-D rule of `open_items`
  (`open_debits_by_due_sql`), per customer, currency and due-basis aging bucket (the bucket's
  position in `buckets.intervals("due")`, 0 = Current); rows only where the sum is non-zero;
- `monthly_flows`: per customer, currency and month (its month end): credit_sales = invoices
  posted, collections = -payments posted, write_offs = -write-offs posted.
`portfolio_monthly_balances` and `portfolio_monthly_flows` hold the same sums over every customer
(no customer column), so a report without filters reads a few rows per month; a scoped refresh moves
them by what it removed and added (`_move_portfolio`), a full one sums them again.
`monthly_summary_state` records the aging edges used and the month ends covered; a report reads the
summaries only for month ends they cover and only with the same edges (`summaries_cover`), else the
ledger. Every write of entries, allocations or installments calls `refresh_monthly_summaries` for
the customers it touched in its own transaction; a write whose activity reaches a later month adds
that month end for every customer; the schema upgrade (v26) fills the tables once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd
import sqlalchemy as sa

from analytics.ledger.buckets import bucket_index_case, intervals
from analytics.ledger.filters import Filters, filter_sql
from analytics.ledger.fx import FX_AT_SPINE, reporting_params
from analytics.ledger.months import add_months, month_end, month_ends
from analytics.ledger.open_items import activity_horizon, open_debits_by_due_sql, spine_sql
from analytics.settings import load_settings
from analytics.store.connection import bulk_insert, read_df, refresh_statistics

_SCOPE = " AND e.customer_id IN (SELECT customer_id FROM _summary_customers)"
_OUTSIDE = " AND e.customer_id NOT IN (SELECT customer_id FROM _summary_customers)"
_MONTH_END = "CAST(date_trunc('month', CAST(e.posting_date AS TIMESTAMP)) + INTERVAL '1 month' - INTERVAL '1 day' AS DATE)"
_FLOWS_SQL = f"""
INSERT INTO monthly_flows (month_end, customer_id, currency, credit_sales, collections, write_offs)
SELECT x.month_end, x.customer_id, x.currency,
       SUM(CASE WHEN x.entry_type = 'invoice' THEN x.amount ELSE 0 END),
       -SUM(CASE WHEN x.entry_type = 'payment' THEN x.amount ELSE 0 END),
       -SUM(CASE WHEN x.entry_type = 'write_off' THEN x.amount ELSE 0 END)
FROM (SELECT {_MONTH_END} AS month_end, e.customer_id, e.currency, e.entry_type, e.amount
      FROM ledger_entries e WHERE e.entry_type IN ('invoice', 'payment', 'write_off'){{scope}}) x
GROUP BY x.month_end, x.customer_id, x.currency
"""  # noqa: S608 - constants only


# The portfolio tables as sums of the per-customer ones: the full rebuild, and what a scoped refresh
# takes out (sign -1, before it writes) and puts back (sign 1, after) for the rows of its customers
# (and the month ends it added for everyone).
_PORTFOLIO_BALANCES = """
SELECT b.month_end, b.currency, b.bucket, {sign} * SUM(b.open_amount) AS open_amount
FROM monthly_balances b{where}
GROUP BY b.month_end, b.currency, b.bucket"""
_PORTFOLIO_FLOWS = """
SELECT f.month_end, f.currency, {sign} * SUM(f.credit_sales) AS credit_sales, {sign} * SUM(f.collections) AS collections,
       {sign} * SUM(f.write_offs) AS write_offs
FROM monthly_flows f{where}
GROUP BY f.month_end, f.currency"""
_BALANCE_KEYS, _FLOW_KEYS = "month_end, currency, bucket", "month_end, currency"
_NONZERO_BALANCE = "HAVING SUM(open_amount) <> 0"
_NONZERO_FLOW = "HAVING SUM(credit_sales) <> 0 OR SUM(collections) <> 0 OR SUM(write_offs) <> 0"


def summary_edges() -> str:
    """The configured aging edges as stored in `monthly_summary_state` ("30,60,90,120")."""
    return ",".join(str(e) for e in load_settings().aging_edges)


@dataclass(frozen=True)
class SummaryState:
    """What the summaries hold: the edges they were bucketed with and the month ends they cover."""

    aging_edges: str
    first_month_end: date | None
    through: date | None


def summary_state(conn: sa.Connection) -> SummaryState | None:
    """The one state row (None before the first refresh)."""
    rows = read_df(conn, "SELECT aging_edges, first_month_end, through FROM monthly_summary_state")
    if rows.empty:
        return None
    r = rows.iloc[0]
    as_date = (lambda v: None if pd.isna(v) else pd.Timestamp(v).date())  # noqa: E731
    return SummaryState(str(r["aging_edges"]), as_date(r["first_month_end"]), as_date(r["through"]))


def summaries_cover(conn: sa.Connection, points: Sequence[date], need_edge: int | None = None) -> bool:
    """Whether the summaries answer for `points`: each is a month end within the months kept, the
    stored edges are today's, and `need_edge` (e.g. 90 for "over 90") is one of them."""
    state = summary_state(conn)
    if state is None or state.through is None or state.aging_edges != summary_edges():
        return False
    if need_edge is not None and need_edge not in load_settings().aging_edges:
        return False
    return all(p == month_end(p) and p <= state.through for p in points)


def summarised_points(conn: sa.Connection, points: Sequence[date], need_edge: int | None = None,
                      consecutive: bool = False) -> int:
    """How many of the (sorted) `points`, from the first, the summaries answer: all of them, all but
    a last one that is not a month end (a month to date, e.g. today: the caller reads that one
    point from the ledger), or 0 (the caller reads the ledger). `consecutive`: the month ends must
    also follow each other (`consecutive_month_ends`), as monthly flows need."""
    points = list(points)
    for n in (len(points), len(points) - 1):
        if n <= 0 or (n < len(points) and points[-1] == month_end(points[-1])):
            continue
        head = points[:n]
        if (not consecutive or consecutive_month_ends(head)) and summaries_cover(conn, head, need_edge):
            return n
    return 0


def bucket_from(low_edge: int) -> int:
    """The position of the first due-basis bucket whose days past due are all > `low_edge`."""
    return next(i for i, (_, lo, _) in enumerate(intervals("due")) if lo is not None and lo >= low_edge)


def _insert_balances(conn: sa.Connection, points: list[date], entry_scope: str) -> None:
    """Month-end balances at `points` of the entries matching `entry_scope` ("" = all)."""
    if not points:
        return
    balances, params = open_debits_by_due_sql(points, by_customer=True, entry_scope=entry_scope)
    bucket = bucket_index_case("b.days_past_due", "due")
    conn.execute(sa.text(f"""
        INSERT INTO monthly_balances (month_end, customer_id, currency, bucket, open_amount)
        SELECT x.at_date, x.customer_id, x.currency, x.bucket, SUM(x.open_amount)
        FROM (SELECT b.at_date, b.customer_id, b.currency, {bucket} AS bucket, b.open_amount
              FROM ({balances}) b) x
        GROUP BY x.at_date, x.customer_id, x.currency, x.bucket
        HAVING SUM(x.open_amount) <> 0"""), {**reporting_params(), **params})  # noqa: S608


def _bounds(conn: sa.Connection) -> tuple[date | None, date | None]:
    first = conn.execute(sa.text("SELECT MIN(posting_date) FROM ledger_entries")).fetchall()[0][0]
    horizon = activity_horizon(conn)
    if first is None or horizon is None:
        return None, None
    return month_end(pd.Timestamp(first).date()), month_end(horizon)


def _write_state(conn: sa.Connection, first: date | None, through: date | None) -> None:
    conn.execute(sa.text("DELETE FROM monthly_summary_state"))
    conn.execute(sa.text("INSERT INTO monthly_summary_state (aging_edges, first_month_end, through) "
                         "VALUES (:edges, :first, :through)"), {"edges": summary_edges(), "first": first, "through": through})


def rebuild_portfolio_summaries(conn: sa.Connection) -> None:
    """The portfolio tables summed again from the per-customer summaries."""
    conn.execute(sa.text("DELETE FROM portfolio_monthly_balances"))
    conn.execute(sa.text("DELETE FROM portfolio_monthly_flows"))
    conn.execute(sa.text(f"""INSERT INTO portfolio_monthly_balances ({_BALANCE_KEYS}, open_amount)
        SELECT {_BALANCE_KEYS}, SUM(open_amount) FROM ({_PORTFOLIO_BALANCES.format(sign=1, where="")}) x
        GROUP BY {_BALANCE_KEYS} {_NONZERO_BALANCE}"""))  # noqa: S608 - constants only
    conn.execute(sa.text(f"""INSERT INTO portfolio_monthly_flows ({_FLOW_KEYS}, credit_sales, collections, write_offs)
        SELECT {_FLOW_KEYS}, SUM(credit_sales), SUM(collections), SUM(write_offs)
        FROM ({_PORTFOLIO_FLOWS.format(sign=1, where="")}) x GROUP BY {_FLOW_KEYS} {_NONZERO_FLOW}"""))  # noqa: S608


def _take_portfolio_share(conn: sa.Connection) -> None:
    """Before a scoped refresh writes: the scope's customers' rows, negated, into `_portfolio_delta_*`."""
    where = " WHERE b.customer_id IN (SELECT customer_id FROM _summary_customers)"
    for name, sql in (("balances", _PORTFOLIO_BALANCES), ("flows", _PORTFOLIO_FLOWS)):
        conn.execute(sa.text(f"DROP TABLE IF EXISTS _portfolio_delta_{name}"))
        conn.execute(sa.text(f"CREATE TEMPORARY TABLE _portfolio_delta_{name} AS "  # noqa: S608 - constants only
                             + sql.format(sign=-1, where=where if name == "balances" else where.replace("b.", "f."))))


def _move_portfolio(conn: sa.Connection, old_through: date, through: date | None) -> None:
    """After a scoped refresh wrote: add the scope's new rows (and every customer's month ends after
    `old_through`, which it added) to `_take_portfolio_share`'s negated old ones, and move the
    portfolio tables by that; month ends after `through` go (the per-customer rows went too)."""
    scope = "b.customer_id IN (SELECT customer_id FROM _summary_customers)"
    conn.execute(sa.text(f"INSERT INTO _portfolio_delta_balances ({_BALANCE_KEYS}, open_amount) "  # noqa: S608
                         + _PORTFOLIO_BALANCES.format(sign=1, where=f" WHERE {scope} OR b.month_end > :old_through")),
                 {"old_through": old_through})
    conn.execute(sa.text(f"INSERT INTO _portfolio_delta_flows ({_FLOW_KEYS}, credit_sales, collections, write_offs) "  # noqa: S608
                         + _PORTFOLIO_FLOWS.format(sign=1, where=" WHERE " + scope.replace("b.", "f."))))
    kept_months = "" if through is None else " WHERE month_end <= :through"
    for table, keys, values, nonzero, months in (
            ("balances", _BALANCE_KEYS, ["open_amount"], _NONZERO_BALANCE, kept_months or " WHERE 1 = 0"),
            ("flows", _FLOW_KEYS, ["credit_sales", "collections", "write_offs"], _NONZERO_FLOW, "")):
        sums = ", ".join(f"SUM({v}) AS {v}" for v in values)
        both = ", ".join(values)
        conn.execute(sa.text("DROP TABLE IF EXISTS _portfolio_moved"))
        conn.execute(sa.text(f"""CREATE TEMPORARY TABLE _portfolio_moved AS
            SELECT {keys}, {sums} FROM (
                SELECT {keys}, {both} FROM portfolio_monthly_{table}
                UNION ALL SELECT {keys}, {both} FROM _portfolio_delta_{table}) x{months}
            GROUP BY {keys} {nonzero}"""), {} if not months or through is None else {"through": through})  # noqa: S608
        conn.execute(sa.text(f"DELETE FROM portfolio_monthly_{table}"))  # noqa: S608 - constants only
        conn.execute(sa.text(f"INSERT INTO portfolio_monthly_{table} ({keys}, {both}) "  # noqa: S608
                             f"SELECT {keys}, {both} FROM _portfolio_moved"))
        conn.execute(sa.text("DROP TABLE IF EXISTS _portfolio_moved"))
        conn.execute(sa.text(f"DROP TABLE IF EXISTS _portfolio_delta_{table}"))


def refresh_monthly_summaries(conn: sa.Connection, customer_ids: Sequence[str] | None = None,
                              entry_ids: Sequence[int] | None = None) -> int:
    """Recompute the monthly summaries of the customers in scope from the ledger; returns the
    customers recomputed (-1: all).

    Scope: everything (neither given), `customer_ids` and/or the customers of `entry_ids` (an entry
    that moved to another customer: pass the old customer too). Also everything when the aging
    edges changed since the last refresh. When the last activity moved to a later month, the new
    month ends are added for every customer; an earlier one drops the month ends after it. Set-based
    SQL, the same on DuckDB and PostgreSQL. Call it inside the writing transaction, after the write
    (and after `refresh_settled_on`).
    """
    refresh_statistics(conn)
    state = summary_state(conn)
    first, through = _bounds(conn)
    # a state that never held a month (the empty store the schema created) may sit under rows written
    # without a refresh (a bulk load, a test's direct INSERT): recompute every customer then
    everything = ((customer_ids is None and entry_ids is None) or state is None or state.through is None
                  or state.aging_edges != summary_edges())
    if everything:
        conn.execute(sa.text("DELETE FROM monthly_balances"))
        conn.execute(sa.text("DELETE FROM monthly_flows"))
        if first is not None and through is not None:
            _insert_balances(conn, month_ends(first, through, include_end=False), "")
            conn.execute(sa.text(_FLOWS_SQL.format(scope="")))
        rebuild_portfolio_summaries(conn)
        _write_state(conn, first, through)
        return -1
    conn.execute(sa.text("DROP TABLE IF EXISTS _summary_customers"))
    conn.execute(sa.text("CREATE TEMPORARY TABLE _summary_customers (customer_id VARCHAR(64))"))
    if customer_ids:
        bulk_insert(conn, "_summary_customers", pd.DataFrame({"customer_id": [str(c) for c in customer_ids]}))
    if entry_ids:
        conn.execute(sa.text("DROP TABLE IF EXISTS _summary_entries"))
        conn.execute(sa.text("CREATE TEMPORARY TABLE _summary_entries (entry_id BIGINT)"))
        bulk_insert(conn, "_summary_entries", pd.DataFrame({"entry_id": pd.Series(list(entry_ids), dtype="int64")}))
        conn.execute(sa.text("""INSERT INTO _summary_customers (customer_id) SELECT DISTINCT e.customer_id
            FROM ledger_entries e WHERE e.entry_id IN (SELECT entry_id FROM _summary_entries)"""))
        conn.execute(sa.text("DROP TABLE IF EXISTS _summary_entries"))
    refresh_statistics(conn, "_summary_customers", len(customer_ids or ()) + len(entry_ids or ()))
    _take_portfolio_share(conn)
    old_through = state.through
    if through is None:  # an empty ledger
        conn.execute(sa.text("DELETE FROM monthly_balances"))
    elif through > old_through:
        # the new month ends, for the customers outside the scope (the scope is recomputed below)
        start = month_end(old_through + timedelta(days=1))
        _insert_balances(conn, month_ends(start, through, include_end=False), _OUTSIDE)
    elif through < old_through:
        conn.execute(sa.text("DELETE FROM monthly_balances WHERE month_end > :through"), {"through": through})
    for table in ("monthly_balances", "monthly_flows"):
        conn.execute(sa.text(f"DELETE FROM {table} WHERE customer_id IN (SELECT customer_id FROM _summary_customers)"))  # noqa: S608
    if first is not None and through is not None:
        _insert_balances(conn, month_ends(first, through, include_end=False), _SCOPE)
        conn.execute(sa.text(_FLOWS_SQL.format(scope=_SCOPE)))
    _move_portfolio(conn, old_through, through)
    _write_state(conn, first, through)
    n = int(conn.execute(sa.text("SELECT COUNT(DISTINCT customer_id) FROM _summary_customers")).fetchall()[0][0])
    conn.execute(sa.text("DROP TABLE IF EXISTS _summary_customers"))
    return n


def drop_monthly_summaries(conn: sa.Connection) -> None:
    """Mark the summaries absent (no state row): reports read the ledger, and the next refresh,
    whatever its scope, recomputes everything. For writers that skip the refresh (a test's row by
    row INSERTs), in their transaction."""
    conn.execute(sa.text("DELETE FROM monthly_summary_state"))


def consecutive_month_ends(points: Sequence[date]) -> bool:
    """Whether `points` are month ends, each the one after the previous (so each period is one month)."""
    return all(p == month_end(p) for p in points) and all(
        b == month_end(add_months(a, 1)) for a, b in zip(points, points[1:], strict=False))


def summary_balances_sql(points: list[date], filters: Filters | None = None) -> tuple[str, dict[str, object]]:
    """Open debits at each point (month ends `summaries_cover` accepts) from `monthly_balances`.

    Columns: k (index into `points`), bucket (due-basis position), currency, open_amount (own
    currency, summed over the customers matching `filters`), fx_rate (latest on or before the point;
    1 for the reporting currency; NULL when none). The same sums as `open_debits_by_due_sql`
    grouped by bucket. Binds: `:reporting` + returned params. Without filters it reads the
    portfolio sums (`portfolio_monthly_balances`), the same totals in far fewer rows.
    """
    spine, params = spine_sql(points)
    customer_filter, fparams = filter_sql(filters or Filters(), "b.customer_id")
    table = "monthly_balances" if customer_filter else "portfolio_monthly_balances"
    sql = f"""
    WITH {spine}, {FX_AT_SPINE}, per AS (
        SELECT s.k, b.bucket, b.currency, SUM(b.open_amount) AS open_amount
        FROM {table} b JOIN spine s ON s.d = b.month_end
        WHERE 1 = 1{customer_filter}
        GROUP BY s.k, b.bucket, b.currency
    )
    SELECT p.k, p.bucket, p.currency, p.open_amount,
           CASE WHEN p.currency = :reporting THEN 1 ELSE fx.rate END AS fx_rate
    FROM per p LEFT JOIN fx ON fx.k = p.k AND fx.currency = p.currency
    """  # noqa: S608 - composed from constants and bind names only
    return sql, {**params, **fparams}


def summary_flows_sql(points: list[date], filters: Filters | None = None) -> tuple[str, dict[str, object]]:
    """Credit sales, collections and write-offs of the month ending at each point but the first
    (`consecutive_month_ends`), from `monthly_flows`, summed per currency over the customers
    matching `filters`. Columns: k, currency, credit_sales, collections, write_offs (own currency,
    positive), rate (FX at the point; 1 for the reporting currency). Binds: `:reporting` + params.
    Without filters it reads the portfolio sums (`portfolio_monthly_flows`).
    """
    spine, params = spine_sql(points)
    customer_filter, fparams = filter_sql(filters or Filters(), "m.customer_id")
    table = "monthly_flows" if customer_filter else "portfolio_monthly_flows"
    sql = f"""
    WITH {spine}, {FX_AT_SPINE}, per AS (
        SELECT s.k, m.currency, SUM(m.credit_sales) AS credit_sales, SUM(m.collections) AS collections,
               SUM(m.write_offs) AS write_offs
        FROM {table} m JOIN spine s ON s.d = m.month_end
        WHERE s.k > 0{customer_filter}
        GROUP BY s.k, m.currency
    )
    SELECT p.k, p.currency, p.credit_sales, p.collections, p.write_offs,
           CASE WHEN p.currency = :reporting THEN 1 ELSE fx.rate END AS rate
    FROM per p LEFT JOIN fx ON fx.k = p.k AND fx.currency = p.currency
    """  # noqa: S608 - composed from constants and bind names only
    return sql, {**params, **fparams}
