"""A store whose free-text fields hold markdown, HTML and links aimed at a loopback server.

Every value starts with its own tag word (EVILname, EVILnote, ...), so a test can tell which one
reached a page. Shown as text, each reads literally and makes the browser fetch nothing.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import sqlalchemy as sa

from analytics.access.roles import SYSTEM, Actor
from analytics.access.users import add_user, set_password
from analytics.collections.followups import add_note, add_task, log_call, open_dispute, promise_to_pay
from analytics.ingest.imports import run_import
from analytics.ingest.mapping import Mapping
from analytics.migrations import connect
from tests.collector_data import add_customer, add_dunning_config, add_invoice, setup_people

HOSTILE_CUSTOMER = "X1"
COLLECTOR = "ana.collector"
ADMIN, CFO = "ada.admin", "cy.cfo"
# Where each tag is planted; "display" is the display name of eve.collector.
TAGS = ("EVILname", "EVILsource", "EVILcontact", "EVILnote", "EVILcall", "EVILpromise", "EVILdispute",
        "EVILtask", "EVILdisplay")


def hostile(tag: str, port: int) -> str:
    """An image, a link, raw HTML and bold, all pointing at 127.0.0.1:port, after the tag word."""
    base = f"http://127.0.0.1:{port}/{tag}"
    return f"{tag} ![x]({base}.png) [l]({base}) <img src={base}-h.png> **bold**"


def build_hostile_store(path: Path, port: int, password: str) -> None:
    """Three plain customers and X1, the largest debtor, whose every text field is `hostile`; sign-ins
    with `password` for ana.collector, ada.admin and cy.cfo."""
    today = date.today()
    store = connect(str(path))
    try:
        setup_people(store)
        set_password(store, SYSTEM, COLLECTOR, password)
        add_user(store, SYSTEM, ADMIN, "Ada Admin", "admin", password=password)
        add_user(store, SYSTEM, CFO, "Cy CFO", "cfo", password=password)
        add_user(store, SYSTEM, "eve.collector", hostile("EVILdisplay", port), "collector", password=password)
        add_dunning_config(store)
        for i in range(1, 4):
            add_customer(store, f"C{i}", name=f"Acme {i}")
            add_invoice(store, f"C{i}", f"INV-{i}", today - timedelta(days=40 + i), today - timedelta(days=10 + i),
                        100 * i)
        customers = Mapping(dataset="customers", columns={c: c for c in ("customer_id", "name", "segment",
                                                                          "currency", "collector")})
        run_import(store, pa.table({"customer_id": [HOSTILE_CUSTOMER], "name": [hostile("EVILname", port)],
                                    "segment": ["enterprise"], "currency": ["USD"], "collector": [COLLECTOR]}),
                   customers, SYSTEM, source_label=hostile("EVILsource", port))
        with store.write() as conn:
            conn.execute(sa.text(
                "INSERT INTO contacts (customer_id, name, email, role, is_primary, active) "
                "VALUES (:c, :n, 'ap@x1.example', 'accounts_payable', TRUE, TRUE)"),
                {"c": HOSTILE_CUSTOMER, "n": hostile("EVILcontact", port)})
        add_invoice(store, HOSTILE_CUSTOMER, "X-INV-1", today - timedelta(days=70), today - timedelta(days=40), 90_000)
        x2 = add_invoice(store, HOSTILE_CUSTOMER, "X-INV-2", today, today + timedelta(days=30), 500)  # ledger to today
        ana = Actor(COLLECTOR, "collector", "Ana Collector")
        add_note(store, ana, HOSTILE_CUSTOMER, hostile("EVILnote", port))
        log_call(store, ana, HOSTILE_CUSTOMER, "left voicemail", hostile("EVILcall", port))
        # both about X-INV-2 (not yet due), so X-INV-1 stays in the reminders and the bulk selection
        promise_to_pay(store, ana, HOSTILE_CUSTOMER, 1_000, today + timedelta(days=7), entry_ids=[x2],
                       note=hostile("EVILpromise", port))
        open_dispute(store, ana, HOSTILE_CUSTOMER, hostile("EVILdispute", port), 100, "sales", entry_ids=[x2])
        add_task(store, ana, HOSTILE_CUSTOMER, hostile("EVILtask", port), today + timedelta(days=3))
    finally:
        store.close()
