"""The rules of the datasets a collections team keeps beside its ledger: contacts, disputes, dunning history.

Each goes through the import pipeline of `analytics.ingest.imports` (validation in the staging
DuckDB, quarantine, one transaction, idempotent merge, audit); this module holds what differs:

**contacts** (customer_id; name, email, phone, role, preferred_channel, is_primary, active).
Natural key (customer_id, email, case-insensitive), or (customer_id, name) when the row has no
email. Rejected: an email that does not match `contacts.EMAIL_PATTERN` in full; a row with
neither name nor email; a role not in `CONTACT_ROLES` or a channel not in `CONTACT_CHANNELS`
(case and spaces ignored: "Accounts Payable" is accounts_payable); is_primary or active not a
yes/no value (the mapping's `true_values`, or no/n/false/0; blank: not primary, active); a
customer not in the store (import customers or invoices first: a contact never creates a customer).
A bounce recorded in the app is kept when the same address is imported again.

**disputes** (customer_id, opened_on; document_number, amount, reason, department, resolved_on,
resolution). A blank document number disputes the whole account. Natural key (customer_id,
document_number, opened_on). Open as of D when opened_on <= D and resolved_on is blank or after D
(`collections.disputes`), so dunning, the worklist and the Customer 360 follow the dates. Stored
as a dispute activity on the customer's timeline: occurred_at = opened_on, resolved_at =
resolved_on, status open (no resolved_on), rejected (resolution "rejected") or resolved, the
resolution text in the body. Rejected: amount zero or negative; resolved_on before opened_on; a
resolution without resolved_on; an unknown customer; a document number that is no invoice (or
debit adjustment) in the store, or one of another customer. Department is free text (up to 40
characters): the departments of the team that answers.

**dunning-history** (document_number, configuration, stage_order, run_date; stage_name, channel,
outcome, template). One row per stage run of the past; it becomes a `dunning_runs` row, so dunning
effectiveness covers the imported past as it covers runs made by AR Desk. Natural key
(document_number, configuration, stage_order, run_date); the outcome (default sent) may change.
A configuration named but not in the store is created **inactive** (imported history, not a
policy; `collections.dunning_configs.adopt_configuration` makes it one), and a stage named but not
in such a configuration is created with the file's name (default "Stage N"), channel (default
email), template, mode manual, and day_offset = the median of (run_date - due date) of its rows, halves rounded up.
Rejected: stage_order not a whole number from 1; a channel not in `STAGE_CHANNELS`, an outcome
not in `RUN_OUTCOMES`; one stage named or channelled two ways in the file; an unknown invoice; a
run dated before the invoice; a stage missing from an **active** configuration (an import never
changes a policy).
"""

# ruff: noqa: S608 - SQL here is composed from our own field names and constants; values bind as parameters.
from __future__ import annotations

from typing import Any

import pandas as pd
import pyarrow as pa
import sqlalchemy as sa

from analytics.collections.contacts import CONTACT_CHANNELS, CONTACT_ROLES, EMAIL_PATTERN
from analytics.ingest.stages import stage
from analytics.store.connection import read_df

TEAM_DATASETS = ("contacts", "disputes", "dunning-history")
STAGE_CHANNELS = ("email", "letter", "call", "sms", "escalation")
RUN_OUTCOMES = ("sent", "failed", "skipped", "done")
DEBIT_TYPES = ("invoice", "adjustment")  # a document a dispute or a dunning run may name (amount > 0)


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def word(sql: str) -> str:
    """A code word as the rules compare it: trimmed, lower case, spaces as underscores."""
    return f"REPLACE(LOWER(TRIM({sql})), ' ', '_')"


