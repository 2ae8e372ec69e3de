"""Segmentation rules: which dunning policy each customer follows, decided by ordered rules.

Rules (a versioned rule set, `segment_rule_sets` / `segment_rules`, schema v17):
- A rule has a name, a list of conditions and the dunning policy it names (`dunning_configs.config_id`).
  A customer takes the policy of the **first rule all of whose conditions hold** (an empty list holds
  for everyone). The last rule has no conditions: it is the default, so every customer matches one
  rule; only the last rule may have none.
- A condition is (field, operator, value) over a fixed catalogue of fields (`FIELDS`): the customer's
  `segment`, `country`, `currency`, `risk_class` (the risk band, when analysts set one), any imported
  attribute as `attr:<name>` (text, matched exactly), and ledger behaviour as of D:
  - `open_ar`: open invoices as of D (open amount > 0) in the reporting currency;
  - `avg_days_late`: the amount-weighted average days late of payments applied in the 365 days to D
    (`customer_360.AVG_DAYS_LATE_SQL`, the one definition; each payment's days late clipped at 0: early is 0);
  - `paid_late_pct`: of the customer's invoices settled in full (paid, credited or written off) in
    the 365 days to D, the percentage settled after their due date;
  - `broken_promises_90d`: promises to pay broken with a promised date in the 90 days before D;
  - `open_disputes`: disputes open as of D (`disputes.open_dispute_sql`).
  Text fields take `=`, `!=`, `in`, `not in`; numbers `=`, `!=`, `<`, `<=`, `>`, `>=`, `between`
  (inclusive at both ends). A value a customer does not have (no such attribute, no country, no
  payment in 12 months for `avg_days_late`, nothing settled for `paid_late_pct`) makes a condition
  false, except `!=` and `not in`, which hold for it. Counts and open AR are 0 when there is nothing.
- Compiled to one parameterised SQL statement: field names only from the catalogue (an attribute
  name only when it follows the attribute naming rule), every value a bound parameter, each behaviour
  field computed in one CTE, and only the CTEs the rules use.

Writes (permission `edit_segments`: analysts and admins): `save_rules` stores a new version (who,
when, why) as the active one, audits it, and re-assigns every customer whose policy changes with one
UPDATE ... FROM the first-match table (one audit line per customer changed, written set-based).
Imports call `assign_customers` in their own transaction for the customers of the file. Nothing is
assigned until a rule set is saved: until then customers keep the policy they have (and dunning
falls back by segment for those without one, `dunning_schedule.CONFIG_OF_CUSTOMER_SQL`).
"""

# ruff: noqa: S608 - SQL here is composed from this module's constants and the field catalogue only;
# every value a person or a file gives is a bound parameter.
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import pandas as pd
import sqlalchemy as sa

from analytics.access import audit
from analytics.access.roles import Actor, require
from analytics.collections.customer_360 import AVG_DAYS_LATE_SQL, HISTORY_DAYS
from analytics.collections.disputes import open_dispute_sql
from analytics.ledger.customer_attributes import attribute_name
from analytics.ledger.open_items import OPEN_ITEMS_SQL
from analytics.settings import load_settings
from analytics.store.connection import Store, read_df
from analytics.store.ids import reserve_ids
from analytics.store.schema import SEGMENT_RULE_SET_IDS, segment_rule_sets, segment_rules

BROKEN_PROMISE_DAYS = 90
NAME_LENGTH: int = segment_rules.c.name.type.length

TEXT, NUMBER = "text", "number"
# field -> (kind, label, SQL expression over the joined relations)
FIELDS: dict[str, tuple[str, str, str]] = {
    "segment": (TEXT, "segment", "c.segment"),
    "country": (TEXT, "country", "c.country"),
    "currency": (TEXT, "currency", "c.currency"),
    "risk_class": (TEXT, "risk band", "c.risk_class"),
    "open_ar": (NUMBER, "open AR (reporting currency)", "COALESCE(oa.open_ar, 0)"),
    "avg_days_late": (NUMBER, "average days late, 12 months", "hi.avg_days_late"),
    "paid_late_pct": (NUMBER, "% of invoices paid late, 12 months", "pl.paid_late_pct"),
    "broken_promises_90d": (NUMBER, "broken promises, 90 days", "COALESCE(bp.n, 0)"),
    "open_disputes": (NUMBER, "open disputes", "COALESCE(od.n, 0)"),
}
ATTRIBUTE_PREFIX = "attr:"
TEXT_OPERATORS = ("=", "!=", "in", "not in")
NUMBER_OPERATORS = ("=", "!=", "<", "<=", ">", ">=", "between")

