"""Message templates edited in the app: a subject, a plain-text body and an HTML body (Jinja,
sandboxed, strict undefined), versioned with who and when (schema v19, `message_templates`).

Rules:
- Each file `config/templates/<name>.j2` is its template's version 1 (first line `Subject: ...`,
  then the text body; no HTML body). It is read from the file until the first save, which stores
  it as version 1 and the edit as version 2; every later save adds the next version. The latest
  version that is not retired is the one sent; a message records the version it was rendered from.
- A template is checked before it is saved (`check_template`), and every problem is said in words
  with its part and line: a syntax error; a variable that is not in `VARIABLES`; a name starting
  with an underscore (`''.__class__`: a template cannot reach Python internals; the sandbox refuses
  them at run time too); an error rendering it against a sample customer.
- The HTML body is autoescaped (a customer name with `<` arrives as text); the subject and the text
  body are not. An empty HTML body means: the text part, escaped, is the HTML part.
- Every message gets the letterhead's footer under both parts (`collections.letterhead`).
- Saving and retiring need the `edit_templates` permission (analysts, admins) and are audited.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any

import pandas as pd
import sqlalchemy as sa
from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, meta, nodes
from jinja2.sandbox import SandboxedEnvironment

from analytics.access import audit
from analytics.access.portal_tokens import PORTAL_LINK_PLACEHOLDER
from analytics.access.roles import Actor, require
from analytics.collections.letterhead import Letterhead
from analytics.collections.outreach.config import OutreachError
from analytics.collections.outreach.templates import TEMPLATES_DIR, list_templates
from analytics.store.connection import Store, read_df
from analytics.store.schema import message_templates

NAME_RULE = re.compile(r"^[a-z][a-z0-9_]{0,99}$")
PARTS = {"subject": "the subject", "body_text": "the plain-text body", "body_html": "the HTML body"}

# Every variable a template may use, and what it holds (the Templates page lists these).
VARIABLES: dict[str, str] = {
    "customer_name": "the customer's name",
    "customer_id": "the customer's account number",
    "currency": "the customer's currency",
    "contact_name": "the contact's name (else 'Sir or Madam')",
    "invoices": "the invoices the message lists; each has document_number, posting_date, due_date, amount, "
                "open_amount, days_overdue, interest",
    "total": "the open amount of the invoices listed",
    "overdue_total": "the open amount of the listed invoices past due",
    "balance": "the account's net balance (open invoices − unapplied cash and credits)",
    "open_invoices_total": "the open amount of every open invoice",
    "unapplied": "unapplied cash and credits (a negative number or 0)",
    "balance_line": "the sentence 'Balance X = open invoices Y − unapplied cash/credits Z'",
    "as_of": "the date of the message (YYYY-MM-DD)",
    "note": "the personal note typed when sending (may be empty)",
    "sender_name": "who sends it (the signed-in user, or the team)",
    "interest_rate": "the annual interest rate of the policy (0.10 is 10 %; 0 when none)",
    "interest_total": "interest accrued on the listed invoices past due (0 when no rate)",
    "fee": "the dunning stage's fee (0 when none)",
    "total_with_charges": "overdue_total + interest_total + fee",
    "letterhead": "company, sender, address, remit_to, bank_details, logo (settings [letterhead])",
    "portal_link": "the customer's personal portal link (made when the message is sent; until then it reads "
                   f"'{PORTAL_LINK_PLACEHOLDER}')",
}

SAMPLE_INVOICE = {"document_number": "INV-1001", "posting_date": "2026-01-01", "due_date": "2026-01-31",
                  "amount": 1200.0, "open_amount": 1200.0, "days_overdue": 30, "interest": 9.86}


def sample_context() -> dict[str, Any]:
    """A made-up customer every variable is defined for: templates are checked against it."""
    return {
        "customer_name": "Sample Customer Ltd", "customer_id": "C-SAMPLE", "currency": "USD",
        "contact_name": "Sam Sample", "invoices": [dict(SAMPLE_INVOICE)], "total": 1200.0, "overdue_total": 1200.0,
        "balance": 1200.0, "open_invoices_total": 1200.0, "unapplied": 0.0,
        "balance_line": "Balance 1,200.00 USD = open invoices 1,200.00 USD − unapplied cash/credits 0.00 USD",
        "as_of": "2026-03-02", "note": "", "sender_name": "Collections team", "interest_rate": 0.10,
        "interest_total": 9.86, "fee": 10.0, "total_with_charges": 1219.86,
        "portal_link": PORTAL_LINK_PLACEHOLDER,
        "letterhead": Letterhead.from_settings().as_variables(),
    }


class TemplateProblems(OutreachError):
    """A template that cannot be saved; `problems` lists each in words, with its part and line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("The template cannot be saved: " + " ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class TemplateVersion:
    name: str
    version: int
    subject: str
    body_text: str
    body_html: str
    created_by: str
    created_at: datetime | None
    retired: bool = False


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    text: str
    html: str
    version: int


def _environment(*, html_part: bool) -> SandboxedEnvironment:
    return SandboxedEnvironment(undefined=StrictUndefined, autoescape=html_part, keep_trailing_newline=True)


def _template_line(tb: TracebackType | None) -> int | None:
    """The template line a render error happened on (Jinja rewrites tracebacks into template lines)."""
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def check_template(subject: str, body_text: str, body_html: str = "") -> list[str]:
    """Every problem that stops a template from being saved, in words; empty when it may be saved."""
    problems: list[str] = []
    if not subject.strip():
        problems.append("The subject is empty.")
    elif "\n" in subject.strip():
        problems.append("The subject must be one line.")
    if not body_text.strip():
        problems.append("The plain-text body is empty.")
    sources = {"subject": subject, "body_text": body_text, "body_html": body_html}
    parsed_ok: list[str] = []
    for part, source in sources.items():
        if not source.strip():
            continue
        words = PARTS[part]
        env = _environment(html_part=part == "body_html")
        try:
            tree = env.parse(source)
        except TemplateSyntaxError as exc:
            problems.append(f"Syntax error in {words}, line {exc.lineno}: {str(exc.message).rstrip('.')}.")
            continue
        private = [(node.lineno, getattr(node, "attr", None) or getattr(getattr(node, "arg", None), "value", None))
                   for node in tree.find_all((nodes.Getattr, nodes.Getitem))]
        private = [(line, name) for line, name in private if isinstance(name, str) and name.startswith("_")]
        for line, name in private:
            problems.append(f"Not allowed in {words}, line {line}: {name!r} reaches Python internals; "
                            "a template may not use names starting with an underscore.")
        unknown = sorted(meta.find_undeclared_variables(tree) - set(VARIABLES))
        for name in unknown:
            line = next((n.lineno for n in tree.find_all(nodes.Name) if n.name == name), None)
            problems.append(f"Unknown variable {name!r} in {words}, line {line}: "
                            f"use one of the variables listed ({', '.join(VARIABLES)}).")
        if not private and not unknown:
            parsed_ok.append(part)
    context = sample_context()
    for part in parsed_ok:
        try:
            _environment(html_part=part == "body_html").from_string(sources[part]).render(**context)
        except Exception as exc:  # noqa: BLE001 - any render error is a problem to show, with its line
            line = _template_line(exc.__traceback__)
            where = f", line {line}" if line else ""
            problems.append(f"{PARTS[part][0].upper()}{PARTS[part][1:]} cannot be rendered{where}: "
                            f"{str(exc).rstrip('.')}.")
    return problems


def _file_version(name: str) -> TemplateVersion | None:
    """Version 1 of a template: its file (first line `Subject: ...`, then a blank line, then the body)."""
    path = TEMPLATES_DIR / f"{name}.j2"
    if name not in list_templates():
        return None
    first, _, body = path.read_text(encoding="utf-8").partition("\n")
    return TemplateVersion(name, 1, first.removeprefix("Subject:").strip(), body.lstrip("\n"), "",
                           "config/templates", None)


def _stored(conn: sa.Connection, name: str | None = None) -> pd.DataFrame:
    sql = ("SELECT name, version, subject, body_text, body_html, created_by, created_at, retired "
           "FROM message_templates" + (" WHERE name = :name" if name is not None else "")
           + " ORDER BY name, version")
    return read_df(conn, sql, {"name": name} if name is not None else None)


def _as_version(row: dict[str, Any]) -> TemplateVersion:
    created = row["created_at"]
    return TemplateVersion(str(row["name"]), int(row["version"]), str(row["subject"]), str(row["body_text"]),
                           "" if row["body_html"] is None or row["body_html"] != row["body_html"] else str(row["body_html"]),
                           str(row["created_by"]), None if pd.isna(created) else pd.Timestamp(created).to_pydatetime(),
                           bool(row["retired"]))


def template_versions(source: Store | sa.Connection, name: str) -> list[TemplateVersion]:
    """Every version of a template, oldest first (version 1 is the file until the first save)."""
    if isinstance(source, Store):
        with source.engine.connect() as conn:
            return template_versions(conn, name)
    rows = [_as_version(r) for r in _stored(source, name).to_dict("records")]
    if not rows or rows[0].version != 1:
        file = _file_version(name)
        rows = ([file] if file is not None else []) + rows
    return rows


def latest_template(source: Store | sa.Connection, name: str) -> TemplateVersion:
    """The version of a template that is sent: its latest; an unknown or retired template is an error."""
    versions = template_versions(source, name)
    if not versions:
        raise OutreachError(f"There is no template {name!r}; choose one of "
                            f"{', '.join(template_names(source))}.")
    if versions[-1].retired:
        raise OutreachError(f"Template {name!r} is retired; choose another.")
    return versions[-1]


def template_names(source: Store | sa.Connection, *, include_retired: bool = False) -> list[str]:
    """Every template: the files and those made in the app, without the retired ones unless asked."""
    if isinstance(source, Store):
        with source.engine.connect() as conn:
            return template_names(conn, include_retired=include_retired)
    latest = read_df(source, "SELECT t.name, t.retired FROM message_templates t WHERE t.version = "
                             "(SELECT MAX(v.version) FROM message_templates v WHERE v.name = t.name)")
    retired = set(latest.loc[latest["retired"].astype(bool), "name"]) if not include_retired else set()
    return sorted((set(list_templates()) | set(latest["name"])) - retired)


class CompiledTemplate:
    """One template version compiled once, then rendered for many customers (`render`)."""

    def __init__(self, version: TemplateVersion, letterhead: Letterhead | None = None) -> None:
        self.version, self.letterhead = version, letterhead or Letterhead.from_settings()
        try:
            text_env, html_env = _environment(html_part=False), _environment(html_part=True)
            self._subject = text_env.from_string(version.subject)
            self._text = text_env.from_string(version.body_text)
            self._html = html_env.from_string(version.body_html) if version.body_html.strip() else None
        except TemplateError as exc:
            raise OutreachError(f"Template {version.name!r} (version {version.version}) could not be read: "
                                f"{exc}") from None

    def render(self, context: dict[str, Any]) -> RenderedMessage:
        """Subject, text and HTML parts, each part with the letterhead's footer, and the version used.
        `context` gets `letterhead` (and the charges at 0) when it lacks them."""
        context = {"interest_rate": 0.0, "interest_total": 0.0, "fee": 0.0,
                   "total_with_charges": context.get("overdue_total", 0.0), **context}
        context.setdefault("letterhead", self.letterhead.as_variables())
        # Never a token here: the stored message says where the link goes; delivery mints it.
        context["portal_link"] = PORTAL_LINK_PLACEHOLDER
        context["invoices"] = [{"interest": 0.0, **inv} for inv in context.get("invoices", [])]
        try:
            subject = self._subject.render(**context)
            text = self._text.render(**context)
            if self._html is not None:
                body_html = self._html.render(**context)
            else:
                body_html = ('<div style="font-family:sans-serif;white-space:pre-wrap">'
                             f"{html.escape(text.rstrip())}</div>")
        except TemplateError as exc:
            raise OutreachError(f"Template {self.version.name!r} (version {self.version.version}) could not be "
                                f"rendered: {exc}") from None
        text = text.rstrip("\n") + "\n" + self.letterhead.text_footer()
        page = f"<!DOCTYPE html><html><body>{body_html}{self.letterhead.html_footer()}</body></html>"
        return RenderedMessage(" ".join(subject.split()), text, page, self.version.version)


def render_message(source: Store | sa.Connection, name: str, context: dict[str, Any],
                   letterhead: Letterhead | None = None) -> RenderedMessage:
    """Render the latest version of a template for one customer (`CompiledTemplate.render`)."""
    return CompiledTemplate(latest_template(source, name), letterhead).render(context)


def save_template(store: Store, actor: Actor, name: str, subject: str, body_text: str,
                  body_html: str = "", *, reason: str = "") -> int:
    """Save a new version of a template (or a new template); returns its version number.

    Refused (`TemplateProblems`) unless `check_template` finds nothing; a version equal to the
    latest saves nothing and returns the latest. Needs `edit_templates`; audited (`reason`: why, kept
    as the audit line's detail)."""
    require(actor, "edit_templates")
    if not NAME_RULE.match(name):
        raise TemplateProblems([f"The name {name!r} must start with a letter and use only a-z, 0-9 and _ "
                                "(at most 100 characters)."])
    problems = check_template(subject, body_text, body_html)
    if problems:
        raise TemplateProblems(problems)
    subject = subject.strip()
    with store.write() as conn:
        versions = template_versions(conn, name)
        latest = versions[-1] if versions else None
        if latest is not None and not latest.retired and (latest.subject, latest.body_text, latest.body_html) == (
                subject, body_text, body_html or ""):
            return latest.version
        now = datetime.now()
        if latest is not None and latest.created_at is None:  # the file: stored as version 1 first
            conn.execute(message_templates.insert().values(
                name=name, version=1, subject=latest.subject, body_text=latest.body_text, body_html=None,
                created_by=latest.created_by, created_at=now, retired=False))
        version = (latest.version if latest is not None else 0) + 1
        conn.execute(message_templates.insert().values(
            name=name, version=version, subject=subject, body_text=body_text, body_html=body_html or None,
            created_by=actor.username, created_at=now, retired=False))
        audit.record(conn, actor, "template.save", "message_template", f"{name} v{version}",
                     old=None if latest is None else {"version": latest.version, "subject": latest.subject},
                     new={"version": version, "subject": subject, "body_text": body_text, "body_html": body_html},
                     detail=reason.strip() or None)
    return version


def retire_template(store: Store, actor: Actor, name: str) -> int:
    """Retire a template: a new version, a copy of the latest marked retired, so nothing sends it any
    more (its history stays). Needs `edit_templates`; audited. Returns the retired version's number."""
    require(actor, "edit_templates")
    with store.write() as conn:
        latest = latest_template(conn, name)
        now = datetime.now()
        if latest.created_at is None:
            conn.execute(message_templates.insert().values(
                name=name, version=1, subject=latest.subject, body_text=latest.body_text, body_html=None,
                created_by=latest.created_by, created_at=now, retired=False))
        version = latest.version + 1
        conn.execute(message_templates.insert().values(
            name=name, version=version, subject=latest.subject, body_text=latest.body_text,
            body_html=latest.body_html or None, created_by=actor.username, created_at=now, retired=True))
        audit.record(conn, actor, "template.retire", "message_template", f"{name} v{version}",
                     old={"version": latest.version}, new={"version": version, "retired": True})
    return version
