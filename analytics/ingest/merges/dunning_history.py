"""The dunning history's merge, on (invoice, configuration, stage, run date): `dunning_runs`.

Configurations named by the file but not in the store are created inactive (imported history, not
a policy) with version 1; stages they lack are created from the file (`team_datasets`: name,
channel, template, mode manual, day offset = the median days past due at the stage's runs). Each
row then matches a run of that configuration's latest version: new runs are inserted with ids from
`dunning_run_id_seq`, a changed outcome is updated and audited, and the stage results of every
invoice touched are refreshed in the same transaction, so dunning effectiveness reads them.
"""

# ruff: noqa: S608 - SQL here is composed from our own names; values bind as parameters.
from __future__ import annotations

from datetime import datetime

import pandas as pd
import sqlalchemy as sa

from analytics.access.roles import Actor
from analytics.ingest.merges.changes import Counts, audit_updates
from analytics.ingest.progress import Clock
from analytics.ingest.stages import stage
from analytics.ingest.staging import ROW, Staging
from analytics.ingest.team_datasets import DEBITS_SQL
from analytics.ledger.stage_results import refresh_stage_results
from analytics.store.connection import read_df
from analytics.store.ids import reserve_ids
from analytics.store.schema import DUNNING_RUN_IDS

CONFIG_IDS = "dunning_config_id_seq"
_STAGE = """CREATE TEMPORARY TABLE _import_dunning (
    row_number BIGINT, document_number VARCHAR(64), configuration VARCHAR(100), stage_no INTEGER,
    stage_name VARCHAR(100), channel VARCHAR(20), template VARCHAR(100), run_date DATE, outcome VARCHAR(20))"""


