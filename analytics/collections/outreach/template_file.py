"""A message template as a TOML file, so a team can review it in git (`ardesk templates export|apply`).

One template per file, its three parts as multi-line strings:

    # AR Desk message template reminder_friendly: version 3, saved by ana.lyst at 2026-10-30 14:02
    name = "reminder_friendly"
    subject = "Friendly reminder: {{ invoices | length }} open invoice(s) for {{ customer_name }}"
    body_text = '''
    Dear {{ contact_name }},
    ...
    '''
    body_html = ''''''

Rules:
- The text of each part is kept exactly (a multi-line literal string when the text allows one,
  else a basic string with escapes), so export then apply unchanged saves nothing ("unchanged").
- Applying checks the template first (`message_templates.check_template`: the sandbox, unknown
  variables, syntax errors with their part and line, said in words) and refuses it with every
  problem; a valid one is saved as a new version (who, when, why), audited, with `edit_templates`
  (the Templates page's permission: analysts and admins).
- A dry run checks and previews against a customer (default: the first with open items) and
  writes nothing.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date
from typing import Any

import pandas as pd

from analytics.access.roles import Actor, require
from analytics.collections.outreach.config import OutreachError
from analytics.collections.outreach.message_templates import (
    NAME_RULE,
    TemplateProblems,
    TemplateVersion,
    check_template,
    save_template,
    template_names,
    template_versions,
)
from analytics.collections.outreach.queue import preview
from analytics.collections.segment_rules_file import toml_escaped
from analytics.collections.worklist import default_as_of
from analytics.ledger.open_items import OPEN_ITEMS_SQL
from analytics.settings import load_settings
from analytics.store.connection import Store

KEYS = ("name", "subject", "body_text", "body_html")


@dataclass(frozen=True)
class TemplateFile:
    name: str
    subject: str
    body_text: str
    body_html: str = ""


def _basic_multiline(text: str) -> str:
    return '"""\n' + toml_escaped(text, keep_newlines=True) + '"""'


def _multiline(text: str) -> str:
    """`text` as a TOML multi-line string that reads back exactly (the newline after the opening
    quotes is not part of the value)."""
    plain = all(ch in "\n\t" or (ord(ch) >= 0x20 and ord(ch) != 0x7F) for ch in text)
    if plain and "'''" not in text and not text.endswith("'"):
        return "'''\n" + text + "'''"
    return _basic_multiline(text)


def _one_line(text: str) -> str:
    """`text` as a one-line TOML string: literal ('...') when it can be, else basic with escapes."""
    if "'" not in text and all(ord(ch) >= 0x20 and ord(ch) != 0x7F for ch in text):
        return f"'{text}'"
    return '"' + _basic_multiline(text).removeprefix('"""\n').removesuffix('"""').replace("\n", "\\n") + '"'


def template_to_toml(version: TemplateVersion) -> str:
    """A template version as the module's TOML (`template_from_toml` reads it back to the same parts)."""
    saved = "from the file config/templates" if version.created_at is None else (
        f"saved by {' '.join(version.created_by.split())} at {version.created_at:%Y-%m-%d %H:%M}")
    return "\n".join([
        f"# AR Desk message template {version.name}: version {version.version}, {saved}.",
        "# `ardesk templates apply FILE [--dry-run] --why TEXT` checks it and saves it as a new version.",
        f"name = {_one_line(version.name)}",
        f"subject = {_one_line(version.subject)}",
        f"body_text = {_multiline(version.body_text)}",
        f"body_html = {_multiline(version.body_html)}",
    ]) + "\n"


