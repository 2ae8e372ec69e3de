"""`ardesk import` as a newcomer meets it: a whole-file rejection says why without `--check`, optional
fields are never called required, every message names the file's own column and the field it
feeds; rejected-row files and the inbox never land inside the checkout when the store is named by
a URL (next to a DuckDB file, else under `[paths] data_dir`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from analytics.cli.main import main
from analytics.ingest.inbox import Folders, folders_for
from analytics.migrations import connect
from analytics.settings import CONFIG_DIR, ROOT, load_settings
from tests.conftest import empty_postgres


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _runs(db: Path) -> list[dict]:
    store = connect(str(db))
    try:
        return store.read("SELECT status, rows_read, rows_rejected, error FROM import_runs ORDER BY run_id"
                          ).to_dict("records")
    finally:
        store.close()


def test_a_file_lacking_a_column_is_rejected_with_the_reason_without_check(tmp_path: Path, capsys) -> None:
    """The IBM mapping on a file that has other columns: the run says which of the file's columns are
    missing, for which field, required or optional, and what the file has instead."""
    db = tmp_path / "s.duckdb"
    path = _write(tmp_path, "a.csv", "cust,doc,InvoiceDate,InvoiceAmount,DueDate\nC1,INV-1,1/2/2013,10,2/1/2013\n")
    assert main(["--db", str(db), "import", "invoices", str(path), "--mapping", "ibm_ar_invoice_register"]) == 1
    out = capsys.readouterr().out.splitlines()
    reason = ("Nothing can be imported: the file lacks column 'customerID' (field customer_id, required), "
              "column 'invoiceNumber' (field document_number, required), "
              "column 'SettledDate' (field settled_date, optional, named by the mapping) and "
              "column 'Disputed' (field disputed, optional, named by the mapping). "
              "The file's columns: cust, doc, InvoiceDate, InvoiceAmount, DueDate.")
    assert out[0] == "Run #1 (invoices): rejected. 1 rows read; 0 inserted, 0 updated, 0 unchanged, 1 rejected."
    assert out[1] == reason
    assert out[2].startswith("Map a field to the file's own column with --column FIELD=COLUMN")
    assert _runs(db) == [{"status": "rejected", "rows_read": 1, "rows_rejected": 1, "error": reason}]
    # --check says the same, and writes nothing
    assert main(["--db", str(db), "import", "invoices", str(path), "--mapping", "ibm_ar_invoice_register",
                 "--check"]) == 1
    assert capsys.readouterr().out.splitlines()[0] == reason
    assert len(_runs(db)) == 1


def test_an_optional_field_is_never_called_required(tmp_path: Path, capsys) -> None:
    """A mapped optional column that is absent is named as optional; an unmapped optional field
    absent from the file is no problem at all."""
    db = tmp_path / "s.duckdb"
    path = _write(tmp_path, "a.csv", "customer_id,document_number,posting_date,amount\nC1,INV-1,2024-01-02,10\n")
    assert main(["--db", str(db), "import", "invoices", str(path), "--column", "due_date=Due"]) == 1
    out = capsys.readouterr().out
    assert "column 'Due' (field due_date, optional, named by the mapping)" in out
    assert "required" not in out
    assert main(["--db", str(db), "import", "invoices", str(path)]) == 0  # due_date, currency, ... unmapped: fine
    assert capsys.readouterr().out.startswith("Run #2 (invoices): ok. 1 rows read; 1 inserted")


def test_row_messages_name_the_files_column_and_the_field(tmp_path: Path, capsys) -> None:
    db = tmp_path / "s.duckdb"
    path = _write(tmp_path, "a.csv", "Kunde,Beleg,Datum,Betrag\nC1,INV-1,1/2/2024,10\nC1,INV-2,2024-01-02,-1\n"
                                     "C1,INV-3,2024-01-03,5\n")
    args = ["--db", str(db), "import", "invoices", str(path), "--column", "customer_id=Kunde",
            "--column", "document_number=Beleg", "--column", "posting_date=Datum", "--column", "amount=Betrag"]
    assert main(args) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[:3] == [
        "Run #1 (invoices): ok. 3 rows read; 1 inserted, 0 updated, 0 unchanged, 2 rejected.",
        "1 customer(s) created: C1",
        "  1 row(s): invoice amount is zero or negative; column 'Betrag', field amount (rows 2)",
    ]
    assert out[3] == "  1 row(s): unparseable date (expected %Y-%m-%d); column 'Datum', field posting_date (rows 1)"
    assert out[4].startswith(f"Rejected rows with their reasons: {tmp_path / 'quarantine'}/invoices-run1-")


# -- where the inbox and the rejected-row files go ------------------------------------------------
def _settings_with_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data_dir: str) -> None:
    text = (CONFIG_DIR / "settings.toml").read_text()
    assert 'data_dir = ""' in text
    path = tmp_path / "settings.toml"
    path.write_text(text.replace('data_dir = ""', f'data_dir = "{data_dir}"'))
    monkeypatch.setenv("ARDESK_SETTINGS", str(path))
    load_settings.cache_clear()


@pytest.fixture
def clean_settings(monkeypatch: pytest.MonkeyPatch):
    for name in ("ARDESK_INBOX", "ARDESK_DB", "ARDESK_SETTINGS"):
        monkeypatch.delenv(name, raising=False)
    load_settings.cache_clear()
    yield
    load_settings.cache_clear()


def _under(base: Path) -> Folders:
    return Folders(base / "inbox", base / "done", base / "failed", base / "quarantine")


def test_a_server_database_keeps_its_files_under_the_data_dir_never_in_the_checkout(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_settings) -> None:
    url = "postgresql+psycopg://ardesk@db.example/ardesk"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert folders_for(url) == _under(tmp_path / "xdg" / "ardesk")  # [paths] data_dir empty: outside
    assert folders_for("duckdb:///:memory:") == _under(tmp_path / "xdg" / "ardesk")
    monkeypatch.setenv("ARDESK_DB", url)
    assert folders_for() == _under(tmp_path / "xdg" / "ardesk")  # the CLI without --db, the app alike
    _settings_with_data_dir(tmp_path, monkeypatch, str(tmp_path / "ardesk-files"))
    assert folders_for(url) == _under(tmp_path / "ardesk-files")
    # DuckDB files: next to the file, however named; the configured store keeps [sync] inbox_dir
    db = tmp_path / "books" / "ardesk.duckdb"
    assert folders_for(str(db)) == folders_for(f"duckdb:///{db}") == _under(db.parent)
    monkeypatch.delenv("ARDESK_DB")
    assert folders_for() == _under(ROOT / "data")


def test_rejected_rows_of_a_store_named_by_url_land_in_the_data_dir(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_settings, capsys) -> None:
    """An in-memory DuckDB (a URL, no file): the quarantine file goes under `[paths] data_dir`, and
    nothing new appears under the checkout's data/."""
    _settings_with_data_dir(tmp_path, monkeypatch, str(tmp_path / "ardesk-files"))
    before = sorted(p for p in (ROOT / "data").rglob("*"))
    path = _write(tmp_path, "a.csv", "customer_id,document_number,posting_date,amount\nC1,INV-1,2024-01-02,0\n")
    assert main(["--db", "duckdb:///:memory:", "import", "invoices", str(path)]) == 1
    assert "Rejected rows with their reasons: " + str(tmp_path / "ardesk-files" / "quarantine") in capsys.readouterr().out
    assert [p.name.split("-")[0] for p in (tmp_path / "ardesk-files" / "quarantine").iterdir()] == ["invoices"]
    assert sorted(p for p in (ROOT / "data").rglob("*")) == before


@pytest.mark.slow
def test_rejected_rows_of_a_postgres_store_land_in_the_data_dir(
        pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_settings, capsys) -> None:
    empty_postgres(pg_url)
    _settings_with_data_dir(tmp_path, monkeypatch, str(tmp_path / "ardesk-files"))
    before = sorted(p for p in (ROOT / "data").rglob("*"))
    path = _write(tmp_path, "a.csv", "customer_id,document_number,posting_date,amount\nC1,INV-1,2024-01-02,0\n"
                                     "C1,INV-2,2024-01-02,5\n")
    assert main(["--db", pg_url, "import", "invoices", str(path)]) == 1
    out = capsys.readouterr().out
    assert "  1 row(s): invoice amount is zero or negative; column 'amount', field amount (rows 1)" in out
    assert len(list((tmp_path / "ardesk-files" / "quarantine").glob("invoices-run1-*.csv"))) == 1
    assert sorted(p for p in (ROOT / "data").rglob("*")) == before
