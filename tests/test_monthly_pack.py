"""The monthly pack: its numbers are the engine's for the same filters; the PDF renders every page
(pdftoppm); the workbook has every table under human headers; who may have it; bad months. The
Overview's pack buttons: test_pages_overview.py."""

from __future__ import annotations

import shutil
import subprocess
from datetime import date
from io import BytesIO
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from analytics.access.roles import Actor, PermissionDenied
from analytics.cli.main import main
from analytics.kpis.aging import aging_buckets, aging_trend, bucket_labels
from analytics.kpis.bad_debt import bad_debt_monthly, roll_rates
from analytics.kpis.collector_kpis import collector_kpis
from analytics.kpis.columns import COLUMN_LABELS
from analytics.kpis.dso import dso_monthly
from analytics.kpis.dunning_effectiveness import dunning_effectiveness
from analytics.kpis.summary import kpi_summary, top_overdue_customers
from analytics.ledger.filters import Filters
from analytics.migrations import connect
from analytics.reports import pack_charts
from analytics.reports.monthly_pack import (
    SECTIONS,
    TILE_LABELS,
    TILES,
    Pack,
    PackError,
    closed_month,
    may_have_pack,
    monthly_pack,
    parse_month,
)
from analytics.reports.pack_files import pack_pdf, pack_xlsx
from analytics.store.connection import Store

CFO = Actor("carol", "cfo", "Carol CFO")
FILTERS = Filters(segment=("enterprise", "mid-market"))
MONTH = date(2026, 9, 1)
AS_OF = date(2026, 9, 30)


@pytest.fixture(scope="module")
def books(demo_store_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Store:
    path = tmp_path_factory.mktemp("pack") / "demo.duckdb"
    shutil.copy(demo_store_file, path)
    store = connect(str(path))
    yield store
    store.close()


@pytest.fixture(scope="module")
def pack(books: Store) -> Pack:
    return monthly_pack(books, CFO, MONTH, FILTERS)


@pytest.fixture(scope="module")
def pdf(pack: Pack) -> bytes:
    return pack_pdf(pack)


def test_every_table_is_the_engines_for_the_same_filters_and_dates(books: Store, pack: Pack) -> None:
    year = date(2025, 10, 1)  # the 12 months ending with September 2026
    expected = {
        "aging": aging_buckets(books, AS_OF, FILTERS),
        "aging_trend": aging_trend(books, year, AS_OF, FILTERS),
        "dso": dso_monthly(books, year, AS_OF, FILTERS),
        "bad_debt": bad_debt_monthly(books, year, AS_OF, FILTERS),
        "roll_rates": roll_rates(books, year, AS_OF, FILTERS),
        "dunning": dunning_effectiveness(books, year, AS_OF, FILTERS),
        "top_overdue": top_overdue_customers(books, AS_OF, FILTERS, 10),
        "collectors": collector_kpis(books, MONTH, AS_OF, FILTERS),
    }
    assert list(pack.tables) == list(SECTIONS)
    for name, frame in expected.items():
        assert not frame.empty, name
        assert_frame_equal(pack.tables[name], frame, obj=name)
    assert (pack.as_of, pack.period_start, pack.filters) == (AS_OF, year, FILTERS)
    assert len(pack.tables["dso"]) == 12 and pack.tables["dso"]["month_end"].iloc[-1] == AS_OF


def test_tiles_are_the_overviews_against_last_month_and_the_same_month_last_year(books: Store, pack: Pack) -> None:
    now = kpi_summary(books, AS_OF, FILTERS)
    year_ago = kpi_summary(books, date(2025, 9, 30), FILTERS).iloc[0]
    tiles = pack.tables["tiles"].set_index("kpi")
    assert list(tiles.index) == [t[0] for t in TILES]
    for kpi, _, _ in TILES:
        this, last, before = (float(now.iloc[0][kpi]), float(now.iloc[1][kpi]), float(year_ago[kpi]))
        assert tiles.loc[kpi, "this_month"] == pytest.approx(this, nan_ok=True)
        assert tiles.loc[kpi, "last_month"] == pytest.approx(last, nan_ok=True)
        assert tiles.loc[kpi, "same_month_last_year"] == pytest.approx(before, nan_ok=True)
        assert tiles.loc[kpi, "change_vs_last_month"] == pytest.approx(round(this - last, 2), nan_ok=True)
        assert tiles.loc[kpi, "change_vs_last_year"] == pytest.approx(round(this - before, 2), nan_ok=True)
    # independent: the Open AR tile is the aging's total, the overdue tile the total less Current
    aging = pack.tables["aging"].iloc[0]
    assert tiles.loc["open_ar", "this_month"] == pytest.approx(aging["Total"], abs=0.05)
    assert tiles.loc["overdue_ar", "this_month"] == pytest.approx(aging["Total"] - aging["Current"], abs=0.05)


def _pdf_text(content: bytes, tmp_path: Path) -> str:
    (tmp_path / "pack.pdf").write_bytes(content)
    return subprocess.run(["pdftotext", "-layout", str(tmp_path / "pack.pdf"), "-"], check=True,
                          capture_output=True, text=True).stdout


def _rendered_pages(content: bytes, tmp_path: Path) -> list[Path]:
    """Every page of the PDF rendered by poppler's pdftoppm; the page count from pdfinfo."""
    (tmp_path / "pack.pdf").write_bytes(content)
    info = subprocess.run(["pdfinfo", str(tmp_path / "pack.pdf")], check=True, capture_output=True, text=True).stdout
    pages = int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))
    subprocess.run(["pdftoppm", "-r", "20", "-gray", str(tmp_path / "pack.pdf"), str(tmp_path / "page")], check=True,
                   capture_output=True)
    images = sorted(tmp_path.glob("page-*.pgm"))
    assert len(images) == pages
    return images