# The behaviour CTEs, by the alias a field's expression uses; each joins on customer_id.
_OPEN_AR_CTE = f"""items AS ({OPEN_ITEMS_SQL}),
oa AS (SELECT customer_id, SUM(CASE WHEN open_amount > 0 THEN open_amount * fx_rate ELSE 0 END) AS open_ar
       FROM items GROUP BY customer_id)"""
_BEHAVIOUR_CTES = {
    "oa": _OPEN_AR_CTE,
    "hi": f"hi AS ({AVG_DAYS_LATE_SQL})",
    "pl": """pl AS (
    SELECT customer_id,
           100.0 * SUM(CASE WHEN settled_on > due_date THEN 1 ELSE 0 END) / COUNT(*) AS paid_late_pct
    FROM ledger_entries
    WHERE entry_type = 'invoice' AND amount > 0 AND due_date IS NOT NULL
      AND settled_on > :history_start AND settled_on <= :as_of
    GROUP BY customer_id)""",
    "bp": """bp AS (
    SELECT customer_id, COUNT(*) AS n FROM activities
    WHERE kind = 'promise' AND status = 'broken' AND due_date >= :broken_since AND due_date < :as_of
    GROUP BY customer_id)""",
    "od": f"od AS (SELECT a.customer_id, COUNT(*) AS n FROM activities a WHERE {open_dispute_sql('a')} "
          "GROUP BY a.customer_id)",
}


class SegmentRuleError(ValueError):
    """Rules that cannot be used, said in words (which rule, which condition, why)."""


@dataclass(frozen=True)
class Condition:
    field: str  # a FIELDS key or attr:<name>
    op: str
    value: Any  # str | Decimal | tuple[str, ...] (in, not in) | tuple[Decimal, Decimal] (between)

    def as_dict(self) -> dict[str, Any]:
        value = self.value
        if isinstance(value, tuple):
            value = [_plain(v) for v in value]
        return {"field": self.field, "op": self.op, "value": _plain(value)}

    def describe(self) -> str:
        value = self.value
        if self.op == "between":
            shown = f"{_plain(value[0])} and {_plain(value[1])}"
        elif isinstance(value, tuple):
            shown = ", ".join(str(_plain(v)) for v in value)
        else:
            shown = str(_plain(value))
        return f"{self.field} {self.op} {shown}"


@dataclass(frozen=True)
class Rule:
    name: str
    policy_id: int  # dunning_configs.config_id
    conditions: tuple[Condition, ...] = field(default_factory=tuple)

    def describe(self) -> str:
        return " and ".join(c.describe() for c in self.conditions) or "everyone else (default)"


