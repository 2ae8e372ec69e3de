"""Message templates: validation in words with the line, the sandbox, versions with who and when,
HTML and text parts, the letterhead in emails and PDF statements, interest and fee variables."""

from __future__ import annotations

import re
import zlib
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from analytics.access.roles import Actor, PermissionDenied
from analytics.collections.letterhead import LOGO_CID, Letterhead
from analytics.collections.outreach.config import OutreachConfig, OutreachError
from analytics.collections.outreach.message_templates import (
    VARIABLES,
    CompiledTemplate,
    TemplateProblems,
    TemplateVersion,
    check_template,
    latest_template,
    retire_template,
    save_template,
    template_names,
    template_versions,
)
from analytics.collections.outreach.queue import preview, queue_messages
from analytics.collections.outreach.transport import build_email
from analytics.collections.statements import statement_items, statement_pdf
from analytics.store.connection import Store
from tests.collector_data import add_customer, add_invoice, add_payment

ANN = Actor("ann.analyst", "analyst", "Ann Analyst")
ANA = Actor("ana.collector", "collector", "Ana Collector")
AS_OF = date(2026, 4, 1)


# -- validation ----------------------------------------------------------------------------------------

def test_an_unknown_variable_is_named_with_its_part_and_line() -> None:
    problems = check_template("Hello {{ customer_name }}", "Dear {{ contact_name }},\n\nYou owe {{ amount_owed }}.\n")
    assert problems == [
        "Unknown variable 'amount_owed' in the plain-text body, line 3: use one of the variables listed "
        f"({', '.join(VARIABLES)})."]


def test_a_syntax_error_is_said_in_words_with_the_line() -> None:
    problems = check_template("Reminder", "Line one\n{% for inv in invoices %}\n- {{ inv.document_number }}\n",
                              "<p>{{ customer_name }</p>")
    assert problems[0].startswith("Syntax error in the plain-text body, line 3: Unexpected end of template. Jinja was looking "
                                   "for the following tags: 'endfor' or 'else'")
    assert problems[1].startswith("Syntax error in the HTML body, line 1: unexpected '}'")
    assert len(problems) == 2


def test_an_error_found_only_when_rendering_says_where() -> None:
    problems = check_template("Reminder", "Dear {{ contact_name }},\n{{ invoices[0].colour }}\n")
    assert problems == ["The plain-text body cannot be rendered, line 2: 'dict object' has no attribute 'colour'."]
    assert check_template("", "body") == ["The subject is empty."]
    assert check_template("{{ customer_name }}", "Dear {{ contact_name }}") == []


@pytest.mark.parametrize("attempt", [
    "{{ ''.__class__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ invoices.__class__.__init__.__globals__ }}",
    "{{ customer_name['__class__'] }}",
])
def test_a_template_cannot_reach_python_internals(attempt: str) -> None:
    problems = check_template("Subject", f"Hello\n{attempt}\n")
    assert problems and problems[0].startswith("Not allowed in the plain-text body, line 2: '__")
    # and should one be stored anyway (by hand, in the database), the sandbox refuses it at render time
    compiled = CompiledTemplate(TemplateVersion("evil", 2, "s", f"{attempt}\n", "", "x", None), Letterhead())
    with pytest.raises(OutreachError, match="could not be rendered"):
        compiled.render({"customer_name": "A", "invoices": []})


def test_the_sandbox_refuses_unsafe_calls_at_render_time() -> None:
    # a name without an underscore, reached through str.format: the sandbox's own check
    compiled = CompiledTemplate(TemplateVersion("evil", 2, "s", "{{ '{0.__class__}'.format(customer_name) }}",
                                                "", "x", None), Letterhead())
    with pytest.raises(OutreachError, match="could not be rendered"):
        compiled.render({"customer_name": "A", "invoices": []})
    # through the attr filter: not seen by the name check, refused when checked against the sample customer
    assert check_template("S", "{{ customer_name|attr('__class__') }}") == [
        "The plain-text body cannot be rendered, line 1: access to attribute '__class__' of 'str' object is unsafe."]
    assert check_template("S", "{{ '{0.__class__}'.format(customer_name) }}")[0].startswith(
        "The plain-text body cannot be rendered, line 1: access to attribute '__class__' of 'str' object is unsafe")