def _ink(image: Path) -> int:
    from PIL import Image

    with Image.open(image) as im:
        return sum(im.histogram()[:240])  # pixels darker than near-white


def test_the_pdf_renders_every_page_with_the_packs_numbers(pack: Pack, pdf: bytes, tmp_path: Path) -> None:
    pages = _rendered_pages(pdf, tmp_path)
    assert len(pages) >= 5  # tiles, aging and DSO, bad debt and roll rates, dunning, customers and collectors
    assert all(_ink(p) > 200 for p in pages)
    text = _pdf_text(pdf, tmp_path)
    tiles = pack.tables["tiles"].set_index("kpi")
    assert f"{tiles.loc['open_ar', 'this_month']:,.0f}" in text
    assert f"{tiles.loc['dso', 'this_month']:,.1f}" in text
    change = tiles.loc["open_ar", "change_vs_last_month"]
    assert f"vs last month: {change:+,.0f} USD" in text
    for name in pack.tables["top_overdue"]["customer_name"].head(3):
        assert name[:12] in text
    for heading in ("Aging and DSO", "Bad debt and roll rates", "Dunning effectiveness", "Collector KPIs",
                    "Overdue AR (USD)", "Net balance"):
        assert heading in text
    assert "dso_standard" not in text and "open_ar" not in text
    weeks = pack.cash_forecast  # the Cash forecast page's table, from the month's end
    assert "Cash forecast" in text and len(weeks) == 13 and f"{weeks['week_start'].iloc[0]:%Y-%m-%d}" in text


def test_without_matplotlib_the_pdf_still_comes_with_every_table(pack: Pack, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pack_charts, "available", lambda: False)
    content = pack_pdf(pack)
    assert len(_rendered_pages(content, tmp_path)) >= 5
    text = _pdf_text(content, tmp_path)
    assert "Charts are left out: matplotlib is not installed" in text and "Top overdue customers" in text


