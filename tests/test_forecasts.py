"""Payment-date forecasts: the baseline by hand and by pandas, no leakage, a reproducible backtest,
the role check, the cash forecast's weeks, and the CLI."""

from __future__ import annotations

import json
import shutil
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from analytics.access.roles import SYSTEM, Actor, PermissionDenied
from analytics.cli.main import main
from analytics.forecasts.backtest import ForecastError, run_backtest
from analytics.forecasts.cash_forecast import cash_forecast
from analytics.forecasts.payment_dates import MIN_HISTORY, predict_open_items, snapshot, train_as_of
from analytics.forecasts.stored_backtests import NO_BACKTEST, latest_backtest, run_and_store
from analytics.ingest.inbox import folders_for, ingest_pending, pending_jobs
from analytics.ledger.settlement import refresh_settled_on
from analytics.migrations import connect
from analytics.store.connection import Store, StoreLocked
from tests.ledger_builder import LedgerBuilder

D = date(2025, 6, 1)


def hand_ledger(path: Path) -> Path:
    """Days to settle before D: A 20, 40, 30 (median 30); B 40 (thin: segment S's median of
    20, 30, 40, 40 = 35); E 10 (thin, segment T has one paid invoice: the ledger's median of
    10, 20, 30, 40, 40 = 30); C none (its due date). A5 is settled on D itself, A4 after D: neither
    is history at D. A promise of B (pending, 2025-06-20) and one broken promise of A."""
    store = connect(str(path))
    b = LedgerBuilder(store)
    b.customer("A", segment="S", collector="cara").customer("B", segment="S", collector="abe")
    b.customer("C", segment="T").customer("E", segment="T")
    for doc, posted, paid in (("A1", "2025-01-01", "2025-01-21"), ("A2", "2025-02-01", "2025-03-13"),
                              ("A3", "2025-03-01", "2025-03-31"), ("A5", "2025-04-01", "2025-06-01"),
                              ("A4", "2025-05-20", "2025-06-10")):
        b.invoice("A", doc, posted=posted, due=date.fromisoformat(posted) + timedelta(days=30), amount=100)
        b.payment("A", f"P{doc}", posted=paid, amount=100, applies={doc: 100})
    b.invoice("B", "B1", posted="2025-01-10", due="2025-02-09", amount=200)
    b.payment("B", "PB1", posted="2025-02-19", amount=200, applies={"B1": 200})
    b.invoice("B", "B2", posted="2025-05-25", due="2025-06-24", amount=300)
    b.invoice("C", "C1", posted="2025-05-15", due="2025-06-14", amount=50)
    b.invoice("E", "E1", posted="2025-01-01", due="2025-01-31", amount=70)
    b.payment("E", "PE1", posted="2025-01-11", amount=70, applies={"E1": 70})
    b.invoice("E", "E2", posted="2025-05-28", due="2025-06-27", amount=80)
    b.activity("B", "promise", at="2025-05-30", author="abe", amount=300, due="2025-06-20", status="pending")
    b.activity("A", "promise", at="2025-03-01", author="cara", amount=100, due="2025-03-05", status="broken")
    b.activity("A", "promise", at="2025-02-01", author="cara", amount=100, due="2025-02-05", status="kept")
    store.close()
    return path


@pytest.fixture(scope="module")
def hand_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return hand_ledger(tmp_path_factory.mktemp("forecast") / "hand.duckdb")


