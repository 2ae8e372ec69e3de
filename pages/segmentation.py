"""Segmentation: the ordered rules that give each customer a dunning policy (first match wins, the last
rule is the default), edited with a live preview (customers and open AR each rule takes, customers
changing policy), what the rule set would have sent over a past period, saved as a new version with a
reason. Analysts and admins."""

from datetime import timedelta

import streamlit as st

from analytics.access.roles import PermissionDenied, may
from analytics.collections.dunning_simulation import rule_set_totals, simulate_rule_set
from analytics.collections.segmentation import (
    FIELDS,
    NUMBER_OPERATORS,
    TEXT_OPERATORS,
    Rule,
    SegmentRuleError,
    current_rule_set,
    parse_rules,
    policies,
    preview_rules,
    rule_set_history,
    save_rules,
)
from analytics.collections.worklist import default_as_of
from analytics.ledger.customer_attributes import attribute_summary
from analytics.settings import load_settings
from pages.charts import bar_chart, show
from pages.plain_text import escape_markdown
from pages.session import get_store, require_page
from pages.tables import data_table, money_columns, show_table

actor = require_page("segmentation")
store = get_store()

st.title("Segmentation")
st.caption("Each customer follows the dunning policy of the first rule that matches; the last rule, without "
           "conditions, takes everyone else. Saving re-assigns customers and keeps the version with who, when "
           "and why. `ardesk segments export` / `apply` edit the same rules as a file.")
if flash := st.session_state.pop("segmentation_flash", None):
    st.success(flash)

known = policies(store)
active = known[known["active"]]
if active.empty:
    st.info("There is no active dunning policy yet: rules name one each. Create or adopt a policy first.")
    st.stop()
policy_names = {int(r.config_id): str(r.name) for r in known.itertuples(index=False)}
current = current_rule_set(store)
if current is None:
    st.info("No rules are saved yet: customers keep the policy they have (or their segment's).")
else:
    st.caption(escape_markdown(f"Active: version {current['version']}, saved by {current['created_by']} on "
                               f"{current['created_at']:%Y-%m-%d %H:%M}: {current['reason']}"))

as_of = st.date_input("Behaviour measured as of", value=default_as_of(store), key="seg_as_of",
                      help="open AR, days late, broken promises and open disputes are taken on this date")

# -- the draft: rules and conditions keep stable ids, so moving or deleting one keeps the others' inputs --
OPERATORS = list(dict.fromkeys([*TEXT_OPERATORS, *NUMBER_OPERATORS]))
FIELD_CHOICES = [*FIELDS, *(f"attr:{name}" for name in attribute_summary(store)["name"])]


def _field_label(name: str) -> str:
    return FIELDS[name][1] if name in FIELDS else f"attribute {name[5:]}"


def _new_id() -> int:
    st.session_state["seg_next_id"] = st.session_state.get("seg_next_id", 0) + 1
    return st.session_state["seg_next_id"]


def _new_condition(rule_id: int, field: str = "segment", op: str = "=", value: str = "") -> None:
    cid = _new_id()
    st.session_state[f"seg_field_{cid}"] = field if field in FIELD_CHOICES else FIELD_CHOICES[0]
    st.session_state[f"seg_op_{cid}"] = op
    st.session_state[f"seg_value_{cid}"] = value
    st.session_state["seg_draft"][rule_id].append(cid)


def _new_rule(name: str, policy_id: int, at: int | None = None) -> int:
    rid = _new_id()
    st.session_state[f"seg_name_{rid}"] = name
    st.session_state[f"seg_policy_{rid}"] = policy_id if policy_id in policy_names else int(active["config_id"].iloc[0])
    st.session_state["seg_draft"][rid] = []
    order = st.session_state["seg_order"]
    order.insert(len(order) if at is None else at, rid)
    return rid


