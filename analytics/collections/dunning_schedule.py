"""Which open invoice is due for which dunning stage next.

Rule: a customer follows its `dunning_config_id` (else the active config for its segment, else the
active config with no segment), at the config's highest version. An open invoice (open amount > 0
as of D) reaches stage s when days past due >= s.day_offset (+ the config's grace_days when the
offset is positive). The stage due is the highest reached stage above the last stage already run
for that invoice (a run on or before D, any outcome but 'failed'): a late start catches up to
the stage that fits, it does not send every earlier reminder. Invoices held as of D
(`collections.holds`: under a dispute open as of D, or a promise to pay that pauses dunning; one
naming no invoice covers the account) and accounts with an agency, written off or on hold are not
dunned; the other invoices of a disputed or promised account continue.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import pandas as pd
import sqlalchemy as sa

from analytics.collections.holds import dunning_hold_sql
from analytics.ledger.open_items import CUSTOMER_OPEN_ITEMS_SQL, OPEN_ITEMS_SQL
from analytics.ledger.stage_results import refresh_stage_results
from analytics.settings import load_settings
from analytics.store.connection import Store
from analytics.store.ids import reserve_ids
from analytics.store.schema import DUNNING_RUN_IDS

CONFIG_OF_CUSTOMER_SQL = """
latest AS (
    SELECT config_id, MAX(version) AS version FROM dunning_configs GROUP BY config_id
), live AS (
    SELECT d.config_id, d.version, d.segment, d.grace_days
    FROM dunning_configs d JOIN latest l ON l.config_id = d.config_id AND l.version = d.version
    WHERE d.active
), by_segment AS (
    SELECT segment, MIN(config_id) AS config_id FROM live GROUP BY segment
), customer_config AS (
    SELECT c.customer_id,
           COALESCE(own.config_id, seg.config_id, anyseg.config_id) AS config_id
    FROM customers c
    LEFT JOIN live own ON own.config_id = c.dunning_config_id
    LEFT JOIN by_segment seg ON seg.segment = c.segment
    LEFT JOIN by_segment anyseg ON anyseg.segment IS NULL
    WHERE c.status NOT IN ('with_agency', 'written_off', 'on_hold')
)"""

# Needs the CTEs `items` (OPEN_ITEMS_SQL) and CONFIG_OF_CUSTOMER_SQL before it; defines `reached`.
DUE_CTES = """
last_run AS (
    SELECT entry_id, MAX(stage_no) AS last_stage FROM dunning_runs
    WHERE run_date <= :as_of AND outcome <> 'failed' GROUP BY entry_id
), reached AS (
    SELECT i.entry_id, i.customer_id, i.document_number, i.due_date, i.open_amount, i.fx_rate,
           i.days_past_due, cc.config_id, lv.version AS config_version, s.stage_no, s.name AS stage_name,
           s.channel, s.template, s.mode, s.day_offset,
           ROW_NUMBER() OVER (PARTITION BY i.entry_id ORDER BY s.stage_no DESC) AS rn
    FROM items i
    JOIN customer_config cc ON cc.customer_id = i.customer_id
    JOIN live lv ON lv.config_id = cc.config_id
    JOIN dunning_stages s ON s.config_id = lv.config_id AND s.version = lv.version
    LEFT JOIN last_run lr ON lr.entry_id = i.entry_id
    WHERE i.open_amount > 0
      AND s.stage_no > COALESCE(lr.last_stage, 0)
      AND i.days_past_due >= s.day_offset + CASE WHEN s.day_offset > 0 THEN lv.grace_days ELSE 0 END
      AND NOT {HOLD}
)""".replace("{HOLD}", dunning_hold_sql("i.entry_id", "i.customer_id"))

_DUE_SELECT = """
SELECT entry_id, customer_id, document_number, due_date, open_amount, fx_rate, days_past_due,
       config_id, config_version, stage_no, stage_name, channel, template, mode, day_offset
FROM reached WHERE rn = 1
"""
DUE_STAGES_SQL = f"WITH items AS ({OPEN_ITEMS_SQL}),\n{CONFIG_OF_CUSTOMER_SQL},\n{DUE_CTES}\n{_DUE_SELECT}"  # noqa: S608
# The same for one customer (:customer_id), without summing every allocation in the store.
_ONE_CUSTOMER_CONFIG_SQL = CONFIG_OF_CUSTOMER_SQL.replace(
    "WHERE c.status NOT IN", "WHERE c.customer_id = :customer_id AND c.status NOT IN")
CUSTOMER_DUE_STAGES_SQL = (
    f"WITH items AS ({CUSTOMER_OPEN_ITEMS_SQL}),\n{_ONE_CUSTOMER_CONFIG_SQL},\n{DUE_CTES}\n{_DUE_SELECT}"  # noqa: S608
)


def due_stages(store: Store, as_of: date) -> pd.DataFrame:
    """One row per open invoice due for a dunning stage on D: the stage, its channel and template."""
    return store.read(DUE_STAGES_SQL + " ORDER BY customer_id, due_date, entry_id",  # entry_id: one order every run
                      {"as_of": as_of, "reporting": load_settings().reporting_currency})


def record_stage_runs(conn: sa.Connection, customer_id: str, entry_ids: Sequence[int], template: str | None,
                      run_date: date) -> int:
    """After an email with `template` went out: record the due stage of each of its invoices whose
    stage uses that template as run ('sent'), so the worklist stops asking for it. Returns the count."""
    if not entry_ids or not template:
        return 0
    stmt = sa.text(
        f"SELECT * FROM ({CUSTOMER_DUE_STAGES_SQL}) due WHERE entry_id IN :ids AND template = :template"  # noqa: S608
    ).bindparams(sa.bindparam("ids", expanding=True))
    rows = conn.execute(stmt, {"as_of": run_date, "reporting": load_settings().reporting_currency,
                               "customer_id": customer_id,
                               "ids": list(entry_ids), "template": template}).mappings().all()
    if not rows:
        return 0
    first = reserve_ids(conn, DUNNING_RUN_IDS, len(rows))
    conn.execute(sa.text(
        "INSERT INTO dunning_runs (run_id, entry_id, customer_id, config_id, config_version, stage_no, "
        "run_date, outcome) VALUES (:run_id, :entry_id, :customer_id, :config_id, :config_version, :stage_no, "
        ":run_date, 'sent')"),
        [{"run_id": first + i, "entry_id": r["entry_id"], "customer_id": r["customer_id"],
          "config_id": r["config_id"], "config_version": r["config_version"], "stage_no": r["stage_no"],
          "run_date": run_date} for i, r in enumerate(rows)])
    refresh_stage_results(conn, entry_ids=[int(r["entry_id"]) for r in rows])
    return len(rows)