def _plain(value: Any) -> Any:
    """A Decimal as an int when whole, else as its exact text (JSON and TOML keep it to the cent)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else format(value, "f")
    return value


def field_kind(name: str) -> str | None:
    """TEXT or NUMBER for a catalogue field or a well-named `attr:<name>`; None for anything else."""
    if name in FIELDS:
        return FIELDS[name][0]
    if name.startswith(ATTRIBUTE_PREFIX):
        attr = name[len(ATTRIBUTE_PREFIX):]
        return TEXT if attr and attribute_name(attr) == attr else None
    return None


def _number(value: Any, where: str) -> Decimal:
    if isinstance(value, bool):
        raise SegmentRuleError(f"{where}: {value!r} is not a number.")
    try:
        number = Decimal(str(value).strip().replace(",", "")) if isinstance(value, str) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise SegmentRuleError(f"{where}: {value!r} is not a number.") from None
    if not number.is_finite():
        raise SegmentRuleError(f"{where}: {value!r} is not a number.")
    return number


def parse_condition(data: dict[str, Any], where: str) -> Condition:
    """One condition from {field, op, value}; raises SegmentRuleError naming `where` and the problem."""
    if not isinstance(data, dict):
        raise SegmentRuleError(f"{where}: a condition needs field, op and value.")
    name, op, value = str(data.get("field", "")).strip(), str(data.get("op", "")).strip().lower(), data.get("value")
    kind = field_kind(name)
    if kind is None:
        raise SegmentRuleError(f"{where}: field {name!r} is not one of {', '.join(FIELDS)} "
                               f"or {ATTRIBUTE_PREFIX}<attribute name>.")
    allowed = TEXT_OPERATORS if kind == TEXT else NUMBER_OPERATORS
    if op not in allowed:
        raise SegmentRuleError(f"{where}: operator {op!r} does not apply to {name}; use one of {', '.join(allowed)}.")
    if value is None or (isinstance(value, str) and not value.strip()):
        raise SegmentRuleError(f"{where}: {name} {op} needs a value.")
    if op in ("in", "not in"):
        items = value if isinstance(value, list | tuple) else str(value).split(",")
        texts = tuple(dict.fromkeys(str(v).strip() for v in items if str(v).strip()))
        if not texts:
            raise SegmentRuleError(f"{where}: {name} {op} needs at least one value.")
        return Condition(name, op, texts)
    if op == "between":
        items = value if isinstance(value, list | tuple) else str(value).split(" and ")
        if len(items) != 2:
            raise SegmentRuleError(f"{where}: {name} between needs two numbers, low and high.")
        low, high = (_number(v, where) for v in items)
        if low > high:
            raise SegmentRuleError(f"{where}: {name} between {low} and {high}: the low end is above the high end.")
        return Condition(name, op, (low, high))
    if isinstance(value, list | tuple):
        raise SegmentRuleError(f"{where}: {name} {op} takes one value, not a list.")
    return Condition(name, op, _number(value, where) if kind == NUMBER else str(value).strip())


def parse_rules(data: list[dict[str, Any]]) -> list[Rule]:
    """Rules from plain dicts ({name, policy_id, conditions: [...]}, in order); checks the shape rules
    of the module docstring. Whether each policy exists is checked against the store (`check_policies`)."""
    if not data:
        raise SegmentRuleError("There must be at least one rule: the default, with no conditions.")
    rules: list[Rule] = []
    for i, item in enumerate(data, start=1):
        name = str(item.get("name") or "").strip()
        where = f"Rule {i}" + (f" ({name})" if name else "")
        if not name:
            raise SegmentRuleError(f"{where}: a rule needs a name.")
        if len(name) > NAME_LENGTH:
            raise SegmentRuleError(f"{where}: the name is longer than {NAME_LENGTH} characters.")
        if name in {r.name for r in rules}:
            raise SegmentRuleError(f"{where}: another rule has the same name.")
        policy = item.get("policy_id")
        if policy is None or isinstance(policy, bool) or not str(policy).strip().lstrip("-").isdigit():
            raise SegmentRuleError(f"{where}: name the dunning policy it assigns.")
        raw = item.get("conditions") or []
        if not isinstance(raw, list | tuple):
            raise SegmentRuleError(f"{where}: conditions must be a list.")
        conditions = tuple(parse_condition(c, f"{where}, condition {k}") for k, c in enumerate(raw, start=1))
        rules.append(Rule(name, int(str(policy).strip()), conditions))
    for i, rule in enumerate(rules[:-1], start=1):
        if not rule.conditions:
            raise SegmentRuleError(f"Rule {i} ({rule.name}) has no conditions: only the last rule (the default) "
                                   "may have none, since every rule after it would never match.")
    if rules[-1].conditions:
        raise SegmentRuleError(f"The last rule ({rules[-1].name}) must have no conditions: it is the default "
                               "that every customer no other rule takes falls to.")
    return rules


def policies(store_or_conn: Store | sa.Connection) -> pd.DataFrame:
    """Every dunning policy at its latest version: config_id, name, active (only active ones can be named)."""
    sql = """SELECT d.config_id, d.name, d.active FROM dunning_configs d
             WHERE d.version = (SELECT MAX(v.version) FROM dunning_configs v WHERE v.config_id = d.config_id)
             ORDER BY d.name, d.config_id"""
    if isinstance(store_or_conn, Store):
        return store_or_conn.read(sql)
    return read_df(store_or_conn, sql)


def check_policies(rules: list[Rule], known: pd.DataFrame) -> None:
    """Each rule's policy must exist and be active at its latest version (else dunning would ignore it)."""
    active = {int(r.config_id): bool(r.active) for r in known.itertuples(index=False)}
    for i, rule in enumerate(rules, start=1):
        if rule.policy_id not in active:
            raise SegmentRuleError(f"Rule {i} ({rule.name}): there is no dunning policy {rule.policy_id}.")
        if not active[rule.policy_id]:
            raise SegmentRuleError(f"Rule {i} ({rule.name}): dunning policy {rule.policy_id} is not active.")


