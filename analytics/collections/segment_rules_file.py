"""Segmentation rules as a TOML file, so a team can review them in git (`ardesk segments export|apply`).

The file is a list of `[[rule]]` tables, in order (first match wins, the last one is the default):

    [[rule]]
    name = "Large and late"
    policy = "Enterprise"            # the dunning policy by name (or policy_id = 3 when names repeat)
    conditions = [
      { field = "open_ar", op = ">=", value = 10000 },
      { field = "attr:region", op = "in", value = ["north", "south"] },
    ]

    [[rule]]
    name = "Everyone else"
    policy = "Standard"

Numbers are read exactly (as decimals, never binary floats), so an amount keeps its cents. The
writer is a small one for this flat structure: strings in TOML basic quotes with every control
character escaped, numbers as written, lists inline.
"""

from __future__ import annotations

import tomllib
from decimal import Decimal
from typing import Any

import pandas as pd

from analytics.collections.segmentation import NUMBER, Rule, SegmentRuleError, field_kind, parse_rules

TOML_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def toml_escaped(text: str, keep_newlines: bool = False) -> str:
    """`text` escaped for a TOML basic string (a multi-line one keeps its newlines as they are)."""
    out = []
    for ch in str(text):
        if keep_newlines and ch == "\n":
            out.append(ch)
        elif ch in TOML_ESCAPES:
            out.append(TOML_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return "".join(out)


def toml_string(text: str) -> str:
    """`text` as a TOML basic string."""
    return '"' + toml_escaped(text) + '"'


def _value(value: Any, number: bool) -> str:
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v, number) for v in value) + "]"
    if number:
        return format(Decimal(str(value)), "f")
    return toml_string(value)


def _comment(text: str) -> str:
    return " ".join(str(text).split())


def rules_to_toml(rules: list[Rule], known_policies: pd.DataFrame, header: str = "") -> str:
    """The rules as the module's TOML; a policy by name, or by id when its name is not unique."""
    names = {int(r.config_id): str(r.name) for r in known_policies.itertuples(index=False)}
    repeated = set(known_policies["name"][known_policies["name"].duplicated()]) if len(known_policies) else set()
    lines = [f"# {_comment(line)}" for line in header.splitlines() if line.strip()]
    lines.append("# AR Desk segmentation rules: first match wins; the last rule (no conditions) is the default.")
    for rule in rules:
        lines += ["", "[[rule]]", f"name = {toml_string(rule.name)}"]
        name = names.get(rule.policy_id)
        if name is None or name in repeated:
            lines.append(f"policy_id = {rule.policy_id}")
        else:
            lines.append(f"policy = {toml_string(name)}")
        if rule.conditions:
            lines.append("conditions = [")
            for c in rule.conditions:
                number = field_kind(c.field) == NUMBER
                lines.append(f"  {{ field = {toml_string(c.field)}, op = {toml_string(c.op)}, "
                             f"value = {_value(c.value, number)} }},")
            lines.append("]")
    return "\n".join(lines) + "\n"


def rules_from_toml(text: str, known_policies: pd.DataFrame) -> list[Rule]:
    """Rules from the module's TOML; raises SegmentRuleError in words (TOML syntax with its line,
    an unknown or ambiguous policy name, and every rule check of `segmentation.parse_rules`)."""
    try:
        data = tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as exc:
        raise SegmentRuleError(f"The rules file is not valid TOML: {exc}.") from None
    unknown = set(data) - {"rule"}
    if unknown:
        raise SegmentRuleError(f"Unknown key(s) {', '.join(sorted(unknown))} in the rules file; "
                               "it holds [[rule]] tables only.")
    items = data.get("rule") or []
    if not isinstance(items, list):
        raise SegmentRuleError("The rules file holds [[rule]] tables (an array of tables).")
    by_name: dict[str, list[int]] = {}
    for r in known_policies.itertuples(index=False):
        by_name.setdefault(str(r.name), []).append(int(r.config_id))
    plain = []
    for i, item in enumerate(items, start=1):
        where = f"Rule {i}" + (f" ({item.get('name')})" if item.get("name") else "")
        extra = set(item) - {"name", "policy", "policy_id", "conditions"}
        if extra:
            raise SegmentRuleError(f"{where}: unknown key(s) {', '.join(sorted(extra))}; a rule has name, "
                                   "policy (or policy_id) and conditions.")
        if ("policy" in item) == ("policy_id" in item):
            raise SegmentRuleError(f"{where}: name its dunning policy with either policy or policy_id.")
        policy_id = item.get("policy_id")
        if "policy" in item:
            ids = by_name.get(str(item["policy"]), [])
            if not ids:
                raise SegmentRuleError(f"{where}: there is no dunning policy named {item['policy']!r}.")
            if len(ids) > 1:
                raise SegmentRuleError(f"{where}: several dunning policies are named {item['policy']!r} "
                                       f"(ids {', '.join(map(str, ids))}); use policy_id.")
            policy_id = ids[0]
        plain.append({"name": item.get("name"), "policy_id": policy_id, "conditions": item.get("conditions", [])})
    return parse_rules(plain)
