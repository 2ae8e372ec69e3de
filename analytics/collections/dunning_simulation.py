"""What a dunning policy would have done: a day-by-day dry run over the ledger as it was.

Rule: for each day D from `start` to `end`, the open items as of D (`ledger.open_items`: what was
open that day, whatever was paid later) of the customers in scope, less those held as of D
(`collections.holds`), are run through the policy with the run's own rules (`dunning_schedule`):
the next stage only, from a stage sent, threshold date <= D by the stage's basis (due,
previous_sent, end_of_month; grace days when the offset is positive), nothing twice the same day,
and min_days_between per customer. Every stage due is assumed sent that day (manual stages too:
what the policy asks of people), so the next day's state follows from the simulated sends, not
from what really happened. The start state is the real runs before `start` under the policy
(none for a new policy: counters start at zero, as when a customer's policy changes).

Scope: "assigned" = the customers the policy doles out to today (their own policy, else their
segment's); "all" = every customer that can be dunned (not with an agency, written off or on
hold). Default: assigned when the policy has customers, else all.

Per day and stage: messages (customers x channels of the stage), customers, invoices, open_ar
(the open amount of the invoices reminded, reporting currency at D's rate). One SQL per day reads
the open items; the stage logic is vectorised over them (no loop over rows).

The whole rule set (`simulate_rule_set`): each customer follows the policy its first-matching
segmentation rule names, and every policy named runs at once over its customers, one query per day.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

from analytics.collections.dunning_policies import Policy, load_policy
from analytics.collections.dunning_schedule import CONFIG_OF_CUSTOMER_SQL
from analytics.collections.holds import dunning_hold_sql
from analytics.collections.segmentation import Rule, rule_assignment
from analytics.ledger.open_items import OPEN_ITEMS_SQL
from analytics.settings import load_settings
from analytics.store.connection import Store

SIMULATION_COLUMNS = ["day", "stage_no", "stage_name", "channels", "mode", "messages", "customers", "invoices",
                      "open_ar"]
MAX_DAYS = 400

_DAY_SQL = f"""WITH items AS ({OPEN_ITEMS_SQL}),
{CONFIG_OF_CUSTOMER_SQL}
SELECT i.entry_id, MIN(i.customer_id) AS customer_id, SUM(i.open_amount * i.fx_rate) AS open_ar,
       MAX(CAST(i.days_past_due AS INTEGER)) AS days_past_due
FROM items i JOIN customer_config cc ON cc.customer_id = i.customer_id
WHERE i.open_amount > 0 AND (CAST(:everyone AS BOOLEAN) OR cc.config_id = :config_id)
  AND NOT {dunning_hold_sql("i.entry_id", "i.customer_id")}
