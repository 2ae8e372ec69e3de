"""What every channel of a due dunning stage does, once per (customer, stage, date): the one engine
function behind the automatic run (`automatic_dunning`) and a collector's "approve and send"
(`dunning_approval`).

Rule: a stage has one or more channels (`dunning_stage_channels`; a stage with none there has its
own channel and template). For the invoices due for the stage on D (`dunning_schedule.due_stages`),
per customer and channel:
- email: one email per customer listing those invoices (the channel's template, with the policy's
  interest and the stage's fee: `collections.charges`), through outreach and every rule it keeps (a
  usable contact, the frequency cap, the paid/disputed re-check right before it leaves), under the
  action key "dunning-<D>-<config>-<stage>-email"; fees are booked only when the policy says so;
- letter: a task "Post letter" for the customer's collector, due D, holding the letter as rendered
  (the channel's template over those invoices). AR Desk renders letters but cannot post them: a
  letter logged as sent before it is in the post would claim a contact that has not happened (and
  take the customer's items off the worklist), so the collector prints it (the Customer 360 offers
  the letter as a PDF under the letterhead, with the statement of open items) and marks the task
  done once it is posted;
- call: a task "Call" for the customer's collector, due D, naming the invoices;
- sms: a task "Send SMS" for the collector, due D: no SMS gateway exists in AR Desk, the task says
  so and holds the text when the channel names a template;
- escalation: the escalation a collector logs (`followups.escalate`, to a manager): the customer's
  status becomes 'escalated' and an escalation activity records it.
Every activity carries the idempotency key "dunning-<D>-<config>-<stage>-<channel>-<customer>" (the
customer as a digest when the key would pass 64 characters), so a second run the same day writes
nothing new. Right before acting, the invoices are re-checked with what is known now
(`collections.holds`, known_now): an invoice disputed or paused by a promise since D is left out.
The stage counts as run once one of its channels acted: one `dunning_runs` row per invoice (outcome
'sent', dated D), never one per channel. A sent email records the invoices it listed (`delivery`);
an activity (written now or by an earlier attempt) records every invoice of the stage not yet run. A stage whose channels all failed (an email-only stage without a usable contact) stays
due and is tried again by the next run, as before. One audit line per activity, per escalated
status and per customer stage recorded ("dunning.stage_run").
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime

import pandas as pd
import sqlalchemy as sa

from analytics.access.roles import Actor, require
from analytics.collections.charges import book_charges
from analytics.collections.holds import dunning_hold_sql
from analytics.collections.outreach.config import OutreachConfig, OutreachError
from analytics.collections.outreach.delivery import send_now
from analytics.collections.outreach.queue import preview
from analytics.ledger.stage_results import refresh_stage_results
from analytics.store.connection import Store, bulk_insert, read_df
from analytics.store.ids import reserve_ids
from analytics.store.schema import DUNNING_RUN_IDS

RUN_COLUMNS = ["customer_id", "template", "invoices", "open_amount", "message_id", "status", "reason",
               "stage_no", "channel", "action", "activity_id"]
CHANNELS = ("email", "letter", "call", "sms", "escalation")
TASK_SUBJECTS = {"letter": "Post letter", "call": "Call", "sms": "Send SMS"}
NO_SMS_GATEWAY = ("AR Desk has no SMS gateway: send this text from a phone (or skip it), then mark this task "
                  "done.")
LETTER_MARKER = "-- The letter to post --"  # in a "Post letter" task's body, the rendered letter follows it
_CHARGES = ["interest_rate", "fee", "book_fees"]
_STAGE = ["customer_id", "config_id", "config_version", "stage_no"]

_STAGE_CHARGES_SQL = """
SELECT s.config_id, s.version AS config_version, s.stage_no, c.interest_rate, s.fee, c.book_fees
FROM dunning_stages s JOIN dunning_configs c ON c.config_id = s.config_id AND c.version = s.version
"""


def channel_key(as_of: date, config_id: int, stage_no: int, channel: str, customer_id: str) -> str:
    """The idempotency key of one channel's activity for one customer's stage on D (at most 64 characters)."""
    head = f"dunning-{as_of.isoformat()}-{int(config_id)}-{int(stage_no)}-{channel}-"
    key = head + customer_id
    return key if len(key) <= 64 else (head + hashlib.sha1(customer_id.encode()).hexdigest()[:20])[:64]  # noqa: S324


def email_key(as_of: date, config_id: int, stage_no: int) -> str:
    """The outreach action key of one stage's emails on D (one message per customer under it)."""
    return f"dunning-{as_of.isoformat()}-{int(config_id)}-{int(stage_no)}-email"


