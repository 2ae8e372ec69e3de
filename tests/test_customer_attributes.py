"""Customer attributes: every extra column of a customers file kept by name, re-import a no-op, a
changed value audited, the filters (engine, CLI, the URL) and `ardesk db info`; the engine tests
again on PostgreSQL. The sidebar's attribute filters in the app: `test_pages_customer_attributes.py`."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from analytics.access.roles import SYSTEM
from analytics.cli.main import main
from analytics.ingest.imports import run_import
from analytics.ingest.mapping import Mapping
from analytics.ingest.validation import validate
from analytics.kpis.aging import aging_buckets
from analytics.kpis.summary import kpi_summary
from analytics.ledger.customer_attributes import attribute_choices, attribute_name, attribute_summary
from analytics.ledger.filters import Filters, filter_choices, filter_sql
from analytics.migrations import SCHEMA_VERSION, connect
from analytics.store.connection import Store
from tests.ledger_builder import LedgerBuilder

# A customers export as a team has it: three mapped columns, the rest its own.
CUSTOMERS_CSV = (
    "Cust No,Customer Name,country,Industry,Vehicle Class,Région,Credit Rating (S&P),%%,industry \n"
    "C1,Alpha,DE,Retail,Truck,North,AA,x,dup\n"
    "C2,Beta,FR,Wholesale, ,South,,x,\n"
    "C3,Gamma,,  Retail  ,Car,,B+,,\n"
)
MAPPING = Mapping(dataset="customers", columns={"customer_id": "Cust No", "name": "Customer Name"})
# attribute name -> file column, as the naming rule gives them (country feeds customers.country)
KEPT = {"industry": "Industry", "vehicle_class": "Vehicle Class", "region": "Région",
        "credit_rating_s_p": "Credit Rating (S&P)"}


def _file(tmp_path: Path, text: str = CUSTOMERS_CSV, name: str = "customers.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _attributes(store: Store) -> list[tuple[str, str, str]]:
    frame = store.read("SELECT customer_id, name, value FROM customer_attributes")
    return sorted(frame.itertuples(index=False, name=None))


def _expected_from_file(path: Path) -> list[tuple[str, str, str]]:
    """The attributes computed independently with pandas: every kept column melted, trimmed, blanks out."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    long = frame.melt(id_vars=["Cust No"], value_vars=list(KEPT.values()), var_name="column", value_name="value")
    long["value"] = long["value"].str.strip()
    long = long[long["value"] != ""]
    names = {column: name for name, column in KEPT.items()}
    return sorted(zip(long["Cust No"], long["column"].map(names), long["value"], strict=True))


# -- the naming rule ------------------------------------------------------------------------------
def test_attribute_names_are_lower_snake_case_of_the_header() -> None:
    assert attribute_name("Vehicle Class") == "vehicle_class"
    assert attribute_name("Région") == "region"
    assert attribute_name("  Credit Rating (S&P) ") == "credit_rating_s_p"
    assert attribute_name("cost-centre/2") == "cost_centre_2"
    assert attribute_name("%%") is None
    assert attribute_name("x" * 64) == "x" * 64
    assert attribute_name("x" * 65) is None


# -- import ---------------------------------------------------------------------------------------
def test_import_keeps_every_extra_column_as_a_named_attribute(store: Store, tmp_path: Path) -> None:
    path = _file(tmp_path)
    report = validate(store, path, MAPPING)
    assert report.ok
    assert report.attributes == KEPT
    lines = "\n".join(report.summary_lines())
    assert ("Extra column(s) kept as customer attributes: 'Industry' as industry, 'Vehicle Class' as "
            "vehicle_class, 'Région' as region, 'Credit Rating (S&P)' as credit_rating_s_p.") in lines
    assert "column '%%' is not kept: its header names no attribute" in lines
    assert "column 'industry ' is not kept: it gives the attribute name 'industry', as column 'Industry' does" in lines
    assert store.scalar("SELECT COUNT(*) FROM customer_attributes") == 0  # validation writes nothing

    result = run_import(store, path, MAPPING, SYSTEM)
    assert (result.status, result.inserted, result.rejected) == ("ok", 3, 0)
    # C2's blank vehicle class and C3's blank region and the unkept columns set nothing
    assert _attributes(store) == [
        ("C1", "credit_rating_s_p", "AA"), ("C1", "industry", "Retail"), ("C1", "region", "North"),
        ("C1", "vehicle_class", "Truck"),
        ("C2", "industry", "Wholesale"), ("C2", "region", "South"),
        ("C3", "credit_rating_s_p", "B+"), ("C3", "industry", "Retail"), ("C3", "vehicle_class", "Car"),
    ]
    assert _attributes(store) == _expected_from_file(path)
    assert (result.attributes_inserted, result.attributes_updated) == (9, 0)
    assert "Customer attributes: 9 value(s) set, 0 changed (each audited)." in result.summary_lines()
    # the mapped `country` column is a customers field, not an attribute
    countries = store.read("SELECT customer_id, country FROM customers ORDER BY customer_id")["country"]
    assert countries.fillna("").tolist() == ["DE", "FR", ""]
    sources = store.read("SELECT DISTINCT source FROM customer_attributes")["source"].tolist()
    assert sources == [f"import #{result.run_id}: {path}"]