def test_baseline_by_hand_and_by_pandas(hand_file: Path) -> None:
    store = connect(str(hand_file))
    with store.engine.connect() as conn:
        frame = snapshot(conn, D)
    got = dict(zip(frame["document_number"], frame["baseline_date"].dt.date, strict=True))
    assert got == {"A4": date(2025, 6, 19),  # 2025-05-20 + A's median 30
                   "B2": date(2025, 6, 29),  # 2025-05-25 + segment S's median 35
                   "C1": date(2025, 6, 14),  # no history: the due date
                   "E2": date(2025, 6, 27)}  # 2025-05-28 + the ledger's median 30

    # independently, in pandas over the raw tables
    entries = store.read("SELECT e.entry_id, e.customer_id, e.document_number, e.entry_type, e.posting_date, "
                         "e.due_date, e.settled_on, c.segment FROM ledger_entries e "
                         "JOIN customers c ON c.customer_id = e.customer_id")
    for col in ("posting_date", "due_date", "settled_on"):
        entries[col] = pd.to_datetime(entries[col])
    invoices = entries[entries["entry_type"] == "invoice"]
    paid = invoices[invoices["settled_on"] < pd.Timestamp(D)].assign(
        days=lambda f: (f["settled_on"] - f["posting_date"]).dt.days)
    by_customer, by_segment = paid.groupby("customer_id")["days"], paid.groupby("segment")["days"]
    expected = {}
    for row in invoices[(invoices["posting_date"] <= pd.Timestamp(D))
                        & ~(invoices["settled_on"] <= pd.Timestamp(D))].itertuples():
        n = by_customer.count().get(row.customer_id, 0)
        if n >= MIN_HISTORY:
            days = by_customer.median()[row.customer_id]
        elif n == 0:
            days = (row.due_date - row.posting_date).days
        elif by_segment.count().get(row.segment, 0) >= MIN_HISTORY:
            days = by_segment.median()[row.segment]
        else:
            days = paid["days"].median()
        expected[row.document_number] = max(row.posting_date + pd.Timedelta(days=round(days)),
                                             pd.Timestamp(D) + pd.Timedelta(days=1)).date()
    assert got == expected
    # features are as of D: A's broken promise counts, A4's own later payment does not
    a4 = frame.set_index("document_number").loc["A4"]
    assert (a4["paid_invoices"], a4["broken_promises"], a4["median_days_to_settle"]) == (3, 1, 30)
    store.close()