GROUP BY i.entry_id"""  # noqa: S608 - constants only


def simulation_scope(store: Store, policy: Policy) -> str:
    """'assigned' when customers follow the policy today, else 'all'."""
    if policy.config_id is None:
        return "all"
    followers = store.scalar(f"WITH {CONFIG_OF_CUSTOMER_SQL} SELECT COUNT(*) FROM customer_config "  # noqa: S608
                             "WHERE config_id = :c", {"c": int(policy.config_id)})
    return "assigned" if followers else "all"


def _start_state(store: Store, policy: Policy, start: date) -> pd.DataFrame:
    if policy.config_id is None:
        return pd.DataFrame({"last_stage": pd.Series(dtype="int64"), "last_day": pd.Series(dtype="int64")})
    runs = store.read("""SELECT entry_id, MAX(stage_no) AS last_stage, MAX(run_date) AS last_date FROM dunning_runs
        WHERE config_id = :c AND run_date < :start AND outcome IN ('sent', 'done', 'waived') GROUP BY entry_id""",
                      {"c": int(policy.config_id), "start": start})
    state = pd.DataFrame({"last_stage": runs["last_stage"].astype("int64").to_numpy(),
                          "last_day": _day_numbers(runs["last_date"])}, index=runs["entry_id"].astype("int64"))
    return state[state["last_stage"] <= len(policy.stages)]


def _day_numbers(dates: pd.Series) -> np.ndarray:
    return pd.to_datetime(dates).to_numpy().astype("datetime64[D]").astype("int64")


def _check_period(start: date, end: date) -> None:
    if end < start:
        raise ValueError(f"The simulation ends ({end}) before it starts ({start}).")
    if (end - start).days >= MAX_DAYS:
        raise ValueError(f"Simulate at most {MAX_DAYS} days at a time, not {(end - start).days + 1}.")


class _PolicyDays:
    """One policy's simulated state (invoices' last stage and day, customers' last message), advanced
    one day at a time over that day's open items (module rule), vectorised over the items."""

    def __init__(self, store: Store, policy: Policy, start: date) -> None:
        self.policy = policy
        self.stages = sorted(policy.stages, key=lambda s: s.stage_no)
        self.offset = np.array([s.day_offset for s in self.stages], dtype="int64")
        self.basis = np.array([s.basis for s in self.stages], dtype=object)
        self.grace = np.where(self.offset > 0, policy.grace_days, 0)
        self.state = _start_state(store, policy, start)
        self.customer_last: pd.Series = pd.Series(dtype="int64")  # customer -> day of its last simulated message
        self.out: list[pd.DataFrame] = []

    def step(self, items: pd.DataFrame, day: date) -> None:
        """Send what is due on `day` among `items` (entry_id, customer_id, open_ar, days_past_due)."""
        if items.empty or not self.stages:
            return
        policy, stages = self.policy, self.stages
        today = int(np.datetime64(day, "D").astype("int64"))
        items = items.join(self.state, on="entry_id")
        last_stage = items["last_stage"].fillna(0).astype("int64").to_numpy()
        last_day = items["last_day"].to_numpy(dtype="float64")  # NaN: never sent
        nxt = last_stage + 1
        live = nxt <= len(stages)
        k = np.minimum(nxt, len(stages)) - 1
        due = today - items["days_past_due"].to_numpy(dtype="int64")
        month_end = ((due.astype("datetime64[D]").astype("datetime64[M]") + 1).astype("datetime64[D]")
                     .astype("int64") - 1)
        from_sent = (self.basis[k] == "previous_sent") & ~np.isnan(last_day)
        base = np.where(from_sent, np.nan_to_num(last_day).astype("int64"),
                        np.where(self.basis[k] == "end_of_month", month_end, due))
        threshold = base + self.offset[k] + np.where(from_sent, 0, self.grace[k])
        ok = live & (threshold <= today) & ~(last_day >= today)
        if policy.min_days_between > 0 and len(self.customer_last):
            recent = items["customer_id"].map(self.customer_last).to_numpy(dtype="float64")
            ok &= ~(recent > today - policy.min_days_between)
        sent = items[ok].assign(stage_no=nxt[ok])
        if sent.empty:
            return
        self.state = pd.concat([self.state.drop(sent["entry_id"], errors="ignore"),
                                pd.DataFrame({"last_stage": sent["stage_no"].to_numpy(), "last_day": today},
                                             index=sent["entry_id"].to_numpy())])
        customers = sent["customer_id"].unique()
        self.customer_last = pd.concat([self.customer_last.drop(customers, errors="ignore"),
                                        pd.Series(today, index=customers)])
        agg = (sent.groupby("stage_no", as_index=False)
               .agg(customers=("customer_id", "nunique"), invoices=("entry_id", "count"), open_ar=("open_ar", "sum")))
        agg.insert(0, "day", day)
        self.out.append(agg)

    def result(self) -> pd.DataFrame:
        """One row per day and stage with something sent, in day and stage order (`SIMULATION_COLUMNS`)."""
        if not self.out:
            return pd.DataFrame(columns=SIMULATION_COLUMNS)
        result = pd.concat(self.out, ignore_index=True)
        names = {s.stage_no: s for s in self.stages}
        result["stage_name"] = [names[int(n)].name for n in result["stage_no"]]
        result["channels"] = [", ".join(c.channel for c in names[int(n)].channels) for n in result["stage_no"]]
        result["mode"] = [names[int(n)].mode for n in result["stage_no"]]
        result["messages"] = result["customers"] * [len(names[int(n)].channels) for n in result["stage_no"]]
        result["open_ar"] = result["open_ar"].astype(float).round(2)
        return result[SIMULATION_COLUMNS]


