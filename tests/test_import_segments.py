"""A customer's segment is the team's own text (a vehicle class, an industry): imported as written,
only its length is limited; the pages offer the segments the customers have, not the demo's four."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from analytics.access.roles import SYSTEM
from analytics.ingest.imports import run_import
from analytics.ingest.mapping import Mapping
from analytics.ingest.staging import FIELD_LENGTHS
from analytics.migrations import connect
from analytics.store.connection import Store
from tests.collector_data import add_customer, add_dunning_config, add_invoice, setup_people
from tests.conftest import signed_in_app

CUSTOMERS = Mapping(dataset="customers", columns={"customer_id": "id", "name": "name", "segment": "class"})
T = date.today()


def test_any_segment_text_is_accepted_as_written_and_only_its_length_is_limited(store: Store,
                                                                             tmp_path: Path) -> None:
    too_long = "x" * (FIELD_LENGTHS["segment"] + 1)
    path = tmp_path / "customers.csv"
    path.write_text("id,name,class\nF1,Fleet One,Heavy Goods Vehicle\nF2,Fleet Two,M1\nF3,Fleet Three,enterprise\n"
                    f"F4,Fleet Four,{too_long}\nF5,Fleet Five,\n")
    result = run_import(store, path, CUSTOMERS, SYSTEM)
    assert (result.status, result.inserted, result.rejected) == ("ok", 4, 1)
    assert result.report.errors.to_dict("records") == [
        {"row_number": 4, "column_name": "class", "value": too_long,
         "reason": f"longer than {FIELD_LENGTHS['segment']} characters"}]
    got = store.read("SELECT customer_id, segment FROM customers ORDER BY customer_id").to_dict("records")
    assert got == [{"customer_id": "F1", "segment": "Heavy Goods Vehicle"}, {"customer_id": "F2", "segment": "M1"},
                   {"customer_id": "F3", "segment": "enterprise"},
                   {"customer_id": "F5", "segment": "small business"}]  # blank: the mapping's default segment
    again = run_import(store, path, CUSTOMERS, SYSTEM)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 4)  # re-import: nothing changes
    path.write_text("id,name,class\nF2,Fleet Two,N3\n")
    changed = run_import(store, path, CUSTOMERS, SYSTEM)
    assert changed.updated == 1
    assert store.scalar("SELECT segment FROM customers WHERE customer_id = 'F2'") == "N3"
    assert store.read("SELECT old_values, new_values FROM audit_log WHERE entity = 'customer' "
                      "AND entity_id = 'F2'").to_dict("records") == [
        {"old_values": '{"name":"Fleet Two","segment":"M1","currency":"USD"}',
         "new_values": '{"name":"Fleet Two","segment":"N3","currency":"USD"}'}]


def test_the_bulk_page_offers_the_customers_own_segments(tmp_path: Path, app_env) -> None:
    path = tmp_path / "books.duckdb"
    store = connect(str(path))
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
