"""Manual dunning stages on the pages (AppTest): the worklist approves a waiting stage, the Customer 360
shows its letter and skips another. The stages themselves: test_dunning_channels.py."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from analytics.access.roles import SYSTEM
from analytics.collections.dunning_policies import Channel, Policy, Stage, save_policy
from tests.collector_data import add_invoice
from tests.conftest import button, displayed, new_store, signed_in_app, stored_rows
from tests.test_dunning_channels import D0, _books


def test_the_worklist_approves_and_the_customer_360_skips_a_waiting_stage(
        tmp_path: Path, app_env, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "pages.duckdb"
    store = _books(new_store(db))
    save_policy(store, SYSTEM, Policy(name="Standard", config_id=1, stages=(
        Stage(1, "Call first", 1, (Channel("call"), Channel("sms"), Channel("letter", "reminder_letter")),
              mode="manual"),)))
    add_invoice(store, "C3", "INV-LAST", D0, D0 + timedelta(days=30), 10)  # the ledger (and the pages) end on D0
    store.close()
    app_env(db)
    at = signed_in_app("collector", "ana.collector", "pages/worklist.py").run()
    assert not at.exception
    assert [h.value for h in at.subheader if "approval" in h.value] == ["Stages waiting for approval: 3"]
    assert "C2 (C2) · stage 1 Call first · letter (reminder_letter), call, sms" in [t.value.replace("Customer ", "") for t in at.text]
    next(b for b in at.button if b.key == "worklist_approve_C2_1").click().run()
    assert not at.exception
    assert displayed(at.success[0].value) == (
        "Stage 1 approved for Customer C2: letter: task created; call: task created; sms: task created.")
    assert [h.value for h in at.subheader if "approval" in h.value] == ["Stages waiting for approval: 2"]
    assert stored_rows(db, "SELECT customer_id, stage_no, outcome FROM dunning_runs") == [
        {"customer_id": "C2", "stage_no": 1, "outcome": "sent"}]
    at.query_params["customer"] = "C2"
    at.switch_page("pages/customer.py").run()
    [pdf] = [d for d in at.get("download_button") if d.proto.label == "Letter to post (PDF)"]
    assert not at.exception and "Post letter: Call first (reminder_letter)" in " ".join(t.value for t in at.text)

    at.query_params["customer"] = "C1"
    at.switch_page("pages/customer.py").run()
    assert not at.exception
    assert "2 invoice(s): INV-1a, INV-1b · 500.00 USD open" in [t.value for t in at.text]
    button(at, "Skip").click().run()
    assert displayed(at.success[0].value) == "Stage 1 skipped for Customer C1 (2 invoice(s)): nothing sent."
    assert not [t for t in at.text if "Call first" in t.value]  # the item left
    assert stored_rows(db, "SELECT customer_id, outcome, COUNT(*) AS n FROM dunning_runs "
                           "GROUP BY 1, 2 ORDER BY 1") == [{"customer_id": "C1", "outcome": "waived", "n": 2},
                                                           {"customer_id": "C2", "outcome": "sent", "n": 1}]
