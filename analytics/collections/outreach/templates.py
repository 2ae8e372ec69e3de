"""Message templates: Jinja2 files `config/templates/<name>.j2`, rendered in a sandbox with
StrictUndefined (a missing value is an error, never an empty gap); the first line is the subject."""

from __future__ import annotations

from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from analytics.collections.outreach.config import OutreachError
from analytics.settings import CONFIG_DIR

TEMPLATES_DIR = CONFIG_DIR / "templates"


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
