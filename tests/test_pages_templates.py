"""Templates page (AppTest): edit, check, preview against a customer, save a version; collectors read."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from analytics.collections.worklist import default_as_of
from analytics.migrations import connect
from pages.plain_text import escape_markdown
from tests.collector_data import add_customer, add_invoice
from tests.dashboard_fixtures import signed_in

PAGE = "pages/templates.py"
AS_OF = date(2026, 4, 1)


def _store(path: Path) -> Path:
    store = connect(str(path))
    add_customer(store, "C1", name="Acme *Tools*", config_id=None)
    add_customer(store, "C2", name="Beta Ltd", config_id=None)
    add_invoice(store, "C1", "INV-1", AS_OF - timedelta(days=45), AS_OF - timedelta(days=15), 100)
    add_invoice(store, "C2", "INV-2", AS_OF, AS_OF + timedelta(days=30), 70)  # the last posting: the as-of date
    assert default_as_of(store) == AS_OF
    store.close()
    return path


def test_an_analyst_edits_checks_previews_and_saves_a_version(app_env, tmp_path: Path) -> None:
    path = _store(tmp_path / "t.duckdb")
    app_env(path)
    at = signed_in("analyst", PAGE, username="ann.analyst").run()
    assert not at.exception
    at.selectbox(key="tpl_choice").set_value("reminder_friendly").run()
    assert "Friendly reminder" in at.text_input(key="tpl_subject_reminder_friendly").value
    assert [e.value for e in at.success] == [
        "No problems found: every variable exists and it renders for a sample customer."]
    assert "customer_name" in at.dataframe[0].value["variable"].tolist()

    # An unknown variable is said with its line; the save button is off
    at.text_area(key="tpl_text_reminder_friendly").set_value("Dear {{ contact_name }},\n\n{{ amount_owed }}\n").run()
    assert at.error[0].value.startswith(escape_markdown("Unknown variable 'amount_owed' in the plain-text body, line 3"))
    assert at.button(key="tpl_save").disabled

    # Fixed: the preview renders the edit for the chosen customer, with the interest and the fee
    at.text_area(key="tpl_text_reminder_friendly").set_value(
        "Dear {{ contact_name }},\n{{ customer_name }}: {{ '%.2f'|format(total_with_charges) }} {{ currency }}\n"
    ).run()
    at.number_input(key="tpl_rate").set_value(10.0).run()
    at.number_input(key="tpl_fee").set_value(10.0).run()
    at.selectbox(key="tpl_customer").set_value("C1").run()
    assert not at.exception and not at.error
    texts = [t.value for t in at.text]
    assert "Subject: Friendly reminder: 1 open invoice for Acme *Tools*" in texts
    body = next(t for t in texts if t.startswith("Dear Pat C1"))
    assert body.startswith("Dear Pat C1,\nAcme *Tools*: 110.41 USD\n\n-- \nAR Desk Demo Ltd")  # 100 + 0.41 + 10
    # A customer with nothing past due: previewed all the same, with the reason it would not go
    at.selectbox(key="tpl_customer").set_value("C2").run()
    assert "would not be sent it: no invoices past due" in at.info[0].value
    assert any(t.value.startswith("Dear Pat C2,\nBeta Ltd: 0.00 USD") for t in at.text)

    at.button(key="tpl_save").click().run()
    assert not at.exception
    assert at.success[0].value == "Saved reminder_friendly version 2."
    history = at.dataframe[1].value
    assert history[["version", "saved by"]].to_dict("records") == [
        {"version": 2, "saved by": "ann.analyst"}, {"version": 1, "saved by": "config/templates"}]
    at.selectbox(key="tpl_show_reminder_friendly").set_value(1).run()
    assert any(t.value.startswith("Subject: Friendly reminder: {{ invoices|length }}") for t in at.text)
    store = connect(str(path))
    assert store.read("SELECT actor, action FROM audit_log WHERE entity = 'message_template'").to_dict(
        "records") == [{"actor": "ann.analyst", "action": "template.save"}]
    store.close()


def test_a_collector_reads_templates_and_cannot_save(app_env, tmp_path: Path) -> None:
    app_env(_store(tmp_path / "t.duckdb"))
    at = signed_in("collector", PAGE, username="ana.collector").run()
    assert not at.exception
    at.selectbox(key="tpl_choice").set_value("final_notice").run()
    assert at.text_area(key="tpl_text_final_notice").disabled
    assert "(a new template)" not in at.selectbox(key="tpl_choice").options
    assert not [b for b in at.button if b.key in ("tpl_save", "tpl_retire")]
    assert "read only" in at.caption[0].value