def stage_channels(store: Store, due: pd.DataFrame) -> pd.DataFrame:
    """The due rows (`due_stages`) once per channel of their stage: columns act_channel, act_template."""
    channels = store.read("SELECT config_id, version AS config_version, stage_no, channel AS act_channel, "
                          "template AS act_template FROM dunning_stage_channels")
    plan = due.merge(channels.astype({"config_id": "int64", "config_version": "int64", "stage_no": "int64"}),
                     on=["config_id", "config_version", "stage_no"], how="left") if len(due) else \
        due.assign(act_channel=None, act_template=None)
    own = plan["act_channel"].isna()
    plan.loc[own, "act_template"] = plan.loc[own, "template"]
    plan.loc[own, "act_channel"] = plan.loc[own, "channel"]
    plan["order"] = plan["act_channel"].map({c: i for i, c in enumerate(CHANNELS)})
    return plan.sort_values(["order", "customer_id", "stage_no", "entry_id"], ignore_index=True).drop(columns="order")


def customers_of(store: Store, customer_ids: list[str]) -> pd.DataFrame:
    """customer_id, customer_name, collector of these customers."""
    if not customer_ids:
        return pd.DataFrame(columns=["customer_id", "customer_name", "collector"])
    with store.engine.connect() as conn:
        return read_df(conn, sa.text("SELECT customer_id, name AS customer_name, collector FROM customers "
                                     "WHERE customer_id IN :ids").bindparams(sa.bindparam("ids", expanding=True)),
                       {"ids": [str(c) for c in customer_ids]})


def held_now(store: Store, entry_ids: list[int], as_of: date) -> set[int]:
    """Which of these invoices are disputed or paused by a promise with what is known now."""
    if not entry_ids:
        return set()
    sql = (f"SELECT e.entry_id FROM ledger_entries e WHERE e.entry_id IN :ids AND "  # noqa: S608 - constants
           f"{dunning_hold_sql('e.entry_id', 'e.customer_id', known_now=True)}")
    with store.engine.connect() as conn:
        rows = conn.execute(sa.text(sql).bindparams(sa.bindparam("ids", expanding=True)),
                            {"ids": [int(e) for e in entry_ids], "as_of": as_of}).fetchall()
    return {int(r[0]) for r in rows}


def per_customer(store: Store, plan: pd.DataFrame) -> pd.DataFrame:
    """The channel plan grouped per customer, stage and channel: invoices, open_amount (own currency),
    oldest days_past_due, entry_ids, documents, and the stage's charges."""
    keys = [*_STAGE, "stage_name", "act_channel", "act_template"]
    if plan.empty:
        return pd.DataFrame(columns=[*keys, "invoices", "open_amount", "days_past_due", "entry_ids", "documents",
                                     *_CHARGES])
    charges = store.read(_STAGE_CHARGES_SQL).astype({"config_id": "int64", "config_version": "int64",
                                                     "stage_no": "int64"})
    grouped = (plan.groupby(keys, dropna=False, as_index=False, sort=False)
               .agg(invoices=("entry_id", "count"), open_amount=("open_amount", "sum"),
                    days_past_due=("days_past_due", "max"), entry_ids=("entry_id", lambda e: sorted(map(int, e))),
                    documents=("document_number", lambda d: ", ".join(sorted(map(str, d))))))
    grouped = grouped.merge(charges, on=["config_id", "config_version", "stage_no"], how="left")
    grouped["interest_rate"] = grouped["interest_rate"].astype(float).fillna(0.0)
    grouped["fee"] = grouped["fee"].astype(float).fillna(0.0)
    grouped["book_fees"] = grouped["book_fees"].astype(object).fillna(False).astype(bool)
    grouped["open_amount"] = grouped["open_amount"].astype(float).round(2)
    return grouped


