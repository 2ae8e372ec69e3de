"""Manual dunning stages: the ones waiting for a collector's approval, "approve and send", and "skip".

Rule: a stage whose mode is "manual" and that is due on D (`dunning_schedule`: the run's rules)
waits for approval, one item per customer and stage (its channels, invoices, open amount in the
reporting currency; invoices held with what is known now left out), on the worklist ("Stages waiting for approval") and on the Customer 360.
- **Approve and send** (`approve_stage`): the stage's channels act exactly as an automatic stage's
  do (`dunning_channels.act_on_stages`: the same keys, the same re-checks: open, due, not disputed,
  not paused, with what is known now), and each invoice's stage is recorded as run once; the item
  leaves the list. When no channel could act (an email-only stage without a usable contact) nothing
  is recorded and the item stays, with the reason.
- **Skip** (`skip_stage`): nothing is sent; each invoice's stage is recorded with outcome 'waived',
  so the invoice goes on to the next stage at that stage's own date. A waived stage counts as passed,
  not as sent: it is no message for `min_days_between` and no stage reached in dunning effectiveness.
  ('skipped' is not used: in imported history it marks a stage that did not go out, which the rules
  of the run try again.)
Both need `act_on_customers` (collectors, admins) and write one audit line ("dunning.approve",
"dunning.skip"). A stage already approved or skipped on D does nothing the second time (`repeated`);
a stage that waits for nothing (paid, disputed, paused, not yet due, automatic) is refused with the
reason in words.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd
import sqlalchemy as sa

from analytics.access import audit
from analytics.access.roles import Actor, require
from analytics.collections.dunning_channels import act_on_stages, customers_of, held_now, stage_channels
from analytics.collections.dunning_schedule import CUSTOMER_DUE_STAGES_SQL, due_stages
from analytics.collections.followups import FollowUpError
from analytics.collections.holds import disputed_sql
from analytics.collections.outreach.config import OutreachConfig
from analytics.ledger.open_items import CUSTOMER_OPEN_ITEMS_SQL
from analytics.settings import load_settings
from analytics.store.connection import Store, bulk_insert, read_df
from analytics.store.ids import reserve_ids
from analytics.store.schema import DUNNING_RUN_IDS

WAITING_COLUMNS = ["customer_id", "customer_name", "collector", "config_id", "config_version", "stage_no",
                   "stage_name", "channels", "invoices", "documents", "open_amount", "entry_ids"]
_STAGE = ["customer_id", "config_id", "config_version", "stage_no"]


class StageApprovalError(FollowUpError):
    """A stage that cannot be approved or skipped, with the reason in words."""


def _manual_due(store: Store, as_of: date, customer_id: str | None = None) -> pd.DataFrame:
    if customer_id is None:
        due = due_stages(store, as_of)
    else:
        due = store.read(CUSTOMER_DUE_STAGES_SQL + " ORDER BY due_date, entry_id", {
            "as_of": as_of, "reporting": load_settings().reporting_currency, "customer_id": customer_id})
    return due[due["mode"] == "manual"].reset_index(drop=True)


def stages_waiting(store: Store, as_of: date, collector: str | None = None,
                   customer_id: str | None = None) -> pd.DataFrame:
    """The manual stages due on D, one row per customer and stage (WAITING_COLUMNS; open_amount in the
    reporting currency), most open first; for one collector's customers or one customer when given.
    Invoices disputed or paused by a promise with what is known now are left out (approving could not
    send them)."""
    due = _manual_due(store, as_of, customer_id)
    due = due[~due["entry_id"].astype(int).isin(held_now(store, due["entry_id"].astype(int).tolist(), as_of))]
    if due.empty:
        return pd.DataFrame(columns=WAITING_COLUMNS)
    due = due.copy()
    plan = stage_channels(store, due).drop_duplicates([*_STAGE, "act_channel"])
    plan["words"] = plan["act_channel"] + plan["act_template"].map(lambda t: f" ({t})" if isinstance(t, str) else "")
    channels = plan.groupby(_STAGE, as_index=False).agg(channels=("words", ", ".join))
    due["reporting"] = due["open_amount"].astype(float) * due["fx_rate"].astype(float).fillna(1.0)
    rows = (due.groupby([*_STAGE, "stage_name"], as_index=False)
            .agg(invoices=("entry_id", "count"), open_amount=("reporting", "sum"),
                 documents=("document_number", lambda d: ", ".join(sorted(map(str, d)))),
                 entry_ids=("entry_id", lambda e: sorted(map(int, e))))
            .merge(channels, on=_STAGE))
    rows = rows.merge(customers_of(store, rows["customer_id"].unique().tolist()), on="customer_id", how="left")
    if collector:
        rows = rows[rows["collector"] == collector]
    rows["open_amount"] = rows["open_amount"].round(2)
    return rows.sort_values(["open_amount", "customer_id", "stage_no"], ascending=[False, True, True],
                            ignore_index=True)[WAITING_COLUMNS]


def _why_nothing_waits(store: Store, customer_id: str, as_of: date, stage_no: int | None) -> str:
    """Why no manual stage (or not stage N) of the customer waits on D, in words."""
    what = f"no manual dunning stage{f' {stage_no}' if stage_no else ''} of {customer_id} waits for approval " \
           f"on {as_of}"
    if store.scalar("SELECT COUNT(*) FROM customers WHERE customer_id = :c", {"c": customer_id}) == 0:
        return f"customer {customer_id!r}: there is no such customer."
    sql = f"""WITH items AS ({CUSTOMER_OPEN_ITEMS_SQL})
        SELECT i.entry_id, i.document_number, i.days_past_due,
               CASE WHEN {disputed_sql('i.entry_id', 'i.customer_id', known_now=True)} THEN 1 ELSE 0 END AS disputed
        FROM items i WHERE i.customer_id = :customer_id AND i.open_amount > 0 ORDER BY i.document_number"""  # noqa: S608
    items = store.read(sql, {"as_of": as_of, "reporting": load_settings().reporting_currency,
                             "customer_id": customer_id})
    if items.empty:
        return f"{what}: it has no open invoice (paid in full)."
    held = held_now(store, items["entry_id"].astype(int).tolist(), as_of)
    if held:
        named = ", ".join(f"{r.document_number} {'disputed' if r.disputed else 'paused by a promise to pay'}"
                          for r in items.itertuples(index=False) if int(r.entry_id) in held)
        return f"{what}: its invoices are held out of dunning ({named})."
    automatic = due_stages_of(store, customer_id, as_of)
    if len(automatic):
        return f"{what}: its due stage is automatic; the daily dunning run sends it."
    return f"{what}: no invoice is due for a manual stage yet (or the stage was already approved or skipped)."


def due_stages_of(store: Store, customer_id: str, as_of: date) -> pd.DataFrame:
    """Every stage due on D for one customer's invoices, automatic or manual."""
    return store.read(CUSTOMER_DUE_STAGES_SQL, {"as_of": as_of, "reporting": load_settings().reporting_currency,
                                                "customer_id": customer_id})


