"""Automatic dunning: send every automatic email stage that is due, once, as a daily job would.

Rule: of the stages due on D (`dunning_schedule.due_stages`), those whose mode is "automatic",
whose channel is "email" and that name a template go out through outreach: one email per customer
and template, listing only the invoices due for that stage (never a disputed invoice, nor one a
promise to pay pauses: `collections.holds`), under the action key "dunning-<D>-<template>",
so running the job again on the same day sends nothing twice. Delivery records each invoice's stage
as run (`record_stage_runs`), dated D (a back-dated run records D), and keeps every outreach rule
(a usable accounts-payable contact, the per-customer frequency cap, the paid/disputed re-check).
Charges: the email shows the interest accrued on the invoices it lists at the policy's annual
`interest_rate` and the stage's `fee` (`collections.charges`); they are booked as debit
adjustments only when the policy says `book_fees = true`, for the customers whose email went out.
Letters, calls, escalations and manual stages stay on the worklist for a person. Then customers
whose policy is exhausted get its end action, once (`dunning_exhausted.run_end_actions`). Every
run writes one audit line, "dunning.run".

Schedule: `[dunning] automatic_send_at = "HH:MM"` makes the running app send once a day at or
after that time (its inbox thread calls `run_daily`); empty switches it off. `ardesk dunning run`
does the same by hand, and queues the run for the app when the app owns the store.
"""

from __future__ import annotations

from datetime import date, datetime, time

import pandas as pd

from analytics.access import audit
from analytics.access.roles import SYSTEM, Actor, require
from analytics.collections.charges import book_charges
from analytics.collections.dunning_exhausted import run_end_actions
from analytics.collections.dunning_schedule import due_stages
from analytics.collections.outreach.config import OutreachConfig
from analytics.collections.outreach.delivery import send_now
from analytics.settings import load_settings
from analytics.store.connection import Store

RUN_COLUMNS = ["customer_id", "template", "invoices", "open_amount", "message_id", "status", "reason"]
_CHARGES = ["interest_rate", "fee", "book_fees"]

_STAGE_CHARGES_SQL = """
SELECT s.config_id, s.version AS config_version, s.stage_no, c.interest_rate, s.fee, c.book_fees
FROM dunning_stages s JOIN dunning_configs c ON c.config_id = s.config_id AND c.version = s.version
"""


def action_key(as_of: date, template: str) -> str:
    """The idempotency key of one day's automatic send of one template."""
    return f"dunning-{as_of.isoformat()}-{template}"


def automatic_sends_due(store: Store, as_of: date) -> pd.DataFrame:
    """One row per customer and template the automatic job would email on D: invoices, open_amount
    (own currency), oldest days_past_due, entry_ids (the invoices the email lists)."""
    due = due_stages(store, as_of)
    auto = due[(due["mode"] == "automatic") & (due["channel"] == "email") & due["template"].notna()]
    if auto.empty:
        return pd.DataFrame(columns=["customer_id", "template", "invoices", "open_amount", "days_past_due",
                                     "entry_ids", *_CHARGES])
    charges = store.read(_STAGE_CHARGES_SQL)
    auto = auto.merge(charges, on=["config_id", "config_version", "stage_no"], how="left")
    auto["interest_rate"] = auto["interest_rate"].astype(float).fillna(0.0)
    auto["fee"] = auto["fee"].astype(float).fillna(0.0)
    auto["book_fees"] = auto["book_fees"].fillna(False).astype(bool)
    return (auto.groupby(["customer_id", "template"], as_index=False)
            .agg(invoices=("entry_id", "count"), open_amount=("open_amount", "sum"),
                 days_past_due=("days_past_due", "max"), entry_ids=("entry_id", lambda e: sorted(map(int, e))),
                 interest_rate=("interest_rate", "max"), fee=("fee", "max"), book_fees=("book_fees", "max"))
            .sort_values(["template", "customer_id"], ignore_index=True))


def run_automatic_dunning(store: Store, actor: Actor, as_of: date, *, dry_run: bool = False,
                          config: OutreachConfig | None = None) -> pd.DataFrame:
    """Send the automatic email stages due on D (see the module rule); one row per customer and
    template with the outcome (status "would send" on a dry run, which writes nothing)."""
    require(actor, "act_on_customers")
    sends = automatic_sends_due(store, as_of)
    if dry_run:
        return sends.assign(message_id=None, status="would send", reason=None).reindex(columns=RUN_COLUMNS)
    results = []
    for (template, rate, fee, book), group in sends.groupby(["template", *_CHARGES], sort=True):
        sent = send_now(store, actor, group["customer_id"].tolist(), str(template),
                        action_key=action_key(as_of, str(template)), as_of=as_of, config=config,
                        only_entries=dict(zip(group["customer_id"], group["entry_ids"], strict=True)),
                        charges=(rate, fee) if rate or fee else None)
        if book and (rate or fee):
            went = sent.loc[sent["status"] == "sent", "customer_id"].tolist()
            if went:
                book_charges(store, actor, as_of, annual_rate=rate, fee=fee, customer_ids=went,
                             stage_name=str(template))
        results.append(group.drop(columns=["days_past_due", "entry_ids", *_CHARGES])
                       .merge(sent, on="customer_id", how="left"))
    out = pd.concat(results, ignore_index=True)[RUN_COLUMNS] if results else pd.DataFrame(columns=RUN_COLUMNS)
    counts = {str(k): int(v) for k, v in out["status"].value_counts().items()}  # a run with nothing due is logged too
    ended = run_end_actions(store, actor, as_of)  # customers whose policy is now exhausted: its end action, once
    with store.write() as conn:
        audit.record(conn, actor, "dunning.run", "dunning", as_of.isoformat(),
                     new={"counts": counts, "end_actions": len(ended)},
                     detail=f"automatic dunning for {as_of}: {len(out)} customer-template sends")
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

    Returns the run's rows, or None when nothing was due to run (off, too early, or done today)."""
    at = at if at is not None else send_time()
    if at is None or now.time() < at or ran_on(store, now.date()):
        return None
    return run_automatic_dunning(store, SYSTEM, now.date(), config=config)
