"""The FX rates' merge, on (rate_date, currency): a changed rate is updated and audited."""

# ruff: noqa: S608 - SQL here is composed from our own field names and from source column names and
# mapping settings quoted by `quote` / `sql_str`; values from the store side bind as parameters.
from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

from analytics.access.roles import Actor
from analytics.ingest.merges.changes import Counts, audit_updates
from analytics.ingest.progress import Clock
from analytics.ingest.stages import stage
from analytics.ingest.staging import ROW, Staging
from analytics.store.connection import read_df


def merge_fx_rates(conn: sa.Connection, actor: Actor, run_id: int, staging: Staging, errors: pd.DataFrame,
                   clock: Clock, source_label: str) -> Counts:
    rows = staging.accepted(f"SELECT \"{ROW}\" AS row_number, rate_date, currency, rate FROM ok", errors)
    stage(conn, "CREATE TEMPORARY TABLE _import_fx (row_number BIGINT, rate_date DATE, currency VARCHAR(3), "
           "rate NUMERIC(18,8))", "_import_fx", rows, clock, "staging rows")
    conn.execute(sa.text("DROP TABLE IF EXISTS _import_match"))
    conn.execute(sa.text("""CREATE TEMPORARY TABLE _import_match AS
        SELECT s.*, f.rate AS old_rate,
               CASE WHEN f.rate IS NULL THEN 'new' WHEN f.rate = s.rate THEN 'same' ELSE 'changed' END AS change
        FROM _import_fx s LEFT JOIN fx_rates f ON f.rate_date = s.rate_date AND f.currency = s.currency"""))
    tally = read_df(conn, "SELECT change, COUNT(*) AS n FROM _import_match GROUP BY change").set_index("change")["n"]
    changed = read_df(conn, "SELECT rate_date, currency, old_rate, rate AS new_rate FROM _import_match "
                            "WHERE change = 'changed'")
    audit_updates(conn, actor, "fx_rate", run_id, changed, ["rate_date", "currency"], ["rate"])
    conn.execute(sa.text("""UPDATE fx_rates SET rate = m.rate FROM _import_match m
        WHERE fx_rates.rate_date = m.rate_date AND fx_rates.currency = m.currency AND m.change = 'changed'"""))
    conn.execute(sa.text("INSERT INTO fx_rates (rate_date, currency, rate) "
                         "SELECT rate_date, currency, rate FROM _import_match WHERE change = 'new'"))
    return Counts(*(int(tally.get(k, 0)) for k in ("new", "changed", "same")))

