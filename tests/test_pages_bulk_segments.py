"""The bulk page offers the segments the customers have (the team's own text), not the demo's four.
Segments as imported: test_import_segments.py."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from tests.collector_data import add_customer, add_dunning_config, add_invoice, setup_people
from tests.conftest import new_store, signed_in_app

T = date.today()


def test_the_bulk_page_offers_the_customers_own_segments(tmp_path: Path, app_env) -> None:
    path = tmp_path / "books.duckdb"
    store = new_store(path)
    setup_people(store)
    add_dunning_config(store)
    for cid, segment in (("F1", "Heavy Goods Vehicle"), ("F2", "M1"), ("F3", "M1")):
        add_customer(store, cid, name=f"Fleet {cid}", segment=segment)
        add_invoice(store, cid, f"INV-{cid}", T - timedelta(days=40), T - timedelta(days=10), 100)
    add_invoice(store, "F1", "INV-NEW", T, T + timedelta(days=30), 50)  # the ledger runs to today
    store.close()
    app_env(path)
    at = signed_in_app("collector", "ana.collector", page="pages/bulk.py").run()
    assert not at.exception
    picker = at.multiselect(key="bulk_segments")
    assert picker.options == ["Heavy Goods Vehicle", "M1"]
    assert at.markdown[0].value == "**3 customers match.**"
    picker.select("M1").run()
    assert at.markdown[0].value == "**2 customers match.**"
