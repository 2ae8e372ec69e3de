"""The letterhead: who sends (company, sender), where to pay (remit-to address, bank details) and
the logo, set once in `config/settings.toml` `[letterhead]` and used by every email (template
variables `letterhead.*` and a footer under every message, text and HTML) and every PDF statement
(logo and sender at the top, remit-to and bank details at the bottom).

No secrets live here: bank details printed on an invoice are public to every customer. A logo path
is relative to the project root; a logo file that is not there (or not PNG/JPEG) is left out, and
the Templates page says so.
"""

from __future__ import annotations

import html
from dataclasses import asdict, dataclass
from pathlib import Path

from analytics.settings import ROOT, load_settings

LOGO_CID = "ardesk-logo"  # the Content-ID of the logo inside an HTML email
LOGO_TYPES = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg"}


@dataclass(frozen=True)
class Letterhead:
    company: str = ""
    sender: str = ""
    address: str = ""
    remit_to: str = ""
    bank_details: str = ""
    logo: str = ""  # a path, relative to the project root unless absolute; empty: none

    @classmethod
    def from_settings(cls) -> Letterhead:
        raw = load_settings().section("letterhead")
        return cls(**{k: str(raw.get(k, "") or "").strip() for k in cls.__dataclass_fields__})

    def as_variables(self) -> dict[str, str]:
        """The template variable `letterhead` (letterhead.company, .sender, .address, .remit_to,
        .bank_details, .logo)."""
        return asdict(self)

    def logo_path(self) -> Path | None:
        """The logo file when one is set, exists and is PNG or JPEG; else None."""
        if not self.logo:
            return None
        path = Path(self.logo).expanduser()
        path = path if path.is_absolute() else ROOT / path
        return path if path.is_file() and path.suffix.lower() in LOGO_TYPES else None

    def logo_problem(self) -> str | None:
        """Why a configured logo is left out, in words; None when there is none or it is fine."""
        if self.logo and self.logo_path() is None:
            return (f"The letterhead logo {self.logo!r} is not a PNG or JPEG file that exists; "
                    "emails and statements go out without it.")
        return None

    def footer_lines(self) -> list[str]:
        """The footer's lines: company, address, sender, "Remit to: ...", "Bank details: ..."."""
        lines = [self.company, *self.address.splitlines(), self.sender]
        if self.remit_to:
            lines.append("Remit to: " + " ".join(self.remit_to.split()))
        if self.bank_details:
            lines.append("Bank details: " + " ".join(self.bank_details.split()))
        return [line.strip() for line in lines if line and line.strip()]

    def text_footer(self) -> str:
        """The plain-text footer (RFC 3676 signature separator, then the lines); empty without a letterhead."""
        lines = self.footer_lines()
        return "\n-- \n" + "\n".join(lines) + "\n" if lines else ""

    def html_footer(self) -> str:
        """The HTML footer: the logo (inline, by Content-ID) and the lines, every text escaped."""
        lines = self.footer_lines()
        if not lines and self.logo_path() is None:
            return ""
        logo = (f'<img src="cid:{LOGO_CID}" alt="{html.escape(self.company)}" style="max-height:60px"><br>'
                if self.logo_path() is not None else "")
        text = "<br>".join(html.escape(line) for line in lines)
        return (f'<hr><div style="font-family:sans-serif;font-size:12px;color:#555">{logo}{text}</div>')
