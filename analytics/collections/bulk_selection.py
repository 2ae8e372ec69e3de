"""Customers for bulk actions: the set a collector picks by days past due, overdue amount, segment,
status, last contact and owner, filtered in SQL over the one open-items rule; then the bulk
preview and send, which share one re-check so the preview's "sendable" count is what the send does.

Two separate day filters (both optional, both may be used):
- by invoice (`invoice_days` (lo, hi)): the customer has an open invoice with lo <= days past due
  <= hi (hi None: no upper bound) that no dispute or pausing promise holds (`collections.holds`,
  with what is known now). "Exactly 4 days past due" is (4, 4), "at least 30" is (30, None). Those
  invoices are the customer's *matching invoices*: the columns show them, and the bulk send lists
  only them.
- by the oldest invoice (`oldest_days` (lo, hi)): the customer's oldest open invoice is lo..hi days
  past due (a customer-level filter: the send lists every invoice the template lists).

Template per stage (`STAGE_TEMPLATE`): each customer gets the template of the highest dunning
stage (of its configuration, `dunning_schedule`) that its matching invoices (else its open invoices
past due) have reached by days past due, counting email stages with a template only; before the
first such stage is reached, that first stage's template.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import pandas as pd

from analytics.access.roles import Actor, require
from analytics.collections.dunning_schedule import CONFIG_OF_CUSTOMER_SQL
from analytics.collections.holds import dunning_hold_sql
from analytics.collections.outreach.config import OutreachConfig
from analytics.collections.outreach.delivery import send_now
from analytics.collections.outreach.queue import Draft, preview
from analytics.ledger.open_items import OPEN_ITEMS_SQL
from analytics.settings import load_settings
from analytics.store.connection import Store

STAGE_TEMPLATE = "(each customer's dunning stage)"
SELECTION_COLUMNS = ["customer_id", "name", "segment", "status", "collector", "open_ar", "overdue_ar",
                     "max_days_past_due", "matching_invoices", "matching_amount", "matching_days_from",
                     "matching_days_to", "matching_entry_ids", "stage_template", "last_contact"]


def _bounds(name: str, days: tuple[int, int | None] | None, params: dict) -> tuple[str, str]:
    """The SQL test of days past due against (lo, hi), binding :{name}_lo and :{name}_hi."""
    if days is None:
        return "TRUE", ""
    params[f"{name}_lo"] = int(days[0])
    if days[1] is None:
        return f"days_past_due >= :{name}_lo", f"at least {int(days[0])}"
    params[f"{name}_hi"] = int(days[1])
    if int(days[1]) < int(days[0]):
        raise ValueError(f"days past due: 'to' ({days[1]}) is below 'from' ({days[0]}).")
    return f"days_past_due BETWEEN :{name}_lo AND :{name}_hi", f"{days[0]}..{days[1]}"


def select_customers(
    store: Store, as_of: date, *, days_past_due: tuple[int, int] | None = None,
    invoice_days: tuple[int, int | None] | None = None, oldest_days: tuple[int, int | None] | None = None,
    min_overdue: float = 0.0, segments: list[str] | None = None, statuses: list[str] | None = None,
    not_contacted_days: int | None = None, collector: str | None = None, limit: int = 5000,
) -> pd.DataFrame:
    """Customers for bulk actions, filtered in SQL (module docstring for the day filters):

    invoice_days (lo, hi) (`days_past_due` is its older name): has a matching invoice;
    oldest_days (lo, hi): the oldest open invoice's days past due; min_overdue: overdue amount
    (reporting currency) >= it; segments / statuses: one of; not_contacted_days: no email, letter
    or call in that many days (or never); collector: owner.

    Columns: SELECTION_COLUMNS; matching_* describe the matching invoices (all open invoices past
    due when there is no invoice filter), matching_entry_ids is a list of ints, stage_template the
    template of the stage they reached (None: no email stage reached).
    """
    invoice_days = invoice_days if invoice_days is not None else days_past_due
    where, params = ["cu.open_ar > 0"], {
        "as_of": as_of, "reporting": load_settings().reporting_currency, "limit": limit,
        "min_overdue": float(min_overdue)}
    if invoice_days is not None:
        match_days, _ = _bounds("inv", invoice_days, params)
        where.append("mu.matching_invoices > 0")
    else:
        match_days = "days_past_due > 0"
    if oldest_days is not None:
        oldest, _ = _bounds("old", oldest_days, params)
        where.append(oldest.replace("days_past_due", "cu.max_days_past_due"))
    if min_overdue:
        where.append("cu.overdue_ar >= :min_overdue")
    for name, values, column in (("seg", segments, "c.segment"), ("st", statuses, "c.status")):
        if values:
            binds = [f":{name}{i}" for i in range(len(values))]
            params.update({b[1:]: v for b, v in zip(binds, values, strict=True)})
            where.append(f"{column} IN ({', '.join(binds)})")
    if not_contacted_days is not None:
        params["contact_since"] = pd.Timestamp(as_of) - pd.Timedelta(days=int(not_contacted_days))
        where.append("(lc.last_contact IS NULL OR lc.last_contact < :contact_since)")
    if collector:
        params["collector"] = collector
        where.append("c.collector = :collector")
    hold = dunning_hold_sql("items.entry_id", "items.customer_id", known_now=True)
    sql = f"""
    WITH items AS ({OPEN_ITEMS_SQL}),
    {CONFIG_OF_CUSTOMER_SQL},
    matching AS (
        SELECT items.* FROM items WHERE open_amount > 0 AND {match_days} AND NOT {hold}
    ), cu AS (
        SELECT customer_id,
               SUM(CASE WHEN open_amount > 0 THEN open_amount * fx_rate ELSE 0 END) AS open_ar,
               SUM(CASE WHEN open_amount > 0 AND days_past_due > 0 THEN open_amount * fx_rate ELSE 0 END) AS overdue_ar,
               MAX(CASE WHEN open_amount > 0 THEN days_past_due END) AS max_days_past_due
        FROM items GROUP BY customer_id
    ), mu AS (
        SELECT customer_id, COUNT(DISTINCT entry_id) AS matching_invoices, SUM(open_amount * fx_rate) AS matching_amount,
               MIN(days_past_due) AS matching_days_from, MAX(days_past_due) AS matching_days_to,
               STRING_AGG(DISTINCT CAST(entry_id AS VARCHAR), ',') AS matching_entry_ids
        FROM matching GROUP BY customer_id
    ), stage AS (
        SELECT customer_id, template,
               ROW_NUMBER() OVER (PARTITION BY customer_id
                                  ORDER BY reached DESC, reached * stage_no DESC, stage_no) AS rn
        FROM (
            SELECT m.customer_id, s.template, s.stage_no,
                   CASE WHEN m.matching_days_to >= s.day_offset
                             + CASE WHEN s.day_offset > 0 THEN lv.grace_days ELSE 0 END THEN 1 ELSE 0 END AS reached
            FROM mu m
            JOIN customer_config cc ON cc.customer_id = m.customer_id
            JOIN live lv ON lv.config_id = cc.config_id
            JOIN dunning_stages s ON s.config_id = lv.config_id AND s.version = lv.version
            WHERE s.channel = 'email' AND s.template IS NOT NULL
        ) staged
    ), lc AS (
        SELECT customer_id, MAX(occurred_at) AS last_contact FROM activities
        WHERE kind IN ('email', 'letter', 'call') GROUP BY customer_id
    )
    SELECT c.customer_id, c.name, c.segment, c.status, c.collector, cu.open_ar, cu.overdue_ar,
           cu.max_days_past_due, COALESCE(mu.matching_invoices, 0) AS matching_invoices, COALESCE(mu.matching_amount, 0) AS matching_amount,
           mu.matching_days_from, mu.matching_days_to, mu.matching_entry_ids, st.template AS stage_template,
           lc.last_contact
    FROM customers c JOIN cu ON cu.customer_id = c.customer_id
    LEFT JOIN mu ON mu.customer_id = c.customer_id
    LEFT JOIN stage st ON st.customer_id = c.customer_id AND st.rn = 1
    LEFT JOIN lc ON lc.customer_id = c.customer_id
    WHERE {' AND '.join(where)}
    ORDER BY cu.overdue_ar DESC, c.customer_id
    LIMIT :limit
    """  # noqa: S608 - composed from constants and generated bind names only
    frame = store.read(sql, params)
    for col in ("open_ar", "overdue_ar", "matching_amount"):
        frame[col] = frame[col].astype(float).round(2)
    frame["matching_invoices"] = frame["matching_invoices"].fillna(0).astype(int)
    frame["matching_entry_ids"] = [sorted(int(e) for e in ids.split(",")) if isinstance(ids, str) else []
                                   for ids in frame["matching_entry_ids"]]
    frame["stage_template"] = frame["stage_template"].astype(object).where(frame["stage_template"].notna(), None)
    return frame[SELECTION_COLUMNS]


def _groups(selection: pd.DataFrame, template: str) -> dict[str, list[str]]:
    """Which customers get which template: `template`, or each one's stage template (STAGE_TEMPLATE;
    a customer without one is left out, reason given by `bulk_preview`)."""
    if template != STAGE_TEMPLATE:
        return {template: selection["customer_id"].tolist()}
    chosen = selection[selection["stage_template"].notna()]
    return {str(t): g["customer_id"].tolist() for t, g in chosen.groupby("stage_template", sort=True)}


def _only_entries(selection: pd.DataFrame, by_invoice: bool) -> dict[str, list[int]] | None:
    if not by_invoice:
        return None
    return dict(zip(selection["customer_id"], selection["matching_entry_ids"], strict=True))


def bulk_preview(
    store: Store, selection: pd.DataFrame, template: str, as_of: date, *, by_invoice: bool, note: str = "",
    sender_name: str = "Collections team", config: OutreachConfig | None = None,
) -> list[Draft]:
    """Each selected customer's message as the send would make it, with the send's re-check
    (`queue.preview` with `recheck_with`): a draft without a problem is one the send delivers.

    selection: rows of `select_customers`; by_invoice: the invoice filter was used, so each message
    lists only the customer's matching invoices."""
    config = config or OutreachConfig.from_settings()
    drafts: list[Draft] = []
    for name, customers in _groups(selection, template).items():
        drafts += preview(store, customers, name, as_of, note, sender_name, recheck_with=config,
                          only_entries=_only_entries(selection, by_invoice))
    if template == STAGE_TEMPLATE:
        drafts += [Draft(c, n, None, None, "", "", [], "no email dunning stage reached") for c, n in
                   selection.loc[selection["stage_template"].isna(), ["customer_id", "name"]].itertuples(index=False)]
    order = {c: i for i, c in enumerate(selection["customer_id"])}
    return sorted(drafts, key=lambda d: order.get(d.customer_id, len(order)))


