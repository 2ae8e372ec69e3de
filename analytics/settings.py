"""Settings from `config/settings.toml`, with environment overrides for paths and secrets."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = ROOT / "config"
DATA_DIR = ROOT / "data"


@dataclass(frozen=True)
class Settings:
    raw: dict[str, Any]

    def section(self, name: str) -> dict[str, Any]:
        return dict(self.raw.get(name, {}))

    @property
    def db_url(self) -> str:
        """The store: `ARDESK_DB` (path or SQLAlchemy URL), else `[store] path`."""
        return database_url(os.environ.get("ARDESK_DB") or self.raw["store"]["path"])

    @property
    def reporting_currency(self) -> str:
        return self.raw["reporting"]["currency"]

    @property
    def aging_edges(self) -> tuple[int, ...]:
        return tuple(int(e) for e in self.raw["reporting"]["aging_edges"])

    @property
    def data_dir(self) -> Path:
        """Where a store that is not a DuckDB file (PostgreSQL, in-memory) keeps its files: the inbox,
        done and failed jobs, rejected-row files. `[paths] data_dir` (relative: to the project root);
        empty or absent: `$XDG_DATA_HOME/ardesk` (default `~/.local/share/ardesk`), outside the checkout.
        """
        configured = str(self.raw.get("paths", {}).get("data_dir", "") or "")
        if configured:
            p = Path(configured).expanduser()
            return p if p.is_absolute() else ROOT / p
        xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        return Path(xdg) / "ardesk"

    def path(self, section: str, key: str) -> Path:
        """A path setting, relative to the project root unless absolute."""
        p = Path(self.raw[section][key])
        return p if p.is_absolute() else ROOT / p


def database_url(path_or_url: str) -> str:
    """`data/x.duckdb` -> `duckdb:////abs/data/x.duckdb`; a URL with `://` passes through."""
    if "://" in path_or_url:
        return path_or_url
    p = Path(path_or_url)
    if not p.is_absolute():
        p = ROOT / p
    return f"duckdb:///{p}"


@cache
def load_settings(path: str | None = None) -> Settings:
    cfg = Path(path or os.environ.get("ARDESK_SETTINGS") or CONFIG_DIR / "settings.toml")
    with cfg.open("rb") as fh:
        return Settings(tomllib.load(fh))


# `[portal]` settings: name -> (lowest, highest, default), in days.
PORTAL_DAYS = {"link_days": (1, 1000, 25), "remittance_pause_days": (0, 60, 7)}


def portal_days(name: str, settings: Settings | None = None) -> int:
    """`[portal] link_days` (how long a portal link is valid) or `remittance_pause_days` (how long
    "I have paid" pauses reminders), checked against PORTAL_DAYS; absent: the default."""
    low, high, default = PORTAL_DAYS[name]
    value = (settings or load_settings()).section("portal").get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"[portal] {name} must be a whole number of days from {low} to {high}, not {value!r}.")
    return value
