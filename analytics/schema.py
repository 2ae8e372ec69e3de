"""The AR Desk data model, and in-place upgrades of stores written by older versions.

Sign convention of `ledger_entries.amount`: positive raises what the customer owes (invoices,
debit adjustments); negative lowers it (payments, credit notes, write-offs, credit adjustments).
`allocations` apply a credit entry (payment, credit note, write-off) to a debit entry (invoice)
on a date, always with a positive amount. A customer's net balance on a date is the sum of their
entries posted by then; open invoices minus unapplied credits give the same figure.

Versioning: a fresh store is created from `metadata` and stamped `SCHEMA_VERSION`. A store at an
older version runs the `MIGRATIONS` above its version, in order, each in its own transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa

from analytics.store import Store

metadata = sa.MetaData()
Money = sa.Numeric(18, 2)  # never bare Numeric: DuckDB would silently use DECIMAL(18,3)

CUSTOMER_STATUSES = ("active", "on_hold", "in_dispute", "escalated", "with_agency", "written_off")
SEGMENTS = ("enterprise", "mid-market", "small business", "public sector")
ENTRY_TYPES = ("invoice", "payment", "credit_note", "adjustment", "write_off")
ACTIVITY_KINDS = (
    "email", "letter", "call", "note", "promise", "dispute", "task", "escalation", "reassignment", "snooze",
)


def _seq(name: str) -> tuple[sa.Sequence, sa.sql.ColumnElement]:
    # duckdb-engine cannot create SERIAL columns: surrogate keys come from explicit sequences.
    seq = sa.Sequence(name, metadata=metadata)
    return seq, seq.next_value()


schema_migrations = sa.Table(
    "schema_migrations", metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("description", sa.String(200), nullable=False),
    sa.Column("applied_at", sa.DateTime, nullable=False),
)

users = sa.Table(
    "users", metadata,
    sa.Column("username", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("email", sa.String(200)),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("team", sa.String(40)),  # collections, sales, finance, legal, logistics
    sa.Column("password_hash", sa.String(100)),  # bcrypt; NULL = cannot sign in yet
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"),
    sa.Column("locked_until", sa.DateTime),
    sa.Column("last_login_at", sa.DateTime),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

_dcfg_seq, _dcfg_next = _seq("dunning_config_id_seq")
dunning_configs = sa.Table(
    "dunning_configs", metadata,
    sa.Column("config_id", sa.Integer, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("segment", sa.String(40)),  # NULL: any segment
    sa.Column("grace_days", sa.Integer, nullable=False, server_default="0"),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("description", sa.Text),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("created_by", sa.String(64)),
    sa.PrimaryKeyConstraint("config_id", "version"),
)

dunning_stages = sa.Table(
    "dunning_stages", metadata,
    sa.Column("config_id", sa.Integer, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("stage_no", sa.Integer, nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("day_offset", sa.Integer, nullable=False),  # days after the due date (negative: before)
    sa.Column("channel", sa.String(20), nullable=False),  # email, letter, call, sms, escalation
    sa.Column("template", sa.String(100)),
    sa.Column("mode", sa.String(10), nullable=False, server_default="automatic"),  # or manual
    sa.PrimaryKeyConstraint("config_id", "version", "stage_no"),
)

customers = sa.Table(
    "customers", metadata,
    sa.Column("customer_id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("segment", sa.String(40), nullable=False),
    sa.Column("country", sa.String(2)),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("payment_terms_days", sa.Integer, nullable=False, server_default="30"),
    sa.Column("credit_limit", Money),
    sa.Column("status", sa.String(20), nullable=False, server_default="active"),
    sa.Column("collector", sa.String(64)),  # users.username
    sa.Column("sales_rep", sa.String(64)),
    sa.Column("dunning_config_id", sa.Integer),
    sa.Column("risk_class", sa.String(10)),  # low, medium, high: set by analysts (v2)
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime),
)

_contact_seq, _contact_next = _seq("contact_id_seq")
contacts = sa.Table(
    "contacts", metadata,
    sa.Column("contact_id", sa.Integer, _contact_seq, server_default=_contact_next, primary_key=True),
    sa.Column("customer_id", sa.String(64), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("email", sa.String(200)),
    sa.Column("phone", sa.String(40)),
    sa.Column("role", sa.String(40)),  # accounts_payable, finance_manager, purchasing, owner
    sa.Column("preferred_channel", sa.String(10), server_default="email"),
    sa.Column("is_primary", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
)

# The three large tables take explicit keys reserved in blocks from their sequences
# (`store.reserve_ids`), so bulk loads number rows in one vectorised step.
ENTRY_IDS = sa.Sequence("entry_id_seq", metadata=metadata).name
ALLOCATION_IDS = sa.Sequence("allocation_id_seq", metadata=metadata).name
DUNNING_RUN_IDS = sa.Sequence("dunning_run_id_seq", metadata=metadata).name
ledger_entries = sa.Table(
    "ledger_entries", metadata,
    sa.Column("entry_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("customer_id", sa.String(64), nullable=False),
    sa.Column("entry_type", sa.String(16), nullable=False),
    sa.Column("document_number", sa.String(64), nullable=False),
    sa.Column("posting_date", sa.Date, nullable=False),
    sa.Column("due_date", sa.Date),
    sa.Column("amount", Money, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("reference", sa.String(200)),
    sa.Column("source", sa.String(100)),
    sa.Column("updated_at", sa.DateTime),
    # v3: the first date from which the entry is fully applied and stays so (NULL while open); kept
    # by `ledger.refresh_settled_on` so a point-in-time report reads only the entries open then.
    sa.Column("settled_on", sa.Date),
    # v5: the open amount after every allocation in the store (signed like amount; NULL until the
    # first allocation, meaning the amount itself); kept with settled_on. Reports as of a date on or
    # after the last activity read it instead of summing allocations (`ledger.current_open_amounts`).
    sa.Column("open_now", Money),
)

allocations = sa.Table(
    "allocations", metadata,
    sa.Column("allocation_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("customer_id", sa.String(64), nullable=False),
    sa.Column("from_entry_id", sa.BigInteger, nullable=False),  # the payment, credit note or write-off
    sa.Column("to_entry_id", sa.BigInteger, nullable=False),  # the invoice
    sa.Column("amount", Money, nullable=False),
    sa.Column("allocation_date", sa.Date, nullable=False),
)

dunning_runs = sa.Table(
    "dunning_runs", metadata,
    sa.Column("run_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("entry_id", sa.BigInteger, nullable=False),  # the invoice
    sa.Column("customer_id", sa.String(64), nullable=False),
    sa.Column("config_id", sa.Integer, nullable=False),
    sa.Column("config_version", sa.Integer, nullable=False),
    sa.Column("stage_no", sa.Integer, nullable=False),
    sa.Column("run_date", sa.Date, nullable=False),
    sa.Column("outcome", sa.String(20), nullable=False),  # sent, failed, skipped, done
)

STAGE_WINDOWS = (7, 14, 30)  # days after a dunning stage in which payments are counted

# v4: one row per invoice and dunning stage it reached (its first sent/done run), with what was
# open then and what was paid after. Derived from dunning_runs and allocations, kept by
# `stage_results.refresh_stage_results` so dunning effectiveness reads one row per stage reached.
dunning_stage_results = sa.Table(
    "dunning_stage_results", metadata,
    sa.Column("entry_id", sa.BigInteger, nullable=False),  # the invoice
    sa.Column("config_id", sa.Integer, nullable=False),
    sa.Column("config_version", sa.Integer, nullable=False),
    sa.Column("stage_no", sa.Integer, nullable=False),
    sa.Column("customer_id", sa.String(64), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("run_date", sa.Date, nullable=False),
    sa.Column("open_amount", Money, nullable=False),  # open on run_date, the invoice's currency
    *(sa.Column(f"paid_{n}d", Money, nullable=False) for n in STAGE_WINDOWS),
    sa.Column("paid_after", Money, nullable=False),
    sa.Column("paid_on", sa.Date),
)

_activity_seq, _activity_next = _seq("activity_id_seq")
activities = sa.Table(
    "activities", metadata,
    sa.Column("activity_id", sa.BigInteger, _activity_seq, server_default=_activity_next, primary_key=True),
    sa.Column("customer_id", sa.String(64), nullable=False),
    sa.Column("entry_id", sa.BigInteger),  # the invoice it concerns, if one
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("occurred_at", sa.DateTime, nullable=False),
    sa.Column("author", sa.String(64), nullable=False),
    sa.Column("department", sa.String(40)),
    sa.Column("subject", sa.String(200)),
    sa.Column("body", sa.Text),
    sa.Column("outcome", sa.String(40)),  # call outcome, email delivery
    sa.Column("amount", Money),  # promised or disputed amount
    sa.Column("due_date", sa.Date),  # promised date, task due date, snoozed until
    sa.Column("status", sa.String(20)),  # promise: pending/kept/broken/cancelled; dispute: open/resolved/rejected
    sa.Column("reason", sa.String(200)),
    sa.Column("assignee", sa.String(64)),
    sa.Column("target", sa.String(64)),  # escalation: manager/agency; reassignment: new collector
    sa.Column("resolved_at", sa.DateTime),
    sa.Column("idempotency_key", sa.String(64), unique=True),
)

_audit_seq, _audit_next = _seq("audit_id_seq")
audit_log = sa.Table(
    "audit_log", metadata,
    sa.Column("audit_id", sa.BigInteger, _audit_seq, server_default=_audit_next, primary_key=True),
    sa.Column("logged_at", sa.DateTime, nullable=False),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("action", sa.String(60), nullable=False),
    sa.Column("entity", sa.String(40), nullable=False),
    sa.Column("entity_id", sa.String(200)),
    sa.Column("old_values", sa.Text),  # JSON of the fields before the change
    sa.Column("new_values", sa.Text),  # JSON of the fields after it
    sa.Column("detail", sa.Text),
)

_run_seq, _run_next = _seq("import_run_id_seq")
import_runs = sa.Table(
    "import_runs", metadata,
    sa.Column("run_id", sa.BigInteger, _run_seq, server_default=_run_next, primary_key=True),
    sa.Column("kind", sa.String(20), nullable=False),  # import, sync, demo
    sa.Column("dataset", sa.String(40)),  # customers, invoices, payments, ...
    sa.Column("source", sa.Text),
    sa.Column("actor", sa.String(64)),
    sa.Column("started_at", sa.DateTime, nullable=False),
    sa.Column("finished_at", sa.DateTime),
    sa.Column("status", sa.String(20), nullable=False),  # running, ok, rejected, failed
    sa.Column("rows_read", sa.BigInteger, server_default="0"),
    sa.Column("rows_inserted", sa.BigInteger, server_default="0"),
    sa.Column("rows_updated", sa.BigInteger, server_default="0"),
    sa.Column("rows_unchanged", sa.BigInteger, server_default="0"),
    sa.Column("rows_rejected", sa.BigInteger, server_default="0"),
    sa.Column("customers_created", sa.BigInteger, server_default="0"),
    sa.Column("error", sa.Text),
)

fx_rates = sa.Table(
    "fx_rates", metadata,
    sa.Column("rate_date", sa.Date, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("rate", sa.Numeric(18, 8), nullable=False),  # reporting currency per 1 unit
    sa.PrimaryKeyConstraint("rate_date", "currency"),
)

_message_seq, _message_next = _seq("message_id_seq")
messages = sa.Table(  # v2: the outbox; a message is sent at most once (idempotency_key)
    "messages", metadata,
    sa.Column("message_id", sa.BigInteger, _message_seq, server_default=_message_next, primary_key=True),
    sa.Column("idempotency_key", sa.String(64), nullable=False, unique=True),
    sa.Column("customer_id", sa.String(64), nullable=False),
    sa.Column("contact_id", sa.Integer),
    sa.Column("to_address", sa.String(200), nullable=False),
    sa.Column("subject", sa.String(300), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("template", sa.String(100)),
    sa.Column("entry_ids", sa.Text),  # JSON list of the invoices the message is about
    sa.Column("attachment_name", sa.String(200)),
    sa.Column("attachment", sa.LargeBinary),
    # queued, sending, sent, failed, blocked, cancelled, uncertain (the states: analytics/outreach.py)
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text),
    sa.Column("created_by", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("sent_at", sa.DateTime),
    sa.Column("activity_id", sa.BigInteger),  # the timeline entry written when it was sent
    # v7: delivery that never sends twice. The RFC 5322 Message-ID, made once when queued, so a
    # resend carries the same id; the delivery holding the claim and until when (its lease); and
    # when the content started to go to the server (set, committed, before the first byte of it).
    sa.Column("message_header_id", sa.String(250)),
    sa.Column("claimed_by", sa.String(120)),
    sa.Column("lease_until", sa.DateTime),
    sa.Column("data_started_at", sa.DateTime),
)

quarantine = sa.Table(  # v2: rejected import rows, with the reason, never silently dropped
    "quarantine", metadata,
    sa.Column("run_id", sa.BigInteger, nullable=False),
    sa.Column("row_number", sa.BigInteger, nullable=False),  # 1-based data row in the file
    sa.Column("column_name", sa.String(100)),
    sa.Column("value", sa.Text),
    sa.Column("reason", sa.String(200), nullable=False),
    sa.Column("raw", sa.Text),  # JSON of the whole row as read
)

sync_watermarks = sa.Table(  # v2: how far an incremental sync has read each source
    "sync_watermarks", metadata,
    sa.Column("source", sa.String(300), nullable=False),
    sa.Column("dataset", sa.String(40), nullable=False),
    sa.Column("watermark", sa.String(100)),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.PrimaryKeyConstraint("source", "dataset"),
)

sessions = sa.Table(  # v8: server-side sign-in sessions; the browser holds only a random token
    "sessions", metadata,
    sa.Column("session_id", sa.String(32), primary_key=True),  # random; stays on the server
    sa.Column("username", sa.String(64), nullable=False),
    sa.Column("ticket_hash", sa.String(64), unique=True),  # SHA-256 of the one-time ticket; NULL once used
    sa.Column("ticket_expires_at", sa.DateTime),
    sa.Column("token_hash", sa.String(64), unique=True),  # SHA-256 of the cookie token; NULL until issued
    sa.Column("created_at", sa.DateTime, nullable=False),  # when the password was checked
    sa.Column("last_seen_at", sa.DateTime, nullable=False),
    sa.Column("expires_at", sa.DateTime, nullable=False),  # the absolute limit
    sa.Column("ended_at", sa.DateTime),
    sa.Column("end_reason", sa.String(40)),
)
sa.Index("sessions_username", sessions.c.username)


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
    from analytics.ledger import refresh_settled_on  # the ledger rules import the store, not the schema

    conn.execute(sa.text("ALTER TABLE ledger_entries ADD COLUMN IF NOT EXISTS settled_on DATE"))
    conn.execute(sa.text("ALTER TABLE ledger_entries ADD COLUMN IF NOT EXISTS open_now DECIMAL(18, 2)"))  # v5's
    refresh_settled_on(conn)


def _v4_dunning_stage_results(conn: sa.Connection) -> None:
    from analytics.stage_results import refresh_stage_results

    _create_tables(conn, dunning_stage_results)
    refresh_stage_results(conn)


def _v5_open_now(conn: sa.Connection) -> None:
    from analytics.ledger import refresh_settled_on

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
    from analytics.outreach import backfill_message_header_ids  # outreach imports the schema

    for name, kind in (("message_header_id", "VARCHAR(250)"), ("claimed_by", "VARCHAR(120)"),
                       ("lease_until", "TIMESTAMP"), ("data_started_at", "TIMESTAMP")):
        conn.execute(sa.text(f"ALTER TABLE messages ADD COLUMN IF NOT EXISTS {name} {kind}"))
    backfill_message_header_ids(conn)


def _v8_sessions(conn: sa.Connection) -> None:
    _create_tables(conn, sessions)
    conn.execute(sa.text("CREATE INDEX IF NOT EXISTS sessions_username ON sessions (username)"))


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
