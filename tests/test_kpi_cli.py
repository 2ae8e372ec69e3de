"""`ardesk report ...`: the same numbers as the engine, as a table, CSV or JSON."""

from __future__ import annotations

import json

import pytest

from analytics.cli.main import main
from analytics.store.connection import Store
from tests.ledger_builder import LedgerBuilder
from tests.test_kpi_aging import ledger  # noqa: F401 - fixture


def _run(capsys: pytest.CaptureFixture[str], store: Store, *argv: str) -> str:
    code = main(["--db", store.url, *argv])
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out


def test_report_aging_json_and_csv(store: Store, ledger: LedgerBuilder, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    rows = json.loads(_run(capsys, store, "report", "aging", "--as-of", "2024-06-30", "--by", "customer",
                           "--format", "json"))
    assert [(r["customer_id"], r["Total"], r["Unapplied"], r["Net balance"]) for r in rows] == [
        ("A", 2700.0, -200.0, 2500.0), ("B", 1210.0, 0.0, 1210.0)]
    assert list(rows[0]) == ["customer_id", "customer_name", "Current", "1-30", "31-60", "61-90", "91-120", "120+",
                             "Total", "Unapplied", "Net balance"]
    csv = _run(capsys, store, "report", "aging", "--as-of", "2024-06-30", "--currency", "EUR", "--basis", "invoice",
               "--format", "csv")
    assert csv.splitlines() == ["0-30,31-60,61-90,91-120,120+,Total,Unapplied,Net balance",
                                "550.0,660.0,0.0,0.0,0.0,1210.0,0.0,1210.0"]


def test_report_series_default_to_last_posting_date(store: Store, ledger: LedgerBuilder,  # noqa: F811
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    rows = json.loads(_run(capsys, store, "report", "dso", "--format", "json"))
    assert len(rows) == 12 and rows[-1]["month_end"].startswith("2024-07-05")  # last posting: PAY3
    table = _run(capsys, store, "report", "kpis", "--as-of", "2024-06-30", "--collector", "ann")
    assert table.splitlines()[0].split()[:3] == ["period", "as_of", "period_start"]
    for report in ("bad-debt", "roll-rates", "dunning", "collectors"):
        assert _run(capsys, store, "report", report, "--start", "2024-01-01", "--end", "2024-06-30")


def test_report_refuses_bad_input(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--db", store.url, "report", "aging"]) == 2
    assert "ledger is empty" in capsys.readouterr().err
    assert main(["--db", store.url, "report", "dso", "--start", "2024-05-01", "--end", "2024-04-01"]) == 2
    assert "is after --end" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["report", "aging", "--as-of", "30/06/2024"])


def test_report_help_lists_every_report(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["report", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    for report in ("aging", "dso", "kpis", "bad-debt", "roll-rates", "dunning", "collectors"):
        assert report in out
    assert "% over 90" in out and "bad debt %," in out