# (the SQL expressions of the key over `typed`, the field the error names, the reason)
DUPLICATE_KEYS: dict[str, tuple[list[str], str, str]] = {
    "contacts": (["raw_customer_id", "COALESCE('@' || LOWER(raw_email), raw_name)"], "email",
                 "duplicate contact (customer and email, or name) in the file"),
    "disputes": (["raw_customer_id", "COALESCE(raw_document_number, '')", "opened_on"], "opened_on",
                 "duplicate dispute (customer, document, opened on) in the file"),
    "dunning-history": (["raw_document_number", "raw_configuration", "stage_order", "run_date"], "run_date",
                        "duplicate stage run (document, configuration, stage, date) in the file"),
    "installments": (["raw_document_number", "due_date"], "due_date",
                     "duplicate installment (document, due date) in the file"),
}


def file_rules(dataset: str, columns: set[str]) -> list[tuple[str, str, str]]:
    """The rules that need only the file: (field, SQL condition over `typed` that rejects, reason)."""
    rules: list[tuple[str, str, str]] = []
    if dataset == "contacts":
        rules.append(("email", f"raw_email IS NOT NULL AND NOT regexp_full_match(raw_email, '{EMAIL_PATTERN}')",
                      "not a valid email address (name@domain.example)"))
        rules.append(("name", "raw_name IS NULL AND raw_email IS NULL", "neither a name nor an email"))
        rules.append(("role", f"raw_role IS NOT NULL AND {word('raw_role')} NOT IN ({_in(CONTACT_ROLES)})",
                      f"unknown role (one of {', '.join(CONTACT_ROLES)})"))
        rules.append(("preferred_channel", f"raw_preferred_channel IS NOT NULL AND {word('raw_preferred_channel')} "
                      f"NOT IN ({_in(CONTACT_CHANNELS)})", f"unknown channel (one of {', '.join(CONTACT_CHANNELS)})"))
    elif dataset == "disputes":
        if "amount" in columns:
            rules.append(("amount", "amount <= 0", "dispute amount is zero or negative"))
        if "resolved_on" in columns:
            rules.append(("resolved_on", "resolved_on < opened_on", "resolved before it was opened"))
        rules.append(("resolution", "raw_resolution IS NOT NULL AND raw_resolved_on IS NULL",
                      "a resolution without a resolved_on date"))
    elif dataset == "dunning-history":
        rules.append(("stage_order", "stage_order < 1", "stage order must be a whole number from 1"))
        rules.append(("channel", f"raw_channel IS NOT NULL AND {word('raw_channel')} NOT IN ({_in(STAGE_CHANNELS)})",
                      f"unknown channel (one of {', '.join(STAGE_CHANNELS)})"))
        rules.append(("outcome", f"raw_outcome IS NOT NULL AND {word('raw_outcome')} NOT IN ({_in(RUN_OUTCOMES)})",
                      f"unknown outcome (one of {', '.join(RUN_OUTCOMES)})"))
        rules.append(("stage_name", """(raw_configuration, stage_order) IN (
            SELECT raw_configuration, stage_order FROM typed GROUP BY raw_configuration, stage_order
            HAVING COUNT(DISTINCT COALESCE(raw_stage_name, '')) > 1
                OR COUNT(DISTINCT COALESCE(LOWER(raw_channel), '')) > 1)""",
                      "the same stage is named or channelled two ways in the file"))
    return rules


_CHECK_STAGE = """CREATE TEMPORARY TABLE _import_team_check (
    row_number BIGINT, customer_id VARCHAR(64), document_number VARCHAR(64), configuration VARCHAR(100),
    stage_no INTEGER, run_date DATE)"""

# Each debit document's entry (an invoice first, then a debit adjustment of the same number).
DEBITS_SQL = f"""
SELECT document_number, entry_id, customer_id, posting_date, due_date FROM (
    SELECT e.document_number, e.entry_id, e.customer_id, e.posting_date, e.due_date,
           ROW_NUMBER() OVER (PARTITION BY e.document_number
                              ORDER BY CASE WHEN e.entry_type = 'invoice' THEN 0 ELSE 1 END, e.entry_id) AS rn
    FROM ledger_entries e
    WHERE e.entry_type IN ({_in(DEBIT_TYPES)}) AND e.amount > 0
      AND e.document_number IN (SELECT document_number FROM {{stage}} WHERE document_number IS NOT NULL)
) d WHERE rn = 1"""