@pytest.fixture(scope="module")
def demo_copy(demo_store_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("forecast_demo") / "demo.duckdb"
    shutil.copy(demo_store_file, path)
    return path


def _predictions(store: Store, as_of: date) -> pd.DataFrame:
    model = train_as_of(store, as_of)
    assert model is not None and model.trained_rows > 500
    frame = predict_open_items(store, as_of, model=model)
    return frame[["entry_id", "baseline_date", "model_date", *model_features()]].reset_index(drop=True)


def model_features() -> list[str]:
    from analytics.forecasts.payment_dates import FEATURES
    return FEATURES


def test_shifting_every_fact_after_the_prediction_date_changes_no_prediction(demo_copy: Path,
                                                                             tmp_path: Path) -> None:
    path = tmp_path / "shifted.duckdb"
    shutil.copy(demo_copy, path)
    store = connect(str(path))
    as_of = date(2026, 5, 15)
    before = _predictions(store, as_of)
    settled_before = store.read("SELECT entry_id, settled_on FROM ledger_entries ORDER BY entry_id")
    with store.write() as conn:
        p = {"d": as_of}
        conn.execute(sa.text("UPDATE ledger_entries SET posting_date = posting_date + 45, "
                             "due_date = due_date + 45 WHERE posting_date > :d"), p)
        conn.execute(sa.text("UPDATE allocations SET allocation_date = allocation_date + 45 "
                             "WHERE allocation_date > :d"), p)
        conn.execute(sa.text("UPDATE dunning_runs SET run_date = run_date + 45 WHERE run_date > :d"), p)
        conn.execute(sa.text("UPDATE activities SET occurred_at = occurred_at + INTERVAL 45 DAY "
                             "WHERE CAST(occurred_at AS DATE) > :d"), p)
        conn.execute(sa.text("UPDATE activities SET resolved_at = resolved_at + INTERVAL 45 DAY "
                             "WHERE CAST(resolved_at AS DATE) > :d"), p)
        conn.execute(sa.text("UPDATE activities SET due_date = due_date + 45 WHERE due_date > :d"), p)
        conn.execute(sa.text("DELETE FROM fx_rates WHERE rate_date > :d"), p)
        refresh_settled_on(conn)
    settled_after = store.read("SELECT entry_id, settled_on FROM ledger_entries ORDER BY entry_id")
    assert not settled_after.equals(settled_before)  # the shift did move what happened after D
    after = _predictions(store, as_of)
    pd.testing.assert_frame_equal(before, after)
    store.close()


def test_backtest_is_reproducible_and_role_checked(demo_copy: Path) -> None:
    store = connect(str(demo_copy))
    first = run_backtest(store, SYSTEM, months=1)
    second = run_backtest(store, SYSTEM, months=1)
    assert first.summary == second.summary and first.weekly_ratios == second.weekly_ratios
    pd.testing.assert_frame_equal(first.periods, second.periods)
    assert first.summary["periods"] == 1 and set(first.periods["method"]) == {"baseline", "model"}
    s = first.summary
    assert s["difference_low"] <= s["mae_difference"] <= s["difference_high"]
    assert s["use_model"] == (s["difference_low"] > 0)
    assert s["method"] == ("model" if s["use_model"] else "baseline")
    # the pooled MAE is the paid-weighted mean of the periods' MAEs
    base = first.periods[first.periods["method"] == "baseline"]
    weighted = (base["mae_days"] * base["paid_targets"]).sum() / base["paid_targets"].sum()
    assert s["baseline_mae_days"] == pytest.approx(weighted, abs=1e-4)
    with pytest.raises(PermissionDenied):
        run_backtest(store, Actor("cara", "collector"), months=1)
    store.close()


def test_cash_forecast_weeks_promises_and_horizon(hand_file: Path) -> None:
    store = connect(str(hand_file))
    forecast = cash_forecast(store, SYSTEM, D, weeks=3)
    weekly, items = forecast["weekly"], forecast["items"]
    # one kept and one broken promise before D: rate 1/2; B's whole-account 300 by 2025-06-20 (day 19:
    # week 3) brings 150 and takes half of B2
    assert forecast["kept_rate"] == 0.5
    assert weekly["promised"].tolist() == [0.0, 0.0, 150.0]
    # C1 50 on 06-14 (day 13: week 2), A4 100 on 06-19 (day 18: week 3); E2 80 on 06-27 and B2's
    # other 150 on 06-29 fall after the 3 weeks
    assert weekly["predicted"].tolist() == [0.0, 50.0, 100.0]
    assert forecast["beyond_horizon"] == 230.0
    assert weekly["expected"].sum() + forecast["beyond_horizon"] == items["amount"].sum() == 530.0
    assert set(items.loc[items["week"] == 3, "document_number"]) == {"A4", "B2"}
    with pytest.raises(PermissionDenied):
        cash_forecast(store, Actor("gina", "sales"), D)
    store.close()


def test_cli_backtest_json_and_a_bad_train_end(hand_file: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    db = shutil.copy(hand_file, tmp_path / "hand.duckdb")
    assert main(["--db", str(db), "forecast", "cash", "--weeks", "3", "--as-of", "2025-06-01",
                 "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["backtest_id"] is None  # none stored yet: the baseline
    assert main(["--db", str(db), "forecast", "backtest", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["backtest_id"] == 1 and out["summary"]["method"] == "baseline"
    assert "too little history" in out["summary"]["reason"]
    assert {p["as_of"] for p in out["periods"]} == {"2025-03-01", "2025-04-01", "2025-05-01"}
    assert main(["--db", str(db), "forecast", "backtest", "--train-end", "2030-01-01"]) == 2
    assert "must fall inside the ledger" in capsys.readouterr().err
    assert main(["--db", str(db), "forecast", "backtest", "--as", "nobody"]) == 2
    assert main(["--db", str(db), "forecast", "cash", "--weeks", "3", "--as-of", "2025-06-01",
                 "--format", "json"]) == 0
    cash = json.loads(capsys.readouterr().out)
    assert [w["expected"] for w in cash["weeks"]] == [0.0, 50.0, 250.0]
    assert cash["backtest_id"] == 1 and cash["backtest_run_at"]  # the stored one


def test_a_stored_backtest_is_read_by_the_forecast_audited_and_role_checked(hand_file: Path, tmp_path: Path) -> None:
    store = connect(str(shutil.copy(hand_file, tmp_path / "hand.duckdb")))
    before = cash_forecast(store, SYSTEM, D, weeks=3)
    assert before["backtest"].backtest_id is None and before["backtest"].summary["reason"] == NO_BACKTEST
    assert before["weekly"]["low"].isna().all()  # no backtest: no interval
    with pytest.raises(PermissionDenied):
        run_and_store(store, Actor("vic", "viewer"))  # viewers see forecasts, may not run backtests
    assert store.scalar("SELECT COUNT(*) FROM forecast_backtests") == 0
    done = run_and_store(store, Actor("ann", "analyst"))
    evaluation = run_and_store(store, SYSTEM, train_end=date(2025, 5, 1))  # stored, never picked
    assert (done.backtest_id, evaluation.backtest_id) == (1, 2)
    latest = latest_backtest(store, SYSTEM)
    assert latest.backtest_id == 1 and latest.summary == {k: (v.isoformat() if isinstance(v, date) else v)
                                                          for k, v in done.summary.items()}
    assert latest.ledger_last == date(2025, 6, 10) and latest.weekly_ratios == done.weekly_ratios
    pd.testing.assert_frame_equal(latest.periods, done.periods, check_dtype=False)
    # three periods give fewer than MIN_INTERVAL_WEEKS weekly ratios: no interval
    assert latest.summary["interval_low_ratio"] is None
    audit = store.read("SELECT actor, action, entity_id FROM audit_log WHERE action = 'forecast.backtest' "
                       "ORDER BY audit_id")
    assert audit.values.tolist() == [["ann", "forecast.backtest", "1"], ["system", "forecast.backtest", "2"]]
    after = cash_forecast(store, SYSTEM, D, weeks=3)
    assert after["backtest"].backtest_id == 1
    pd.testing.assert_frame_equal(after["weekly"], before["weekly"])  # the baseline both times
    with pytest.raises(PermissionDenied):
        latest_backtest(store, Actor("cara", "collector"))
    store.close()


def test_while_the_app_owns_the_store_a_backtest_is_queued_and_run_by_the_app(
        hand_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    import analytics.cli.forecast as cli

    db = shutil.copy(hand_file, tmp_path / "owned.duckdb")
    monkeypatch.delenv("ARDESK_INBOX", raising=False)
    monkeypatch.delenv("ARDESK_INBOX_KEY", raising=False)

    def locked(_db=None):  # noqa: ANN001, ANN202 - as when the running app holds the DuckDB file
        raise StoreLocked(str(db), 4242)

    monkeypatch.setattr(cli, "connect", locked)
    assert main(["--db", str(db), "forecast", "backtest", "--months", "2"]) == 0
    assert "queued" in capsys.readouterr().out
    folders = folders_for(str(db))
    assert len(pending_jobs(folders.inbox)) == 1
    store = connect(str(db))  # the app's process
    try:
        ingest_pending(store, folders)
        assert store.read("SELECT backtest_id, run_by, months FROM forecast_backtests").values.tolist() == [
            [1, "system", 2]]
    finally:
        store.close()
    result = json.loads(next(folders.done.glob("*.result.json")).read_text())
    assert result["backtest_id"] == 1 and result["method"] == "baseline"


def test_an_empty_ledger_cannot_be_backtested(tmp_path: Path) -> None:
    store = connect(str(tmp_path / "empty.duckdb"))
    with pytest.raises(ForecastError, match="empty"):
        run_backtest(store, SYSTEM)
    store.close()
