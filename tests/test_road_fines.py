"""`ardesk demo --dataset road-fines`: the converter's rules on a hand-made log.

The hand-made log (`TINY`) has one case per rule; every expected figure below is worked out by
hand from it. The whole public log, imported and shown on the dashboards: test_road_fines_log.py.
"""

from __future__ import annotations

import re
import zipfile
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from analytics.cli.demo import import_road_fines
from analytics.cli.main import main
from analytics.demo.road_fines import LogNotFound, convert, locate_log, read_events, read_events_text
from analytics.kpis.aging import aging_buckets
from analytics.kpis.dso import dso_monthly
from analytics.kpis.dunning_effectiveness import dunning_effectiveness
from analytics.store.connection import Store


def _event(name: str, day: str, **attrs: str) -> str:
    kinds = {"amount": "float", "expense": "float", "paymentAmount": "float", "article": "int", "points": "int"}
    body = "".join(f'<{kinds.get(k, "string")} key="{k}" value="{v}"/>' for k, v in attrs.items())
    return (f'<event><string key="concept:name" value="{name}"/>{body}'
            f'<date key="time:timestamp" value="{day}T00:00:00+01:00"/></event>')


def _trace(case: str, *events: str) -> str:
    return f'<trace><string key="concept:name" value="{case}"/>{"".join(events)}</trace>'


FINE = {"vehicleClass": "A", "article": "157", "points": "0", "dismissal": "NIL"}
TINY = ('<?xml version="1.0" encoding="UTF-8" ?><log xes.version="1.0">'
        '<string key="concept:name" value="a log-level string that is no case"/>' + "".join([
            # F1: sent (expense 11), notified, penalised (total 71.5), two payments, credit collection
            _trace("F1", _event("Create Fine", "2006-07-24", amount="35.0", **FINE),
                   _event("Send Fine", "2006-12-05", expense="11.0"),
                   _event("Insert Fine Notification", "2007-01-15"),
                   _event("Add penalty", "2007-03-16", amount="71.5"),
                   _event("Payment", "2007-04-01", paymentAmount="30.0"),
                   _event("Payment", "2007-05-02", paymentAmount="100.0"),
                   _event("Send for Credit Collection", "2009-03-30")),
            # F2: paid on the spot (50 for a 36 fine), then penalised anyway (total 74)
            _trace("F2", _event("Create Fine", "2007-03-09", amount="36.0", **FINE),
                   _event("Payment", "2007-03-09", paymentAmount="50.0"),
                   _event("Add penalty", "2007-06-01", amount="74.0")),
            # F3: a fine of zero, appealed all the same
            _trace("F3", _event("Create Fine", "2007-04-01", amount="0.0", **FINE),
                   _event("Insert Date Appeal to Prefecture", "2007-04-10")),
            # F4: expense 0; a prefecture appeal dismissed ('#'); then a judge (code G)
            _trace("F4", _event("Create Fine", "2007-05-01", amount="36.0", **FINE),
                   _event("Send Fine", "2007-08-01", expense="0.0"),
                   _event("Insert Date Appeal to Prefecture", "2007-09-01"),
                   _event("Send Appeal to Prefecture", "2007-09-20", dismissal="#"),
                   _event("Receive Result Appeal from Prefecture", "2007-10-10"),
                   _event("Notify Result Appeal to Offender", "2007-10-15"),
                   _event("Appeal to Judge", "2007-11-01", dismissal="G")),
            # F5: a prefecture appeal whose fine stands (NIL), resolved on the notice; F6: one with no result
            _trace("F5", _event("Create Fine", "2007-05-02", amount="38.0", **FINE),
                   _event("Insert Date Appeal to Prefecture", "2007-06-01"),
                   _event("Send Appeal to Prefecture", "2007-06-10", dismissal="NIL"),
                   _event("Notify Result Appeal to Offender", "2007-07-01")),
            _trace("F6", _event("Create Fine", "2007-05-03", amount="38.0", **FINE),
                   _event("Insert Date Appeal to Prefecture", "2007-06-02"),
                   _event("Appeal to Judge", "2007-06-02", dismissal="NIL")),
        ]) + "</log>")


@pytest.fixture(scope="module")
def tiny() -> dict[str, pd.DataFrame]:
    return convert(read_events_text(TINY))


def _rows(frame: pd.DataFrame, columns: list[str]) -> list[tuple]:
    return [tuple(r) for r in frame[columns].itertuples(index=False)]


def test_events_are_read_in_order_with_their_case_and_local_date() -> None:
    events = read_events_text(TINY)
    assert len(events) == 26
    assert list(events["case"].unique()) == ["F1", "F2", "F3", "F4", "F5", "F6"]
    first = events.iloc[0]
    assert (first["activity"], first["date"], first["amount"], first["vehicle_class"]) == \
        ("Create Fine", pd.Timestamp("2006-07-24"), 35.0, "A")


