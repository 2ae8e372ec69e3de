"""The customers' merge, on customer_id: the mapped fields only, a new customer's others defaulted;
then the file's extra columns as customer attributes (`merge_customer_attributes`)."""

# ruff: noqa: S608 - SQL here is composed from our own field names and from source column names and
# mapping settings quoted by `quote` / `sql_str`; values from the store side bind as parameters.
from __future__ import annotations

from datetime import datetime

import pandas as pd
import sqlalchemy as sa

from analytics.access.roles import Actor
from analytics.collections.segmentation import assign_customers, ledger_as_of
from analytics.experiments.assignment import assign_arrivals
from analytics.ingest.merges.changes import Counts, audit_updates, null_safe_equal
from analytics.ingest.merges.customer_attributes import merge_customer_attributes
from analytics.ingest.progress import Clock
from analytics.ingest.stages import stage
from analytics.ingest.staging import ROW, Staging
from analytics.store.connection import read_df

_CUSTOMER_FIELDS = ("name", "segment", "country", "currency", "payment_terms_days", "credit_limit", "status",
                    "collector", "sales_rep")


def merge_customers(conn: sa.Connection, actor: Actor, run_id: int, staging: Staging, errors: pd.DataFrame,
                    clock: Clock, source_label: str) -> Counts:
    m, cols = staging.mapping, staging.columns
    mapped = [f for f in _CUSTOMER_FIELDS if f in cols]
    lower = {"status"}  # a status is one of CUSTOMER_STATUSES; a segment is the team's own text, kept as written
    exprs = [f"LOWER({f}) AS {f}" if f in lower else f"{f}" for f in mapped]
    rows = staging.accepted(f"SELECT \"{ROW}\" AS row_number, raw_customer_id AS customer_id"
                            f"{''.join(', ' + e for e in exprs)} FROM ok", errors)
    types = {"name": "VARCHAR(200)", "segment": "VARCHAR(40)", "country": "VARCHAR(2)", "currency": "VARCHAR(3)",
             "payment_terms_days": "INTEGER", "credit_limit": "NUMERIC(18,2)", "status": "VARCHAR(20)",
             "collector": "VARCHAR(64)", "sales_rep": "VARCHAR(64)"}
    ddl = ("CREATE TEMPORARY TABLE _import_customers (row_number BIGINT, customer_id VARCHAR(64)"
           + "".join(f", {f} {types[f]}" for f in mapped) + ")")
    stage(conn, ddl, "_import_customers", rows, clock, "staging rows")
    # A blank cell in a column that cannot be empty (those with a default below) keeps the stored value
    # on an update (a new customer gets the default), so it is neither a change nor a NULL written.
    defaults = {"name": "customer_id", "segment": ":segment", "currency": ":currency",
                "payment_terms_days": ":terms", "status": "'active'"}
    incoming = {f: f"COALESCE(s.{f}, c.{f})" if f in defaults else f"s.{f}" for f in mapped}
    same = " AND ".join(null_safe_equal(f"c.{f}", incoming[f]) for f in mapped) or "TRUE"
    conn.execute(sa.text("DROP TABLE IF EXISTS _import_match"))
    conn.execute(sa.text(f"""CREATE TEMPORARY TABLE _import_match AS
        SELECT s.row_number, s.customer_id{''.join(f', {incoming[f]} AS {f}' for f in mapped)},
               CASE WHEN c.customer_id IS NULL THEN 'new' WHEN {same} THEN 'same' ELSE 'changed' END AS change
        FROM _import_customers s LEFT JOIN customers c ON c.customer_id = s.customer_id"""))
    tally = read_df(conn, "SELECT change, COUNT(*) AS n FROM _import_match GROUP BY change").set_index("change")["n"]
    counts = Counts(*(int(tally.get(k, 0)) for k in ("new", "changed", "same")))
    if mapped:
        old_new = ", ".join(f"c.{f} AS old_{f}, m.{f} AS new_{f}" for f in mapped)
        changed = read_df(conn, f"""SELECT m.customer_id, {old_new} FROM _import_match m
            JOIN customers c ON c.customer_id = m.customer_id WHERE m.change = 'changed'""")
        audit_updates(conn, actor, "customer", run_id, changed, ["customer_id"], mapped)
        sets = ", ".join(f"{f} = m.{f}" for f in mapped)
        conn.execute(sa.text(f"""UPDATE customers SET {sets}, updated_at = :now FROM _import_match m
            WHERE customers.customer_id = m.customer_id AND m.change = 'changed'"""), {"now": datetime.now()})
    insert_cols = ["customer_id", *mapped, *[d for d in defaults if d not in mapped], "created_at"]
    values = ["customer_id", *[f"COALESCE({f}, {defaults[f]})" if f in defaults else f for f in mapped],
              *[defaults[d] for d in defaults if d not in mapped], ":now"]
    conn.execute(sa.text(f"""INSERT INTO customers ({', '.join(insert_cols)})
        SELECT {', '.join(values)} FROM _import_match WHERE change = 'new'"""),
        {"segment": m.default_segment, "currency": m.currency, "terms": m.default_terms_days, "now": datetime.now()})
    counts.attributes_inserted, counts.attributes_updated = merge_customer_attributes(
        conn, actor, run_id, staging, errors, source_label)
    # The customers of the file (new, changed or the same) take the policy of the active segmentation
    # rules (none saved: a no-op), in this transaction; only a customer whose policy changes is written.
    assign_customers(conn, actor, "SELECT customer_id FROM _import_match")
    assign_arrivals(conn, ledger_as_of(conn))  # new customers of a running experiment's segment join it
    return counts

