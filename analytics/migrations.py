"""Opening a store and upgrading its schema in place: the one way every face gets a store.

A fresh store is created from `analytics.store.schema.metadata` and stamped `SCHEMA_VERSION`. A
store at an older version runs the `MIGRATIONS` above its version, in order, each in its own
transaction. Migrations that fill a new column apply the engine's own rule (`refresh_settled_on`,
`refresh_stage_results`, the Message-ID backfill), which is why this module sits above the ledger
and the collections packages and the store package below them knows nothing of it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa

from analytics.collections.outreach.queue import backfill_message_header_ids
from analytics.ledger.monthly_summaries import rebuild_portfolio_summaries, refresh_monthly_summaries
from analytics.ledger.settlement import refresh_settled_on
from analytics.ledger.stage_results import refresh_stage_results
from analytics.store.connection import Store, open_store
from analytics.store.schema import (
    ALLOCATION_IDS,
    DUNNING_RUN_IDS,
    ENTRY_IDS,
    EXPERIMENT_IDS,
    FORECAST_BACKTEST_IDS,
    PORTAL_LINK_IDS,
    POSTGRES_INDEXES,
    REQUEST_IDS,
    SEGMENT_RULE_SET_IDS,
    activity_invoices,
    collector_targets,
    customer_attributes,
    dunning_stage_channels,
    dunning_stage_results,
    experiment_assignments,
    experiments,
    forecast_backtests,
    invoice_installments,
    message_templates,
    messages,
    metadata,
    monthly_balances,
    monthly_flows,
    monthly_summary_state,
    pack_sends,
    portal_link_tries,
    portal_links,
    portal_sessions,
    portfolio_monthly_balances,
    portfolio_monthly_flows,
    quarantine,
    requests,
    risk_snapshots,
    schema_migrations,
    segment_rule_sets,
    segment_rules,
    sessions,
    sync_watermarks,
)


def connect(url_or_path: str | None = None, *, migrate: bool = True) -> Store:
    """Open the store (default: settings), check it is usable and bring its schema up to date.

    Raises `StoreLocked` when another process holds the DuckDB file. `migrate=False` opens it as
    it is (`ardesk db upgrade` reports the versions before upgrading).
    """
    store = open_store(url_or_path)
    if migrate:
        upgrade(store)
    return store


def _create_tables(conn: sa.Connection, *tables: sa.Table) -> None:
    for table in tables:
        for column in table.columns:
            if isinstance(column.default, sa.Sequence):
                conn.execute(sa.schema.CreateSequence(column.default, if_not_exists=True))
        conn.execute(sa.schema.CreateTable(table, if_not_exists=True))


def _v2_outbox_quarantine_sync(conn: sa.Connection) -> None:
    conn.execute(sa.text("ALTER TABLE customers ADD COLUMN IF NOT EXISTS risk_class VARCHAR(10)"))
    _create_tables(conn, messages, quarantine, sync_watermarks)


def _v3_settled_on(conn: sa.Connection) -> None:
    conn.execute(sa.text("ALTER TABLE ledger_entries ADD COLUMN IF NOT EXISTS settled_on DATE"))
    conn.execute(sa.text("ALTER TABLE ledger_entries ADD COLUMN IF NOT EXISTS open_now DECIMAL(18, 2)"))  # v5's
    refresh_settled_on(conn)


def _v4_dunning_stage_results(conn: sa.Connection) -> None:
    _create_tables(conn, dunning_stage_results)
    refresh_stage_results(conn)


def _v5_open_now(conn: sa.Connection) -> None:
    conn.execute(sa.text("ALTER TABLE ledger_entries ADD COLUMN IF NOT EXISTS open_now DECIMAL(18, 2)"))
    filled = conn.execute(sa.text("SELECT COUNT(*) FROM ledger_entries WHERE open_now IS NOT NULL")).fetchall()[0][0]
    if not filled:  # a store upgraded from before v3 got it with settled_on
        refresh_settled_on(conn)


def _v6_id_sequences(conn: sa.Connection) -> None:
    # Each sequence starts after the largest id in its table: the last time MAX() decides an id.
    for sequence, table, column in ((ENTRY_IDS, "ledger_entries", "entry_id"),
                                    (ALLOCATION_IDS, "allocations", "allocation_id"),
                                    (DUNNING_RUN_IDS, "dunning_runs", "run_id")):
        start = int(conn.execute(sa.text(f"SELECT COALESCE(MAX({column}), 0) + 1 FROM {table}")).fetchall()[0][0])  # noqa: S608
        conn.execute(sa.text(f"CREATE SEQUENCE IF NOT EXISTS {sequence} START WITH {start}"))


def _v7_delivery_leases(conn: sa.Connection) -> None:
    for name, kind in (("message_header_id", "VARCHAR(250)"), ("claimed_by", "VARCHAR(120)"),
                       ("lease_until", "TIMESTAMP"), ("data_started_at", "TIMESTAMP")):
        conn.execute(sa.text(f"ALTER TABLE messages ADD COLUMN IF NOT EXISTS {name} {kind}"))
    backfill_message_header_ids(conn)


def _v8_sessions(conn: sa.Connection) -> None:
    _create_tables(conn, sessions)
    conn.execute(sa.text("CREATE INDEX IF NOT EXISTS sessions_username ON sessions (username)"))


def _v9_related_document(conn: sa.Connection) -> None:
    conn.execute(sa.text("ALTER TABLE ledger_entries ADD COLUMN IF NOT EXISTS related_document VARCHAR(64)"))


def _v10_contact_bounces(conn: sa.Connection) -> None:
    for name, kind in (("bounced_at", "TIMESTAMP"), ("source", "VARCHAR(100)"), ("updated_at", "TIMESTAMP")):
        conn.execute(sa.text(f"ALTER TABLE contacts ADD COLUMN IF NOT EXISTS {name} {kind}"))


def _v12_customer_attributes(conn: sa.Connection) -> None:
    _create_tables(conn, customer_attributes)


def _v13_invoice_installments(conn: sa.Connection) -> None:
    _create_tables(conn, invoice_installments)


def _v14_collector_targets(conn: sa.Connection) -> None:
    _create_tables(conn, collector_targets)


def _v15_activity_invoices(conn: sa.Connection) -> None:
    for name in ("whole_account", "pauses_dunning"):
        conn.execute(sa.text(f"ALTER TABLE activities ADD COLUMN IF NOT EXISTS {name} BOOLEAN"))
    _create_tables(conn, activity_invoices)
    # A dispute or promise naming one invoice names it in the link table too; one naming none
    # covered the whole account before v15, and still does (now said explicitly).
    conn.execute(sa.text("INSERT INTO activity_invoices (activity_id, entry_id) SELECT a.activity_id, a.entry_id "
                         "FROM activities a WHERE a.kind IN ('dispute', 'promise') AND a.entry_id IS NOT NULL "
                         "AND NOT EXISTS (SELECT 1 FROM activity_invoices l WHERE l.activity_id = a.activity_id)"))
    conn.execute(sa.text("UPDATE activities SET whole_account = TRUE "
                         "WHERE kind IN ('dispute', 'promise') AND entry_id IS NULL"))


def _v16_requests(conn: sa.Connection) -> None:
    conn.execute(sa.text(f"CREATE SEQUENCE IF NOT EXISTS {REQUEST_IDS}"))
    _create_tables(conn, requests)


def _v17_segment_rules(conn: sa.Connection) -> None:
    conn.execute(sa.text(f"CREATE SEQUENCE IF NOT EXISTS {SEGMENT_RULE_SET_IDS}"))
    _create_tables(conn, segment_rule_sets, segment_rules)


def _v18_dunning_policies(conn: sa.Connection) -> None:
    for name, kind in (("retired_at", "TIMESTAMP"), ("min_days_between", "INTEGER DEFAULT 0"),
                       ("interest_rate", "DECIMAL(9, 6)"), ("book_fees", "BOOLEAN DEFAULT FALSE"),
                       ("end_action", "TEXT")):
        conn.execute(sa.text(f"ALTER TABLE dunning_configs ADD COLUMN IF NOT EXISTS {name} {kind}"))
    for name, kind in (("basis", "VARCHAR(20) DEFAULT 'due'"), ("fee", "DECIMAL(18, 2)")):
        conn.execute(sa.text(f"ALTER TABLE dunning_stages ADD COLUMN IF NOT EXISTS {name} {kind}"))
    _create_tables(conn, dunning_stage_channels)
    # Existing stages keep working: basis 'due' (the default above), one channel = the old channel/template.
    conn.execute(sa.text("INSERT INTO dunning_stage_channels (config_id, version, stage_no, channel, template) "
                         "SELECT s.config_id, s.version, s.stage_no, s.channel, s.template FROM dunning_stages s "
                         "WHERE NOT EXISTS (SELECT 1 FROM dunning_stage_channels c WHERE c.config_id = s.config_id "
                         "AND c.version = s.version AND c.stage_no = s.stage_no)"))


def _v19_message_templates(conn: sa.Connection) -> None:
    for name, kind in (("body_html", "TEXT"), ("template_version", "INTEGER")):
        conn.execute(sa.text(f"ALTER TABLE messages ADD COLUMN IF NOT EXISTS {name} {kind}"))
    _create_tables(conn, message_templates)  # the files stay version 1: read from them until a save


def _v20_experiments(conn: sa.Connection) -> None:
    conn.execute(sa.text(f"CREATE SEQUENCE IF NOT EXISTS {EXPERIMENT_IDS}"))
    _create_tables(conn, experiments, experiment_assignments)


def _v21_portal_access(conn: sa.Connection) -> None:
    conn.execute(sa.text(f"CREATE SEQUENCE IF NOT EXISTS {PORTAL_LINK_IDS}"))
    _create_tables(conn, portal_links, portal_sessions, portal_link_tries)
    conn.execute(sa.text("CREATE INDEX IF NOT EXISTS portal_links_customer ON portal_links (customer_id)"))
    conn.execute(sa.text("CREATE INDEX IF NOT EXISTS portal_link_tries_client ON portal_link_tries (client, tried_at)"))


def _v22_remittance_paid_on(conn: sa.Connection) -> None:
    conn.execute(sa.text("ALTER TABLE activities ADD COLUMN IF NOT EXISTS paid_on DATE"))


def _v23_forecast_backtests(conn: sa.Connection) -> None:
    conn.execute(sa.text(f"CREATE SEQUENCE IF NOT EXISTS {FORECAST_BACKTEST_IDS}"))
    _create_tables(conn, forecast_backtests)


def _v24_risk_snapshots(conn: sa.Connection) -> None:
    _create_tables(conn, risk_snapshots)
    conn.execute(sa.text("CREATE INDEX IF NOT EXISTS risk_snapshots_customer ON risk_snapshots (customer_id, as_of)"))


def _v25_monthly_pack(conn: sa.Connection) -> None:
    _create_tables(conn, pack_sends)
    # a message to staff (the monthly pack) has no customer
    conn.execute(sa.text("ALTER TABLE messages ALTER COLUMN customer_id DROP NOT NULL"))


def _v26_monthly_summaries(conn: sa.Connection) -> None:
    # the refresh keeps the portfolio sums (v27) too, so they exist from here on
    _create_tables(conn, monthly_balances, monthly_flows, monthly_summary_state, portfolio_monthly_balances,
                   portfolio_monthly_flows)
    refresh_monthly_summaries(conn)  # filled once from the ledger; kept by every write from now on


def _v27_portfolio_summaries(conn: sa.Connection) -> None:
    _create_tables(conn, portfolio_monthly_balances, portfolio_monthly_flows)
    rebuild_portfolio_summaries(conn)  # summed once from the per-customer summaries; kept with them from now on
    if conn.dialect.name == "postgresql":
        for index in POSTGRES_INDEXES:
            index.create(conn, checkfirst=True)


def _v28_stage_next_run(conn: sa.Connection) -> None:
    for name, kind in (("next_run", "DATE"), ("paid_until_next", "DECIMAL(18, 2)")):
        conn.execute(sa.text(f"ALTER TABLE dunning_stage_results ADD COLUMN IF NOT EXISTS {name} {kind}"))
    refresh_stage_results(conn)  # every row again, now with its next reach and what it recovered


# Migrations: (version, description, function). Each upgrades a store from version - 1.
# Write DDL that is idempotent (IF NOT EXISTS) and portable to PostgreSQL.
Migration = tuple[int, str, Callable[[sa.Connection], None]]
MIGRATIONS: list[Migration] = [
    (2, "outbox messages, import quarantine, sync watermarks, customer risk class", _v2_outbox_quarantine_sync),
    (3, "ledger_entries.settled_on: the date an entry was fully applied", _v3_settled_on),
    (4, "dunning_stage_results: each stage an invoice reached, and what was paid after", _v4_dunning_stage_results),
    (5, "ledger_entries.open_now: the open amount after every allocation", _v5_open_now),
    (6, "id sequences for ledger entries, allocations and dunning runs (never MAX() + 1)", _v6_id_sequences),
    (7, "messages: stable Message-ID, delivery lease, when the content started to go", _v7_delivery_leases),
    (8, "sessions: server-side sign-in sessions (the cookie holds only a random token)", _v8_sessions),
    (9, "ledger_entries.related_document: the invoice an adjustment is charged on", _v9_related_document),
    (10, "contacts: bounced email, source, updated_at (contacts imported and managed in the app)",
     _v10_contact_bounces),
    (12, "customer_attributes: every extra column of a customers file, by name", _v12_customer_attributes),
    (13, "invoice_installments: an invoice's payment schedule, each installment aging on its own due date",
     _v13_invoice_installments),
    (14, "collector_targets: calls, emails, overdue balance, 90+ share and promises kept expected per period",
     _v14_collector_targets),
    (15, "activity_invoices: the invoices of a dispute or promise; whole_account, pauses_dunning",
     _v15_activity_invoices),
    (16, "requests: typed requests between departments, each in one department's queue", _v16_requests),
    (17, "segment_rule_sets, segment_rules: versioned segmentation rules naming dunning policies",
     _v17_segment_rules),
    (18, "dunning policies: retired, min days between, interest, book fees, end action; stage basis, fee, "
         "channels", _v18_dunning_policies),
    (19, "message_templates: versioned subject, text and HTML bodies; messages.body_html, template_version",
     _v19_message_templates),
    (20, "experiments, experiment_assignments: champion/challenger tests on a segment, arms stored per customer",
     _v20_experiments),
    (21, "portal_links, portal_sessions, portal_link_tries: customer portal links (hashed), sessions, rate limit",
     _v21_portal_access),
    (22, "activities.paid_on: the payment date a customer states in the portal (remittance advice)",
     _v22_remittance_paid_on),
    (23, "forecast_backtests: stored payment-date backtests (figures, interval ratios) the cash forecast reads",
     _v23_forecast_backtests),
    (24, "risk_snapshots: each customer's payment index, risk score, band and their inputs per month",
     _v24_risk_snapshots),
    (25, "pack_sends: the monthly pack emailed once per month and recipient; messages.customer_id NULL for staff",
     _v25_monthly_pack),
    (26, "monthly_balances, monthly_flows: month-end open debits and monthly flows per customer, kept by every write",
     _v26_monthly_summaries),
    (27, "portfolio_monthly_balances, portfolio_monthly_flows: the monthly summaries summed over every customer; "
         "PostgreSQL: covering indexes for open items, settlements, postings and allocations by date",
     _v27_portfolio_summaries),
    (28, "dunning_stage_results.next_run, paid_until_next: each stage reach's next reach and what it recovered",
     _v28_stage_next_run),
]
SCHEMA_VERSION = max(v for v, _, _ in MIGRATIONS)
BASE_DESCRIPTION = "receivables ledger, dunning, activities, users, audit, imports, FX"


def current_version(store: Store) -> int:
    """0 for an empty store, else the highest applied migration."""
    with store.engine.connect() as conn:
        if not sa.inspect(conn).has_table("schema_migrations"):
            return 0
        return int(conn.execute(sa.select(sa.func.max(schema_migrations.c.version))).scalar() or 0)


def upgrade(store: Store) -> int:
    """Bring the store to `SCHEMA_VERSION`; returns the version it started from."""
    start = current_version(store)
    if start > SCHEMA_VERSION:
        raise RuntimeError(
            f"The store is at schema version {start}, newer than this AR Desk ({SCHEMA_VERSION}). "
            "Upgrade AR Desk before opening it."
        )
    if start == SCHEMA_VERSION:
        return start
    with store.write() as conn:
        if start == 0:
            metadata.create_all(conn)
            _stamp(conn, SCHEMA_VERSION, BASE_DESCRIPTION)
            return start
    for version, description, migrate in MIGRATIONS:
        if version > start:
            with store.write() as conn:
                migrate(conn)
                _stamp(conn, version, description)
    return start


def _stamp(conn: sa.Connection, version: int, description: str) -> None:
    conn.execute(schema_migrations.insert().values(
        version=version, description=description, applied_at=datetime.now()))