def _load(rules: list[Rule]) -> None:
    st.session_state["seg_draft"], st.session_state["seg_order"] = {}, []
    for rule in rules:
        rid = _new_rule(rule.name, rule.policy_id)
        for c in rule.conditions:
            value = c.value
            shown = ", ".join(str(v) for v in value) if isinstance(value, tuple) else str(value)
            _new_condition(rid, c.field, c.op, shown)


if "seg_draft" not in st.session_state:
    _load(current["rules"] if current else [Rule("Everyone else", int(active["config_id"].iloc[0]))])


def _draft() -> list[dict]:
    rules = []
    for rid in st.session_state["seg_order"]:
        conditions = []
        for cid in st.session_state["seg_draft"][rid]:
            op, text = st.session_state[f"seg_op_{cid}"], str(st.session_state[f"seg_value_{cid}"])
            listed = op in ("in", "not in", "between")
            conditions.append({"field": st.session_state[f"seg_field_{cid}"], "op": op,
                               "value": [v.strip() for v in text.split(",")] if listed else text})
        rules.append({"name": st.session_state[f"seg_name_{rid}"], "policy_id": st.session_state[f"seg_policy_{rid}"],
                      "conditions": conditions})
    return rules


def _move(rid: int, step: int) -> None:
    order = st.session_state["seg_order"]
    i = order.index(rid)
    order[i], order[i + step] = order[i + step], order[i]


def _delete_rule(rid: int) -> None:
    st.session_state["seg_order"].remove(rid)


def _delete_condition(rid: int, cid: int) -> None:
    st.session_state["seg_draft"][rid].remove(cid)


st.subheader("Rules")
st.caption("Values: text is matched exactly; `in`, `not in` take values separated by commas, `between` takes "
           "`low, high` (inclusive); amounts in the reporting currency, without thousands separators.")
order = st.session_state["seg_order"]
for position, rid in enumerate(order, start=1):
    last = position == len(order)
    with st.container(border=True):
        top = st.columns([3, 3, 1, 1, 1])
        top[0].text_input(f"Rule {position}" + (" (default: everyone else)" if last else ""), key=f"seg_name_{rid}",
                          max_chars=100)
        top[1].selectbox("Dunning policy", [int(c) for c in active["config_id"]], key=f"seg_policy_{rid}",
                         format_func=lambda c: policy_names.get(int(c), str(c)))
        if not last:
            top[2].button("Up", key=f"seg_up_{rid}", disabled=position == 1, on_click=_move, args=(rid, -1))
            top[3].button("Down", key=f"seg_down_{rid}", disabled=position == len(order) - 1, on_click=_move,
                          args=(rid, 1))
            top[4].button("Delete", key=f"seg_del_{rid}", on_click=_delete_rule, args=(rid,))
            for cid in st.session_state["seg_draft"][rid]:
                row = st.columns([3, 2, 4, 1])
                row[0].selectbox("Field", FIELD_CHOICES, key=f"seg_field_{cid}", format_func=_field_label)
                row[1].selectbox("Operator", OPERATORS, key=f"seg_op_{cid}")
                row[2].text_input("Value", key=f"seg_value_{cid}")
                row[3].button("Remove", key=f"seg_rm_{cid}", on_click=_delete_condition, args=(rid, cid))
            st.button("Add condition", key=f"seg_addc_{rid}", on_click=_new_condition, args=(rid,))
actions = st.columns([1, 1, 4])
actions[0].button("Add rule", key="seg_add_rule", help="a new rule just before the default",
                  on_click=lambda: _new_condition(_new_rule("New rule", int(active["config_id"].iloc[0]),
                                                            at=len(st.session_state["seg_order"]) - 1)))
actions[1].button("Discard changes", key="seg_discard", help="back to the saved rules",
                  on_click=lambda: st.session_state.pop("seg_draft", None))

# -- live preview ----------------------------------------------------------------------------------------
st.subheader("Preview")
try:
    rules = parse_rules(_draft())
    preview = preview_rules(store, rules, as_of)
