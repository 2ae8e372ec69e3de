"""The store named on the command line: a SQLAlchemy URL, or a DuckDB file path relative to where the command runs."""

from __future__ import annotations

from pathlib import Path


def store_argument(value: str) -> str:
    """A URL as it is; a path made absolute against the current directory, as a shell user means it
    (`analytics.settings.database_url` would take a relative path against the project root, the rule
    for paths in config/settings.toml and ARDESK_DB)."""
    if "://" in value:
        return value
    return str(Path(value).expanduser().absolute())