def bulk_send(
    store: Store, actor: Actor, selection: pd.DataFrame, template: str, as_of: date, *, by_invoice: bool,
    action_key: str, note: str = "", attach: str | None = None, config: OutreachConfig | None = None,
) -> pd.DataFrame:
    """Send to every selected customer (`send_now` per template, keyed `action_key` + template):
    one row per customer with customer_id, template, message_id, status, reason."""
    require(actor, "act_on_customers")
    results = []
    for name, customers in _groups(selection, template).items():
        sent = send_now(store, actor, customers, name, action_key=f"{action_key}|{name}", as_of=as_of, note=note,
                        attach=attach, config=config, only_entries=_only_entries(selection, by_invoice))
        results.append(sent.assign(template=name))
    if template == STAGE_TEMPLATE:
        missing = selection.loc[selection["stage_template"].isna(), "customer_id"].tolist()
        if missing:
            results.append(pd.DataFrame({"customer_id": missing, "template": None, "message_id": None,
                                         "status": "not queued", "reason": "no email dunning stage reached"}))
    columns = ["customer_id", "template", "message_id", "status", "reason"]
    return pd.concat(results, ignore_index=True)[columns] if results else pd.DataFrame(columns=columns)


def sendable(drafts: Sequence[Draft]) -> int:
    """How many drafts the send would deliver (no problem after the shared re-check)."""
    return sum(1 for d in drafts if d.problem is None)
