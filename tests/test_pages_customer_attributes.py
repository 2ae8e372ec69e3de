"""The sidebar offers each customer attribute as a filter, mirrors it in the URL, keeps it across
pages and resets it (AppTest on the hand-built ledger). The attributes themselves:
`test_customer_attributes.py`."""

from __future__ import annotations

from pathlib import Path

from analytics.access.roles import SYSTEM
from analytics.ingest.imports import run_import
from analytics.ingest.mapping import Mapping
from analytics.migrations import connect


def test_the_sidebar_offers_each_attribute_and_mirrors_it_in_the_url(app_env, tmp_path: Path) -> None:
    from tests.dashboard_fixtures import metrics, signed_in, small_ledger

    path = small_ledger(tmp_path / "small.duckdb")
    store = connect(str(path))
    text = "customer_id,Vehicle Class\nA,Truck\nB,Car\nC,Truck\nD,Car\n"
    classes = tmp_path / "classes.csv"
    classes.write_text(text, encoding="utf-8")
    run_import(store, classes, Mapping(dataset="customers"), SYSTEM)
    store.close()
    app_env(path)
    at = signed_in("cfo")
    at.query_params = {"as_of": "2026-02-28", "attr.vehicle_class": "Car", "from": "2025-12", "to": "2026-02"}
    at.run()
    assert not at.exception
    assert at.multiselect(key="f_attr.vehicle_class").value == ["Car"]
    assert at.multiselect(key="f_attr.vehicle_class").options == ["Car", "Truck"]
    # 28 Feb, Car = B and D: INV3 200 and INV5 40 (written off only on 1 Mar)
    assert metrics(at)["Open AR (USD)"] == "240"
    assert "· vehicle\\_class Car ·" in at.caption[0].value  # the filter in words, escaped markdown

    at.multiselect(key="f_attr.vehicle_class").set_value(["Truck"]).run()
    assert not at.exception
    # Truck = A and C: INV1 100 (INV2 posted 10 Mar, INV4 80 open until paid 31 Mar)
    assert metrics(at)["Open AR (USD)"] == "180"
    assert at.query_params == {"as_of": "2026-02-28", "from": "2025-12", "to": "2026-02",
                               "attr.vehicle_class": "Truck"}
    at.switch_page("pages/aging.py").run()
    assert not at.exception
    assert at.multiselect(key="f_attr.vehicle_class").value == ["Truck"]

    at.button(key="f_reset").click().run()
    assert not at.exception
    assert at.multiselect(key="f_attr.vehicle_class").value == []
    assert "attr.vehicle_class" not in at.query_params