def merge_dunning_history(conn: sa.Connection, actor: Actor, run_id: int, staging: Staging, errors: pd.DataFrame,
                          clock: Clock, source_label: str) -> Counts:
    cols = staging.columns
    outcome = "COALESCE(outcome, 'sent')" if "outcome" in cols else "'sent'"
    channel = "channel" if "channel" in cols else "CAST(NULL AS VARCHAR)"
    rows = staging.accepted(f"""SELECT "{ROW}" AS row_number, raw_document_number AS document_number,
        raw_configuration AS configuration, stage_order AS stage_no, raw_stage_name AS stage_name,
        {channel} AS channel, raw_template AS template, run_date, {outcome} AS outcome FROM ok""", errors)
    stage(conn, _STAGE, "_import_dunning", rows, clock, "staging rows", writable=True)
    now = datetime.now()

    # 1. configurations the store does not have: created inactive, one id each from the sequence
    fresh = read_df(conn, """SELECT DISTINCT configuration FROM _import_dunning s
        WHERE NOT EXISTS (SELECT 1 FROM dunning_configs c WHERE c.name = s.configuration) ORDER BY configuration""")
    if len(fresh):
        first = reserve_ids(conn, CONFIG_IDS, len(fresh))
        conn.execute(sa.text("""INSERT INTO dunning_configs (config_id, version, name, segment, grace_days, active,
                                                             description, created_at, created_by)
            VALUES (:config_id, 1, :name, NULL, 0, FALSE, :description, :now, :by)"""),
            [{"config_id": first + i, "name": name, "now": now, "by": actor.username,
              "description": f"Imported dunning history ({source_label})"[:1000]}
             for i, name in enumerate(fresh["configuration"])])
    # 2. which configuration and version each name means: the lowest id of that name, its latest version
    conn.execute(sa.text("DROP TABLE IF EXISTS _import_match"))
    conn.execute(sa.text(f"""CREATE TEMPORARY TABLE _import_match AS
        WITH named AS (
            SELECT c.name, MIN(c.config_id) AS config_id FROM dunning_configs c
            WHERE c.name IN (SELECT configuration FROM _import_dunning) GROUP BY c.name
        ), latest AS (
            SELECT n.name, n.config_id, MAX(v.version) AS version
            FROM named n JOIN dunning_configs v ON v.config_id = n.config_id GROUP BY n.name, n.config_id
        )
        SELECT s.*, l.config_id, l.version AS config_version, d.entry_id, d.customer_id,
               s.run_date - d.due_date AS days_past_due
        FROM _import_dunning s
        JOIN latest l ON l.name = s.configuration
        JOIN ({DEBITS_SQL.format(stage="_import_dunning")}) d ON d.document_number = s.document_number"""))
    # 3. stages the configuration lacks (only inactive ones: validation refused the others)
    conn.execute(sa.text("""INSERT INTO dunning_stages (config_id, version, stage_no, name, day_offset, channel,
                                                        template, mode)
        SELECT m.config_id, m.config_version, m.stage_no,
               COALESCE(MIN(m.stage_name), 'Stage ' || CAST(m.stage_no AS VARCHAR)),
               CAST(FLOOR(percentile_cont(0.5) WITHIN GROUP (ORDER BY m.days_past_due) + 0.5) AS INTEGER),
               COALESCE(MIN(m.channel), 'email'), MIN(m.template), 'manual'
        FROM _import_match m JOIN dunning_configs c ON c.config_id = m.config_id AND c.version = m.config_version
        WHERE NOT c.active AND NOT EXISTS (
            SELECT 1 FROM dunning_stages t WHERE t.config_id = m.config_id AND t.version = m.config_version
              AND t.stage_no = m.stage_no)
        GROUP BY m.config_id, m.config_version, m.stage_no"""))
    # 4. the runs, on (invoice, configuration, version, stage, date)
    conn.execute(sa.text("DROP TABLE IF EXISTS _import_runs"))
    conn.execute(sa.text("""CREATE TEMPORARY TABLE _import_runs AS
        SELECT m.*, r.run_id AS existing_id, r.outcome AS old_outcome,
               CASE WHEN r.run_id IS NULL THEN 'new' WHEN r.outcome = m.outcome THEN 'same' ELSE 'changed' END AS change
        FROM _import_match m
        LEFT JOIN (SELECT entry_id, config_id, config_version, stage_no, run_date, MIN(run_id) AS run_id,
                          MIN(outcome) AS outcome
                   FROM dunning_runs GROUP BY entry_id, config_id, config_version, stage_no, run_date) r
          ON r.entry_id = m.entry_id AND r.config_id = m.config_id AND r.config_version = m.config_version
         AND r.stage_no = m.stage_no AND r.run_date = m.run_date"""))
    tally = read_df(conn, "SELECT change, COUNT(*) AS n FROM _import_runs GROUP BY change").set_index("change")["n"]
    changed = read_df(conn, """SELECT existing_id AS run_id, document_number, old_outcome, outcome AS new_outcome
        FROM _import_runs WHERE change = 'changed'""")
    audit_updates(conn, actor, "dunning_run", run_id, changed, ["run_id", "document_number"], ["outcome"])
    if not changed.empty:
        conn.execute(sa.text("""UPDATE dunning_runs SET outcome = m.outcome FROM _import_runs m
            WHERE dunning_runs.run_id = m.existing_id AND m.change = 'changed'"""))
    new_rows = int(tally.get("new", 0))
    if new_rows:
        first = reserve_ids(conn, DUNNING_RUN_IDS, new_rows)
        conn.execute(sa.text("""INSERT INTO dunning_runs (run_id, entry_id, customer_id, config_id, config_version,
                                                          stage_no, run_date, outcome)
            SELECT :first - 1 + ROW_NUMBER() OVER (ORDER BY row_number), entry_id, customer_id, config_id,
                   config_version, stage_no, run_date, outcome
            FROM _import_runs WHERE change = 'new'"""), {"first": first})
    touched = read_df(conn, "SELECT DISTINCT entry_id FROM _import_runs WHERE change <> 'same'")
    refresh_stage_results(conn, entry_ids=touched["entry_id"].astype("int64").tolist())
    conn.execute(sa.text("DROP TABLE IF EXISTS _import_runs"))
    clock.tick("dunning runs written", staging.rows)
    return Counts(*(int(tally.get(k, 0)) for k in ("new", "changed", "same")))