# -- compiling -------------------------------------------------------------------------------------------
def _condition_sql(cond: Condition, expr: str, key: str, params: dict[str, Any]) -> str:
    if cond.op in ("in", "not in"):
        names = []
        for k, v in enumerate(cond.value):
            params[f"{key}_{k}"] = v
            names.append(f":{key}_{k}")
        listed = f"{expr} IN ({', '.join(names)})"
        return listed if cond.op == "in" else f"({expr} IS NULL OR NOT {listed})"
    if cond.op == "between":
        params[f"{key}_lo"], params[f"{key}_hi"] = cond.value
        return f"({expr} >= :{key}_lo AND {expr} <= :{key}_hi)"
    params[key] = cond.value
    if cond.op == "!=":
        return f"({expr} IS NULL OR {expr} <> :{key})"
    return f"{expr} {cond.op} :{key}"


def _first_match_sql(rules: list[Rule], as_of: date, customers_sql: str | None,
                     with_open_ar: bool) -> tuple[str, dict[str, Any]]:
    """SQL of one row per customer (in `customers_sql`, else all): customer_id, position (the first rule
    that holds), config_id (its policy), old_config_id (stored now), open_ar when asked or used."""
    params: dict[str, Any] = {
        "as_of": as_of, "reporting": load_settings().reporting_currency,
        "history_start": as_of - timedelta(days=HISTORY_DAYS),
        "broken_since": as_of - timedelta(days=BROKEN_PROMISE_DAYS)}
    attributes: dict[str, str] = {}  # attr name -> join alias
    used = {"oa"} if with_open_ar else set()
    whens, policy_whens = [], []
    for i, rule in enumerate(rules, start=1):
        params[f"policy_{i}"] = rule.policy_id
        policy_whens.append(f"WHEN {i} THEN :policy_{i}")
        if not rule.conditions:
            continue
        parts = []
        for k, cond in enumerate(rule.conditions, start=1):
            if cond.field.startswith(ATTRIBUTE_PREFIX):
                name = cond.field[len(ATTRIBUTE_PREFIX):]
                alias = attributes.setdefault(name, f"at{len(attributes)}")
                expr = f"{alias}.value"
            else:
                expr = FIELDS[cond.field][2]
                used.update(a for a in _BEHAVIOUR_CTES if f"{a}." in expr)
            parts.append(_condition_sql(cond, expr, f"r{i}c{k}", params))
        whens.append(f"WHEN {' AND '.join(parts)} THEN {i}")
    position = f"CASE {' '.join(whens)} ELSE {len(rules)} END" if whens else str(len(rules))
    joins = [f"LEFT JOIN {a} ON {a}.customer_id = c.customer_id" for a in _BEHAVIOUR_CTES if a in used]
    for name, alias in attributes.items():
        params[f"{alias}_name"] = name
        joins.append(f"LEFT JOIN customer_attributes {alias} ON {alias}.customer_id = c.customer_id "
                     f"AND {alias}.name = :{alias}_name")
    ctes = ",\n".join(_BEHAVIOUR_CTES[a] for a in _BEHAVIOUR_CTES if a in used)
    scope = f"WHERE c.customer_id IN ({customers_sql})" if customers_sql else ""
    open_ar = ", COALESCE(oa.open_ar, 0) AS open_ar" if with_open_ar else ""
    sql = f"""{'WITH ' + ctes if ctes else ''}
    SELECT m.customer_id, m.position, CAST(CASE m.position {' '.join(policy_whens)} END AS INTEGER) AS config_id,
           m.old_config_id{', m.open_ar' if with_open_ar else ''}
    FROM (SELECT c.customer_id, c.dunning_config_id AS old_config_id, {position} AS position{open_ar}
          FROM customers c {' '.join(joins)} {scope}) m"""
    return sql, params