def test_a_case_is_a_customer_and_its_fine_an_invoice_due_60_days_after_notification(tiny) -> None:
    assert list(tiny) == ["customers", "invoices", "adjustments", "payments", "allocations", "dunning-history",
                          "disputes"]
    assert _rows(tiny["customers"], ["customer_id", "name", "vehicle_class"])[0] == ("F1", "Offender, fine F1", "A")
    assert _rows(tiny["invoices"], ["document_number", "posting_date", "due_date", "amount"]) == [
        ("F1", "2006-07-24", "2007-03-16", "35.00"),  # notified 2007-01-15 + 60 days
        ("F2", "2007-03-09", "2007-05-08", "36.00"),  # never sent: on the spot, 2007-03-09 + 60
        ("F3", "2007-04-01", "2007-05-31", "0.00"),   # passed on: the import rejects it
        ("F4", "2007-05-01", "2007-09-30", "36.00"),  # sent 2007-08-01 (no notification) + 60
        ("F5", "2007-05-02", "2007-07-01", "38.00"),
        ("F6", "2007-05-03", "2007-07-02", "38.00"),
    ]


def test_a_penalty_is_a_debit_adjustment_of_the_increase_and_postage_one_due_with_the_fine(tiny) -> None:
    adj = tiny["adjustments"].sort_values("document_number")
    assert _rows(adj, ["document_number", "posting_date", "due_date", "amount", "direction", "related_invoice"]) == [
        ("F1-EXP", "2006-12-05", "2007-03-16", "11.00", "debit", "F1"),
        ("F1-PEN", "2007-03-16", "2007-03-16", "36.50", "debit", "F1"),  # 71.50 - 35.00
        ("F2-PEN", "2007-06-01", "2007-06-01", "38.00", "debit", "F2"),  # 74.00 - 36.00
    ]  # F4's expense of 0.00 owes nothing


def test_payments_pay_the_fine_then_the_expense_then_the_penalty_oldest_first(tiny) -> None:
    assert _rows(tiny["payments"], ["document_number", "posting_date", "amount"]) == [
        ("F1-P1", "2007-04-01", "30.00"), ("F1-P2", "2007-05-02", "100.00"), ("F2-P1", "2007-03-09", "50.00")]
    assert _rows(tiny["allocations"], ["from_document", "to_document", "amount", "allocation_date"]) == [
        ("F1-P1", "F1", "30.00", "2007-04-01"),
        ("F1-P2", "F1", "5.00", "2007-05-02"),
        ("F1-P2", "F1-EXP", "11.00", "2007-05-02"),
        ("F1-P2", "F1-PEN", "36.50", "2007-05-02"),  # 47.50 of F1-P2 stays unapplied
        ("F2-P1", "F2", "36.00", "2007-03-09"),
        ("F2-P1", "F2-PEN", "14.00", "2007-06-01"),  # paid before the penalty: applied the day it is booked
    ]


def test_sending_notifying_and_credit_collection_are_three_stages_of_one_configuration(tiny) -> None:
    runs = tiny["dunning-history"]
    assert set(runs["configuration"]) == {"Road fines (imported)"}
    assert _rows(runs, ["document_number", "stage_order", "stage_name", "channel", "run_date"]) == [
        ("F1", "1", "Fine sent", "letter", "2006-12-05"),
        ("F1", "2", "Fine notified", "letter", "2007-01-15"),
        ("F1", "3", "Credit collection", "escalation", "2009-03-30"),
        ("F4", "1", "Fine sent", "letter", "2007-08-01"),
    ]


def test_appeals_are_dated_disputes_of_the_fine(tiny) -> None:
    assert _rows(tiny["disputes"], ["document_number", "department", "opened_on", "resolved_on", "resolution",
                                    "amount"]) == [
        ("F3", "Prefecture", "2007-04-10", "", "", "0.00"),  # passed on: the import rejects it
        ("F4", "Prefecture", "2007-09-01", "2007-10-10", "fine dismissed (code #)", "36.00"),
        ("F5", "Prefecture", "2007-06-01", "2007-07-01", "rejected", "38.00"),  # no result: the notice dates it
        ("F6", "Prefecture", "2007-06-02", "", "", "38.00"),  # still open in the log
        ("F4", "Judge", "2007-11-01", "", "", "36.00"),  # F6's judge appeal the same day is the same dispute
    ]
    assert tiny["disputes"]["reason"].iloc[4] == "Appeal to a judge (dismissal code G in the log)"


def test_the_log_is_looked_for_beside_the_checkout_and_a_missing_one_says_where_to_get_it(tmp_path: Path) -> None:
    (tmp_path / "shared" / "data" / "real").mkdir(parents=True)
    with pytest.raises(LogNotFound, match=r"doi:10\.4121/uuid:270fd440.*--file"):
        locate_log(None, tmp_path / "repo")
    log = tmp_path / "shared" / "data" / "real" / "Road_Traffic_Fine_Management_Process.xes.zip"
    log.write_bytes(b"")
    assert locate_log(None, tmp_path / "repo") == log
    with pytest.raises(LogNotFound, match="nowhere.xes"):
        locate_log(tmp_path / "nowhere.xes", tmp_path / "repo")
    assert main(["--db", str(tmp_path / "s.duckdb"), "demo", "--dataset", "road-fines",
                 "--file", str(tmp_path / "nowhere.xes")]) == 2