def test_reimport_is_a_no_op_and_a_changed_value_is_audited(store: Store, tmp_path: Path) -> None:
    first = run_import(store, _file(tmp_path), MAPPING, SYSTEM)
    before = store.read("SELECT * FROM customer_attributes ORDER BY customer_id, name")

    again = run_import(store, _file(tmp_path), MAPPING, SYSTEM)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 3)
    assert (again.attributes_inserted, again.attributes_updated) == (0, 0)
    pd.testing.assert_frame_equal(store.read("SELECT * FROM customer_attributes ORDER BY customer_id, name"), before)
    assert store.scalar("SELECT COUNT(*) FROM audit_log WHERE entity = 'customer_attribute'") == 0

    # C1 moves to Wholesale; C2 gets a vehicle class; C3's industry cell is blank (keeps Retail)
    changed = (CUSTOMERS_CSV.replace("C1,Alpha,DE,Retail", "C1,Alpha,DE,Wholesale")
               .replace("C2,Beta,FR,Wholesale, ,", "C2,Beta,FR,Wholesale,Van,")
               .replace("C3,Gamma,,  Retail  ,", "C3,Gamma,,,"))
    third = run_import(store, _file(tmp_path, changed, "changed.csv"), MAPPING, SYSTEM)
    assert (third.attributes_inserted, third.attributes_updated) == (1, 1)
    after = dict(((c, n), v) for c, n, v in _attributes(store))
    assert after[("C1", "industry")] == "Wholesale"
    assert after[("C2", "vehicle_class")] == "Van"
    assert after[("C3", "industry")] == "Retail"  # a blank cell clears nothing
    audit = store.read("SELECT actor, action, entity_id, old_values, new_values, detail FROM audit_log "
                       "WHERE entity = 'customer_attribute'")
    assert len(audit) == 1
    line = audit.iloc[0]
    assert (line["action"], line["entity_id"], line["detail"]) == ("import_update", "C1/industry",
                                                                   f"import run #{third.run_id}")
    assert json.loads(line["old_values"]) == {"value": "Retail"}
    assert json.loads(line["new_values"]) == {"value": "Wholesale"}
    assert first.run_id < third.run_id
    source = store.scalar("SELECT source FROM customer_attributes WHERE customer_id = 'C1' AND name = 'industry'")
    assert source.startswith(f"import #{third.run_id}:")


def test_a_value_longer_than_the_store_keeps_rejects_its_row_naming_column_and_attribute(
        store: Store, tmp_path: Path) -> None:
    text = CUSTOMERS_CSV.replace("C3,Gamma,,  Retail  ,Car", "C3,Gamma,,Retail," + "v" * 201)
    result = run_import(store, _file(tmp_path, text), MAPPING, SYSTEM)
    assert (result.inserted, result.rejected) == (2, 1)
    errors = result.report.errors
    assert errors[["row_number", "column_name", "reason"]].to_dict("records") == [
        {"row_number": 3, "column_name": "Vehicle Class",
         "reason": "longer than 200 characters (customer attribute vehicle_class)"}]
    quarantined = store.read("SELECT row_number, column_name, reason FROM quarantine")
    assert quarantined.to_dict("records") == [{"row_number": 3, "column_name": "Vehicle Class",
                                               "reason": "longer than 200 characters (customer attribute vehicle_class)"}]
    assert "C3" not in {c for c, _, _ in _attributes(store)}
    # exactly 200 characters fit
    ok = run_import(store, _file(tmp_path, text.replace("v" * 201, "v" * 200), "ok.csv"), MAPPING, SYSTEM)
    assert ok.rejected == 0
    assert store.scalar("SELECT LENGTH(value) FROM customer_attributes WHERE customer_id = 'C3' "
                        "AND name = 'vehicle_class'") == 200


