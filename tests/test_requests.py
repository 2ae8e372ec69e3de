"""Requests between departments: routing, status transitions, permission refusals, counts by hand
(on DuckDB and PostgreSQL), the customer's timeline, the weekly to-do, and `ardesk request`."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from analytics.access.roles import SYSTEM, Actor, PermissionDenied
from analytics.access.users import add_user, set_active
from analytics.cli.main import main
from analytics.collections.customer_360 import timeline
from analytics.collections.followups import add_task, complete_task, promise_to_pay
from analytics.collections.my_week import week_items, week_of
from analytics.collections.requests import (
    RequestError,
    assign_request,
    claim_request,
    list_requests,
    raise_request,
    request_counts,
    set_request_status,
)
from analytics.migrations import connect
from analytics.store.connection import Store
from tests.collector_data import add_customer, setup_people

D = date(2026, 3, 2)  # a Monday
ANA = Actor("ana.collector", "collector", "Ana Collector")
SAM = Actor("sam.sales", "sales", "Sam Sales")
LEO = Actor("leo.logistics", "department", "Leo Logistics")
LENA = Actor("lena.legal", "department", "Lena Legal")
BEA = Actor("bea.billing", "department", "Bea Billing")
VAL = Actor("val.viewer", "viewer", "Val Viewer")


def _people(store: Store) -> Store:
    setup_people(store)
    for actor, team in ((LEO, "logistics"), (LENA, "legal"), (BEA, "billing")):
        add_user(store, SYSTEM, actor.username, actor.name, "department", team=team)
    add_user(store, SYSTEM, "ola.logistics", "Ola Logistics", "department", team="logistics")
    add_customer(store, "C1", name="Acme")
    add_customer(store, "C2", name="Beta", collector="ben.collector")
    return store


@pytest.fixture
def desk(store: Store) -> Store:
    return _people(store)


def _audits(store: Store, action: str) -> int:
    return int(store.scalar("SELECT COUNT(*) FROM audit_log WHERE action = :a", {"a": action}))


def _days(dates) -> list[str]:  # noqa: ANN001 - a Series of dates
    return pd.to_datetime(dates).dt.strftime("%Y-%m-%d").tolist()


def _row(store: Store, request_id: int) -> dict:
    frame = store.read("SELECT * FROM requests WHERE request_id = :r", {"r": request_id}).astype(object)
    return frame.where(frame.notna(), None).to_dict("records")[0]


def test_each_type_goes_to_its_department_unless_one_is_named(desk: Store) -> None:
    routed = {kind: raise_request(desk, SAM, "C1", kind, f"about {kind}", today=D)
              for kind in ("address_change", "po_number", "credit_note", "dispute_investigation",
                           "credit_limit_change")}
    queues = desk.read("SELECT request_id, department, due_date, status, owner, raised_by FROM requests "
                       "ORDER BY request_id")
    assert dict(zip(routed, queues.department, strict=True)) == {
        "address_change": "logistics", "po_number": "sales", "credit_note": "billing",
        "dispute_investigation": "legal", "credit_limit_change": "credit"}
    # due: D + 5 days, a dispute investigation D + 10; open, nobody's yet, raised by the actor
    assert _days(queues.due_date) == ["2026-03-07"] * 3 + ["2026-03-12", "2026-03-07"]
    assert set(queues.status) == {"open"} and queues.owner.isna().all() and set(queues.raised_by) == {"sam.sales"}
    # a dispute investigation that needs logistics, not legal: the department named wins
    other = raise_request(desk, LENA, "C1", "dispute_investigation", "Proof of delivery", department="logistics",
                          due_date=D + timedelta(days=1), today=D)
    assert _row(desk, other)["department"] == "logistics"
    assert f"{_row(desk, other)['due_date']:%Y-%m-%d}" == "2026-03-03"
    with pytest.raises(RequestError, match="department: required for a request of type 'other'"):
        raise_request(desk, SAM, "C1", "other", "Something", today=D)
    assert _row(desk, raise_request(desk, SAM, "C1", "other", "Name change", department="legal",
                                    today=D))["department"] == "legal"
    assert _audits(desk, "request.raise") == 7


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"request_type": "refund"}, "type 'refund': choose one of address_change"),
    ({"department": "marketing"}, "department 'marketing': choose one of sales, logistics"),
    ({"subject": "  "}, "subject: required"),
    ({"customer_id": "NOPE"}, "customer_id 'NOPE': there is no such customer"),
    ({"due_date": D - timedelta(days=1)}, "due date 2026-03-01: must be between 2026-03-02 and 2027-03-03"),
    ({"owner": "lena.legal"}, "owner 'lena.legal': does not work the logistics queue"),
    ({"owner": "ghost"}, "owner 'ghost': there is no such user"),
])
def test_bad_input_is_refused_naming_the_field_and_writes_nothing(desk: Store, kwargs: dict, message: str) -> None:
    args = {"customer_id": "C1", "request_type": "address_change", "subject": "New address"} | kwargs
    with pytest.raises(RequestError, match=message):
        raise_request(desk, SAM, args.pop("customer_id"), args.pop("request_type"), args.pop("subject"),
                      today=D, **args)
    assert desk.scalar("SELECT COUNT(*) FROM requests") == 0
    assert _audits(desk, "request.raise") == 0


def test_raising_twice_with_the_same_key_makes_one_request(desk: Store) -> None:
    first = raise_request(desk, SAM, "C1", "po_number", "PO for INV-7", today=D, idempotency_key="k-1")
    again = raise_request(desk, SAM, "C1", "po_number", "PO for INV-7", today=D, idempotency_key="k-1")
    assert first == again
    assert desk.scalar("SELECT COUNT(*) FROM requests") == 1 and _audits(desk, "request.raise") == 1
    second = raise_request(desk, SAM, "C1", "po_number", "PO for INV-8", today=D, idempotency_key="k-2")
    assert second == first + 1  # ids from the sequence


def test_who_may_raise_and_who_may_work(desk: Store) -> None:
    for actor in (VAL, Actor("ann", "analyst"), Actor("cy", "cfo")):
        with pytest.raises(PermissionDenied, match="may not raise requests"):
            raise_request(desk, actor, "C1", "address_change", "New address", today=D)
    assert desk.scalar("SELECT COUNT(*) FROM requests") == 0
    request = raise_request(desk, ANA, "C1", "address_change", "New address", today=D)  # a collector raises
    with pytest.raises(PermissionDenied, match="may not work requests"):
        set_request_status(desk, ANA, request, "done")  # but works no queue
    with pytest.raises(PermissionDenied, match="lena.legal works the legal queue; request 1 is in logistics's"):
        set_request_status(desk, LENA, request, "done")
    with pytest.raises(PermissionDenied, match="sam.sales works the sales queue"):
        claim_request(desk, SAM, request)
    with pytest.raises(PermissionDenied, match="lena.legal works the legal queue"):
        assign_request(desk, LENA, request, "leo.logistics")
    assert _row(desk, request)["status"] == "open" and _audits(desk, "request.status") == 0
    po = raise_request(desk, LEO, "C1", "po_number", "PO number for the framework order", today=D)
    assert set_request_status(desk, SAM, po, "done") is True  # a sales rep works the sales queue
    assert set_request_status(desk, SYSTEM, request, "done") is True  # admins work every queue


def test_status_transitions(desk: Store) -> None:
    at = datetime(2026, 3, 2, 9, 0)
    request = raise_request(desk, SAM, "C1", "credit_limit_change", "Raise to 80k", today=D, now=at)
    add_user(desk, SYSTEM, "cora.credit", "Cora Credit", "department", team="credit")
    cora = Actor("cora.credit", "department")
    assert claim_request(desk, cora, request, now=at) is True  # open -> in progress, hers
    assert (_row(desk, request)["status"], _row(desk, request)["owner"]) == ("in_progress", "cora.credit")
    assert claim_request(desk, cora, request) is False  # already hers and in progress: nothing written
    assert _audits(desk, "request.claim") == 1
    assert set_request_status(desk, cora, request, "in_progress") is False
    with pytest.raises(RequestError, match="note: required"):
        set_request_status(desk, cora, request, "rejected")
    with pytest.raises(RequestError, match="status 'closed': choose one of open, in_progress"):
        set_request_status(desk, cora, request, "closed")
    with pytest.raises(RequestError, match=r"cannot go from in_progress to open \(allowed: approved, rejected, done\)"):
        set_request_status(desk, cora, request, "open")
    closed_at = datetime(2026, 3, 4, 15, 30)
    assert set_request_status(desk, cora, request, "approved", "Approved up to 80k", now=closed_at) is True
    row = _row(desk, request)
    assert (row["status"], row["decided_by"], row["closed_at"], row["resolution_note"]) == (
        "approved", "cora.credit", closed_at, "Approved up to 80k")
    with pytest.raises(RequestError, match=r"cannot go from approved to done \(it is closed\)"):
        set_request_status(desk, cora, request, "done")
    with pytest.raises(RequestError, match="a closed request keeps its owner"):
        assign_request(desk, SYSTEM, request, "cora.credit")
    assert set_request_status(desk, cora, request, "approved") is False  # the same final status again
    assert _audits(desk, "request.status") == 1

    # open straight to done; and a request handed to a colleague of the same queue
    other = raise_request(desk, SAM, "C2", "address_change", "New ship-to", today=D)
    assert assign_request(desk, LEO, other, "ola.logistics") is True
    assert assign_request(desk, LEO, other, "ola.logistics") is False
    with pytest.raises(RequestError, match="owner 'bea.billing': does not work the logistics queue"):
        assign_request(desk, LEO, other, "bea.billing")
    set_active(desk, SYSTEM, "leo.logistics", False)
    with pytest.raises(RequestError, match="owner 'leo.logistics': the account is disabled"):
        assign_request(desk, SYSTEM, other, "leo.logistics")
    assert set_request_status(desk, Actor("ola.logistics", "department"), other, "done") is True
    assert _row(desk, other)["owner"] == "ola.logistics" and _row(desk, other)["status"] == "done"


def _counted(store: Store) -> None:
    """Seven requests with hand-picked dates (see the expected counts below)."""
    def raised(actor: Actor, kind: str, day: date, hour: int = 10, **kw: object) -> int:
        return raise_request(store, actor, "C1", kind, f"{kind} on {day}", today=day,
                             now=datetime.combine(day, datetime.min.time()).replace(hour=hour), **kw)

    r1 = raised(SAM, "address_change", date(2026, 3, 2))  # due 7 Mar; done 5 Mar: 3 days
    set_request_status(store, LEO, r1, "done", now=datetime(2026, 3, 5, 9, 0))
    raised(SAM, "address_change", date(2026, 3, 3))  # due 8 Mar, open: overdue on 10 Mar
    r3 = raised(SAM, "address_change", date(2026, 3, 4), due_date=date(2026, 3, 20))  # in progress, not due
    claim_request(store, LEO, r3)
    for closed_on, status, hour in ((datetime(2026, 3, 2, 11), "rejected", 10),  # 1 day
                                    (datetime(2026, 3, 1, 17), "approved", 8),  # 0 days (same day)
                                    (datetime(2026, 3, 11, 9), "done", 10)):  # 10 days
        request = raised(ANA, "credit_note", date(2026, 3, 1), hour=hour)
        set_request_status(store, BEA, request, status, "checked", now=closed_on)
    raised(ANA, "dispute_investigation", date(2026, 3, 5), due_date=date(2026, 3, 9))  # open, overdue


def _counts_by_group(frame) -> dict:  # noqa: ANN001 - a DataFrame
    frame = frame.astype(object).where(frame.notna(), None)
    return {(r["department"], r["request_type"]): (int(r["open"]), int(r["overdue"]), int(r["closed"]),
                                                   None if r["median_days_to_close"] is None
                                                   else float(r["median_days_to_close"]))
            for r in frame.to_dict("records")}


def test_counts_by_hand_on_each_engine(store_on_each_engine: Store) -> None:
    store = _people(store_on_each_engine)
    _counted(store)
    counts = _counts_by_group(request_counts(store, date(2026, 3, 10)))
    assert counts == {  # (open, overdue, closed, median days to close)
        ("billing", "credit_note"): (0, 0, 3, 1.0),  # closed after 1, 0, 10 days
        ("billing", "all"): (0, 0, 3, 1.0),
        ("legal", "dispute_investigation"): (1, 1, 0, None),
        ("legal", "all"): (1, 1, 0, None),
        ("logistics", "address_change"): (2, 1, 1, 3.0),
        ("logistics", "all"): (2, 1, 1, 3.0),
        ("all", "all"): (3, 2, 4, 2.0),  # median of 0, 1, 3, 10
    }
    # a day earlier the address change due 8 Mar was not overdue yet; the dispute due 9 Mar neither
    assert _counts_by_group(request_counts(store, date(2026, 3, 8)))[("all", "all")] == (3, 0, 4, 2.0)
    queue = list_requests(store, department="logistics")
    assert queue.subject.tolist() == ["address_change on 2026-03-03", "address_change on 2026-03-04"]
    assert list_requests(store, department="logistics", open_only=False).status.tolist() == [
        "open", "in_progress", "done"]
    assert list_requests(store, person="leo.logistics").status.tolist() == ["in_progress"]  # owned by him


def test_the_timeline_shows_every_request(desk: Store) -> None:
    request = raise_request(desk, SAM, "C1", "address_change", "New ship-to: 4 Quai", details="From 1 April",
                            today=D)
    set_request_status(desk, LEO, request, "done", "Changed in the ERP")
    raise_request(desk, SAM, "C2", "po_number", "PO for C2", today=D)
    events = timeline(desk, "C1")
    assert events[["kind", "author", "department", "subject", "body", "outcome", "status", "reason"]].to_dict(
        "records") == [{"kind": "request", "author": "sam.sales", "department": "logistics",
                        "subject": f"Request #{request}: New ship-to: 4 Quai", "body": "From 1 April",
                        "outcome": "address change", "status": "done", "reason": "Changed in the ERP"}]


def test_the_week_holds_what_is_due_any_day_of_it_and_assignees_complete_their_own(desk: Store) -> None:
    wednesday = date(2026, 3, 11)
    monday, sunday = week_of(wednesday)
    assert (monday, sunday) == (date(2026, 3, 9), date(2026, 3, 15))
    friday_task = add_task(desk, ANA, "C1", "Call the buyer back", date(2026, 3, 13), "sam.sales", today=monday)
    add_task(desk, ANA, "C1", "Next week's", date(2026, 3, 16), "sam.sales", today=monday)
    old_task = add_task(desk, ANA, "C1", "Before the week", date(2026, 3, 6), "sam.sales", today=date(2026, 3, 2))
    promise = promise_to_pay(desk, ANA, "C1", 250, date(2026, 3, 12), today=monday)
    mine = raise_request(desk, SAM, "C1", "address_change", "Owned by Leo", owner="leo.logistics",
                         due_date=date(2026, 3, 12), today=monday)
    queue = raise_request(desk, SAM, "C2", "address_change", "Nobody's yet", due_date=date(2026, 3, 15), today=monday)
    raise_request(desk, SAM, "C2", "address_change", "Ola's", owner="ola.logistics",
                  due_date=date(2026, 3, 14), today=monday)

    def week(username: str | None, earlier: bool = False) -> list[tuple]:
        items = week_items(desk, wednesday, username, earlier=earlier)
        return list(zip(_days(items.due_date), items.kind, items.item_id.astype(int), items.overdue, strict=True))

    assert week("sam.sales") == [("2026-03-13", "task", friday_task, False)]  # due Friday, shown on Wednesday
    assert week("sam.sales", earlier=True) == [("2026-03-06", "task", old_task, True),
                                               ("2026-03-13", "task", friday_task, False)]
    assert week("leo.logistics") == [("2026-03-12", "request", mine, False), ("2026-03-15", "request", queue, False)]
    assert week("ana.collector") == [("2026-03-12", "promise", promise, False)]  # on her customer C1
    assert week("ben.collector") == []
    assert len(week(None)) == 5  # the team: the task, the three requests and the promise of this week
    # the assignee completes their own task though a sales rep; another sales rep may not
    with pytest.raises(PermissionDenied, match="may not act on customers"):
        complete_task(desk, Actor("sue.sales", "sales"), friday_task)
    assert complete_task(desk, SAM, friday_task) is True
    assert complete_task(desk, SAM, friday_task) is False
    assert week("sam.sales") == []
    assert set_request_status(desk, LEO, mine, "done") is True
    assert [kind for _, kind, *_ in week("leo.logistics")] == ["request"]


def _cli(db: Path, *args: str) -> int:
    return main(["--db", str(db), "request", *args])


def test_the_command_line_raises_lists_and_closes_as_a_named_user(tmp_path: Path, capsys) -> None:
    db = tmp_path / "cli.duckdb"
    store = _people(connect(str(db)))
    set_active(store, SYSTEM, "ola.logistics", False)
    store.close()
    assert _cli(db, "add", "C1", "--type", "address_change", "--subject", "New address", "--as", "sam.sales",
                "--as-of", "2026-03-02", "--key", "crm-42") == 0
    assert capsys.readouterr().out == "Request 1: Address change for C1, in the logistics queue, due 2026-03-07.\n"
    assert _cli(db, "add", "C1", "--type", "address_change", "--subject", "New address", "--as", "sam.sales",
                "--as-of", "2026-03-02", "--key", "crm-42") == 0  # the same key: the same request
    assert capsys.readouterr().out.startswith("Request 1:")
    refusals = [
        (("add", "C1", "--type", "po_number", "--subject", "x", "--as", "val.viewer"),
         "val.viewer (Viewer) may not raise requests."),
        (("add", "C1", "--type", "po_number", "--subject", "x", "--as", "ghost"),
         "--as ghost: 'ghost' is not a user of this store; `ardesk users list` shows who there is."),
        (("close", "1", "--as", "ola.logistics"), "--as ola.logistics: The account of ola.logistics is disabled; an admin can enable it (`ardesk users enable USER`)."),
        (("close", "1", "--as", "ana.collector"), "ana.collector (Collector) may not work requests."),
        (("close", "1", "--as", "lena.legal"), "lena.legal works the legal queue; request 1 is in logistics's."),
        (("add", "C9", "--type", "po_number", "--subject", "x", "--as", "sam.sales"),
         "customer_id 'C9': there is no such customer."),
        (("close", "1", "--status", "rejected", "--as", "leo.logistics"), "note: required."),
    ]
    for args, message in refusals:
        assert _cli(db, *args) == 2, args
        assert capsys.readouterr().err == f"ardesk: {message}\n"
    assert _cli(db, "list", "--department", "logistics", "--format", "json") == 0
    assert '"status":"open"' in capsys.readouterr().out.replace(" ", "")
    assert _cli(db, "close", "1", "--as", "leo.logistics", "--note", "Done in the ERP") == 0
    assert capsys.readouterr().out == "Request 1: done.\n"
    assert _cli(db, "close", "1", "--as", "leo.logistics") == 0
    assert capsys.readouterr().out == "Request 1 was done already; nothing changed.\n"
    assert _cli(db, "list", "--department", "logistics") == 0
    assert capsys.readouterr().out == "(no rows)\n"
    assert _cli(db, "counts", "--as-of", "2026-03-10", "--format", "csv") == 0
    assert capsys.readouterr().out.splitlines()[-1] == "all,all,0,0,1,0.0"  # closed the day it was raised
    store = connect(str(db))
    try:
        assert store.read("SELECT actor, action FROM audit_log WHERE entity = 'request' ORDER BY audit_id").to_dict(
            "records") == [{"actor": "sam.sales", "action": "request.raise"},
                           {"actor": "leo.logistics", "action": "request.status"}]
    finally:
        store.close()


def test_a_request_changes_the_data_version_but_not_the_ledger_figures(desk: Store) -> None:
    from analytics.store.data_version import data_version, figures_version

    before = (data_version(desk), figures_version(desk))
    request = raise_request(desk, SAM, "C1", "po_number", "PO please", today=D)
    set_request_status(desk, SAM, request, "done")
    assert data_version(desk) > before[0]  # the Requests page recomputes
    assert figures_version(desk) == before[1]  # the ledger dashboards do not
