"""The contacts, disputes and dunning-history datasets: happy path, every rejection reason, re-import
is a no-op, a changed row updates in place with an audit line; and what each one drives (outreach
recipients, dated disputes in dunning/worklist/Customer 360, dunning effectiveness)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from analytics.access.roles import SYSTEM, Actor, PermissionDenied
from analytics.collections.contacts import mark_bounced
from analytics.collections.customer_360 import open_invoices
from analytics.collections.dunning_configs import DunningConfigError, adopt_configuration
from analytics.collections.dunning_schedule import due_stages
from analytics.collections.outreach.recipients import recipients
from analytics.collections.worklist import worklist
from analytics.ingest.imports import run_import
from analytics.ingest.mapping import Mapping
from analytics.kpis.dunning_effectiveness import dunning_effectiveness
from analytics.store.connection import Store
from tests.collector_data import add_dunning_config

ANA = Actor("ana.collector", "collector", "Ana Collector")


@pytest.fixture
def store(store_on_each_engine: Store) -> Store:
    """An empty store on DuckDB, and again on PostgreSQL: the same results."""
    return store_on_each_engine


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def rows(store: Store, sql: str, params: dict | None = None) -> list[dict]:
    frame = store.read(sql, params).astype(object)
    return frame.where(frame.notna(), None).to_dict("records")


def day(value) -> str:  # noqa: ANN001 - a date, datetime or Timestamp
    return str(value)[:10]


def errors(result) -> list[tuple]:  # noqa: ANN001 - an ImportResult
    return [tuple(r) for r in result.report.errors[["row_number", "column_name", "value", "reason"]].itertuples(
        index=False)]


@pytest.fixture
def books(store: Store, tmp_path: Path) -> Store:
    """C1 owes INV-1 (100, due 2024-02-04) and INV-2 (200, due 2024-02-09); C2 owes INV-3 (300, due
    2024-02-14); C1 paid INV-1 on 2024-02-20. No demo: all of it imported."""
    invoices = write(tmp_path, "inv.csv", "customer_id,document_number,posting_date,due_date,amount\n"
                     "C1,INV-1,2024-01-05,2024-02-04,100\nC1,INV-2,2024-01-10,2024-02-09,200\n"
                     "C2,INV-3,2024-01-15,2024-02-14,300\n")
    run_import(store, invoices, Mapping(dataset="invoices"), SYSTEM)
    pay = write(tmp_path, "pay.csv", "customer_id,document_number,posting_date,amount\nC1,P-1,2024-02-20,100\n")
    run_import(store, pay, Mapping(dataset="payments"), SYSTEM)
    alloc = write(tmp_path, "alloc.csv", "from_document,to_document,amount,allocation_date\nP-1,INV-1,100,2024-02-20\n")
    run_import(store, alloc, Mapping(dataset="allocations"), SYSTEM)
    return store


# -- contacts -------------------------------------------------------------------------------------------
CONTACTS = """customer_id,name,email,phone,role,preferred_channel,is_primary,active
C1,Ann AP,ap@c1.example,,Accounts Payable,email,yes,
C1,,boss@c1.example,555,owner,Phone,no,yes
C2,Front desk,,555-1,,,,
C1,Bad,not-an-email,,other,,,
C1,,,,,,,
C1,X,x@c1.example,,boss,,,
C1,Y,y@c1.example,,other,pigeon,,
C1,Z,z@c1.example,,other,,maybe,
C9,Q,q@c9.example,,,,,
C2,Dup,dup@c2.example,,,,,
C2,Dup2,DUP@c2.example,,,,,
C1,Long,long@c1.example,12345678901234567890123456789012345678901,,,,
,N,n@c1.example,,,,,
"""


def test_contacts_import_every_rule_then_no_op_then_update_in_place(books: Store, tmp_path: Path) -> None:
    path = write(tmp_path, "contacts.csv", CONTACTS)
    result = run_import(books, path, Mapping(dataset="contacts"), SYSTEM)
    assert (result.status, result.inserted, result.rejected) == ("ok", 3, 10)
    assert errors(result) == [
        (4, "email", "not-an-email", "not a valid email address (name@domain.example)"),
        (5, "name", None, "neither a name nor an email"),
        (6, "role", "boss", "unknown role (one of accounts_payable, finance_manager, purchasing, owner, other)"),
        (7, "preferred_channel", "pigeon", "unknown channel (one of email, phone, letter, sms)"),
        (8, "is_primary", "maybe", "not a yes/no value"),
        (9, "customer_id", "C9", "unknown customer (import customers or invoices first)"),
        (10, "email", "dup@c2.example", "duplicate contact (customer and email, or name) in the file"),
        (11, "email", "DUP@c2.example", "duplicate contact (customer and email, or name) in the file"),
        (12, "phone", "12345678901234567890123456789012345678901", "longer than 40 characters"),
        (13, "customer_id", None, "missing value"),
    ]
    assert books.scalar("SELECT COUNT(DISTINCT row_number) FROM quarantine WHERE run_id = :r",
                        {"r": result.run_id}) == 10
    table = "SELECT contact_id, customer_id, name, email, phone, role, preferred_channel, is_primary, active " \
            "FROM contacts ORDER BY contact_id"
    before = rows(books, table)
    assert [{k: v for k, v in r.items() if k != "contact_id"} for r in before] == [
        {"customer_id": "C1", "name": "Ann AP", "email": "ap@c1.example", "phone": None, "role": "accounts_payable",
         "preferred_channel": "email", "is_primary": True, "active": True},
        {"customer_id": "C1", "name": "boss@c1.example", "email": "boss@c1.example", "phone": "555",
         "role": "owner", "preferred_channel": "phone", "is_primary": False, "active": True},
        {"customer_id": "C2", "name": "Front desk", "email": None, "phone": "555-1", "role": "other",
         "preferred_channel": "email", "is_primary": False, "active": True},
    ]
    # outreach writes to the accounts-payable contact
    assert recipients(books, ["C1"])[["contact_name", "email"]].values.tolist() == [["Ann AP", "ap@c1.example"]]

    audits = books.scalar("SELECT COUNT(*) FROM audit_log")
    again = run_import(books, path, Mapping(dataset="contacts"), SYSTEM)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 3)
    assert rows(books, table) == before
    assert books.scalar("SELECT COUNT(*) FROM audit_log") == audits + 1  # the run's own line only

    # a bounce recorded in the app survives a re-import of the same address
    mark_bounced(books, ANA, before[0]["contact_id"])
    changed = CONTACTS.replace("C1,Ann AP,ap@c1.example,,Accounts Payable", "C1,Ann AP,AP@c1.example,777,finance manager")
    update = run_import(books, write(tmp_path, "contacts2.csv", changed), Mapping(dataset="contacts"), SYSTEM)
    assert (update.inserted, update.updated, update.unchanged) == (0, 1, 2)
    ann = rows(books, "SELECT contact_id, email, phone, role, bounced_at IS NOT NULL AS bounced FROM contacts "
                      "WHERE name = 'Ann AP'")
    assert ann == [{"contact_id": before[0]["contact_id"], "email": "AP@c1.example", "phone": "777",
                    "role": "finance_manager", "bounced": True}]
    [line] = rows(books, "SELECT entity_id, old_values, new_values, detail FROM audit_log "
                         "WHERE action = 'import_update' AND entity = 'contact'")
    assert line["entity_id"] == f"{before[0]['contact_id']}/C1" and line["detail"] == f"import run #{update.run_id}"
    old, new = json.loads(line["old_values"]), json.loads(line["new_values"])
    assert (old["phone"], new["phone"], old["role"], new["role"], old["email"], new["email"]) == (
        None, "777", "accounts_payable", "finance_manager", "ap@c1.example", "AP@c1.example")


def test_a_contacts_file_without_optional_columns_leaves_them_alone(books: Store, tmp_path: Path) -> None:
    run_import(books, write(tmp_path, "a.csv", CONTACTS.splitlines()[0] + "\n" + CONTACTS.splitlines()[1] + "\n"),
               Mapping(dataset="contacts"), SYSTEM)
    result = run_import(books, write(tmp_path, "b.csv", "customer,mail\nC1,ap@c1.example\n"),
                        Mapping(dataset="contacts", columns={"customer_id": "customer", "email": "mail"}), SYSTEM)
    assert (result.inserted, result.updated, result.unchanged) == (0, 1, 0)  # the name: Ann AP -> the address
    assert rows(books, "SELECT name, role, is_primary FROM contacts") == [
        {"name": "ap@c1.example", "role": "accounts_payable", "is_primary": True}]


# -- disputes -------------------------------------------------------------------------------------------
DISPUTES = """customer_id,document_number,opened_on,amount,reason,department,resolved_on,resolution
C1,INV-1,2024-02-10,40,Damaged goods,logistics,,
C1,,2024-02-12,,Whole account,sales,2024-03-01,credit note issued
C2,INV-3,2024-02-15,10,Price,sales,2024-02-20,rejected
C1,INV-2,2024-02-10,0,x,,,
C1,INV-2,2024-03-10,5,x,,2024-03-01,
C1,INV-2,2024-03-11,5,x,,,fixed
C9,,2024-03-10,5,x,,,
C1,NOPE,2024-03-10,5,x,,,
C1,INV-3,2024-03-10,5,x,,,
C2,,2024-04-01,5,twice,,,
C2,,2024-04-01,6,twice,,,
C1,INV-2,2099-01-01,5,x,,,
C1,INV-2,bad,5,x,,,
,INV-2,2024-03-01,5,x,,,
C1,INV-2,2024-03-12,5,x,12345678901234567890123456789012345678901,,
"""


def test_disputes_import_every_rule_then_no_op_then_update_in_place(books: Store, tmp_path: Path) -> None:
    path = write(tmp_path, "disputes.csv", DISPUTES)
    result = run_import(books, path, Mapping(dataset="disputes"), SYSTEM)
    assert (result.status, result.inserted, result.rejected) == ("ok", 3, 12)
    found = errors(result)
    future = next(e for e in found if e[0] == 12)
    assert future[:3] == (12, "opened_on", "2099-01-01") and future[3].startswith("date more than 31 days")
    assert [e for e in found if e[0] != 12] == [
        (4, "amount", "0", "dispute amount is zero or negative"),
        (5, "resolved_on", "2024-03-01", "resolved before it was opened"),
        (6, "resolution", "fixed", "a resolution without a resolved_on date"),
        (7, "customer_id", "C9", "unknown customer (import customers or invoices first)"),
        (8, "document_number", "NOPE", "unknown invoice"),
        (9, "document_number", "INV-3", "the invoice belongs to another customer"),
        (10, "opened_on", "2024-04-01", "duplicate dispute (customer, document, opened on) in the file"),
        (11, "opened_on", "2024-04-01", "duplicate dispute (customer, document, opened on) in the file"),
        (13, "opened_on", "bad", "unparseable date (expected %Y-%m-%d)"),
        (14, "customer_id", None, "missing value"),
        (15, "department", "12345678901234567890123456789012345678901", "longer than 40 characters"),
    ]
    table = ("SELECT a.activity_id, a.customer_id, e.document_number, a.occurred_at, a.amount, a.reason, "
             "a.department, a.status, a.resolved_at, a.body FROM activities a "
             "LEFT JOIN ledger_entries e ON e.entry_id = a.entry_id WHERE a.kind = 'dispute' ORDER BY a.occurred_at")
    before = rows(books, table)
    assert [(r["customer_id"], r["document_number"], day(r["occurred_at"]), r["status"],
             None if r["resolved_at"] is None else day(r["resolved_at"]), r["body"]) for r in before] == [
        ("C1", "INV-1", "2024-02-10", "open", None, None),
        ("C1", None, "2024-02-12", "resolved", "2024-03-01", "Resolution: credit note issued"),
        ("C2", "INV-3", "2024-02-15", "rejected", "2024-02-20", "Resolution: rejected"),
    ]
    assert before[0]["amount"] == 40 and before[0]["department"] == "logistics"

    # dated: dunning skips a disputed invoice from its opened_on until its resolved_on
    add_dunning_config(books, config_id=7)

    def dunned(day: date) -> list[str]:
        return sorted(due_stages(books, day)["document_number"])
    assert dunned(date(2024, 2, 9)) == ["INV-1"]                    # before any dispute (INV-2 not yet late)
    assert dunned(date(2024, 2, 11)) == ["INV-2"]                   # INV-1 disputed from 02-10
    assert dunned(date(2024, 2, 16)) == []                          # C1's whole account from 02-12; INV-3 from 02-15
    assert dunned(date(2024, 3, 1)) == ["INV-2", "INV-3"]           # both resolved by 03-01 (INV-1 paid 02-20)
    assert open_invoices(books, "C1", date(2024, 2, 11)).set_index("document_number")["disputed"].to_dict() == {
        "INV-1": True, "INV-2": False}
    waiting = worklist(books, date(2024, 2, 17))  # each dispute waits with its department until its answer is due
    assert "dispute_waiting" not in set(waiting["reason"])
    later = worklist(books, date(2024, 2, 21))  # C1's logistics dispute (10 days) is overdue; C2's was rejected 02-20
    assert set(later[later["reason"] == "dispute_waiting"]["customer_id"]) == {"C1"}

    audits = books.scalar("SELECT COUNT(*) FROM audit_log")
    again = run_import(books, path, Mapping(dataset="disputes"), SYSTEM)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 3)
    assert rows(books, table) == before
    assert books.scalar("SELECT COUNT(*) FROM audit_log") == audits + 1

    resolved = DISPUTES.replace("C1,INV-1,2024-02-10,40,Damaged goods,logistics,,",
                                "C1,INV-1,2024-02-10,40,Damaged goods,logistics,2024-02-18,credit note")
    update = run_import(books, write(tmp_path, "d2.csv", resolved), Mapping(dataset="disputes"), SYSTEM)
    assert (update.inserted, update.updated, update.unchanged) == (0, 1, 2)
    first = rows(books, table)[0]
    assert (first["activity_id"], first["status"], day(first["resolved_at"])) == (
        before[0]["activity_id"], "resolved", "2024-02-18")
    [line] = rows(books, "SELECT entity_id, old_values, new_values FROM audit_log WHERE action = 'import_update' "
                         "AND entity = 'dispute'")
    assert line["entity_id"] == f"{before[0]['activity_id']}/C1"
    assert (json.loads(line["old_values"])["status"], json.loads(line["new_values"])["status"]) == ("open", "resolved")


# -- dunning history -----------------------------------------------------------------------------------
HISTORY = """document_number,configuration,stage_order,stage_name,channel,run_date,outcome
INV-1,Old policy,1,Reminder,email,2024-02-07,sent
INV-2,Old policy,1,Reminder,email,2024-02-14,sent
INV-3,Old policy,1,Reminder,Email,2024-02-18,done
INV-2,Old policy,2,Final,letter,2024-03-09,failed
INV-2,Old policy,2,Final,letter,2024-03-11,sent
INV-3,Standard,1,Friendly reminder,email,2024-02-20,sent
INV-1,Old policy,0,Reminder,email,2024-02-07,sent
INV-1,Old policy,x,Reminder,email,2024-02-07,sent
INV-1,Old policy,3,Call,pigeon,2024-03-01,sent
INV-1,Old policy,2,Final,letter,2024-03-02,lost
NOPE,Old policy,1,Reminder,email,2024-03-01,sent
INV-1,Old policy,1,Reminder,email,2024-01-01,sent
INV-3,Standard,4,Court,letter,2024-03-01,sent
INV-3,Old policy,2,Final,letter,2024-03-20,sent
INV-3,Old policy,2,Final,letter,2024-03-20,sent
INV-1,Old policy,5,Odd,email,2024-03-01,sent
INV-2,Old policy,5,Odder,email,2024-03-01,sent
"""


def test_dunning_history_every_rule_then_no_op_then_update_in_place(books: Store, tmp_path: Path) -> None:
    add_dunning_config(books, config_id=7)  # an active policy named "Standard", stages 1-3
    path = write(tmp_path, "history.csv", HISTORY)
    result = run_import(books, path, Mapping(dataset="dunning-history"), SYSTEM)
    assert (result.status, result.inserted, result.rejected) == ("ok", 6, 11)
    assert errors(result) == [
        (7, "stage_order", "0", "stage order must be a whole number from 1"),
        (8, "stage_order", "x", "unparseable number"),
        (9, "channel", "pigeon", "unknown channel (one of email, letter, call, sms, escalation)"),
        (10, "outcome", "lost", "unknown outcome (one of sent, failed, skipped, done)"),
        (11, "document_number", "NOPE", "unknown invoice"),
        (12, "run_date", "2024-01-01", "run date before the invoice date"),
        (13, "stage_order", "4", "stage not in the active configuration Standard (an import never changes a policy)"),
        (14, "run_date", "2024-03-20", "duplicate stage run (document, configuration, stage, date) in the file"),
        (15, "run_date", "2024-03-20", "duplicate stage run (document, configuration, stage, date) in the file"),
        (16, "stage_name", "Odd", "the same stage is named or channelled two ways in the file"),
        (17, "stage_name", "Odder", "the same stage is named or channelled two ways in the file"),
    ]
    # the history's configuration is created inactive; its stages from the file (offset: median days past due)
    assert rows(books, "SELECT config_id, name, active FROM dunning_configs ORDER BY config_id") == [
        {"config_id": 1, "name": "Old policy", "active": False}, {"config_id": 7, "name": "Standard", "active": True}]
    assert rows(books, "SELECT stage_no, name, channel, day_offset, template, mode FROM dunning_stages "
                       "WHERE config_id = 1 ORDER BY stage_no") == [
        {"stage_no": 1, "name": "Reminder", "channel": "email", "day_offset": 4, "template": None, "mode": "manual"},
        {"stage_no": 2, "name": "Final", "channel": "letter", "day_offset": 30, "template": None, "mode": "manual"}]
    assert books.scalar("SELECT COUNT(*) FROM dunning_stages WHERE config_id = 7") == 3  # the policy unchanged
    runs = ("SELECT r.run_id, e.document_number, r.customer_id, r.config_id, r.stage_no, r.run_date, r.outcome "
            "FROM dunning_runs r JOIN ledger_entries e ON e.entry_id = r.entry_id ORDER BY r.run_id")
    before = rows(books, runs)
    assert [(r["document_number"], r["customer_id"], r["config_id"], r["stage_no"], day(r["run_date"]),
             r["outcome"]) for r in before] == [
        ("INV-1", "C1", 1, 1, "2024-02-07", "sent"), ("INV-2", "C1", 1, 1, "2024-02-14", "sent"),
        ("INV-3", "C2", 1, 1, "2024-02-18", "done"), ("INV-2", "C1", 1, 2, "2024-03-09", "failed"),
        ("INV-2", "C1", 1, 2, "2024-03-11", "sent"), ("INV-3", "C2", 7, 1, "2024-02-20", "sent")]
    # dunning effectiveness covers the imported past: stage 1 reached by 3 invoices (600 open), INV-1
    # paid in full 13 days after its reminder; stage 2 by INV-2 on 03-11 (the failed run does not count)
    kpi = dunning_effectiveness(books, date(2024, 1, 1), date(2024, 3, 31))
    old = kpi[kpi["config_id"] == 1].set_index("stage_no")
    assert old.loc[1, "invoices"] == 3 and old.loc[1, "amount"] == 600 and old.loc[1, "recovered"] == 100
    assert old.loc[1, "median_days_to_pay"] == 13
    assert old.loc[2, "invoices"] == 1 and old.loc[2, "amount"] == 200 and old.loc[2, "recovered"] == 0
    reached = rows(books, "SELECT e.document_number, s.stage_no, s.run_date, s.paid_14d FROM dunning_stage_results s "
                          "JOIN ledger_entries e ON e.entry_id = s.entry_id WHERE s.config_id = 1 ORDER BY 1, 2")
    assert [(r["document_number"], r["stage_no"], day(r["run_date"]), float(r["paid_14d"])) for r in reached] == [
        ("INV-1", 1, "2024-02-07", 100.0), ("INV-2", 1, "2024-02-14", 0.0), ("INV-2", 2, "2024-03-11", 0.0),
        ("INV-3", 1, "2024-02-18", 0.0)]

    audits = books.scalar("SELECT COUNT(*) FROM audit_log")
    again = run_import(books, path, Mapping(dataset="dunning-history"), SYSTEM)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 6)
    assert rows(books, runs) == before
    assert books.scalar("SELECT COUNT(*) FROM audit_log") == audits + 1
    assert books.scalar("SELECT COUNT(*) FROM dunning_configs") == 2

    changed = HISTORY.replace("INV-2,Old policy,2,Final,letter,2024-03-09,failed",
                              "INV-2,Old policy,2,Final,letter,2024-03-09,sent")
    update = run_import(books, write(tmp_path, "h2.csv", changed), Mapping(dataset="dunning-history"), SYSTEM)
    assert (update.inserted, update.updated, update.unchanged) == (0, 1, 5)
    assert rows(books, runs)[3] == {**before[3], "outcome": "sent"}
    [line] = rows(books, "SELECT entity_id, old_values, new_values FROM audit_log WHERE action = 'import_update' "
                         "AND entity = 'dunning_run'")
    assert line["entity_id"] == f"{before[3]['run_id']}/INV-2"
    assert (line["old_values"], line["new_values"]) == ('{"outcome":"failed"}', '{"outcome":"sent"}')
    # the stage result follows the earlier run that now counts
    assert str(books.scalar("SELECT s.run_date FROM dunning_stage_results s JOIN ledger_entries e "
                            "ON e.entry_id = s.entry_id WHERE e.document_number = 'INV-2' AND s.stage_no = 2")) \
        .startswith("2024-03-09")


def test_adopting_an_imported_configuration_makes_it_the_policy_of_its_customers(books: Store,
                                                                                   tmp_path: Path) -> None:
    run_import(books, write(tmp_path, "h.csv", HISTORY.split("INV-3,Standard")[0]), Mapping(dataset="dunning-history"),
               SYSTEM)
    assert due_stages(books, date(2024, 3, 20)).empty  # history is not a policy
    with pytest.raises(PermissionDenied):
        adopt_configuration(books, ANA, "Old policy")
    with pytest.raises(DunningConfigError, match="no dunning configuration named 'Nope'"):
        adopt_configuration(books, SYSTEM, "Nope")
    analyst = Actor("al.analyst", "analyst")
    assert adopt_configuration(books, analyst, "Old policy") == {"config_id": 1, "activated": True, "customers": 2}
    assert adopt_configuration(books, analyst, "Old policy") == {"config_id": 1, "activated": False, "customers": 0}
    assert rows(books, "SELECT customer_id, dunning_config_id FROM customers ORDER BY 1") == [
        {"customer_id": "C1", "dunning_config_id": 1}, {"customer_id": "C2", "dunning_config_id": 1}]
    assert rows(books, "SELECT actor, action, entity_id FROM audit_log WHERE action IN "
                       "('dunning_config.adopt', 'customer.dunning_config') ORDER BY audit_id") == [
        {"actor": "al.analyst", "action": "dunning_config.adopt", "entity_id": "1"},
        {"actor": "al.analyst", "action": "customer.dunning_config", "entity_id": "C1"},
        {"actor": "al.analyst", "action": "customer.dunning_config", "entity_id": "C2"}]
    # as of 03-20: INV-2 ran stage 2 on 03-11 (nothing above); INV-3 (36 days past due) reached stage 2 (30)
    due = due_stages(books, date(2024, 3, 20))
    assert due[["document_number", "stage_no", "stage_name"]].values.tolist() == [["INV-3", 2, "Final"]]


def test_team_datasets_are_offered_by_the_command_line(tmp_path: Path) -> None:
    from analytics.cli.main import build_parser
    from analytics.ingest.mapping import DATASETS, FIELDS

    assert {"contacts", "disputes", "dunning-history"} <= set(DATASETS)
    args = build_parser().parse_args(["import", "dunning-history", "x.csv"])
    assert args.dataset == "dunning-history"
    assert FIELDS["contacts"][0] == ("customer_id",)
    pd.testing.assert_index_equal(pd.Index(FIELDS["disputes"][0]), pd.Index(["customer_id", "opened_on"]))
