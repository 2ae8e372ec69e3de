"""Risk: the PAYDEX-style payment index by hand and against pandas over the demo, the score and its
contributions, the stored month (audited risk class, worsened bands) and the worklist's risk factor."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date

import numpy as np
import pandas as pd
import pytest

from analytics.access.roles import SYSTEM, Actor, PermissionDenied
from analytics.collections.worklist import worklist
from analytics.migrations import connect
from analytics.risk.payment_index import INDEX_KNOTS, index_of_days, payment_index
from analytics.risk.score import band_of, risk_scores
from analytics.risk.snapshots import risk_list, score_month
from analytics.store.connection import Store
from tests.ledger_builder import LedgerBuilder

AS_OF = date(2024, 6, 30)
ANALYST = Actor("ana.lyst", "analyst", "Ana Lyst")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """One store for the module (built once; only the last hand-made test writes to it)."""
    s = connect(str(tmp_path_factory.mktemp("risk") / "ardesk.duckdb"))
    yield s
    s.close()


@pytest.fixture(scope="module")
def risky(store: Store) -> LedgerBuilder:
    """H pays 1,000 10 days early, 100 on time, 200 10 days late, 700 30 days late; in June it owes 1,500
    (over its 1,000 limit), disputes 300 of it and broke a promise. F has only two paid invoices."""
    b = LedgerBuilder(store).customer("H").customer("F")
    for doc, due, paid, amount in [("I4", "2024-01-15", "2024-01-05", 1_000), ("I1", "2024-01-31", "2024-01-31", 100),
                                   ("I2", "2024-02-29", "2024-03-10", 200), ("I3", "2024-03-31", "2024-04-30", 700)]:
        b.invoice("H", doc, posted="2023-12-20", due=due, amount=amount)
        b.payment("H", f"P{doc}", posted=paid, amount=amount, applies={doc: amount})
    b.invoice("H", "I5", posted="2024-06-05", due="2024-06-25", amount=1_500)
    b.activity("H", "dispute", at="2024-06-10", author="ana", amount=300, status="open", document="I5")
    b.activity("H", "promise", at="2024-05-20", author="ana", amount=500, due="2024-06-01", status="broken")
    for doc, due, paid in [("F1", "2024-02-01", "2024-02-21"), ("F2", "2024-03-01", "2024-03-21")]:
        b.invoice("F", doc, posted="2024-01-02", due=due, amount=50)
        b.payment("F", f"P{doc}", posted=paid, amount=50, applies={doc: 50})
    with store.write() as conn:
        conn.exec_driver_sql("UPDATE customers SET credit_limit = 1000 WHERE customer_id = 'H'")
    return b


def test_index_mapping_is_the_stated_table() -> None:
    assert [index_of_days(d) for d, _ in INDEX_KNOTS] == [i for _, i in INDEX_KNOTS]
    assert (index_of_days(-45), index_of_days(10), index_of_days(26), index_of_days(400)) == (
        100.0, pytest.approx(80 - 10 * 10 / 15), 55.0, 0.0)


def test_payment_index_by_hand(store: Store, risky: LedgerBuilder) -> None:
    frame = payment_index(store, AS_OF).set_index("customer_id")
    h = frame.loc["H"]
    # (-10 x 1,000 + 0 x 100 + 10 x 200 + 30 x 700) / 2,000 = 6.5 days beyond terms -> 80 - 6.5 x 10 / 15
    assert (h.paid_invoices, h.days_beyond_terms, h.payment_index) == (4, 6.5, round(80 - 6.5 * 10 / 15, 2))
    # 90 days before (1 April): I4, I1, I2 paid: -8,000 / 1,300 days -> 80 + 8,000 / 1,300 = 86.15
    assert h.index_trend == round((80 - 6.5 * 10 / 15) - (80 + 8_000 / 1_300), 2)
    f = frame.loc["F"]
    assert f.paid_invoices == 2 and f.days_beyond_terms == 20.0 and pd.isna(f.payment_index)


def test_score_contributions_band_and_limit_by_hand(store: Store, risky: LedgerBuilder) -> None:
    h = risk_scores(store, AS_OF).set_index("customer_id").loc["H"]
    index = 80 - 6.5 * 10 / 15
    assert (h.utilisation_pct, bool(h.over_limit), h.dispute_share_pct, h.broken_promises) == (100.0, True, 20.0, 1)
    assert (h.payment_points, h.utilisation_points, h.dispute_points, h.promise_points) == (
        round(0.6 * (100 - index), 2), 15.0, 3.0, 2.5)
    assert h.score == round(100 - 0.6 * (100 - index) - 15 - 3 - 2.5, 2) == 64.9
    assert h.band == band_of(64.9) == "moderate"
    # 2,000 (December 2023) + 1,500 (June) invoiced in the 12 months to D, / 12 months x 1.5 (moderate)
    assert h.suggested_limit == round(3_500 / 12 * 1.5, 2) == 437.5
    f = risk_scores(store, AS_OF).set_index("customer_id").loc["F"]
    # no index: 50 assumed (30 points); no credit limit: no utilisation and no points for it
    assert (f.payment_points, f.utilisation_points, f.score, f.band) == (30.0, 0.0, 70.0, "moderate")
    assert pd.isna(f.utilisation_pct) and not f.over_limit
    assert [band_of(s) for s in (0, 20.4, 20.5, 29, 30, 50, 51, 70, 71, 100)] == [
        "severe", "severe", "high", "high", "elevated", "elevated", "moderate", "moderate", "low", "low"]


def test_score_month_stores_sets_risk_class_audits_and_finds_worsened(store: Store, risky: LedgerBuilder) -> None:
    with pytest.raises(PermissionDenied):
        score_month(store, Actor("vic", "viewer"), AS_OF)
    result = score_month(store, ANALYST, AS_OF)
    assert result["previous_month_scored"] and result["scored"] == 2
    # In May H owed nothing, disputed nothing and had broken no promise yet: 100 - 14.6 = 85.4, low.
    listed = risk_list(store, AS_OF).set_index("customer_id")
    assert (listed.loc["H", "previous_band"], listed.loc["H", "band"]) == ("low", "moderate")
    assert listed.loc["H", "previous_score"] == 85.4
    assert risk_list(store, AS_OF, worsened_only=True)["customer_id"].tolist() == ["H"]
    assert store.read("SELECT risk_class FROM customers WHERE customer_id = 'H'")["risk_class"].tolist() == ["moderate"]
    audits = store.read("SELECT actor, action, entity_id, old_values, new_values FROM audit_log "
                        "WHERE action IN ('set_risk_class', 'score_risk') ORDER BY audit_id")
    assert audits["action"].tolist() == ["set_risk_class", "set_risk_class", "score_risk"]
    assert set(audits["actor"]) == {"ana.lyst"}
    h_line = audits[audits["entity_id"] == "H"].iloc[0]
    assert (json.loads(h_line["old_values"]), json.loads(h_line["new_values"])) == (
        {"risk_class": None}, {"risk_class": "moderate"})
    # Scoring again changes no class: no new class audit line, the month is replaced, not doubled.
    again = score_month(store, SYSTEM, AS_OF)
    assert again["risk_class_changes"] == 0 and not again["previous_month_scored"]
    assert store.scalar("SELECT COUNT(*) FROM risk_snapshots") == 4
    # The worklist ranks H's items higher by its stored score: 1 + 0.25 x (100 - 64.9) / 100.
    items = worklist(store, AS_OF)
    h_items = items[items["customer_id"] == "H"]
    assert not h_items.empty and set(h_items["risk_factor"]) == {round(1 + 0.25 * (100 - 64.9) / 100, 3)}
    assert set(items.loc[items["customer_id"] != "H", "risk_factor"]) <= {1.0}
    product = (h_items["amount_at_risk"] * h_items["days_factor"] * h_items["history_factor"]
               * h_items["risk_factor"]).round(0)
    assert (product == h_items["priority"]).all()
    # Before any scoring (a date before the stored months) the factor is 1.
    assert set(worklist(store, date(2024, 5, 15))["risk_factor"]) <= {1.0}


def test_payment_index_matches_pandas_over_the_demo(demo_store: Store) -> None:
    as_of = date(2026, 9, 15)
    engine = payment_index(demo_store, as_of).set_index("customer_id")
    entries = demo_store.read("SELECT customer_id, entry_type, amount, due_date, settled_on FROM ledger_entries")
    entries["settled_on"] = pd.to_datetime(entries["settled_on"])
    entries["due_date"] = pd.to_datetime(entries["due_date"])
    entries["amount"] = entries["amount"].astype(float)

    def index_at(day: date) -> pd.DataFrame:
        since = pd.Timestamp(day) - pd.DateOffset(months=24)
        paid = entries[(entries.entry_type == "invoice") & (entries.amount > 0) & entries.due_date.notna()
                       & (entries.settled_on <= pd.Timestamp(day)) & (entries.settled_on > since)].copy()
        paid["weighted"] = paid["amount"] * (paid["settled_on"] - paid["due_date"]).dt.days
        per = paid.groupby("customer_id").agg(n=("amount", "size"), w=("weighted", "sum"), a=("amount", "sum"))
        per["days"] = per["w"] / per["a"]
        knots = np.array(INDEX_KNOTS, dtype=float)
        per["index"] = np.where(per["n"] >= 3, np.interp(per["days"], knots[:, 0], knots[:, 1]), np.nan)
        return per

    now, before = index_at(as_of), index_at(date(2026, 6, 17))  # 90 days before
    assert len(now) > 50
    shared = now.index
    assert (engine.loc[shared, "paid_invoices"] == now["n"]).all()
    assert np.allclose(engine.loc[shared, "days_beyond_terms"], now["days"].round(2), atol=0.006)
    assert np.allclose(engine.loc[shared, "payment_index"].astype(float), now["index"], atol=0.006, equal_nan=True)
    trend = now["index"] - before["index"].reindex(shared)
    assert np.allclose(engine.loc[shared, "index_trend"].astype(float), trend, atol=0.011, equal_nan=True)
    assert (engine.drop(index=shared)["paid_invoices"] == 0).all()


def test_cli_scores_lists_and_reports(tmp_path, capsys) -> None:  # noqa: ANN001 - pytest's tmp_path and capsys
    from analytics.cli.main import main
    from analytics.kpis.provision import provision_at
    from tests.dashboard_fixtures import small_ledger

    path = small_ledger(tmp_path / "small.duckdb")
    db = ["--db", str(path)]
    assert main([*db, "risk", "list", "--as-of", "2026-03-31"]) == 2
    assert "has not been scored: run `ardesk risk score --as-of 2026-03-31` first" in capsys.readouterr().err
    assert main([*db, "risk", "score", "--as", "nobody"]) == 2
    assert "'nobody' is not a user of this store" in capsys.readouterr().err
    assert main([*db, "risk", "score"]) == 0  # as of the last posting date, 2026-03-31
    assert "Scored 4 customers as of 2026-03-31 for the month ending 2026-03-31" in capsys.readouterr().out
    assert main([*db, "risk", "list", "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert sorted(r["customer_id"] for r in listed) == ["A", "B", "C", "D"]
    assert main([*db, "risk", "list", "--worsened", "--format", "csv"]) == 0
    assert capsys.readouterr().out.startswith("customer_id,customer_name,band,previous_band")
    assert main([*db, "report", "provision", "--as-of", "2026-03-31", "--factor", "1-30=1.5", "--format", "json"]) == 0
    store = connect(str(path))
    expected = provision_at(store, date(2026, 3, 31), factors={"1-30": 1.5})["provision"].tolist()
    store.close()
    assert [r["provision"] for r in json.loads(capsys.readouterr().out)] == expected
    assert main([*db, "report", "provision", "--factor", "1-30=lots"]) == 2
    assert "--factor '1-30=lots': write it as BUCKET=FACTOR" in capsys.readouterr().err
    assert main([*db, "report", "what-if", "--dso-cut", "3", "--roll-improvement", "150"]) == 2
    assert "percentage from 0 to 100" in capsys.readouterr().err


def test_while_the_app_owns_the_store_risk_score_is_queued_and_run_once_by_the_app(
        tmp_path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # noqa: ANN001 - pytest's tmp_path and capsys
    import shutil

    import analytics.cli.risk as cli
    from analytics.access.users import add_user
    from analytics.cli.main import main
    from analytics.ingest.inbox import Folders, ingest_pending, pending_jobs
    from analytics.store.connection import StoreLocked
    from tests.dashboard_fixtures import small_ledger

    path = small_ledger(tmp_path / "owned.duckdb")
    store = connect(str(path))
    add_user(store, SYSTEM, "ana.lyst", "Ana Lyst", "analyst")
    add_user(store, SYSTEM, "val.viewer", "Val Viewer", "viewer")
    store.close()
    monkeypatch.delenv("ARDESK_INBOX", raising=False)
    monkeypatch.delenv("ARDESK_INBOX_KEY", raising=False)

    def locked(_db=None):  # noqa: ANN001, ANN202 - as when the running app holds the DuckDB file
        raise StoreLocked(str(path), 4242)

    monkeypatch.setattr(cli, "connect", locked)
    folders = Folders(tmp_path / "inbox", tmp_path / "done", tmp_path / "failed", tmp_path / "quarantine")
    db = ["--db", str(path)]
    assert main([*db, "risk", "score", "--as", "ana.lyst"]) == 0  # no date: the app takes the ledger's last day
    out = capsys.readouterr().out
    assert "owns the store" in out and "queued as job" in out
    assert main([*db, "risk", "score", "--as", "ana.lyst"]) == 0
    assert main([*db, "risk", "score", "--as-of", "2026-03-31", "--as", "val.viewer"]) == 0  # refused when run
    jobs = {json.loads(p.read_text())["actor"]["username"]: p for p in pending_jobs(folders.inbox)}
    assert sorted(jobs) == ["ana.lyst", "val.viewer"]  # the identical waiting job was reused
    queued = json.loads(jobs["ana.lyst"].read_text())
    assert (queued["kind"], queued["action"], queued["arguments"]) == ("risk", "score", {"as_of": None})
    assert queued["signature"].startswith("hmac-sha256:")
    copy = shutil.copy(jobs["ana.lyst"], tmp_path / "copy.job.json")

    store = connect(str(path))  # the app's process
    try:
        ingest_pending(store, folders)
        shutil.copy(copy, jobs["ana.lyst"])  # a crash between commit and moving the job: it runs again
        ingest_pending(store, folders)
        # February and March, 4 customers each, stored once; each class set and audited once, as ana.lyst
        stored = store.read("SELECT month_end, COUNT(*) AS n, MIN(scored_by) AS by FROM risk_snapshots "
                            "GROUP BY month_end ORDER BY month_end")
        stored["month_end"] = pd.to_datetime(stored["month_end"]).dt.date
        assert stored.values.tolist() == [[date(2026, 2, 28), 4, "ana.lyst"], [date(2026, 3, 31), 4, "ana.lyst"]]
        classes = store.read("SELECT customer_id, risk_class FROM customers ORDER BY customer_id")
        listed = risk_list(store, date(2026, 3, 31)).set_index("customer_id")["band"]
        assert classes.set_index("customer_id")["risk_class"].to_dict() == listed.to_dict()
        audits = store.read("SELECT actor, entity_id FROM audit_log WHERE action = 'set_risk_class'")
        assert sorted(audits["entity_id"]) == ["A", "B", "C", "D"] and set(audits["actor"]) == {"ana.lyst"}
        assert store.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'score_risk'") == 2  # the job ran twice
    finally:
        store.close()
    result = json.loads((folders.done / jobs["ana.lyst"].name.replace(".job.json", ".result.json")).read_text())
    assert (result["action"], result["as_of"], result["month"], result["scored"]) == (
        "score", "2026-03-31", "2026-03-31", 4)
    refused = (folders.failed / f"{jobs['val.viewer'].name}.error.txt").read_text()
    assert "val.viewer (Viewer) may not score risk" in refused