# -- versions, roles, audit (DuckDB and PostgreSQL) ------------------------------------------------------

def test_versions_with_who_and_when_and_the_latest_is_sent(store_on_each_engine: Store) -> None:
    store = store_on_each_engine
    add_customer(store, "C1", name="Acme <Tools> & Co", config_id=None)
    add_invoice(store, "C1", "INV-1", AS_OF - timedelta(days=45), AS_OF - timedelta(days=15), 100)

    # Before any save, version 1 is the file
    assert [(v.version, v.created_by) for v in template_versions(store, "reminder_friendly")] == [
        (1, "config/templates")]
    with pytest.raises(PermissionDenied):
        save_template(store, ANA, "reminder_friendly", "x", "y")
    with pytest.raises(TemplateProblems) as refused:
        save_template(store, ANN, "reminder_friendly", "Hi", "{{ nope }}")
    assert refused.value.problems[0].startswith("Unknown variable 'nope' in the plain-text body, line 1")
    assert int(store.scalar("SELECT COUNT(*) FROM message_templates")) == 0  # nothing saved

    body = ("Dear {{ contact_name }},\n{{ customer_name }} owes {{ '%.2f'|format(overdue_total) }} {{ currency }}"
            " + interest {{ '%.2f'|format(interest_total) }} + fee {{ '%.2f'|format(fee) }}"
            " = {{ '%.2f'|format(total_with_charges) }}.\n")
    html = "<p>{{ customer_name }} owes {{ overdue_total }} ({{ letterhead.company }})</p>"
    assert save_template(store, ANN, "reminder_friendly", "Pay {{ customer_name }}", body, html) == 2
    assert save_template(store, ANN, "reminder_friendly", "Pay {{ customer_name }}", body, html) == 2  # unchanged
    versions = template_versions(store, "reminder_friendly")
    assert [(v.version, v.created_by, v.retired) for v in versions] == [
        (1, "config/templates", False), (2, "ann.analyst", False)]
    assert all(v.created_at is not None for v in versions)
    assert versions[0].subject.startswith("Friendly reminder: {{ invoices|length }}")  # the file, kept as v1
    audit = store.read("SELECT actor, action, entity_id FROM audit_log WHERE entity = 'message_template'")
    assert audit.to_dict("records") == [{"actor": "ann.analyst", "action": "template.save",
                                         "entity_id": "reminder_friendly v2"}]

    # The latest version is what a message is made of; the ERPNext case's figures as variables
    [draft] = preview(store, ["C1"], "reminder_friendly", AS_OF, charges=(0.10, 10))
    assert draft.subject == "Pay Acme <Tools> & Co"
    assert draft.template_version == 2
    assert draft.body.startswith("Dear Pat C1,\nAcme <Tools> & Co owes 100.00 USD + interest 0.41 + fee 10.00"
                                 " = 110.41.\n\n-- \nAR Desk Demo Ltd\n")
    assert "<p>Acme &lt;Tools&gt; &amp; Co owes 100.0 (AR Desk Demo Ltd)</p>" in draft.body_html  # autoescaped
    result = queue_messages(store, ANA, ["C1"], "reminder_friendly", action_key="k1", as_of=AS_OF)
    stored = store.read("SELECT template, template_version, body_html FROM messages WHERE message_id = :m",
                        {"m": int(result["message_id"][0])}).iloc[0]
    assert (stored.template, int(stored.template_version)) == ("reminder_friendly", 2)
    assert "Remit to: AR Desk Demo Ltd, Lockbox 4400" in stored.body_html

    # A new template; retiring it keeps its history and stops it being sent
    assert save_template(store, ANN, "thank_you", "Thank you", "Dear {{ contact_name }}, thank you.") == 1
    assert "thank_you" in template_names(store)
    assert retire_template(store, ANN, "thank_you") == 2
    assert "thank_you" not in template_names(store) and "thank_you" in template_names(store, include_retired=True)
    with pytest.raises(OutreachError, match="retired"):
        latest_template(store, "thank_you")
    with pytest.raises(TemplateProblems, match="must start with a letter"):
        save_template(store, ANN, "Bad Name!", "s", "b")