def template_from_toml(text: str) -> TemplateFile:
    """The template of a file; `TemplateProblems` in words for bad TOML (with its line), unknown or
    missing keys, or a value that is not text. The Jinja is checked by `check_template`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TemplateProblems([f"The file is not valid TOML: {exc}."]) from None
    problems = []
    if unknown := sorted(set(data) - set(KEYS)):
        problems.append(f"Unknown key(s) {', '.join(unknown)}: a template file holds {', '.join(KEYS)}.")
    for key in ("name", "subject", "body_text"):
        if key not in data:
            problems.append(f"The key {key} is missing.")
    for key in KEYS:
        if key in data and not isinstance(data[key], str):
            problems.append(f"{key} must be text (a string), not {type(data[key]).__name__}.")
    if problems:
        raise TemplateProblems(problems)
    return TemplateFile(data["name"], data["subject"], data["body_text"], data.get("body_html", ""))


def export_template(store: Store, name: str) -> str:
    """The latest version of template `name` as TOML; an unknown name is an `OutreachError`."""
    versions = template_versions(store, name)
    if not versions:
        raise OutreachError(f"There is no template {name!r}; choose one of {', '.join(template_names(store))}.")
    return template_to_toml(versions[-1])


def list_message_templates(store: Store) -> pd.DataFrame:
    """Every template with its latest version: name, version, saved_by, saved_at (empty: the file,
    never saved), why (the reason given when it was saved, from the audit log), retired."""
    stored = store.read("""SELECT t.name, t.version, t.created_by AS saved_by, t.created_at AS saved_at,
               (SELECT MAX(a.detail) FROM audit_log a WHERE a.entity = 'message_template'
                  AND a.action IN ('template.save', 'template.retire')
                  AND a.entity_id = t.name || ' v' || CAST(t.version AS VARCHAR)) AS why, t.retired
        FROM message_templates t
        WHERE t.version = (SELECT MAX(v.version) FROM message_templates v WHERE v.name = t.name)""")
    files = sorted(set(template_names(store)) - set(stored["name"]))
    from_files = pd.DataFrame({"name": files, "version": 1, "saved_by": "config/templates", "saved_at": pd.NaT,
                               "why": None, "retired": False})
    frames = [f for f in (stored, from_files) if len(f)]
    out = pd.concat(frames, ignore_index=True) if frames else stored
    out["retired"] = out["retired"].astype(bool)
    out["saved_at"] = ["" if pd.isna(t) else pd.Timestamp(t).strftime("%Y-%m-%d %H:%M") for t in out["saved_at"]]
    out["why"] = out["why"].fillna("")
    return out.sort_values("name", ignore_index=True)[["name", "version", "saved_by", "saved_at", "why", "retired"]]


def first_customer_with_open_items(store: Store, as_of: date) -> str | None:
    """The smallest customer id with an open item as of D (the default customer of a preview)."""
    found = store.scalar(f"WITH items AS ({OPEN_ITEMS_SQL}) SELECT MIN(customer_id) FROM items "  # noqa: S608
                         "WHERE open_amount > 0", {"as_of": as_of, "reporting": load_settings().reporting_currency})
    return None if found is None else str(found)


def apply_template_file(store: Store, actor: Actor, text: str, *, why: str = "", dry_run: bool = False,
                        customer_id: str | None = None, as_of: date | None = None) -> dict[str, Any]:
    """Check a template file and save it as a new version (unless `dry_run`).

    Returns {"name", "action" ("created", "new version", "unchanged", or "would create" / "would save"
    / "unchanged" on a dry run), "version", "preview"}; `preview` (dry run only, when a customer has
    open items) is {"customer_id", "subject", "body", "problem"}: the template rendered for that
    customer as of D. Invalid templates raise `TemplateProblems` listing every problem. Needs
    `edit_templates` (a dry run too, since it runs in the user's name); saving is audited with `why`."""
    require(actor, "edit_templates")
    found = template_from_toml(text)
    if not NAME_RULE.match(found.name):
        raise TemplateProblems([f"The name {found.name!r} must start with a letter and use only a-z, 0-9 and _ "
                                "(at most 100 characters)."])
    problems = check_template(found.subject, found.body_text, found.body_html)
    if problems:
        raise TemplateProblems(problems)
    versions = template_versions(store, found.name)
    latest = versions[-1] if versions else None
    same = latest is not None and not latest.retired and (latest.subject, latest.body_text, latest.body_html) == (
        found.subject.strip(), found.body_text, found.body_html)
    result: dict[str, Any] = {"name": found.name, "preview": None}
    if same:
        result.update(action="unchanged", version=latest.version)
    elif dry_run:
        result.update(action="would create" if latest is None else "would save",
                      version=1 if latest is None else latest.version + 1)
    else:
        version = save_template(store, actor, found.name, found.subject, found.body_text, found.body_html,
                                reason=why)
        result.update(action="created" if latest is None else "new version", version=version)
    if dry_run:
        day = as_of or default_as_of(store)
        customer = customer_id or first_customer_with_open_items(store, day)
        if customer_id and store.scalar("SELECT COUNT(*) FROM customers WHERE customer_id = :c",
                                        {"c": customer_id}) == 0:
            raise OutreachError(f"There is no customer {customer_id!r} to preview the template with.")
        if customer is not None:
            draft_version = TemplateVersion(found.name, result["version"], found.subject, found.body_text,
                                            found.body_html, actor.username, None)
            [draft] = preview(store, [customer], found.name, day, version=draft_version)
            result["preview"] = {"customer_id": customer, "as_of": day.isoformat(), "subject": draft.subject,
                                 "body": draft.body, "problem": draft.problem or ""}
    return result

