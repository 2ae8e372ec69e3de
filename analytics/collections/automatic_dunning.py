"""Automatic dunning: every channel of every automatic stage that is due acts, once, as a daily job would.

Rule: of the stages due on D (`dunning_schedule.due_stages`), those whose mode is "automatic" act
through `dunning_channels.act_on_stages`, once per (customer, stage, date): each of the stage's
channels does its part (email: one email per customer and stage through outreach, listing only the
invoices due for that stage, never a disputed invoice nor one a promise to pay pauses; letter: a
"Post letter" task with the rendered letter for the customer's collector; call: a call task; sms: a
task saying no SMS gateway exists; escalation: the customer escalated to a manager), keyed by day,
stage, channel and customer so running the job again on the same day does nothing twice. The
invoice's stage is recorded as run (`dunning_runs`, dated D: a back-dated run records D) once one
of its channels acted, not once per channel; outreach keeps every rule (a usable accounts-payable
contact, the per-customer frequency cap, the paid/disputed re-check).
Charges: the email shows the interest accrued on the invoices it lists at the policy's annual
`interest_rate` and the stage's `fee` (`collections.charges`); they are booked as debit
adjustments only when the policy says `book_fees = true`, for the customers whose email went out.
Manual stages wait on the worklist for a collector's "approve and send" (`dunning_approval`),
which acts through the same function. Then customers whose policy is exhausted get its end action,
once (`dunning_exhausted.run_end_actions`). Every run writes one audit line, "dunning.run".

Schedule: `[dunning] automatic_send_at = "HH:MM"` makes the running app send once a day at or
after that time (its inbox thread calls `run_daily`); empty switches it off. `ardesk dunning run`
does the same by hand, and queues the run for the app when the app owns the store.
"""

from __future__ import annotations

from datetime import date, datetime, time

import pandas as pd

from analytics.access import audit
from analytics.access.roles import SYSTEM, Actor, require
from analytics.collections.dunning_channels import act_on_stages, per_customer, stage_channels
from analytics.collections.dunning_exhausted import run_end_actions
from analytics.collections.dunning_schedule import due_stages
from analytics.collections.outreach.config import OutreachConfig
from analytics.settings import load_settings
from analytics.store.connection import Store
from analytics.store.locks import DUNNING_RUNS, one_at_a_time


def automatic_sends_due(store: Store, as_of: date) -> pd.DataFrame:
    """One row per customer and automatic email stage the job would email on D: template, invoices,
    open_amount (own currency), oldest days_past_due, entry_ids (the invoices the email lists)."""
    due = due_stages(store, as_of)
    plan = stage_channels(store, due[due["mode"] == "automatic"])
    plan = plan[(plan["act_channel"] == "email") & plan["act_template"].notna()]
    return per_customer(store, plan).rename(columns={"act_template": "template"}).sort_values(
        ["template", "customer_id"], ignore_index=True)


def run_automatic_dunning(store: Store, actor: Actor, as_of: date, *, dry_run: bool = False,
                          config: OutreachConfig | None = None) -> pd.DataFrame:
    """Let every channel of the automatic stages due on D act (see the module rule); one row per
    customer, stage and channel with the outcome (a dry run lists each would-be action, writing nothing)."""
    require(actor, "act_on_customers")
    if dry_run:
        return _run_automatic_dunning(store, actor, as_of, dry_run=True, config=config)
    with one_at_a_time(store, DUNNING_RUNS):  # a second run at once waits, then finds the first's runs
        return _run_automatic_dunning(store, actor, as_of, dry_run=False, config=config)


def _run_automatic_dunning(store: Store, actor: Actor, as_of: date, *, dry_run: bool,
                           config: OutreachConfig | None) -> pd.DataFrame:
    due = due_stages(store, as_of)
    out = act_on_stages(store, actor, as_of, due[due["mode"] == "automatic"], dry_run=dry_run, config=config)
    if dry_run:
        return out
    counts = {str(k): int(v) for k, v in out["status"].value_counts().items()}  # a run with nothing due is logged too
    ended = run_end_actions(store, actor, as_of)  # customers whose policy is now exhausted: its end action, once
    with store.write() as conn:
        audit.record(conn, actor, "dunning.run", "dunning", as_of.isoformat(),
                     new={"counts": counts, "end_actions": len(ended)},
                     detail=f"automatic dunning for {as_of}: {len(out)} customer-stage-channel actions")
    return out


def send_time() -> time | None:
    """`[dunning] automatic_send_at` as a time of day, or None when automatic sending is off."""
    text = str(load_settings().section("dunning").get("automatic_send_at") or "").strip()
    if not text:
        return None
    try:
        return time.fromisoformat(text)
    except ValueError:
        raise ValueError(f'[dunning] automatic_send_at must be a time like "07:00", not {text!r}') from None


def ran_on(store: Store, day: date) -> bool:
    """Whether an automatic dunning run for `day` is in the audit log."""
    return bool(store.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'dunning.run' AND entity_id = :d",
                             {"d": day.isoformat()}))


def run_daily(store: Store, now: datetime, at: time | None = None,
              config: OutreachConfig | None = None) -> pd.DataFrame | None:
    """The app's daily job: today's run once `now` is past the send time and it has not run today.

    Several app instances on one PostgreSQL store all call it: whether today's run is done is
    decided again under the dunning-runs lock, so the one that waited finds the first's run and
    does nothing (one run, one "dunning.run" audit line a day).
    Returns the run's rows, or None when nothing was due to run (off, too early, or done today)."""
    at = at if at is not None else send_time()
    if at is None or now.time() < at or ran_on(store, now.date()):
        return None
    with one_at_a_time(store, DUNNING_RUNS):
        if ran_on(store, now.date()):
            return None
        return _run_automatic_dunning(store, SYSTEM, now.date(), dry_run=False, config=config)