def test_the_workbook_has_every_table_under_human_headers(pack: Pack) -> None:
    book = openpyxl.load_workbook(BytesIO(pack_xlsx(pack)))
    assert book.sheetnames == ["About"] + [sheet for _, sheet in SECTIONS.values()] + ["Cash forecast"]
    about = {row[0]: row[1] for row in book["About"].iter_rows(min_row=3, values_only=True)}
    assert about["Month"] == "2026-09" and about["Customers"] == "segment: enterprise, mid-market"
    human = ({f"{h} (USD)" if kind == "money" else h for h, kind in COLUMN_LABELS.values()}
             | set(TILE_LABELS.values())
             | {f"{b} (USD)" for b in bucket_labels("due") + ["Total", "Unapplied", "Net balance"]})
    for sheet in book.sheetnames[1:]:
        headers = [c.value for c in book[sheet][1]]
        assert headers and set(headers) <= human, (sheet, set(headers) - human)
    dso = pd.DataFrame(book["DSO"].iter_rows(min_row=2, values_only=True), columns=[c.value for c in book["DSO"][1]])
    assert dso["DSO, standard (days)"].tolist() == pytest.approx(pack.tables["dso"]["dso_standard"].tolist())
    assert dso["Credit sales (USD)"].tolist() == pytest.approx(pack.tables["dso"]["credit_sales"].tolist())
    top = pd.DataFrame(book["Top overdue"].iter_rows(min_row=2, values_only=True),
                       columns=[c.value for c in book["Top overdue"][1]])
    assert top["Customer id"].tolist() == pack.tables["top_overdue"]["customer_id"].tolist()
    assert top["Overdue AR (USD)"].sum() == pytest.approx(pack.tables["top_overdue"]["overdue_ar"].sum())
    trend = pd.DataFrame(book["Aging trend"].iter_rows(min_row=2, values_only=True),
                         columns=[c.value for c in book["Aging trend"][1]])
    assert len(trend) == 12 and trend["31-60 (USD)"].sum() == pytest.approx(
        pack.tables["aging_trend"].query("bucket == '31-60'")["amount"].sum())


def test_only_roles_that_see_every_dashboard_of_the_pack_may_have_it(books: Store) -> None:
    assert [r for r in ("admin", "cfo", "analyst", "collector", "sales", "viewer", "department")
            if may_have_pack(Actor("x", r))] == ["admin", "cfo", "analyst"]
    with pytest.raises(PermissionDenied, match="may not have the monthly pack"):
        monthly_pack(books, Actor("ana.collector", "collector"), MONTH)


def test_a_month_outside_the_ledger_or_not_a_month_is_refused_with_the_reason(books: Store) -> None:
    with pytest.raises(PackError, match="last posting is on 2026-10-31: 2026-11 has not begun"):
        monthly_pack(books, CFO, date(2026, 11, 1))
    with pytest.raises(PackError, match="ledger starts on"):
        monthly_pack(books, CFO, date(2001, 1, 1))
    with pytest.raises(PackError, match="write it as YYYY-MM"):
        parse_month("Sept 2026")
    assert parse_month("2026-09") == MONTH
    # the Overview offers the last month ended by its as-of date
    assert closed_month(date(2026, 9, 30)) == MONTH and closed_month(date(2026, 10, 5)) == MONTH
    assert closed_month(date(2026, 1, 30)) == date(2025, 12, 1)


def test_the_command_line_writes_the_pack_and_refuses_a_collector(demo_store_file: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    db, out = tmp_path / "demo.duckdb", tmp_path / "pack.xlsx"
    shutil.copy(demo_store_file, db)
    assert main(["--db", str(db), "report", "pack", "--month", "2026-09", "--format", "xlsx", "--out", str(out),
                 "--segment", "enterprise"]) == 0
    assert "Monthly AR pack, September 2026 (segment: enterprise)" in capsys.readouterr().out
    about = {row[0]: row[1] for row in openpyxl.load_workbook(out)["About"].iter_rows(min_row=3, values_only=True)}
    assert about["Customers"] == "segment: enterprise" and about["As of"] == "2026-09-30"
    assert main(["--db", str(db), "report", "pack", "--month", "2026-09", "--as", "ana.collector"]) == 2
    assert "may not have the monthly pack" in capsys.readouterr().err
    assert main(["--db", str(db), "report", "pack", "--month", "09/2026"]) == 2
    assert "write it as YYYY-MM" in capsys.readouterr().err
