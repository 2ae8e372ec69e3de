"""A team's own ledger, end to end, with no demo: the real IBM receivables export, the team's contacts
and its dunning history, imported with `ardesk`; then `ardesk dunning due` and an outreach send over
real SMTP on loopback. Every expectation is computed independently from the source file with pandas.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from analytics.access.roles import Actor
from analytics.collections.outreach.queue import queue_messages
from analytics.kpis.dunning_effectiveness import dunning_effectiveness
from analytics.migrations import connect

ROOT = Path(__file__).resolve().parent.parent
IBM = ROOT.parent / "shared" / "data" / "real" / "WA_Fn-UseC_-Accounts-Receivable.csv"
AS_OF = date(2013, 12, 31)
HISTORY_ENDS = date(2013, 12, 15)  # the old system's export stops here: later stages are due in AR Desk
CONFIG = "Legacy ERP reminders"
STAGES = ((1, "Friendly reminder", "email", 3, "reminder_friendly"), (2, "Final notice", "letter", 20, ""))
ANA = Actor("ana.collector", "collector", "Ana Collector")

pytestmark = pytest.mark.skipif(not IBM.exists(), reason="the IBM export is not in ../shared/data/real/")


def ardesk(db: Path, *args: str, env: dict[str, str] | None = None) -> str:
    out = subprocess.run([sys.executable, "-m", "analytics.cli", "--db", str(db), *args], capture_output=True,
                         text=True, timeout=300, cwd=ROOT, env={**os.environ, **(env or {})})
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def ibm() -> pd.DataFrame:
    df = pd.read_csv(IBM, dtype=str)
    for col in ("InvoiceDate", "DueDate", "SettledDate"):
        df[col] = pd.to_datetime(df[col], format="%m/%d/%Y").dt.date
    return df


def history(df: pd.DataFrame) -> pd.DataFrame:
    """Stage 1 three days after the due date, stage 2 twenty days after, for every invoice still unpaid
    then, up to the day the old system's export ends."""
    rows = []
    for no, name, channel, offset, template in STAGES:
        run = df["DueDate"] + timedelta(days=offset)
        hit = df[(df["SettledDate"] > run) & (run <= HISTORY_ENDS)]
        rows.append(pd.DataFrame({"Invoice": hit["invoiceNumber"], "Policy": CONFIG, "Step": no, "Step name": name,
                                  "Channel": channel, "Template": template, "Sent on": run[hit.index].astype(str),
                                  "Result": "sent"}))
    return pd.concat(rows, ignore_index=True)


