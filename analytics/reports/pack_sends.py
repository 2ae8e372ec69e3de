"""The scheduled send: the running app emails last month's pack (PDF) to `[pack] recipients` on or
after `[pack] send_on_day` of each month, once per month and recipient.

Rule: on day D of month M+1 (D >= send_on_day), the pack of month M (all customers) is queued in the
outreach outbox for every recipient without a `pack_sends` row for M, with the idempotency key
`pack-YYYY-MM-recipient` (`pack_key`), the `pack_sends` row and the audit line "pack.queue" in one
transaction; then the month's pack messages still queued are delivered by the outreach delivery (the
same claim, lease and hand-over rules as every email: never sent twice; `uncertain` waits for a
person). Running it again that month queues nothing new and finds nothing left to deliver. The app's
inbox watcher calls `run_monthly` on every round (as it calls the daily dunning run); `send_pack`
does the same for one month by hand.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import date, datetime

import pandas as pd
import sqlalchemy as sa

from analytics.access import audit
from analytics.access.roles import SYSTEM, Actor, require
from analytics.collections.outreach.config import OutreachConfig
from analytics.collections.outreach.delivery import deliver
from analytics.collections.outreach.queue import queue_staff_message
from analytics.ledger.filters import ALL
from analytics.ledger.months import add_months, month_start
from analytics.reports.monthly_pack import PackError, monthly_pack, require_pack
from analytics.reports.pack_files import format_value, pack_pdf
from analytics.settings import load_settings
from analytics.store.connection import Store
from analytics.store.schema import pack_sends

log = logging.getLogger("ardesk.pack")
KEY_LENGTH = 64  # messages.idempotency_key


@dataclass(frozen=True)
class PackSchedule:
    """`[pack]`: the day of the month the previous month's pack goes out, and to whom (none: off)."""

    send_on_day: int = 3
    recipients: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls) -> PackSchedule:
        raw = load_settings().section("pack")
        day = raw.get("send_on_day", cls.send_on_day)
        if isinstance(day, bool) or not isinstance(day, int) or not 1 <= day <= 28:
            raise PackError(f"[pack] send_on_day must be a day of the month from 1 to 28, not {day!r}.")
        recipients = raw.get("recipients", [])
        if isinstance(recipients, str) or not all(isinstance(r, str) and "@" in r for r in recipients):
            raise PackError(f'[pack] recipients must be a list of email addresses, e.g. ["cfo@example.com"], '
                            f"not {recipients!r}.")
        return cls(day, tuple(dict.fromkeys(r.strip() for r in recipients)))


def pack_key(month: date, recipient: str) -> str:
    """The outbox idempotency key of a month's pack to one recipient: `pack-YYYY-MM-recipient`
    (lower case); a recipient too long for the key is named by its SHA-256 instead."""
    key = f"pack-{month:%Y-%m}-{recipient.strip().lower()}"
    if len(key) <= KEY_LENGTH:
        return key
    return f"pack-{month:%Y-%m}-" + hashlib.sha256(recipient.strip().lower().encode()).hexdigest()[:40]


def _body(pack_tiles: pd.DataFrame, month: date, as_of: date, currency: str) -> str:
    headline = pack_tiles.set_index("kpi")
    figures = [f"{row.label}{f' ({currency})' if row.unit == 'money' else ''}: "
               f"{format_value(row.this_month, row.unit)}" for row in headline.itertuples()]
    return (f"Attached: the monthly AR pack for {month:%B %Y} (as of {as_of:%d %b %Y}, all customers).\n\n"
            + "\n".join(figures) + "\n\nSent by AR Desk on the schedule in [pack] of its settings.\n")


def month_sends(store: Store, month: date) -> pd.DataFrame:
    """The month's pack messages: recipient, message_id, status (the outbox's)."""
    return store.read("""
        SELECT p.recipient, p.message_id, m.status FROM pack_sends p JOIN messages m ON m.message_id = p.message_id
        WHERE p.month = :month ORDER BY p.recipient""", {"month": month_start(month)})


