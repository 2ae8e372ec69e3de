"""The AR Desk data model: every table, column and id sequence.

Sign convention of `ledger_entries.amount`: positive raises what the customer owes (invoices,
debit adjustments); negative lowers it (payments, credit notes, write-offs, credit adjustments).
`allocations` apply a credit entry (payment, credit note, write-off, credit adjustment) to a debit
entry (invoice, debit adjustment) on a date, always with a positive amount. A customer's net
balance on a date is the sum of their entries posted by then; open invoices minus unapplied
credits give the same figure.

A fresh store is created from `metadata`; `analytics.migrations` upgrades stores written by older
versions.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()
Money = sa.Numeric(18, 2)  # never bare Numeric: DuckDB would silently use DECIMAL(18,3)

CUSTOMER_STATUSES = ("active", "on_hold", "in_dispute", "escalated", "with_agency", "written_off")
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
    sa.Column("team", sa.String(40)),  # collections, sales, finance, legal, logistics, billing, credit
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
    # v18: a policy's run rules and end: retired (no longer dunning anyone), minimum days between two
    # messages to one customer, annual interest rate (e.g. 0.10; NULL: none), whether fees and
    # interest are booked as debit adjustments, and the end action once every stage was sent (JSON:
    # {"kind": "task"|"status"|"agency"|"write_off_proposal", ...}; NULL: none)
    sa.Column("retired_at", sa.DateTime),
    sa.Column("min_days_between", sa.Integer, server_default="0"),
    sa.Column("interest_rate", sa.Numeric(9, 6)),
    sa.Column("book_fees", sa.Boolean, server_default=sa.false()),
    sa.Column("end_action", sa.Text),
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
    # v18: what day_offset counts from: due (the due date), previous_sent (the previous stage's run
    # date), end_of_month (the last day of the due date's month); the fee charged with the stage
    sa.Column("basis", sa.String(20), server_default="due"),
    sa.Column("fee", Money),
    sa.PrimaryKeyConstraint("config_id", "version", "stage_no"),
)

# v18: every channel of a stage (email, letter, call, sms), each with its template; the stage's own
# channel/template columns hold its first email channel (else its first channel), which the run sends.
dunning_stage_channels = sa.Table(
    "dunning_stage_channels", metadata,
    sa.Column("config_id", sa.Integer, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("stage_no", sa.Integer, nullable=False),
    sa.Column("channel", sa.String(20), nullable=False),
    sa.Column("template", sa.String(100)),
    sa.PrimaryKeyConstraint("config_id", "version", "stage_no", "channel"),
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
    sa.Column("risk_class", sa.String(10)),  # the risk band (analytics.risk: low ... severe), or an analyst's (v2)
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
    # v10: when mail to the email address bounced (outreach no longer uses it); where the contact came
    # from (an import run, or who added it in the app); when it last changed
    sa.Column("bounced_at", sa.DateTime),
    sa.Column("source", sa.String(100)),
    sa.Column("updated_at", sa.DateTime),
)

# The three large tables take explicit keys reserved in blocks from their sequences
# (`store.ids.reserve_ids`), so bulk loads number rows in one vectorised step.
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
    # by `settlement.refresh_settled_on` so a point-in-time report reads only the entries open then.
    sa.Column("settled_on", sa.Date),
    # v5: the open amount after every allocation in the store (signed like amount; NULL until the
    # first allocation, meaning the amount itself); kept with settled_on. Reports as of a date on or
    # after the last activity read it instead of summing allocations (`open_items.current_open_amounts`).
    sa.Column("open_now", Money),
    # v9: an adjustment's related invoice (its document number), e.g. the fine a penalty is charged on
    sa.Column("related_document", sa.String(64)),
)

allocations = sa.Table(
    "allocations", metadata,
    sa.Column("allocation_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("customer_id", sa.String(64), nullable=False),
    sa.Column("from_entry_id", sa.BigInteger, nullable=False),  # payment, credit note, write-off, credit adjustment
    sa.Column("to_entry_id", sa.BigInteger, nullable=False),  # the invoice or debit adjustment
    sa.Column("amount", Money, nullable=False),
    sa.Column("allocation_date", sa.Date, nullable=False),
)

# PostgreSQL only: covering indexes, so the reports that read the ledger near today read an index
# alone (index-only scans once VACUUM has run) instead of the whole table: the entries never settled
# (current aging, top overdue customers, open invoices), those settled after a date and the
# allocations after a date (open amounts read back from `open_now`), and a period's postings (the
# month to date's sales, collections and write-offs). DuckDB scans columns and needs none of them.
_ENTRY_ITEM = ["entry_id", "customer_id", "entry_type", "posting_date", "due_date", "currency", "amount", "open_now"]
POSTGRES_INDEXES = [
    sa.Index("ledger_entries_never_settled", ledger_entries.c.customer_id,
             postgresql_include=[c for c in _ENTRY_ITEM if c != "customer_id"] + ["document_number"],
             postgresql_where=ledger_entries.c.settled_on.is_(None)).ddl_if(dialect="postgresql"),
    sa.Index("ledger_entries_settled_on", ledger_entries.c.settled_on,
             postgresql_include=_ENTRY_ITEM).ddl_if(dialect="postgresql"),
    sa.Index("ledger_entries_posting_date", ledger_entries.c.posting_date,
             postgresql_include=["entry_type", "currency", "amount", "customer_id"]).ddl_if(dialect="postgresql"),
    sa.Index("allocations_allocation_date", allocations.c.allocation_date,
             postgresql_include=["to_entry_id", "from_entry_id", "amount", "customer_id"]).ddl_if(dialect="postgresql"),
]

dunning_runs = sa.Table(
    "dunning_runs", metadata,
    sa.Column("run_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("entry_id", sa.BigInteger, nullable=False),  # the invoice
    sa.Column("customer_id", sa.String(64), nullable=False),
    sa.Column("config_id", sa.Integer, nullable=False),
    sa.Column("config_version", sa.Integer, nullable=False),
    sa.Column("stage_no", sa.Integer, nullable=False),
    sa.Column("run_date", sa.Date, nullable=False),
    sa.Column("outcome", sa.String(20), nullable=False),  # sent, failed, skipped, done, waived (a skip)
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
    # v28: the run date of the invoice's next stage reach (any configuration; NULL: none yet), and the
    # payments and credit notes dated after run_date up to it (all after run_date when none): what
    # dunning effectiveness credits to this stage ("recovered") once nothing is dated after its end
    sa.Column("next_run", sa.Date),
    sa.Column("paid_until_next", Money),
)

# v26: month-end open debits per customer, currency and due-basis aging bucket, and each month's
# credit sales, collections and write-offs per customer and currency (own currency). Derived from
# the ledger, kept by `monthly_summaries.refresh_monthly_summaries` in every writing transaction
# so monthly reports read months x customers rows instead of the whole ledger.
monthly_balances = sa.Table(
    "monthly_balances", metadata,
    sa.Column("month_end", sa.Date, nullable=False),
    sa.Column("customer_id", sa.String(64), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("bucket", sa.SmallInteger, nullable=False),  # position in the due-basis buckets (0 = Current)
    sa.Column("open_amount", Money, nullable=False),
)
monthly_flows = sa.Table(
    "monthly_flows", metadata,
    sa.Column("month_end", sa.Date, nullable=False),
    sa.Column("customer_id", sa.String(64), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("credit_sales", Money, nullable=False),  # invoices posted in the month
    sa.Column("collections", Money, nullable=False),  # payments posted in the month (positive)
    sa.Column("write_offs", Money, nullable=False),  # write-offs posted in the month (positive)
)
# v27: the same two summaries summed over every customer (the portfolio), so a report without
# filters reads months x currencies x buckets rows; kept by `refresh_monthly_summaries` with them.
portfolio_monthly_balances = sa.Table(
    "portfolio_monthly_balances", metadata,
    sa.Column("month_end", sa.Date, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("bucket", sa.SmallInteger, nullable=False),
    sa.Column("open_amount", Money, nullable=False),
)
portfolio_monthly_flows = sa.Table(
    "portfolio_monthly_flows", metadata,
    sa.Column("month_end", sa.Date, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("credit_sales", Money, nullable=False),
    sa.Column("collections", Money, nullable=False),
    sa.Column("write_offs", Money, nullable=False),
)
# One row: the aging edges the buckets above were placed with, and the months they cover.
monthly_summary_state = sa.Table(
    "monthly_summary_state", metadata,
    sa.Column("aging_edges", sa.String(200), nullable=False),
    sa.Column("first_month_end", sa.Date),
    sa.Column("through", sa.Date),  # the last month end kept (the month of the last activity)
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
    sa.Column("whole_account", sa.Boolean),  # v15: a dispute or promise explicitly about the whole account
    sa.Column("pauses_dunning", sa.Boolean),  # v15: a promise that pauses dunning (NULL: recorded before v15)
    sa.Column("paid_on", sa.Date),  # v22: a remittance advice's stated payment date (due_date: reminders resume)
)

activity_invoices = sa.Table(  # v15: the invoices a dispute or promise concerns (several per activity)
    "activity_invoices", metadata,
    sa.Column("activity_id", sa.BigInteger, nullable=False),
    sa.Column("entry_id", sa.BigInteger, nullable=False),
    sa.PrimaryKeyConstraint("activity_id", "entry_id"),
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
    sa.Column("customer_id", sa.String(64)),  # v25: NULL for a message to staff (the monthly pack), not a customer
    sa.Column("contact_id", sa.Integer),
    sa.Column("to_address", sa.String(200), nullable=False),
    sa.Column("subject", sa.String(300), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("template", sa.String(100)),
    sa.Column("entry_ids", sa.Text),  # JSON list of the invoices the message is about
    sa.Column("attachment_name", sa.String(200)),
    sa.Column("attachment", sa.LargeBinary),
    # queued, sending, sent, failed, blocked, cancelled, uncertain (the states: analytics/collections/outreach/delivery.py)
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
    # v19: the HTML part sent beside the text body, and the template version the message was rendered from
    sa.Column("body_html", sa.Text),
    sa.Column("template_version", sa.Integer),
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

customer_attributes = sa.Table(  # v12: every extra column of a customers file, one value per customer
    "customer_attributes", metadata,
    sa.Column("customer_id", sa.String(64), nullable=False),
    sa.Column("name", sa.String(64), nullable=False),  # lower snake case of the file's column header
    sa.Column("value", sa.String(200), nullable=False),  # the cell as text, trimmed; never blank
    sa.Column("source", sa.String(100)),  # the import run that set the value
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.PrimaryKeyConstraint("customer_id", "name"),
)

invoice_installments = sa.Table(  # v13: an invoice's payment schedule; the installments sum to its amount
    "invoice_installments", metadata,
    sa.Column("entry_id", sa.BigInteger, nullable=False),  # the invoice
    sa.Column("installment_no", sa.Integer, nullable=False),  # 1, 2, ... in due-date order
    sa.Column("due_date", sa.Date, nullable=False),
    sa.Column("amount", Money, nullable=False),  # > 0, in the invoice's currency
    sa.PrimaryKeyConstraint("entry_id", "installment_no"),
)

collector_targets = sa.Table(  # v14: what a manager expects of a collector per period (`collections.targets`)
    "collector_targets", metadata,
    sa.Column("collector", sa.String(64), nullable=False),
    sa.Column("metric", sa.String(40), nullable=False),  # calls, emails, overdue_balance, share_90_plus, promises_kept_pct
    sa.Column("period", sa.String(10), nullable=False),  # day, week, month
    sa.Column("target", Money, nullable=False),  # a count, an amount (reporting currency) or a percent
    sa.Column("set_by", sa.String(64), nullable=False),
    sa.Column("set_at", sa.DateTime, nullable=False),
    sa.PrimaryKeyConstraint("collector", "metric", "period"),
)

# v16: requests between departments (address change, PO number, credit note, ...), each in one
# department's queue; the rules: analytics/collections/requests.py
REQUEST_IDS = sa.Sequence("request_id_seq", metadata=metadata).name
requests = sa.Table(
    "requests", metadata,
    sa.Column("request_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("customer_id", sa.String(64), nullable=False),
    sa.Column("request_type", sa.String(30), nullable=False),  # address_change, po_number, credit_note, ...
    sa.Column("department", sa.String(20), nullable=False),  # the queue: sales, logistics, legal, billing, credit
    sa.Column("owner", sa.String(64)),  # users.username working it; NULL until claimed or assigned
    sa.Column("raised_by", sa.String(64), nullable=False),
    sa.Column("raised_at", sa.DateTime, nullable=False),
    sa.Column("due_date", sa.Date, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),  # open, in_progress, approved, rejected, done
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("details", sa.Text),
    sa.Column("decided_by", sa.String(64)),  # who closed it (approved, rejected or done)
    sa.Column("decided_at", sa.DateTime),
    sa.Column("closed_at", sa.DateTime),  # set with the final status; days to close count from raised_at
    sa.Column("resolution_note", sa.Text),
    sa.Column("updated_at", sa.DateTime),
    sa.Column("idempotency_key", sa.String(64), unique=True),
)

# v17: segmentation rules, versioned: ordered rules over customer attributes and ledger behaviour, first
# match wins, the last rule (no conditions) is the default; each names a dunning policy. The rules:
# analytics/collections/segmentation.py
SEGMENT_RULE_SET_IDS = sa.Sequence("segment_rule_set_version_seq", metadata=metadata).name
segment_rule_sets = sa.Table(
    "segment_rule_sets", metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),  # from its sequence
    sa.Column("created_by", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),  # one version is active: the latest saved
)
segment_rules = sa.Table(
    "segment_rules", metadata,
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("position", sa.Integer, nullable=False),  # 1, 2, ...: first match wins
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("conditions", sa.Text, nullable=False),  # JSON list of {field, op, value}; [] for the default
    sa.Column("dunning_config_id", sa.Integer, nullable=False),  # dunning_configs.config_id
    sa.PrimaryKeyConstraint("version", "position"),
)


# v19: message templates edited in the app, versioned (`collections.outreach.message_templates`); the
# files config/templates/<name>.j2 are each template's version 1; the latest version is the one sent.
message_templates = sa.Table(
    "message_templates", metadata,
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("subject", sa.String(300), nullable=False),
    sa.Column("body_text", sa.Text, nullable=False),
    sa.Column("body_html", sa.Text),  # NULL: the text part, escaped, is the HTML part
    sa.Column("created_by", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("retired", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.PrimaryKeyConstraint("name", "version"),
)


# v20: champion/challenger experiments on a segment (analytics/experiments): each customer of the segment
# is hashed once into one of 10,000 buckets and the arm stored, never recomputed; new customers join on
# arrival. status: running, stopped or promoted.
EXPERIMENT_IDS = sa.Sequence("experiment_id_seq", metadata=metadata).name
experiments = sa.Table(
    "experiments", metadata,
    sa.Column("experiment_id", sa.BigInteger, primary_key=True, autoincrement=False),  # from its sequence
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("segment", sa.String(100), nullable=False),  # a customers.segment value or a rule's name
    sa.Column("champion_config_id", sa.BigInteger, nullable=False),
    sa.Column("challenger_config_id", sa.BigInteger, nullable=False),
    sa.Column("challenger_pct", sa.Integer, nullable=False),  # share of the non-holdout buckets: 50, 10
    sa.Column("holdout_pct", sa.Integer, nullable=False, server_default="0"),  # 0..5: no dunning at all
    sa.Column("metric", sa.String(40), nullable=False),  # the primary metric, fixed at start
    sa.Column("looks", sa.Integer, nullable=False),  # planned O'Brien-Fleming looks over planned_days
    sa.Column("planned_days", sa.Integer),
    sa.Column("started_on", sa.Date),
    sa.Column("started_by", sa.String(64)),
    sa.Column("why", sa.Text),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("ended_on", sa.Date),
    sa.Column("ended_by", sa.String(64)),
    sa.Column("winner_config_id", sa.BigInteger),
)
experiment_assignments = sa.Table(
    "experiment_assignments", metadata,
    sa.Column("experiment_id", sa.BigInteger, nullable=False),
    sa.Column("customer_id", sa.String(64), nullable=False),
    sa.Column("bucket", sa.Integer, nullable=False),  # 0..9999 from md5(experiment_id:customer_id)
    sa.Column("arm", sa.String(20), nullable=False),  # champion, challenger, holdout
    sa.Column("assigned_on", sa.Date, nullable=False),  # the start, or the day the customer arrived
    sa.PrimaryKeyConstraint("experiment_id", "customer_id"),
)

# v21: the customer portal's access (analytics/portal/links.py). A link and a portal session are random
# tokens the customer holds; the store keeps only their SHA-256 hex digests. portal_link_tries: one row
# per link redemption attempt, per client address, for the rate limit (in the store, so it holds across
# processes on PostgreSQL); rows older than the window are deleted as new ones come.
PORTAL_LINK_IDS = sa.Sequence("portal_link_id_seq", metadata=metadata).name
portal_links = sa.Table(
    "portal_links", metadata,
    sa.Column("link_id", sa.BigInteger, primary_key=True, autoincrement=False),  # from its sequence
    sa.Column("customer_id", sa.String(64), nullable=False),
    sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("created_by", sa.String(64), nullable=False),
    sa.Column("expires_at", sa.DateTime, nullable=False),
    sa.Column("revoked_at", sa.DateTime),
)
sa.Index("portal_links_customer", portal_links.c.customer_id)
portal_sessions = sa.Table(
    "portal_sessions", metadata,
    sa.Column("session_sha256", sa.String(64), primary_key=True),
    sa.Column("customer_id", sa.String(64), nullable=False),
    sa.Column("link_id", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("expires_at", sa.DateTime, nullable=False),  # the link's own expiry
    sa.Column("ended_at", sa.DateTime),
)
portal_link_tries = sa.Table(
    "portal_link_tries", metadata,
    sa.Column("client", sa.String(64), nullable=False),  # the client address as the server saw it
    sa.Column("tried_at", sa.DateTime, nullable=False),
)
sa.Index("portal_link_tries_client", portal_link_tries.c.client, portal_link_tries.c.tried_at)

# v24: the risk snapshot of each customer per month (`analytics.risk`): the inputs, each one's contribution
# to the score, the score and its band, as scored on `as_of` (the month's latest scoring replaces the
# earlier one), so "the band worsened this month" compares two stored months and a past month reproduces.
risk_snapshots = sa.Table(
    "risk_snapshots", metadata,
    sa.Column("month_end", sa.Date, primary_key=True),
    sa.Column("customer_id", sa.String(64), primary_key=True),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("paid_invoices", sa.Integer, nullable=False),
    sa.Column("days_beyond_terms", sa.Float),  # dollar-weighted, paid invoices of the last 24 months
    sa.Column("payment_index", sa.Float),  # NULL: fewer than 3 paid invoices
    sa.Column("index_trend", sa.Float),  # payment_index - the index 90 days before
    sa.Column("utilisation_pct", sa.Float),  # open debits / credit limit, capped at 100; NULL: no limit
    sa.Column("over_limit", sa.Boolean, nullable=False),
    sa.Column("dispute_share_pct", sa.Float, nullable=False),
    sa.Column("broken_promises", sa.Integer, nullable=False),
    sa.Column("payment_points", sa.Float, nullable=False),
    sa.Column("utilisation_points", sa.Float, nullable=False),
    sa.Column("dispute_points", sa.Float, nullable=False),
    sa.Column("promise_points", sa.Float, nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("band", sa.String(10), nullable=False),
    sa.Column("suggested_limit", Money),
    sa.Column("scored_at", sa.DateTime, nullable=False),
    sa.Column("scored_by", sa.String(64), nullable=False),
)
sa.Index("risk_snapshots_customer", risk_snapshots.c.customer_id, risk_snapshots.c.as_of)
# v25: the monthly pack emailed by the running app (`analytics.reports.pack_sends`): one row per month
# and recipient, written with its outbox message in one transaction, so a month goes to each recipient once.
pack_sends = sa.Table(
    "pack_sends", metadata,
    sa.Column("month", sa.Date, nullable=False),  # the month's first day
    sa.Column("recipient", sa.String(200), nullable=False),
    sa.Column("message_id", sa.BigInteger, nullable=False),  # messages.message_id
    sa.Column("queued_at", sa.DateTime, nullable=False),
    sa.Column("queued_by", sa.String(64), nullable=False),
    sa.PrimaryKeyConstraint("month", "recipient"),
)
# v23: stored walk-forward backtests of the payment-date forecast (analytics/forecasts/stored_backtests.py):
# the Cash forecast page reads the latest instead of running one (minutes at 1M entries). The figures
# and the weekly actual/forecast ratios (the interval's error distribution) are JSON; the data version
# is the store's last audit id when the backtest ran.
FORECAST_BACKTEST_IDS = sa.Sequence("forecast_backtest_id_seq", metadata=metadata).name
forecast_backtests = sa.Table(
    "forecast_backtests", metadata,
    sa.Column("backtest_id", sa.BigInteger, primary_key=True, autoincrement=False),  # from its sequence
    sa.Column("run_at", sa.DateTime, nullable=False),
    sa.Column("run_by", sa.String(64), nullable=False),
    sa.Column("data_version", sa.BigInteger, nullable=False),
    sa.Column("ledger_last", sa.Date),  # the ledger's last date when it ran
    sa.Column("train_end", sa.Date),  # NULL: the rolling months before the ledger's last month
    sa.Column("months", sa.Integer, nullable=False),
    sa.Column("seed", sa.Integer, nullable=False),
    sa.Column("method", sa.String(20), nullable=False),  # baseline or model: what the forecast uses
    sa.Column("summary", sa.Text, nullable=False),  # JSON: the pooled figures, interval, reason
    sa.Column("periods", sa.Text, nullable=False),  # JSON records: one per period and method
    sa.Column("weekly_ratios", sa.Text, nullable=False),  # JSON list: the chosen method's actual / forecast
)
