"""Message templates: Jinja2 files `config/templates/<name>.j2`, rendered in a sandbox with
StrictUndefined (a missing value is an error, never an empty gap); the first line is the subject.

Which invoices a template lists (`invoice_scope`):
- "past_due" (every reminder, notice, demand and call script; the default): only the invoices past
  due as of D that no dispute or pausing promise holds (`collections.holds`);
- "not_due" (`reminder_predue`): open invoices not yet due, not held;
- "open" (the statements): every open item.
A statement of every open item may be attached to any of them (`queue.queue_messages`, attach).
"""

from __future__ import annotations

from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from analytics.collections.outreach.config import OutreachError
from analytics.settings import CONFIG_DIR

TEMPLATES_DIR = CONFIG_DIR / "templates"
INVOICE_SCOPES = {"statement_cover": "open", "statement_letter": "open", "reminder_predue": "not_due"}
SCOPE_WORDS = {"past_due": "no invoices past due (open, not disputed, not paused by a promise)",
               "not_due": "no open invoices not yet due (and not disputed or paused by a promise)",
               "open": "no open invoices"}


def invoice_scope(template: str) -> str:
    """Which invoices the template lists: "past_due" (default), "not_due" or "open" (module docstring)."""
    return INVOICE_SCOPES.get(template, "past_due")


def list_templates() -> list[str]:
    """Template names (files `config/templates/<name>.j2`)."""
    return sorted(p.stem for p in TEMPLATES_DIR.glob("*.j2"))


def _environment() -> SandboxedEnvironment:
    return SandboxedEnvironment(loader=FileSystemLoader(TEMPLATES_DIR), undefined=StrictUndefined,
                                autoescape=False, keep_trailing_newline=True)


def render(template: str, context: dict[str, Any]) -> tuple[str, str]:
    """(subject, body) of a template: its first line is `Subject: ...`, then a blank line, then the body."""
    if template not in list_templates():
        raise OutreachError(f"There is no template {template!r}; choose one of {', '.join(list_templates())}.")
    try:
        text = _environment().get_template(f"{template}.j2").render(**context)
    except TemplateError as exc:
        raise OutreachError(f"Template {template!r} could not be rendered: {exc}") from None
    first, _, body = text.partition("\n")
    if not first.startswith("Subject:"):
        raise OutreachError(f"Template {template!r} must start with a 'Subject:' line.")
    return first.removeprefix("Subject:").strip(), body.lstrip("\n")
