"""Outreach settings: the mode (outbox folder or SMTP), the sender, the frequency cap, the delivery
lease and the SMTP server (`[outreach]` and `[smtp]` in the settings, ARDESK_* environment variables
first), and `OutreachError`, raised with a plain-words reason by every outreach request that cannot
be carried out."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analytics.settings import load_settings


class OutreachError(ValueError):
    """An outreach request that cannot be carried out, explained in plain words."""


@dataclass(frozen=True)
class OutreachConfig:
    mode: str = "outbox"
    outbox_dir: Path = Path("data/outbox")
    from_address: str = "collections@ardesk.example"
    max_emails_per_customer: int = 3
    frequency_window_days: int = 7
    lease_seconds: float = 300  # how long a delivery holds its claim before recovery may settle it
    smtp_host: str = "localhost"
    smtp_port: int = 25
    starttls: bool = False
    smtp_timeout: float = 15  # seconds to wait for each server reply
    smtp_user: str | None = field(default=None, repr=False)
    smtp_password: str | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls) -> OutreachConfig:
        settings = load_settings()
        out, smtp = settings.section("outreach"), settings.section("smtp")
        outbox = os.environ.get("ARDESK_OUTBOX")
        return cls(
            mode=os.environ.get("ARDESK_OUTREACH_MODE") or out.get("mode", "outbox"),
            outbox_dir=Path(outbox) if outbox else settings.path("outreach", "outbox_dir"),
            from_address=out.get("from_address", cls.from_address),
            max_emails_per_customer=int(out.get("max_emails_per_customer", 3)),
            frequency_window_days=int(out.get("frequency_window_days", 7)),
            lease_seconds=_positive(out, "outreach", "lease_seconds", cls.lease_seconds),
            smtp_host=os.environ.get("ARDESK_SMTP_HOST") or smtp.get("host", "localhost"),
            smtp_port=int(os.environ.get("ARDESK_SMTP_PORT") or smtp.get("port", 25)),
            starttls=bool(smtp.get("starttls", False)),
            smtp_timeout=_positive(smtp, "smtp", "timeout_seconds", cls.smtp_timeout),
            smtp_user=os.environ.get("ARDESK_SMTP_USER"),
            smtp_password=os.environ.get("ARDESK_SMTP_PASSWORD"),
        )


def _positive(section: dict[str, Any], name: str, key: str, default: float) -> float:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise OutreachError(f"[{name}] {key} must be a number of seconds above 0, not {value!r}.")
    return float(value)