def send_pack(store: Store, actor: Actor, month: date, recipients: tuple[str, ...], *,
              config: OutreachConfig | None = None) -> pd.DataFrame:
    """Queue the month's pack for each recipient not yet queued (the module rule), then deliver what is
    still queued; one row per recipient: recipient, message_id, status, reason. The actor may have the
    pack and send email (`act_on_customers`): the app's job runs as the system."""
    require_pack(actor)
    require(actor, "act_on_customers")
    month = month_start(month)
    config = config or OutreachConfig.from_settings()
    done = set(month_sends(store, month)["recipient"])
    todo = [r for r in recipients if r not in done]
    if todo:
        pack = monthly_pack(store, actor, month, ALL)
        attachment, name = pack_pdf(pack), f"ardesk-pack-{month:%Y-%m}.pdf"
        body = _body(pack.tables["tiles"], month, pack.as_of, pack.currency)
        with store.write() as conn:
            already = {r for (r,) in conn.execute(sa.select(pack_sends.c.recipient)
                                                 .where(pack_sends.c.month == month)).all()}
            queued = []
            for recipient in (r for r in todo if r not in already):  # another process may have been first
                message_id, _ = queue_staff_message(
                    conn, actor, idempotency_key=pack_key(month, recipient), to_address=recipient,
                    subject=pack.title, body=body, attachment_name=name, attachment=attachment,
                    from_address=config.from_address)
                conn.execute(pack_sends.insert().values(month=month, recipient=recipient, message_id=message_id,
                                                        queued_at=datetime.now(), queued_by=actor.username))
                queued.append({"recipient": recipient, "message_id": message_id})
            if queued:
                audit.record(conn, actor, "pack.queue", "pack", f"{month:%Y-%m}",
                             new={"recipients": [q["recipient"] for q in queued],
                                  "message_ids": [q["message_id"] for q in queued], "attachment_name": name},
                             detail=f"monthly pack {month:%Y-%m} queued for {len(queued)} recipient(s)")
    sends = month_sends(store, month)
    pending = [int(i) for i in sends.loc[sends["status"] == "queued", "message_id"]]
    delivered = deliver(store, actor, pending, config=config) if pending else pd.DataFrame(
        columns=["message_id", "status", "reason"])
    out = sends.merge(delivered[["message_id", "status", "reason"]], on="message_id", how="left",
                      suffixes=("_before", ""))
    out["status"] = out["status"].fillna(out["status_before"])
    return out[out["recipient"].isin(recipients)][["recipient", "message_id", "status", "reason"]].reset_index(
        drop=True)


_reported: set[str] = set()  # problems already logged by this process (the watcher polls every few seconds)


def run_monthly(store: Store, now: datetime, schedule: PackSchedule | None = None,
                config: OutreachConfig | None = None) -> pd.DataFrame | None:
    """The app's monthly job: last month's pack to every recipient once `now` is on or after the send
    day; None when there is nothing to do (no recipients, too early, or every recipient's pack of the
    month has been queued and is no longer waiting in the outbox)."""
    try:
        schedule = schedule or PackSchedule.from_settings()
    except PackError as problem:
        _report(str(problem))
        return None
    if not schedule.recipients or now.day < schedule.send_on_day:
        return None
    month = add_months(now.date(), -1)
    sends = month_sends(store, month)
    waiting = set(sends.loc[sends["status"] == "queued", "recipient"])
    if set(schedule.recipients) <= set(sends["recipient"]) and not waiting:
        return None
    try:
        return send_pack(store, SYSTEM, month, schedule.recipients, config=config)
    except PackError as problem:  # e.g. an empty ledger: said once, tried again next round
        _report(f"monthly pack {month:%Y-%m}: {problem}")
        return None


def _report(problem: str) -> None:
    if problem not in _reported:
        _reported.add(problem)
        log.warning("%s", problem)