def test_a_template_without_an_html_body_sends_its_text_escaped(store: Store) -> None:
    add_customer(store, "C2", name="A<b>C", config_id=None)
    add_invoice(store, "C2", "INV-2", AS_OF - timedelta(days=40), AS_OF - timedelta(days=10), 50)
    [draft] = preview(store, ["C2"], "reminder_firm", AS_OF)
    assert draft.template_version == 1
    assert "Overdue invoices for A<b>C" in draft.subject
    assert "A&lt;b&gt;C" not in draft.body and "white-space:pre-wrap" in draft.body_html
    assert "<b>" not in draft.body_html  # every text escaped


# -- the email and the statement carry the letterhead -----------------------------------------------------

def test_the_email_has_text_and_html_parts_and_the_inline_logo() -> None:
    letterhead = Letterhead.from_settings()
    assert letterhead.logo_path() is not None and letterhead.logo_problem() is None
    message = {"to_address": "ap@c1.example", "subject": "S", "message_header_id": "<m1@ardesk.example>",
               "idempotency_key": "k", "body": "Hello\n" + letterhead.text_footer(),
               "body_html": "<html><body><p>Hello</p>" + letterhead.html_footer() + "</body></html>"}
    mail = build_email(message, OutreachConfig())
    assert mail.get_content_type() == "multipart/alternative"
    text, related = mail.get_payload()
    assert text.get_content_type() == "text/plain" and "Bank details: Demo Bank" in text.get_content()
    assert related.get_content_type() == "multipart/related"
    page, logo = related.get_payload()
    assert f'src="cid:{LOGO_CID}"' in page.get_content()
    assert logo.get_content_type() == "image/png" and logo["Content-ID"] == f"<{LOGO_CID}>"
    assert Letterhead(logo="config/no-such.png").logo_problem().startswith("The letterhead logo 'config/no-such.png'")
    # a message queued before v19 (no HTML part) stays plain text
    assert build_email({**message, "body_html": None}, OutreachConfig()).get_content_type() == "text/plain"


def _pdf_text(pdf: bytes) -> str:
    streams = re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S)
    out = []
    for s in streams:
        try:
            out.append(zlib.decompress(s).decode("latin-1"))
        except zlib.error:
            out.append(s.decode("latin-1"))
    return "\n".join(out).replace("\\(", "(").replace("\\)", ")")  # PDF strings escape parentheses


def test_the_pdf_statement_carries_the_letterhead_and_the_charges(store: Store) -> None:
    add_customer(store, "C3", config_id=None)
    inv = add_invoice(store, "C3", "INV-3", date(2026, 1, 1), date(2026, 1, 31), 1000)
    add_payment(store, "C3", "PAY-3", date(2026, 3, 2), 400, inv)
    items = statement_items(store, "C3", AS_OF)
    charges = {"overdue": 600.0, "interest": 15.78, "fee": 10.0, "total": 625.78, "annual_rate": 0.12}
    text = _pdf_text(statement_pdf("Customer C3", "C3", "USD", items, AS_OF, charges=charges))
    for words in ("AR Desk Demo Ltd", "1 Ledger Street", "Remit to: AR Desk Demo Ltd, Lockbox 4400",
                  "Bank details: Demo Bank", "Interest (12.00 % a year on the overdue invoices)", "15.78",
                  "Dunning fee", "625.78"):
        assert words in text, words
    assert "/Subtype /Image" in statement_pdf("Customer C3", "C3", "USD", items, AS_OF).decode("latin-1")
    bare = _pdf_text(statement_pdf("Customer C3", "C3", "USD", items, AS_OF, letterhead=Letterhead()))
    assert "Remit to" not in bare and "Interest" not in bare


def test_a_stored_template_on_a_store_without_rows_reads_the_file(store: Store) -> None:
    with store.engine.connect() as conn:
        assert latest_template(conn, "final_notice").version == 1
        assert conn.execute(sa.text("SELECT COUNT(*) FROM message_templates")).scalar() == 0
    assert set(template_names(store)) >= {"reminder_friendly", "final_notice", "call_script"}