def letter_of_task(body: str | None) -> str | None:
    """The rendered letter held by a "Post letter" task's body (what its PDF prints), or None."""
    if not isinstance(body, str) or LETTER_MARKER not in body:
        return None
    return body.split(LETTER_MARKER, 1)[1].strip()


def _describe(row: pd.Series, collector: str | None) -> str:
    """The would-be action of one channel, in words (a dry run lists it)."""
    template = row["act_template"] if isinstance(row["act_template"], str) else None
    if row["act_channel"] == "email":
        return f"email {template}" if template else "email (no template: cannot be sent)"
    if row["act_channel"] == "escalation":
        return "escalate to a manager (status escalated)"
    return (f"task for {collector or 'the collectors'}: {TASK_SUBJECTS[row['act_channel']]} "
            f"{row['stage_name']}" + (f" ({template})" if template else ""))


def _rendered(store: Store, group: pd.DataFrame, as_of: date) -> dict[str, str]:
    """Each customer's text of the channel's template over its invoices (letters, SMS), by customer."""
    out: dict[str, str] = {}
    for template, part in group[group["act_template"].notna()].groupby("act_template"):
        try:
            drafts = preview(store, part["customer_id"].tolist(), str(template), as_of,
                             only_entries=dict(zip(part["customer_id"], part["entry_ids"], strict=True)))
        except OutreachError as exc:  # a retired or broken template: the task still goes, saying why
            out.update({(str(template), c): f"The template {template} could not be rendered ({exc}); write the "
                                            "text by hand." for c in part["customer_id"]})
            continue
        out.update({(str(template), d.customer_id): f"Subject: {d.subject}\n\n{d.body}" for d in drafts})
    return out


def _activities(store: Store, rows: pd.DataFrame, as_of: date, collectors: dict[str, str | None],
                actor: Actor) -> pd.DataFrame:
    """The activity of each letter, call, sms and escalation row (not yet written)."""
    texts = _rendered(store, rows[rows["act_channel"].isin(["letter", "sms"])], as_of)
    now = datetime.now()
    out = []
    for r in rows.itertuples(index=False):  # one activity per customer stage and channel, built in memory
        template = r.act_template if isinstance(r.act_template, str) else None
        what = f"{r.invoices} invoice(s) due for stage {int(r.stage_no)} {r.stage_name}: {r.documents} " \
               f"({r.open_amount:,.2f} open)"
        text = texts.get((template, r.customer_id), "") if template else ""
        if text and r.act_channel == "letter":
            text = f"{LETTER_MARKER}\n{text}"
        base = {"customer_id": r.customer_id, "occurred_at": now, "author": actor.username,
                "department": "collections", "amount": float(r.open_amount),
                "reason": f"dunning stage {int(r.stage_no)} {r.stage_name}"[:200],
                "idempotency_key": channel_key(as_of, r.config_id, r.stage_no, r.act_channel, r.customer_id)}
        if r.act_channel == "escalation":
            out.append({**base, "kind": "escalation", "target": "manager", "due_date": None, "assignee": None,
                        "status": None, "subject": f"Escalated to manager: dunning stage {r.stage_name}"[:200],
                        "body": what})
            continue
        body = {"letter": "Print this letter with the customer's statement and post it; mark this task done "
                          "once it is in the post.",
                "call": "Call the customer about these invoices and log the call.",
                "sms": NO_SMS_GATEWAY}[r.act_channel]
        out.append({**base, "kind": "task", "target": None, "due_date": as_of, "status": "open",
                    "assignee": collectors.get(r.customer_id),
                    "subject": (f"{TASK_SUBJECTS[r.act_channel]}: {r.stage_name}"
                                + (f" ({template})" if template else ""))[:200],
                    "body": "\n\n".join(p for p in (body, what, text) if p)})
    return pd.DataFrame(out)


def _audit_lines(actor: Actor, action: str, entity: str, ids: pd.Series, values: list[str], detail: str) -> pd.DataFrame:
    return pd.DataFrame({"logged_at": datetime.now(), "actor": actor.username, "action": action, "entity": entity,
                         "entity_id": ids.astype(str).to_numpy(), "new_values": values, "detail": detail})


