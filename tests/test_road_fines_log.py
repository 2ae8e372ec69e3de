"""The whole public road-fines log end to end (slow): `ardesk demo --dataset road-fines` imports it into
a fresh DuckDB store once; the store is checked against figures read from the XES with a few
independent lines (no converter code), and every dashboard renders on it (AppTest). The converter's
rules on a hand-made log: test_road_fines.py.
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import xml.etree.ElementTree as ET
import zipfile
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from analytics.cli.main import main
from analytics.kpis.aging import aging_buckets
from analytics.kpis.bad_debt import bad_debt_monthly
from analytics.kpis.dso import dso_monthly
from analytics.kpis.dunning_effectiveness import dunning_effectiveness
from analytics.migrations import connect
from analytics.settings import ROOT
from tests.conftest import signed_in_app
from tests.test_road_fines import _figures

REAL_LOG = ROOT.parent / "shared" / "data" / "real" / "Road_Traffic_Fine_Management_Process.xes.zip"


def _independent_figures(path: Path) -> dict[str, object]:
    """Fines, payments and each case's owed and paid amounts, read from the XES without the converter."""
    fines: dict[str, Decimal] = {}
    owed: dict[str, Decimal] = {}
    paid: dict[str, Decimal] = {}
    credit_sales: dict[str, Decimal] = {}
    with zipfile.ZipFile(path) as archive, archive.open("Road_Traffic_Fine_Management_Process.xes") as xes:
        for _, trace in ET.iterparse(xes):
            if trace.tag != "trace":
                continue
            case = next(c.get("value") for c in trace if c.tag == "string")
            for event in trace.iter("event"):
                attrs = {a.get("key"): a.get("value") for a in event}
                name = attrs["concept:name"]
                if name == "Create Fine":
                    fines[case] = Decimal(attrs["amount"])
                    owed[case] = owed.get(case, Decimal(0)) + Decimal(attrs["amount"])
                    month = attrs["time:timestamp"][:7]
                    credit_sales[month] = credit_sales.get(month, Decimal(0)) + Decimal(attrs["amount"])
                elif name == "Send Fine":
                    owed[case] = owed.get(case, Decimal(0)) + Decimal(attrs["expense"])
                elif name == "Add penalty":
                    owed[case] += max(Decimal(attrs["amount"]) - fines[case], Decimal(0))
                elif name == "Payment":
                    paid[case] = paid.get(case, Decimal(0)) + Decimal(attrs["paymentAmount"])
            trace.clear()
    return {"fines": fines, "owed": owed, "paid": paid, "credit_sales": credit_sales}


@pytest.fixture(scope="module")
def road_fines_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The whole public log imported by `ardesk demo --dataset road-fines` into a fresh DuckDB store, and its output."""
    if not REAL_LOG.exists():
        pytest.skip("the public log is not in ../shared/data/real/")
    db = tmp_path_factory.mktemp("roadfines") / "roadfines.duckdb"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["--db", str(db), "demo", "--dataset", "road-fines"]) == 0
    return db, out.getvalue()


@pytest.mark.slow
def test_the_real_log_imports_and_every_report_computes_on_it(road_fines_db: tuple[Path, str]) -> None:
    db, out = road_fines_db
    assert "Read 561,470 events of 150,370 cases" in out
    assert re.search(r"[\d.]+ s in all", out), out  # the time is printed (measured in bench/, never asserted)
    log = _independent_figures(REAL_LOG)
    fines, owed, paid = log["fines"], log["owed"], log["paid"]
    zero = {c for c, a in fines.items() if a == 0}
    assert (len(fines), len(zero)) == (150_370, 36)

    store = connect(str(db))
    try:
        counts = dict(_figures(store, "SELECT entry_type, COUNT(*) FROM ledger_entries GROUP BY 1"))
        assert counts["invoice"] == len(fines) - len(zero)  # every Create Fine but the 36 of 0.00
        assert store.scalar("SELECT SUM(amount) FROM ledger_entries WHERE entry_type = 'invoice'") \
            == sum(fines.values())  # 6,723,851.64, to the cent
        assert -store.scalar("SELECT SUM(amount) FROM ledger_entries WHERE entry_type = 'payment'") \
            == sum(paid.values())
        assert store.scalar("SELECT COUNT(*) FROM quarantine q JOIN import_runs r USING (run_id) "
                            "WHERE r.dataset = 'invoices' AND q.reason = 'invoice amount is zero or negative'") == 36

        # open and unapplied as of the log's last day: each case's owed less paid, per case
        last = date(2013, 6, 18)
        assert store.scalar("SELECT MAX(posting_date) FROM ledger_entries") == last
        kept = [c for c in fines if c not in zero]
        open_ar = sum(max(owed[c] - paid.get(c, Decimal(0)), Decimal(0)) for c in kept)
        unapplied = sum(max(paid.get(c, Decimal(0)) - owed[c], Decimal(0)) for c in kept) \
            + sum(paid.get(c, Decimal(0)) for c in zero)
        aging = aging_buckets(store, last).iloc[0]
        assert aging["Total"] == pytest.approx(float(open_ar), abs=0.005)
        assert aging["Unapplied"] == pytest.approx(-float(unapplied), abs=0.005)

        dso = dso_monthly(store, date(2008, 1, 1), date(2008, 12, 31)).set_index("month_end")
        assert len(dso) == 12 and dso["dso_standard"].notna().all()
        for month in ("2008-01", "2008-08"):  # credit sales: the fines posted in the month, not the penalties
            end = next(d for d in dso.index if d.strftime("%Y-%m") == month)
            assert dso.loc[end, "credit_sales"] == pytest.approx(float(log["credit_sales"][month]), abs=0.005)
        bad = bad_debt_monthly(store, date(2008, 1, 1), date(2008, 12, 31))
        assert len(bad) == 12 and (bad["write_offs"] == 0).all()  # the log writes nothing off

        stages = dunning_effectiveness(store, date(2000, 1, 1), last).set_index("stage_no")
        assert list(stages.index) == [1, 2, 3] and (stages["invoices"] > 1000).all()
        assert list(stages["stage_name"]) == ["Fine sent", "Fine notified", "Credit collection"]
        assert stages.loc[1, "recovered"] > 0
    finally:
        store.close()


@pytest.mark.slow
def test_the_dashboards_render_on_the_road_fines(road_fines_db: tuple[Path, str], app_env, tmp_path: Path) -> None:
    """Each dashboard in turn in one signed-in session, on one copy of the store (the dashboards only read)."""
    from analytics.access.roles import PAGES

    copy = tmp_path / "roadfines.duckdb"
    shutil.copyfile(road_fines_db[0], copy)
    app_env(copy)
    at = signed_in_app("cfo")
    at.run()
    assert not at.exception, at.exception
    for page in ("overview", "aging", "dso", "bad_debt", "dunning"):
        at.switch_page(f"pages/{page}.py").run()
        assert not at.exception, (page, at.exception)
        assert at.title[0].value == next(p.title for p in PAGES if p.key == page)  # that page, drawn
