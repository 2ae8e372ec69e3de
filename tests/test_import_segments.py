"""A customer's segment is the team's own text (a vehicle class, an industry): imported as written,
only its length is limited. The pages offer the segments the customers have: test_pages_bulk_segments.py."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from analytics.access.roles import SYSTEM
from analytics.ingest.imports import run_import
from analytics.ingest.mapping import Mapping
from analytics.ingest.staging import FIELD_LENGTHS
from analytics.store.connection import Store

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