def store_errors(conn: sa.Connection, staging: Any, errors: pd.DataFrame, row: str) -> pd.DataFrame:
    """The rules that read the store, over the rows the file rules accepted: one row per problem.

    `staging` is the validation's `Staging`, `row` its row-number column."""
    ds = staging.mapping.dataset
    has = staging.columns
    cols = {
        "customer_id": "raw_customer_id" if "raw_customer_id" in has else "CAST(NULL AS VARCHAR)",
        "document_number": "raw_document_number" if "raw_document_number" in has else "CAST(NULL AS VARCHAR)",
        "configuration": "raw_configuration" if ds == "dunning-history" else "CAST(NULL AS VARCHAR)",
        "stage_no": "stage_order" if ds == "dunning-history" else "CAST(NULL AS INTEGER)",
        "run_date": "run_date" if ds == "dunning-history" else "CAST(NULL AS DATE)",
    }
    rows: pa.Table = staging.accepted(
        f'SELECT "{row}" AS row_number, ' + ", ".join(f"{v} AS {k}" for k, v in cols.items()) + " FROM ok", errors)
    stage(conn, _CHECK_STAGE, "_import_team_check", rows, writable=True)
    src = staging.mapping.source
    checks: list[str] = []
    if ds in ("contacts", "disputes"):
        checks.append(f"""SELECT s.row_number, '{_q(src("customer_id"))}' AS column_name, s.customer_id AS value,
                'unknown customer (import customers or invoices first)' AS reason
            FROM _import_team_check s WHERE NOT EXISTS (SELECT 1 FROM customers c WHERE c.customer_id = s.customer_id)""")
    if ds in ("disputes", "dunning-history"):
        debits = DEBITS_SQL.format(stage="_import_team_check")
        doc = _q(src("document_number"))
        checks.append(f"""SELECT s.row_number, '{doc}', s.document_number, 'unknown invoice'
            FROM _import_team_check s WHERE s.document_number IS NOT NULL
              AND s.document_number NOT IN (SELECT document_number FROM ({debits}) d)""")
        if ds == "disputes":
            checks.append(f"""SELECT s.row_number, '{doc}', s.document_number,
                    'the invoice belongs to another customer'
                FROM _import_team_check s JOIN ({debits}) d ON d.document_number = s.document_number
                WHERE d.customer_id <> s.customer_id""")
        else:
            checks.append(f"""SELECT s.row_number, '{_q(src("run_date"))}', CAST(s.run_date AS VARCHAR),
                    'run date before the invoice date'
                FROM _import_team_check s JOIN ({debits}) d ON d.document_number = s.document_number
                WHERE s.run_date < d.posting_date""")
            checks.append(f"""SELECT s.row_number, '{_q(src("stage_order"))}', CAST(s.stage_no AS VARCHAR),
                    'stage not in the active configuration ' || s.configuration
                      || ' (an import never changes a policy)'
                FROM _import_team_check s
                JOIN dunning_configs c ON c.name = s.configuration AND c.active
                 AND c.version = (SELECT MAX(v.version) FROM dunning_configs v WHERE v.config_id = c.config_id)
                WHERE NOT EXISTS (SELECT 1 FROM dunning_stages t WHERE t.config_id = c.config_id
                                  AND t.version = c.version AND t.stage_no = s.stage_no)""")
    if not checks:
        return pd.DataFrame(columns=["row_number", "column_name", "value", "reason"])
    found = read_df(conn, " UNION ALL ".join(checks))
    found.columns = ["row_number", "column_name", "value", "reason"]
    found["row_number"] = found["row_number"].astype("int64")
    found["value"] = found["value"].astype(object).where(found["value"].notna(), None)
    return found


def _q(text: str) -> str:
    return text.replace("'", "''")