def _figures(store: Store, sql: str) -> list[tuple]:
    return [tuple(r) for r in store.read(sql).itertuples(index=False)]


def test_the_tiny_log_goes_through_the_ordinary_imports(tmp_path: Path, store: Store) -> None:
    log = tmp_path / "tiny.xes.zip"
    with zipfile.ZipFile(log, "w") as archive:
        archive.writestr("__MACOSX/._Road_Traffic_Fine_Management_Process.xes", "not xml")
        archive.writestr("Road_Traffic_Fine_Management_Process.xes", TINY)
    run = import_road_fines(store, log, say=lambda _line: None)
    assert [(r.dataset, r.rows_read, r.inserted, r.rejected) for r in run.results] == [
        ("customers", 6, 6, 0), ("invoices", 6, 5, 1), ("adjustments", 3, 3, 0), ("payments", 3, 3, 0),
        ("allocations", 6, 6, 0), ("dunning-history", 4, 4, 0), ("disputes", 5, 4, 1)]
    assert _figures(store, "SELECT r.dataset, q.reason FROM quarantine q JOIN import_runs r USING (run_id) "
                           "ORDER BY q.run_id") == [("invoices", "invoice amount is zero or negative"),
                                                    ("disputes", "dispute amount is zero or negative")]
    # the penalty is owed (positive), and each item's open amount is what the payments left
    open_items = _figures(store, """
        SELECT e.document_number, e.entry_type, e.amount, e.amount - COALESCE(SUM(a.amount), 0)
        FROM ledger_entries e LEFT JOIN allocations a ON a.to_entry_id = e.entry_id
        WHERE e.amount > 0 GROUP BY e.document_number, e.entry_type, e.amount ORDER BY 1""")
    assert [(d, t, float(a), float(o)) for d, t, a, o in open_items] == [
        ("F1", "invoice", 35.0, 0.0), ("F1-EXP", "adjustment", 11.0, 0.0), ("F1-PEN", "adjustment", 36.5, 0.0),
        ("F2", "invoice", 36.0, 0.0), ("F2-PEN", "adjustment", 38.0, 24.0),
        ("F4", "invoice", 36.0, 36.0), ("F5", "invoice", 38.0, 38.0), ("F6", "invoice", 38.0, 38.0)]
    aging = aging_buckets(store, date(2009, 12, 31)).iloc[0]
    assert (aging["Total"], aging["Unapplied"]) == (24.0 + 36 + 38 + 38, -47.5)
    stages = dunning_effectiveness(store, date(2006, 1, 1), date(2009, 12, 31))
    # F1 and F4 were sent, F1 notified; F1 went to credit collection already paid, so that run counts nowhere
    assert dict(zip(stages["stage_no"], stages["invoices"], strict=True)) == {1: 2, 2: 1}
    assert store.scalar("SELECT COUNT(*) FROM dunning_runs") == 4
    # each fine's vehicle class is its customer's segment, and class, article and points are attributes
    assert store.scalar("SELECT segment FROM customers WHERE customer_id = 'F1'") == "vehicle class A"
    assert _figures(store, "SELECT name, value FROM customer_attributes WHERE customer_id = 'F1' ORDER BY name") == [
        ("article", "157"), ("points", "0"), ("vehicle_class", "A")]
    # credit sales are the fines alone: March 2007 has F2 (36.00), not its penalty
    march = dso_monthly(store, date(2007, 3, 1), date(2007, 6, 30)).set_index("month_end")
    assert [float(march.loc[date.fromisoformat(m), "credit_sales"]) for m in ("2007-03-31", "2007-06-30")] == [36.0, 0.0]
    # the ordinary imports are idempotent: the same log again changes nothing
    again = import_road_fines(store, log, say=lambda _line: None)
    assert [(r.inserted, r.updated) for r in again.results] == [(0, 0)] * 7
    assert [r.unchanged for r in again.results] == [6, 5, 3, 3, 6, 4, 4]  # rejected again: F3 and its appeal


def test_the_command_imports_into_an_empty_store_only(tmp_path: Path, capsys) -> None:
    log = tmp_path / "tiny.xes"
    log.write_text(TINY, encoding="utf-8")
    db = str(tmp_path / "s.duckdb")
    assert main(["--db", db, "demo", "--dataset", "road-fines", "--file", str(log)]) == 0
    out = capsys.readouterr().out
    assert "Read 26 events of 6 cases" in out
    assert re.search(r"invoices\s+6\s+5\s+1\s", out)
    assert "1 row(s): invoice amount is zero or negative; column 'amount', field amount (rows 3)" in out
    assert main(["--db", db, "demo", "--dataset", "road-fines", "--file", str(log)]) == 2
    assert "already has data" in capsys.readouterr().err
    assert main(["--db", db, "demo", "--dataset", "road-fines", "--file", str(log), "--if-empty"]) == 0
    assert "already has data; demo not imported" in capsys.readouterr().out


def test_read_events_reads_a_plain_xes_file(tmp_path: Path) -> None:
    path = tmp_path / "log.xes"
    path.write_text(TINY, encoding="utf-8")
    assert len(read_events(path)) == 26