def test_a_file_of_mapped_columns_only_keeps_no_attribute(store: Store, tmp_path: Path) -> None:
    path = _file(tmp_path, "customer_id,name,segment\nC1,Alpha,enterprise\n")
    report = validate(store, path, Mapping(dataset="customers"))
    assert report.attributes == {}
    assert not any("attribute" in line for line in report.summary_lines())
    run_import(store, path, Mapping(dataset="customers"), SYSTEM)
    assert _attributes(store) == []


# -- filters --------------------------------------------------------------------------------------
D = date(2024, 6, 30)


def _attribute_ledger(store: Store, tmp_path: Path) -> None:
    """A: three invoices (USD); B: one (USD); C: one, and no industry.

    As of 2024-06-30: A open 100 (current) + 200 (10 days past due) + 300 (45 days; 50 paid, so 250)
    = 550; B open 400 (95 days past due); C open 70 (current).
    Attributes: A industry Retail region North; B industry Wholesale region North; C region South.
    """
    b = LedgerBuilder(store)
    for cid in ("A", "B", "C"):
        b.customer(cid, currency="USD", segment="enterprise", name=f"Customer {cid}")
    b.invoice("A", "A1", posted="2024-06-01", due="2024-07-01", amount=100)
    b.invoice("A", "A2", posted="2024-05-21", due="2024-06-20", amount=200)
    b.invoice("A", "A3", posted="2024-04-16", due="2024-05-16", amount=300)
    b.payment("A", "PA", posted="2024-06-10", amount=50, applies={"A3": 50})
    b.invoice("B", "B1", posted="2024-02-27", due="2024-03-27", amount=400)
    b.invoice("C", "C1", posted="2024-06-15", due="2024-07-15", amount=70)
    text = "customer_id,Industry,Region\nA,Retail,North\nB,Wholesale,North\nC,,South\n"
    result = run_import(store, _file(tmp_path, text, "attributes.csv"), Mapping(dataset="customers"), SYSTEM)
    assert (result.unchanged, result.attributes_inserted) == (3, 5)  # the customers themselves unchanged


def _aging_total(store: Store, filters: Filters) -> dict:
    frame = aging_buckets(store, D, filters)
    return frame.iloc[0][["Current", "1-30", "31-60", "61-90", "91-120", "120+", "Total"]].to_dict() if len(frame) \
        else {}


def test_attribute_filters_narrow_aging_and_kpis(store: Store, tmp_path: Path) -> None:
    _attribute_ledger(store, tmp_path)
    assert _aging_total(store, Filters(attributes={"industry": "Retail"})) == {
        "Current": 100.0, "1-30": 200.0, "31-60": 250.0, "61-90": 0.0, "91-120": 0.0, "120+": 0.0, "Total": 550.0}
    assert _aging_total(store, Filters(attributes={"Industry": ["Retail", "Wholesale"]}))["Total"] == 950.0
    assert _aging_total(store, Filters(attributes={"region": "North"}))["Total"] == 950.0
    assert _aging_total(store, Filters(attributes={"region": "South"}))["Total"] == 70.0
    # several attributes must all match; a customer without the attribute matches none of its values
    assert _aging_total(store, Filters(attributes={"region": "North", "industry": "Wholesale"}))["Total"] == 400.0
    assert _aging_total(store, Filters(attributes={"region": "South", "industry": "Retail"})).get("Total", 0) == 0
    assert _aging_total(store, Filters(attributes={"industry": "retail"})).get("Total", 0) == 0  # exact values
    # with a customers column filter as well
    assert _aging_total(store, Filters(customer_id=("A", "C"), attributes={"region": "North"}))["Total"] == 550.0

    kpis = kpi_summary(store, D, Filters(attributes={"industry": "Wholesale"})).set_index("period")
    assert kpis.loc["current", "open_ar"] == 400.0
    assert kpis.loc["current", "overdue_ar"] == 400.0
    everyone = kpi_summary(store, D).set_index("period")
    assert everyone.loc["current", "open_ar"] == 1020.0