# -- reading ---------------------------------------------------------------------------------------------
def preview_rules(store: Store, rules: list[Rule], as_of: date) -> pd.DataFrame:
    """What `rules` would do as of D, per rule: position, name, policy, conditions (in words), customers
    taken, their open AR (reporting currency) and how many of them would change policy (stored policy
    differs from the rule's: exactly the customers a save re-assigns). Read only."""
    known = policies(store)
    check_policies(rules, known)
    sql, params = _first_match_sql(rules, as_of, None, with_open_ar=True)
    counts = store.read(f"""SELECT position, COUNT(*) AS customers, COALESCE(SUM(open_ar), 0) AS open_ar,
        SUM(CASE WHEN old_config_id IS NULL OR old_config_id <> config_id THEN 1 ELSE 0 END) AS changing
        FROM ({sql}) f GROUP BY position""", params)
    names = known.set_index("config_id")["name"].to_dict()
    frame = pd.DataFrame({"position": range(1, len(rules) + 1), "rule": [r.name for r in rules],
                          "conditions": [r.describe() for r in rules],
                          "policy": [str(names.get(r.policy_id, r.policy_id)) for r in rules]})
    frame = frame.merge(counts, on="position", how="left")
    for column in ("customers", "changing"):
        frame[column] = frame[column].fillna(0).astype(int)
    frame["open_ar"] = frame["open_ar"].fillna(0).astype(float).round(2)
    return frame[["position", "rule", "conditions", "policy", "customers", "open_ar", "changing"]]


def rule_assignment(store: Store, rules: list[Rule], as_of: date) -> pd.DataFrame:
    """Each customer's first-matching rule as of D, read only: customer_id, position, config_id (the
    policy the rules would give it), old_config_id (the one stored now)."""
    check_policies(rules, policies(store))
    sql, params = _first_match_sql(rules, as_of, None, with_open_ar=False)
    return store.read(sql, params)


def _load_rules(conn: sa.Connection, version: int) -> list[Rule]:
    frame = read_df(conn, "SELECT position, name, conditions, dunning_config_id FROM segment_rules "
                          "WHERE version = :v ORDER BY position", {"v": version})
    return parse_rules([{"name": r.name, "policy_id": int(r.dunning_config_id),
                         "conditions": json.loads(r.conditions)} for r in frame.itertuples(index=False)])


def current_rule_set(store_or_conn: Store | sa.Connection) -> dict[str, Any] | None:
    """The active rule set: {version, created_by, created_at, reason, rules}; None before the first save."""
    if isinstance(store_or_conn, Store):
        with store_or_conn.engine.connect() as conn:
            return current_rule_set(conn)
    head = store_or_conn.execute(sa.text("SELECT version, created_by, created_at, reason FROM segment_rule_sets "
                                         "WHERE active ORDER BY version DESC LIMIT 1")).first()
    if head is None:
        return None
    return {"version": int(head.version), "created_by": head.created_by, "created_at": head.created_at,
            "reason": head.reason, "rules": _load_rules(store_or_conn, int(head.version))}


def rule_set_history(store: Store) -> pd.DataFrame:
    """Every saved version, newest first: version, created_by, created_at, reason, active, rules."""
    return store.read("""SELECT s.version, s.created_by, s.created_at, s.reason, s.active,
        (SELECT COUNT(*) FROM segment_rules r WHERE r.version = s.version) AS rules
        FROM segment_rule_sets s ORDER BY s.version DESC""")


def ledger_as_of(conn: sa.Connection) -> date:
    """Today, or the last posting date when the ledger stops earlier (as the worklist's default as-of)."""
    last = conn.execute(sa.text("SELECT MAX(posting_date) FROM ledger_entries")).scalar()
    if last is None:
        return date.today()
    return min(date.today(), pd.Timestamp(last).date())


# -- writing ---------------------------------------------------------------------------------------------
def _reassign(conn: sa.Connection, actor: Actor, rules: list[Rule], as_of: date, customers_sql: str | None,
              detail: str) -> int:
    """Give the customers (in `customers_sql`, else all) their first-matching rule's policy: one audit
    line per customer that changes (set-based), then one UPDATE ... FROM. Returns customers changed."""
    sql, params = _first_match_sql(rules, as_of, customers_sql, with_open_ar=False)
    conn.execute(sa.text("DROP TABLE IF EXISTS _segment_assignment"))
    conn.execute(sa.text("CREATE TEMPORARY TABLE _segment_assignment (customer_id VARCHAR(64), position INTEGER, "
                         "config_id INTEGER, old_config_id INTEGER)"))
    conn.execute(sa.text(f"""INSERT INTO _segment_assignment (customer_id, position, config_id, old_config_id)
        SELECT customer_id, position, config_id, old_config_id FROM ({sql}) f
        WHERE old_config_id IS NULL OR old_config_id <> config_id"""), params)
    now = datetime.now()
    conn.execute(sa.text("""INSERT INTO audit_log (logged_at, actor, action, entity, entity_id, old_values,
                                                   new_values, detail)
        SELECT :now, :actor, 'customer.dunning_config', 'customer', customer_id,
               '{"dunning_config_id": ' || COALESCE(CAST(old_config_id AS VARCHAR), 'null') || '}',
               '{"dunning_config_id": ' || CAST(config_id AS VARCHAR) || ', "segment_rule": '
                 || CAST(position AS VARCHAR) || '}', :detail
        FROM _segment_assignment"""), {"now": now, "actor": actor.username, "detail": detail})
    changed = conn.execute(sa.text("""UPDATE customers SET dunning_config_id = m.config_id, updated_at = :now
        FROM _segment_assignment m WHERE customers.customer_id = m.customer_id"""), {"now": now}).rowcount
    conn.execute(sa.text("DROP TABLE _segment_assignment"))
    return int(changed or 0)