def _acted_before(store: Store, customer_id: str, as_of: date, stage_no: int | None, outcomes: tuple[str, ...]) -> bool:
    sql = ("SELECT COUNT(*) FROM dunning_runs WHERE customer_id = :c AND run_date = :d AND outcome IN :o"  # noqa: S608
           + ("" if stage_no is None else " AND stage_no = :s"))
    with store.engine.connect() as conn:
        found = conn.execute(sa.text(sql).bindparams(sa.bindparam("o", expanding=True)),
                             {"c": customer_id, "d": as_of, "s": stage_no, "o": list(outcomes)}).scalar()
    return bool(found)


def _chosen(store: Store, customer_id: str, as_of: date, stage_no: int | None,
            outcomes: tuple[str, ...]) -> pd.DataFrame | None:
    """The due rows of the stage to approve or skip, held invoices left out; None when it was already
    approved or skipped on D; StageApprovalError with the reason when nothing waits."""
    due = _manual_due(store, as_of, customer_id)
    if stage_no is not None:
        due = due[due["stage_no"] == int(stage_no)]
    if due.empty:
        if _acted_before(store, customer_id, as_of, stage_no, outcomes):
            return None
        raise StageApprovalError(_why_nothing_waits(store, customer_id, as_of, stage_no))
    stages = sorted(set(due["stage_no"].astype(int)))
    if len(stages) > 1:
        raise StageApprovalError(f"{customer_id} has stages {', '.join(map(str, stages))} waiting for approval on "
                                 f"{as_of}: name the stage to approve or skip.")
    held = held_now(store, due["entry_id"].astype(int).tolist(), as_of)
    if len(held) == len(due):
        raise StageApprovalError(_why_nothing_waits(store, customer_id, as_of, stages[0]))
    return due[~due["entry_id"].astype(int).isin(held)].reset_index(drop=True)


