"""Incremental sync from an ERP: a SQLAlchemy database URL, or a drop folder of exports.

Same mapping and validation as `ardesk import`. How far each source has been read is kept in
`sync_watermarks` (per source and dataset) and advanced in the SAME transaction as the rows:

- a database: `SELECT * FROM <[sync] table> WHERE <[sync] watermark_column> >= :watermark`. The
  boundary is inclusive because several rows can share one timestamp; rows read twice are
  unchanged, and unchanged rows are a no-op. The new watermark is the largest value read.
- a folder: every .csv/.xlsx/.parquet file modified after the watermark (its mtime), oldest first,
  one import run per file.

The ERP is read before the store's write lock is taken, so users keep working during the pull;
only the merge holds the lock.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from analytics.access.roles import Actor, require
from analytics.ingest.imports import ImportResult, run_import
from analytics.ingest.mapping import Mapping, MappingError
from analytics.ingest.progress import ProgressFn
from analytics.store.connection import Store

FILE_TYPES = (".csv", ".xlsx", ".parquet")


def source_label(source: str) -> str:
    """The source as stored and shown: URLs without their password."""
    if "://" in source:
        return sa.make_url(source).render_as_string(hide_password=True)
    return str(Path(source).resolve())


def watermark(store: Store, source: str, dataset: str) -> str | None:
    return store.scalar("SELECT watermark FROM sync_watermarks WHERE source = :s AND dataset = :d",
                        {"s": source_label(source)[:300], "d": dataset})


_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


def _ident(name: str, what: str) -> str:
    if not _IDENT.match(name):
        raise MappingError(f"[sync] {what} {name!r} is not a plain table or column name.")
    return name


def read_changes(source_url: str, mapping: Mapping, since: str | None) -> pd.DataFrame:
    """Rows of the ERP table changed at or after `since` (all rows when None), as text."""
    table = mapping.sync.get("table")
    column = mapping.sync.get("watermark_column")
    if not table or not column:
        raise MappingError(f"Mapping {mapping.name}: a database sync needs [sync] table and watermark_column.")
    sql = f"SELECT * FROM {_ident(table, 'table')}"  # noqa: S608 - identifiers checked above
    params: dict[str, str] = {}
    if since is not None:
        sql += f" WHERE {_ident(column, 'watermark_column')} >= :since"
        params["since"] = since
    sql += f" ORDER BY {column}"
    engine = sa.create_engine(source_url)
    try:
        with engine.connect() as conn:
            frame = pd.read_sql(sa.text(sql), conn, params=params)
    finally:
        engine.dispose()
    # text, like a CSV export: the mapping's formats apply the same way
    return frame.astype(object).where(frame.notna(), "").astype(str)


def sync_once(store: Store, source: str, mapping: Mapping, actor: Actor, *,
              progress: ProgressFn | None = None) -> list[ImportResult]:
    """Pull what changed since the last sync of `source` and import it; one run per batch or file."""
    require(actor, "import_data")
    label = source_label(source)
    since = watermark(store, source, mapping.dataset)
    if "://" in source:
        frame = read_changes(source, mapping, since)
        column = mapping.sync["watermark_column"]
        new_mark = str(frame[column].max()) if len(frame) else since
        result = run_import(store, frame, mapping, actor, source_label=label, kind="sync", progress=progress,
                            watermark=(label, new_mark) if new_mark is not None else None)
        return [result]
    folder = Path(source)
    if not folder.is_dir():
        raise MappingError(f"{source} is neither a database URL (with ://) nor a folder.")
    pattern = mapping.sync.get("pattern", "*")
    floor = float(since) if since else float("-inf")
    files = sorted((p.stat().st_mtime, p.name, p) for p in folder.glob(pattern)
                   if p.suffix.lower() in FILE_TYPES and p.is_file() and p.stat().st_mtime > floor)
    results = []
    for mtime, _, path in files:
        results.append(run_import(store, path, mapping, actor, source_label=f"{label}/{path.name}", kind="sync",
                                  progress=progress, watermark=(label, repr(mtime))))
    return results


_EVERY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*$")


def parse_every(text: str) -> float:
    """'15m' -> 900.0 seconds; '30s', '1h', or a bare number of minutes."""
    match = _EVERY.match(text)
    if not match:
        raise ValueError(f"--every {text!r}: write it like 15m, 30s or 1h.")
    value, unit = float(match.group(1)), match.group(2) or "m"
    return value * {"s": 1, "m": 60, "h": 3600}[unit]