def save_rules(store: Store, actor: Actor, rules: list[Rule], reason: str, as_of: date | None = None,
               ) -> dict[str, Any]:
    """Save `rules` as the new active version (who, when, why), audited, and re-assign every customer
    whose policy changes, as of D (default: today, or the ledger's last posting date if earlier), in
    one transaction. Returns {"version", "customers_changed"}."""
    require(actor, "edit_segments")
    with store.write() as conn:
        return save_rules_in(conn, actor, rules, reason, as_of)


def save_rules_in(conn: sa.Connection, actor: Actor, rules: list[Rule], reason: str, as_of: date | None = None,
                  ) -> dict[str, Any]:
    """`save_rules` inside the caller's transaction (an experiment's promotion saves its rule with it)."""
    require(actor, "edit_segments")
    reason = (reason or "").strip()
    if not reason:
        raise SegmentRuleError("Say why the rules change (the reason is kept with the version).")
    rules = parse_rules([{"name": r.name, "policy_id": r.policy_id, "conditions": [c.as_dict() for c in r.conditions]}
                         for r in rules])
    check_policies(rules, policies(conn))
    before = current_rule_set(conn)
    version = reserve_ids(conn, SEGMENT_RULE_SET_IDS, 1)
    conn.execute(sa.text("UPDATE segment_rule_sets SET active = FALSE WHERE active"))
    conn.execute(segment_rule_sets.insert().values(version=version, created_by=actor.username,
                                                   created_at=datetime.now(), reason=reason, active=True))
    conn.execute(segment_rules.insert(), [
        {"version": version, "position": i, "name": r.name, "dunning_config_id": r.policy_id,
         "conditions": json.dumps([c.as_dict() for c in r.conditions], default=str)}
        for i, r in enumerate(rules, start=1)])
    day = as_of or ledger_as_of(conn)
    changed = _reassign(conn, actor, rules, day, None, f"segment rules v{version} as of {day}")
    audit.record(conn, actor, "segments.save", "segment_rule_set", version,
                 old=None if before is None else {"version": before["version"]},
                 new={"version": version, "as_of": day, "customers_changed": changed,
                      "rules": [{"name": r.name, "policy_id": r.policy_id,
                                 "conditions": [c.as_dict() for c in r.conditions]} for r in rules]},
                 detail=reason)
    return {"version": version, "customers_changed": changed}


def assign_customers(conn: sa.Connection, actor: Actor, customers_sql: str | None = None,
                     as_of: date | None = None) -> int:
    """Give the customers selected by `customers_sql` (a SELECT of customer_id composed from constants,
    e.g. an import's staging table; None: every customer) the policy of the active rules, inside the
    caller's transaction; a no-op (0) before the first rule set is saved. Returns customers changed."""
    current = current_rule_set(conn)
    if current is None:
        return 0
    day = as_of or ledger_as_of(conn)
    return _reassign(conn, actor, current["rules"], day, customers_sql,
                     f"segment rules v{current['version']} as of {day}")


def reassign_all(store: Store, actor: Actor, as_of: date | None = None) -> int:
    """Re-apply the active rules to every customer (behaviour moves with the ledger); audited. Returns
    the customers whose policy changed."""
    require(actor, "edit_segments")
    with store.write() as conn:
        current = current_rule_set(conn)
        if current is None:
            raise SegmentRuleError("No segmentation rules are saved yet.")
        day = as_of or ledger_as_of(conn)
        changed = assign_customers(conn, actor, None, day)
        audit.record(conn, actor, "segments.reassign", "segment_rule_set", current["version"],
                     new={"as_of": day, "customers_changed": changed})
    return changed