except SegmentRuleError as exc:
    st.error(escape_markdown(str(exc)))
    st.stop()
changing = int(preview["changing"].sum())
tiles = st.columns(3)
tiles[0].metric("Customers", f"{int(preview['customers'].sum()):,}")
tiles[1].metric("Open AR", f"{float(preview['open_ar'].sum()):,.2f}")
tiles[2].metric("Customers changing policy", f"{changing:,}")
data_table(preview.rename(columns={"open_ar": "open AR", "changing": "changing policy"}), hide_index=True,
             width="stretch")

# -- what the rule set would have sent -------------------------------------------------------------------
st.subheader("Simulate the rule set")
st.caption("Every customer follows the policy of its first matching rule above (behaviour as of the date chosen "
           "at the top); each policy runs day by day over the ledger as it was, from its own runs before the "
           "period. Nothing is sent or saved.")
ledger_day = default_as_of(store)
p1, p2 = st.columns(2)
sim_start = p1.date_input("From", value=ledger_day - timedelta(days=30), key="seg_sim_from")
sim_end = p2.date_input("To", value=ledger_day, key="seg_sim_to")
asked = (repr(rules), sim_start, sim_end, as_of)
if st.button("Simulate the rule set", key="seg_simulate"):
    try:
        st.session_state["seg_sim"] = (asked, simulate_rule_set(store, rules, sim_start, sim_end, as_of))
    except (SegmentRuleError, ValueError) as exc:
        st.session_state.pop("seg_sim", None)
        st.error(escape_markdown(str(exc)))
simulated = st.session_state.get("seg_sim")
if simulated is not None and simulated[0] == asked:
    days = simulated[1]
    currency = load_settings().reporting_currency
    if days.empty:
        st.info(f"The rule set would have sent nothing from {sim_start} to {sim_end}.")
    else:
        tiles = st.columns(3)
        tiles[0].metric("Messages", f"{int(days['messages'].sum()):,}")
        tiles[1].metric("Invoices reminded", f"{int(days['invoices'].sum()):,}")
        tiles[2].metric(f"Open AR reminded ({currency})", f"{float(days['open_ar'].sum()):,.2f}")
        per_day = days.pivot_table(index="day", columns="policy", values="messages", aggfunc="sum",
                                   fill_value=0).reset_index()
        show(bar_chart(per_day, "day", {str(p): str(p) for p in per_day.columns if p != "day"},
                       title="Messages per day by policy", x_title="Day", y_title="Messages", unit="messages",
                       stacked=True), key="seg_sim_chart")
        st.markdown("**Totals by policy**")
        show_table(rule_set_totals(days).rename(columns={"days": "days with messages"}), "rule_set_totals",
                   "seg_sim_totals", column_config=money_columns(["open_ar"], currency))
        st.markdown("**Per day and stage**")
        show_table(days.rename(columns={"stage_no": "stage", "stage_name": "stage name"}), "rule_set_simulation",
                   "seg_sim_days", column_config=money_columns(["open_ar"], currency))
elif simulated is not None:
    st.caption("The rules, period or date changed since the last simulation: simulate again to see it.")

# -- save ------------------------------------------------------------------------------------------------
if may(actor, "edit_segments"):
    with st.form("seg_save", clear_on_submit=False):
        reason = st.text_input("Why (kept with the version)", key="seg_reason", max_chars=500)
        if st.form_submit_button("Save rules", type="primary"):
            try:
                saved = save_rules(store, actor, rules, reason, as_of)
            except (SegmentRuleError, PermissionDenied) as exc:
                st.error(escape_markdown(str(exc)))
            else:
                st.session_state["segmentation_flash"] = (
                    f"Saved as version {saved['version']}: {saved['customers_changed']:,} customer(s) changed policy.")
                for key in ("seg_draft", "seg_reason"):
                    st.session_state.pop(key, None)
                st.rerun()

with st.expander("Versions"):
    data_table(rule_set_history(store), hide_index=True, width="stretch")