def test_filter_sql_stays_one_parameterised_semi_join(store: Store) -> None:
    fragment, params = filter_sql(Filters(segment="SMB", attributes={"industry": ["Retail", "x'); DROP"]}))
    assert fragment.count("FROM customers fc") == 1
    assert "Retail" not in fragment and "DROP" not in fragment and "industry" not in fragment
    assert params == {"f_segment_0": "SMB", "f_attr0": "industry", "f_attr0_0": "Retail", "f_attr0_1": "x'); DROP"}
    assert Filters(attributes={"b": "2", "a": ["1"]}) == Filters(attributes={"a": "1", "b": ("2",)})
    assert Filters(attributes={"a": []}).is_empty
    with pytest.raises(ValueError, match="names no customer attribute"):
        Filters(attributes={"%%": "x"})


def test_db_choices_and_summary(store: Store, tmp_path: Path) -> None:
    run_import(store, _file(tmp_path), MAPPING, SYSTEM)
    summary = attribute_summary(store)
    assert summary.to_dict("records") == [
        {"name": "credit_rating_s_p", "customers": 2, "distinct_values": 2},
        {"name": "industry", "customers": 3, "distinct_values": 2},
        {"name": "region", "customers": 2, "distinct_values": 2},
        {"name": "vehicle_class", "customers": 2, "distinct_values": 2},
    ]
    assert filter_choices(store)["attributes"] == {
        "credit_rating_s_p": ["AA", "B+"], "industry": ["Retail", "Wholesale"], "region": ["North", "South"],
        "vehicle_class": ["Car", "Truck"]}
    # an attribute with more distinct values than a sidebar can offer is left out of the choices
    assert set(attribute_choices(store, most=1)) == set()
    assert set(attribute_choices(store, most=2)) == {"credit_rating_s_p", "industry", "region", "vehicle_class"}