def _write_activities(conn: sa.Connection, actor: Actor, new: pd.DataFrame) -> dict[str, int]:
    """Insert the activities whose key is not used yet (and the escalated statuses), audited; returns
    key -> activity id for every key of `new`, written now or before."""
    keys = new["idempotency_key"].tolist()
    stmt = sa.text("SELECT idempotency_key, activity_id FROM activities WHERE idempotency_key IN :keys") \
        .bindparams(sa.bindparam("keys", expanding=True))
    before = dict(conn.execute(stmt, {"keys": keys}).fetchall())
    fresh = new[~new["idempotency_key"].isin(list(before))]
    if fresh.empty:
        return {k: int(v) for k, v in before.items()}
    bulk_insert(conn, "activities", fresh.astype({"due_date": "datetime64[ns]"}))
    ids = dict(conn.execute(stmt, {"keys": fresh["idempotency_key"].tolist()}).fetchall())
    fresh = fresh.assign(activity_id=fresh["idempotency_key"].map(ids))
    lines = [_audit_lines(actor, "activity." + kind, "activity", part["activity_id"],
                          part.drop(columns="activity_id").to_json(orient="records", lines=True,
                                                                   date_format="iso").splitlines(),
                          "a channel of a due dunning stage")
             for kind, part in fresh.groupby("kind")]
    escalated = fresh.loc[fresh["kind"] == "escalation", "customer_id"].drop_duplicates().tolist()
    if escalated:
        estmt = sa.text("SELECT customer_id, status FROM customers WHERE customer_id IN :c") \
            .bindparams(sa.bindparam("c", expanding=True))
        old = dict(conn.execute(estmt, {"c": escalated}).fetchall())
        conn.execute(sa.text("UPDATE customers SET status = 'escalated', updated_at = :now WHERE customer_id IN :c")
                     .bindparams(sa.bindparam("c", expanding=True)), {"now": datetime.now(), "c": escalated})
        lines.append(_audit_lines(actor, "customer.status", "customer", pd.Series(escalated),
                                  [json.dumps({"old": {"status": old.get(c)}, "new": {"status": "escalated"}})
                                   for c in escalated], "escalation channel of a dunning stage"))
    bulk_insert(conn, "audit_log", pd.concat(lines, ignore_index=True))
    return {**{k: int(v) for k, v in before.items()}, **{k: int(v) for k, v in ids.items()}}


def record_stages_acted(conn: sa.Connection, actor: Actor, plan: pd.DataFrame, acted: pd.DataFrame,
                        as_of: date) -> int:
    """Record the stage of every invoice of `plan` whose (customer, config, version, stage) is in
    `acted` as run on D (outcome 'sent'), except invoices that already have a run dated D or later
    (the email's delivery recorded them, or an earlier attempt); audited per customer stage."""
    if acted.empty or plan.empty:
        return 0
    rows = plan.merge(acted[_STAGE].drop_duplicates(), on=_STAGE)[[*_STAGE, "entry_id"]].drop_duplicates("entry_id")
    done = read_df(conn, sa.text("SELECT DISTINCT entry_id FROM dunning_runs WHERE entry_id IN :ids "
                                 "AND run_date >= :d AND outcome IN ('sent', 'done', 'waived')")
                   .bindparams(sa.bindparam("ids", expanding=True)),
                   {"ids": [int(e) for e in rows["entry_id"]], "d": as_of})
    rows = rows[~rows["entry_id"].isin(done["entry_id"].astype(int).tolist())].reset_index(drop=True)
    if rows.empty:
        return 0
    first = reserve_ids(conn, DUNNING_RUN_IDS, len(rows))
    bulk_insert(conn, "dunning_runs", rows.assign(run_id=range(first, first + len(rows)),
                                                  run_date=pd.Timestamp(as_of), outcome="sent")[
        ["run_id", "entry_id", "customer_id", "config_id", "config_version", "stage_no", "run_date", "outcome"]])
    refresh_stage_results(conn, entry_ids=[int(e) for e in rows["entry_id"]])
    stages = rows.groupby(_STAGE, as_index=False).agg(invoices=("entry_id", "count"))
    bulk_insert(conn, "audit_log", _audit_lines(
        actor, "dunning.stage_run", "customer", stages["customer_id"],
        stages.to_json(orient="records", lines=True).splitlines(), f"dunning stage run on {as_of.isoformat()}"))
    return len(rows)