def approve_stage(store: Store, actor: Actor, customer_id: str, as_of: date, stage_no: int | None = None, *,
                  config: OutreachConfig | None = None) -> dict[str, Any]:
    """Approve and send the customer's manual stage due on D (module rule): every channel acts as an
    automatic stage's would. Returns customer_id, stage_no, status ("sent", "not sent", "already done"),
    what each channel did (`channels`), `repeated`."""
    require(actor, "act_on_customers")
    due = _chosen(store, customer_id, as_of, stage_no, ("sent", "done"))
    if due is None:
        return {"customer_id": customer_id, "stage_no": stage_no, "status": "already done",
                "channels": "approved or sent before on this day", "repeated": True}
    stage = int(due["stage_no"].iloc[0])
    out = act_on_stages(store, actor, as_of, due, config=config)
    words = "; ".join(f"{r.channel}: {r.status}" + (f" ({r.reason})" if isinstance(r.reason, str) and r.reason else "")
                      for r in out.itertuples(index=False))
    acted = bool(((out["status"] == "sent") | out["activity_id"].notna()).any())
    with store.write() as conn:
        audit.record(conn, actor, "dunning.approve", "customer", customer_id,
                     new={"stage_no": stage, "as_of": as_of, "invoices": due["document_number"].tolist(),
                          "channels": out[["channel", "status"]].to_dict("records"), "acted": acted},
                     detail=f"stage {stage} {due['stage_name'].iloc[0]} approved by {actor.username}: {words}")
    return {"customer_id": customer_id, "stage_no": stage, "status": "sent" if acted else "not sent",
            "channels": words, "repeated": False}


def skip_stage(store: Store, actor: Actor, customer_id: str, as_of: date, stage_no: int | None = None) -> dict[str, Any]:
    """Skip the customer's manual stage due on D (module rule): its invoices' stage is recorded as
    'waived' on D and nothing is sent. Returns customer_id, stage_no, status, invoices, `repeated`."""
    require(actor, "act_on_customers")
    due = _chosen(store, customer_id, as_of, stage_no, ("waived",))
    if due is None:
        return {"customer_id": customer_id, "stage_no": stage_no, "status": "already skipped", "invoices": 0,
                "repeated": True}
    stage = int(due["stage_no"].iloc[0])
    with store.write() as conn:
        done = read_df(conn, sa.text("SELECT DISTINCT entry_id FROM dunning_runs WHERE entry_id IN :ids AND "
                                     "run_date >= :d AND outcome IN ('sent', 'done', 'waived')")
                       .bindparams(sa.bindparam("ids", expanding=True)),
                       {"ids": due["entry_id"].astype(int).tolist(), "d": as_of})
        rows = due[~due["entry_id"].astype(int).isin(done["entry_id"].astype(int).tolist())].reset_index(drop=True)
        if len(rows):
            first = reserve_ids(conn, DUNNING_RUN_IDS, len(rows))
            bulk_insert(conn, "dunning_runs", rows.assign(
                run_id=range(first, first + len(rows)), run_date=pd.Timestamp(as_of), outcome="waived")[
                ["run_id", "entry_id", "customer_id", "config_id", "config_version", "stage_no", "run_date",
                 "outcome"]])
        audit.record(conn, actor, "dunning.skip", "customer", customer_id,
                     new={"stage_no": stage, "as_of": as_of, "invoices": rows["document_number"].tolist(),
                          "outcome": "waived"},
                     detail=f"stage {stage} {due['stage_name'].iloc[0]} skipped by {actor.username}: nothing sent")
    return {"customer_id": customer_id, "stage_no": stage, "status": "skipped", "invoices": len(rows),
            "repeated": False}