def _day_items(store: Store, params: dict, day: date) -> pd.DataFrame:
    items = store.read(_DAY_SQL, {**params, "as_of": day})
    items["entry_id"] = items["entry_id"].astype("int64")
    return items


def simulate_policy(store: Store, policy: Policy, start: date, end: date, scope: str | None = None) -> pd.DataFrame:
    """One row per day and stage with something due (module rule), in day and stage order."""
    _check_period(start, end)
    scope = scope or simulation_scope(store, policy)
    if scope not in ("assigned", "all"):
        raise ValueError(f"scope is 'assigned' or 'all', not {scope!r}.")
    run = _PolicyDays(store, policy, start)
    params = {"reporting": load_settings().reporting_currency, "everyone": scope == "all",
              "config_id": int(policy.config_id) if policy.config_id is not None else -1}
    day = start
    while day <= end:  # one query per day: the open items as of that day
        run.step(_day_items(store, params, day), day)
        day += timedelta(days=1)
    return run.result()


RULE_SET_COLUMNS = ["policy", *SIMULATION_COLUMNS]


def simulate_rule_set(store: Store, rules: list[Rule], start: date, end: date,
                      as_of: date | None = None) -> pd.DataFrame:
    """The whole rule set, day by day: every customer follows the policy its first-matching rule names
    (rules measured as of `as_of`, default `end`; customers that cannot be dunned, as in the "all"
    scope, are left out), and each policy (its latest version, its own runs before `start` as the
    start state) runs the module rule over its customers. One query per day reads every customer's
    open items; each policy's stage logic is vectorised over its share. One row per policy, day and
    stage with something sent (`RULE_SET_COLUMNS`), by day, policy and stage."""
    _check_period(start, end)
    assigned = rule_assignment(store, rules, as_of or end).set_index("customer_id")["config_id"]
    runs = {int(c): _PolicyDays(store, load_policy(store, int(c)), start)
            for c in dict.fromkeys(r.policy_id for r in rules)}
    params = {"reporting": load_settings().reporting_currency, "everyone": True, "config_id": -1}
    day = start
    while day <= end:
        items = _day_items(store, params, day)
        policy_of = items["customer_id"].map(assigned).to_numpy()
        for config_id, run in runs.items():
            run.step(items[policy_of == config_id], day)
        day += timedelta(days=1)
    frames = [run.result().assign(policy=run.policy.name) for run in runs.values()]
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=RULE_SET_COLUMNS)
    out = pd.concat(frames, ignore_index=True)[RULE_SET_COLUMNS]
    return out.sort_values(["day", "policy", "stage_no"], ignore_index=True)


def rule_set_totals(result: pd.DataFrame) -> pd.DataFrame:
    """Per policy over the whole period: days with sends, messages, invoices, open AR reminded (the sum
    of each day's open AR reminded: an invoice reminded twice counts twice)."""
    columns = ["policy", "days", "messages", "invoices", "open_ar"]
    if result.empty:
        return pd.DataFrame(columns=columns)
    return (result.groupby("policy", as_index=False)
            .agg(days=("day", "nunique"), messages=("messages", "sum"), invoices=("invoices", "sum"),
                 open_ar=("open_ar", "sum")).round({"open_ar": 2}))[columns]


def simulation_totals(result: pd.DataFrame) -> pd.DataFrame:
    """Per stage over the whole period: days with sends, messages, customers-days, invoices, open AR reminded."""
    if result.empty:
        return pd.DataFrame(columns=["stage_no", "stage_name", "days", "messages", "invoices", "open_ar"])
    return (result.groupby(["stage_no", "stage_name"], as_index=False)
            .agg(days=("day", "nunique"), messages=("messages", "sum"), invoices=("invoices", "sum"),
                 open_ar=("open_ar", "sum")).round({"open_ar": 2}))