def act_on_stages(store: Store, actor: Actor, as_of: date, due: pd.DataFrame, *, dry_run: bool = False,
                  config: OutreachConfig | None = None) -> pd.DataFrame:
    """Let every channel of the due stages in `due` (rows of `due_stages`) act (module rule); one row
    per customer, stage and channel (RUN_COLUMNS) with its status: an email's delivery status; "task
    created", "escalated", or "already done" (its key was used); a dry run "would send" / "would create
    task" / "would escalate" and writes nothing."""
    require(actor, "act_on_customers")
    plan = stage_channels(store, due)
    held = held_now(store, plan["entry_id"].astype(int).tolist(), as_of)
    plan = plan[~plan["entry_id"].astype(int).isin(held)]
    rows = per_customer(store, plan)
    if rows.empty:
        return pd.DataFrame(columns=RUN_COLUMNS)
    who = customers_of(store, rows["customer_id"].unique().tolist())
    collectors = {c: k for c, k in zip(who["customer_id"], who["collector"], strict=True) if isinstance(k, str)}
    rows["action"] = [_describe(r, collectors.get(r["customer_id"])) for _, r in rows.iterrows()]
    rows = rows.assign(template=rows["act_template"], channel=rows["act_channel"], message_id=None, reason=None,
                       activity_id=None, status=None)
    if dry_run:
        rows["status"] = rows["channel"].map({"email": "would send", "escalation": "would escalate"}).fillna(
            "would create task")
        return rows[RUN_COLUMNS]
    emails = rows[rows["channel"] == "email"]
    results = []
    no_template = emails[emails["template"].isna()]
    results.append(no_template.assign(status="not sent", reason="the stage's email channel names no template"))
    for (config_id, stage_no, template, rate, fee, book), group in emails[emails["template"].notna()].groupby(
            ["config_id", "stage_no", "template", *_CHARGES], sort=True):
        sent = send_now(store, actor, group["customer_id"].tolist(), str(template),
                        action_key=email_key(as_of, config_id, stage_no), as_of=as_of, config=config,
                        only_entries=dict(zip(group["customer_id"], group["entry_ids"], strict=True)),
                        charges=(rate, fee) if rate or fee else None)
        if book and (rate or fee):
            went = sent.loc[sent["status"] == "sent", "customer_id"].tolist()
            if went:
                book_charges(store, actor, as_of, annual_rate=rate, fee=fee, customer_ids=went,
                             stage_name=str(group["stage_name"].iloc[0]))
        results.append(group.drop(columns=["message_id", "status", "reason"]).merge(sent, on="customer_id",
                                                                                     how="left"))
    others = rows[rows["channel"] != "email"]
    with store.write() as conn:
        written: dict[str, int] = {}
        if len(others):
            new = _activities(store, others, as_of, collectors, actor)
            before = set(read_df(conn, sa.text("SELECT idempotency_key FROM activities WHERE idempotency_key IN :k")
                                 .bindparams(sa.bindparam("k", expanding=True)),
                                 {"k": new["idempotency_key"].tolist()})["idempotency_key"])
            written = _write_activities(conn, actor, new)
            keys = [channel_key(as_of, r.config_id, r.stage_no, r.channel, r.customer_id)
                    for r in others.itertuples(index=False)]
            others = others.assign(activity_id=[written.get(k) for k in keys], status=[
                "already done" if k in before else "escalated" if c == "escalation" else "task created"
                for k, c in zip(keys, others["channel"], strict=True)])
            results.append(others)
        out = pd.concat([r for r in results if len(r)], ignore_index=True) if any(len(r) for r in results) \
            else pd.DataFrame(columns=[*RUN_COLUMNS, *_STAGE])
        # a sent email recorded the invoices it listed itself (`delivery`); an activity acts for the whole stage
        record_stages_acted(conn, actor, plan, out[out["activity_id"].notna()], as_of)
    out = out.assign(order=out["channel"].map({c: i for i, c in enumerate(CHANNELS)}))
    return out.sort_values(["stage_no", "order", "customer_id"], ignore_index=True)[RUN_COLUMNS]