def test_a_real_export_with_contacts_and_dunning_history_is_dunned_and_emailed(tmp_path: Path, smtp) -> None:
    handler, config = smtp
    db = tmp_path / "team.duckdb"
    df = ibm()
    out = ardesk(db, "import", "invoices", str(IBM), "--mapping", "ibm_ar_invoice_register")
    assert "2,466 inserted" in out and "0 rejected" in out

    # the team's contacts: an accounts-payable contact for every customer with something open on AS_OF
    open_now = df[(df["InvoiceDate"] <= AS_OF) & (df["SettledDate"] > AS_OF)]
    people = sorted(open_now["customerID"].unique())
    contacts = pd.DataFrame({"Customer": people, "Contact": [f"AP team {c}" for c in people],
                             "E-mail": [f"ap-{c.lower()}@example.com" for c in people],
                             "Function": "Accounts Payable", "Main": "yes"})
    contacts.to_csv(tmp_path / "contacts.csv", index=False)
    out = ardesk(db, "import", "contacts", str(tmp_path / "contacts.csv"), "--column", "customer_id=Customer",
                 "--column", "name=Contact", "--column", "email=E-mail", "--column", "role=Function",
                 "--column", "is_primary=Main")
    assert f"{len(people)} inserted" in out and "0 rejected" in out

    # the team's dunning history from its old system
    hist = history(df)
    hist.to_csv(tmp_path / "history.csv", index=False)
    columns = {"document_number": "Invoice", "configuration": "Policy", "stage_order": "Step",
               "stage_name": "Step name", "channel": "Channel", "template": "Template", "run_date": "Sent on",
               "outcome": "Result"}
    args = [a for t, s in columns.items() for a in ("--column", f"{t}={s}")]
    out = ardesk(db, "import", "dunning-history", str(tmp_path / "history.csv"), *args)
    assert f"{len(hist):,} inserted" in out and "0 rejected" in out
    assert f"{len(hist):,} unchanged" in ardesk(db, "import", "dunning-history", str(tmp_path / "history.csv"), *args)

    store = connect(str(db))
    try:  # imported history, not a policy: the configuration is inactive, its stages manual
        assert store.read("SELECT name, active FROM dunning_configs").to_dict("records") == [
            {"name": CONFIG, "active": False}]
        stages = store.read("SELECT stage_no, name, channel, day_offset, template, mode FROM dunning_stages "
                            "ORDER BY stage_no").astype(object)
        assert stages.where(stages.notna(), None).values.tolist() == [
            [1, "Friendly reminder", "email", 3, "reminder_friendly", "manual"],
            [2, "Final notice", "letter", 20, None, "manual"]]
        # dunning effectiveness covers the imported past: every imported stage run with something open
        kpi = dunning_effectiveness(store, date(2012, 1, 1), HISTORY_ENDS)
        expected = hist.groupby("Step").size()
        assert dict(zip(kpi["stage_no"], kpi["invoices"], strict=True)) == expected.to_dict()
        assert set(kpi["config_name"]) == {CONFIG}
    finally:
        store.close()

    nothing = ardesk(db, "dunning", "due", "--as-of", AS_OF.isoformat(), "--format", "csv")
    assert len(pd.read_csv(io.StringIO(nothing))) == 0  # history is not a policy: nothing is due yet
    out = ardesk(db, "dunning", "adopt", CONFIG)
    assigned = hist.merge(df, left_on="Invoice", right_on="invoiceNumber")["customerID"].unique()
    assert f"is now an active policy; assigned to {len(assigned)} customer(s)" in out

    due = pd.read_csv(io.StringIO(ardesk(db, "dunning", "due", "--as-of", AS_OF.isoformat(), "--format", "csv")),
                      dtype={"document_number": str})
    # expected: open on AS_OF, customer assigned, not under a dispute open on AS_OF (the export's Disputed
    # flag: opened on the invoice date, resolved on the settlement date), highest stage reached above the
    # last run on or before AS_OF
    want = open_now[open_now["customerID"].isin(assigned) & (open_now["Disputed"] == "No")].copy()
    want["dpd"] = [(AS_OF - d).days for d in want["DueDate"]]
    want["reached"] = [2 if d >= 20 else 1 if d >= 3 else 0 for d in want["dpd"]]
    last = hist.groupby("Invoice")["Step"].max()
    want["last"] = want["invoiceNumber"].map(last).fillna(0).astype(int)
    want = want[want["reached"] > want["last"]]
    assert len(want) > 0
    assert sorted(zip(due["document_number"], due["stage_no"], strict=True)) == sorted(
        zip(want["invoiceNumber"], want["reached"], strict=True))

    # an outreach email to a customer with a stage-1 invoice due, queued as of AS_OF and delivered by
    # `ardesk outreach retry` over real SMTP. The export is settled in full by now, so the paid/disputed
    # re-check runs as of AS_OF (--as-of); as of today every message would rightly be blocked as paid.
    first = want[want["reached"] == 1].sort_values("invoiceNumber").iloc[0]
    customer = first["customerID"]
    store = connect(str(db))
    try:
        queued = queue_messages(store, ANA, [customer], "reminder_friendly", action_key="team-ledger", as_of=AS_OF,
                                config=config)
        assert queued["status"].tolist() == ["queued"], queued.to_dict("records")
    finally:
        store.close()
    out = ardesk(db, "outreach", "retry", "--as-of", AS_OF.isoformat(), env={
        "ARDESK_OUTREACH_MODE": "smtp", "ARDESK_SMTP_HOST": config.smtp_host, "ARDESK_SMTP_PORT": str(config.smtp_port)})
    assert "sent" in out
    store = connect(str(db))
    try:
        [mail] = handler.messages
        assert mail["To"] == f"ap-{customer.lower()}@example.com"
        body = mail.get_body(preferencelist=("plain",)).get_content()
        for doc in open_now[open_now["customerID"] == customer]["invoiceNumber"]:
            assert doc in body
        # the send recorded stage 1 as run for that customer's invoices due for it
        runs = store.read("SELECT e.document_number, r.stage_no FROM dunning_runs r "
                          "JOIN ledger_entries e ON e.entry_id = r.entry_id WHERE r.run_date = :d",
                          {"d": AS_OF})
        sent_for = want[(want["customerID"] == customer) & (want["reached"] == 1)]["invoiceNumber"]
        assert sorted(runs["document_number"]) == sorted(sent_for)
    finally:
        store.close()
    after = pd.read_csv(io.StringIO(ardesk(db, "dunning", "due", "--as-of", AS_OF.isoformat(), "--format", "csv")),
                        dtype={"document_number": str})
    assert len(after) == len(due) - len(sent_for)


def test_a_bare_export_is_told_which_overdue_customers_dunning_cannot_reach(tmp_path: Path) -> None:
    """No policy and no contacts: `dunning due` finds nothing, and says who is past due and what to do."""
    db, as_of = tmp_path / "bare.duckdb", date(2013, 6, 30)
    ardesk(db, "import", "invoices", str(IBM), "--mapping", "ibm_ar_invoice_register")
    df = ibm()
    past_due = df[(df["InvoiceDate"] <= as_of) & (df["SettledDate"] > as_of) & (df["DueDate"] < as_of)]
    customers, amount = past_due["customerID"].nunique(), pd.to_numeric(past_due["InvoiceAmount"]).sum()
    assert customers > 0

    def reach() -> list[dict]:
        frame = pd.read_json(io.StringIO(ardesk(db, "dunning", "reach", "--as-of", as_of.isoformat(),
                                                "--format", "json")))
        return [{"reach": r.reach, "customers": r.customers, "invoices": r.invoices, "overdue_ar": round(r.overdue_ar, 2)}
                for r in frame.itertuples()]

    expected = {"customers": customers, "invoices": len(past_due), "overdue_ar": round(amount, 2)}
    assert reach() == [{"reach": "no_policy", **expected}]
    out = ardesk(db, "dunning", "due", "--as-of", as_of.isoformat())
    assert f"Of {customers} customer(s) with invoices past due, {customers} on no dunning policy ({amount:,.2f} USD " \
           "past due). To dun them: create a policy" in out

    policy = tmp_path / "policy.toml"
    policy.write_text('[[policy]]\nname = "Gentle"\n\n[[policy.stage]]\nname = "Nudge"\nday_offset = 1\n'
                      'channels = [{ channel = "email", template = "reminder_friendly" }]\n')
    ardesk(db, "policies", "apply", str(policy))
    assert reach() == [{"reach": "policy_no_email", **expected}]  # a policy for all, but nobody to email
    assert "To dun them: import contacts" in ardesk(db, "dunning", "due", "--as-of", as_of.isoformat())