# -- the command line -----------------------------------------------------------------------------
def test_cli_attribute_filter_and_db_info(tmp_path: Path, capsys) -> None:
    db = tmp_path / "s.duckdb"
    store = connect(str(db))
    _attribute_ledger(store, tmp_path)
    store.close()
    assert main(["--db", str(db), "report", "aging", "--as-of", "2024-06-30", "--attribute", "Industry=Retail",
                 "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["Total"] for r in rows] == [550.0]
    assert main(["--db", str(db), "report", "aging", "--as-of", "2024-06-30", "--attribute", "industry=Retail",
                 "--attribute", "industry=Wholesale", "--format", "json"]) == 0
    assert [r["Total"] for r in json.loads(capsys.readouterr().out)] == [950.0]
    assert main(["--db", str(db), "report", "kpis", "--as-of", "2024-06-30", "--attribute", "region=South",
                 "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["open_ar"] == 70.0
    assert main(["--db", str(db), "report", "aging", "--as-of", "2024-06-30", "--attribute", "industri=Retail"]) == 2
    assert "No customer attribute industri in this store (attributes: industry, region)" in capsys.readouterr().err
    assert main(["--db", str(db), "report", "aging", "--attribute", "industry"]) == 2
    assert "write it as NAME=VALUE" in capsys.readouterr().err

    assert main(["--db", str(db), "db", "info"]) == 0
    out = capsys.readouterr().out
    assert f"schema version: {SCHEMA_VERSION}" in out
    listing = out.split("customer attributes (the extra columns of the customers files):")[1].split("\n")
    assert [line.split() for line in listing if line.strip()] == [
        ["name", "customers", "distinct_values"], ["industry", "2", "2"], ["region", "3", "2"]]


def test_cli_import_check_says_which_columns_are_kept(tmp_path: Path, capsys) -> None:
    db = tmp_path / "s.duckdb"
    path = _file(tmp_path, "customer_id,name,Vehicle Class\nC1,Alpha,Truck\n")
    assert main(["--db", str(db), "import", "customers", str(path), "--check"]) == 0
    assert "Extra column(s) kept as customer attributes: 'Vehicle Class' as vehicle_class." in capsys.readouterr().out
    assert main(["--db", str(db), "import", "customers", str(path)]) == 0
    out = capsys.readouterr().out
    assert "Customer attributes: 1 value(s) set, 0 changed (each audited)." in out


def test_url_round_trip_of_attribute_filters() -> None:
    from pages.filters import View, params_from_view, view_from_params

    first, last = date(2024, 11, 3), date(2026, 10, 31)
    view = view_from_params({"attr.vehicle_class": ["Car", "Truck"], "attr.region": ["North"],
                             "attr.Bad Name": ["x"], "attr.": ["y"], "attr.%%": ["z"]}, first, last)
    assert view.attributes == (("region", ("North",)), ("vehicle_class", ("Car", "Truck")))
    params = params_from_view(view)
    assert params["attr.vehicle_class"] == ["Car", "Truck"] and params["attr.region"] == ["North"]
    assert view_from_params({k: v if isinstance(v, list) else [v] for k, v in params.items()}, first, last) == view
    assert view.filters == Filters(attributes={"vehicle_class": ["Car", "Truck"], "region": "North"})
    assert View(as_of=last, start=last, end=last).filters.is_empty


def test_a_blank_required_customers_cell_keeps_the_stored_value(store: Store, tmp_path: Path) -> None:
    """Re-importing a customer whose segment cell is blank used to set segment NULL and fail the run."""
    mapping = Mapping(dataset="customers")
    run_import(store, _file(tmp_path, "customer_id,name,segment\nC1,Alpha,enterprise\nC2,Beta,\n"), mapping, SYSTEM)
    again = run_import(store, _file(tmp_path, "customer_id,name,segment\nC1,Alpha,\nC2,Beta,\n", "again.csv"),
                       mapping, SYSTEM)
    assert (again.status, again.updated, again.unchanged) == ("ok", 0, 2)
    renamed = run_import(store, _file(tmp_path, "customer_id,name,segment\nC1,Alpha AG,\n", "renamed.csv"),
                         mapping, SYSTEM)
    assert renamed.updated == 1
    frame = store.read("SELECT customer_id, name, segment FROM customers ORDER BY customer_id")
    assert frame.to_dict("records") == [{"customer_id": "C1", "name": "Alpha AG", "segment": "enterprise"},
                                        {"customer_id": "C2", "name": "Beta", "segment": "small business"}]
    audit = store.read("SELECT old_values, new_values FROM audit_log WHERE entity = 'customer'")
    assert [json.loads(v) for v in audit["new_values"]] == [{"name": "Alpha AG", "segment": "enterprise", "currency": "USD"}]
    assert [json.loads(v) for v in audit["old_values"]] == [{"name": "Alpha", "segment": "enterprise", "currency": "USD"}]


@pytest.mark.slow
def test_100k_customers_attributes_match_a_pandas_computation(store: Store, tmp_path: Path) -> None:
    import numpy as np

    n, rng = 100_000, np.random.default_rng(13)
    frame = pd.DataFrame({
        "customer_id": [f"C{i:06d}" for i in range(n)], "name": [f"Customer {i}" for i in range(n)],
        "Industry": rng.choice(["Retail", "Wholesale", "Transport", " Public "], n),
        "Vehicle Class": rng.choice(["Car", "Truck", "Van", ""], n), "Tax Id": [f"T{i}" for i in range(n)]})
    path = tmp_path / "big.csv"
    frame.to_csv(path, index=False)
    result = run_import(store, path, Mapping(dataset="customers"), SYSTEM)
    long = frame.melt(id_vars=["customer_id"], value_vars=["Industry", "Vehicle Class", "Tax Id"],
                      var_name="column", value_name="value")
    long["value"] = long["value"].str.strip()
    long = long[long["value"] != ""]
    long["name"] = long["column"].map({"Industry": "industry", "Vehicle Class": "vehicle_class", "Tax Id": "tax_id"})
    expected = sorted(zip(long["customer_id"], long["name"], long["value"], strict=True))
    assert result.attributes_inserted == len(expected)
    assert _attributes(store) == expected
    again = run_import(store, path, Mapping(dataset="customers"), SYSTEM)
    assert (again.attributes_inserted, again.attributes_updated) == (0, 0)
    # the sidebar leaves out the identifier-like attribute (100,000 distinct tax ids)
    assert set(filter_choices(store)["attributes"]) == {"industry", "vehicle_class"}
    assert filter_choices(store)["attributes"]["industry"] == ["Public", "Retail", "Transport", "Wholesale"]


def test_a_syncs_watermark_column_is_not_an_attribute(store: Store) -> None:
    rows = pd.DataFrame({"customer_id": ["C1"], "Industry": ["Retail"], "changed_at": ["2024-01-03 09:00:00"]})
    mapping = Mapping(dataset="customers", sync={"table": "erp_customers", "watermark_column": "changed_at"})
    assert validate(store, rows, mapping).attributes == {"industry": "Industry"}
    assert validate(store, rows, Mapping(dataset="customers")).attributes == {"industry": "Industry",
                                                                              "changed_at": "changed_at"}
