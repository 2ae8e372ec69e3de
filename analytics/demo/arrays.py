"""Small vectorised helpers: day numbers and business days in numpy, Arrow columns without per-row Python.

A day is an int64 day number (days since 1970-01-01); NEVER stands for "not paid, not ever".
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa

NEVER = 10_000_000  # day number of "not paid, not ever"


def day_number(d: date) -> int:
    return (d - date(1970, 1, 1)).days


def date_of(day: int) -> date:
    return date(1970, 1, 1) + timedelta(days=int(day))


def weekday_of(days: np.ndarray) -> np.ndarray:
    """0 = Monday (1970-01-01 was a Thursday)."""
    return (days + 3) % 7


def business_day(days: np.ndarray, offset: np.ndarray | int = 0) -> np.ndarray:
    """The business day `offset` business days after `days` (a weekend day counts from Monday)."""
    return np.busday_offset(np.asarray(days).astype("datetime64[D]"), offset, roll="forward").astype(np.int64)


def business_day_within(rng: np.random.Generator, first: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """A uniformly drawn business day in [first, stop); `first` itself when there is none."""
    span = np.busday_count(first.astype("datetime64[D]"), stop.astype("datetime64[D]"))
    pick = np.floor(rng.random(len(first)) * np.maximum(span, 0)).astype(np.int64)
    return np.where(span > 0, business_day(first, pick), first)


def choose(rng: np.random.Generator, shares: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """One draw per element from the categorical distribution `shares[rows[i]]`."""
    cum = np.cumsum(shares, axis=1)[rows]
    pick = (rng.random(len(rows))[:, None] >= cum).sum(axis=1)
    return np.minimum(pick, shares.shape[1] - 1)


def numbered_array(prefix: str, numbers: np.ndarray, width: int = 7) -> pa.Array:
    """'INV-0000042'-style strings, built as fixed-width bytes (no Python per row)."""
    n = len(numbers)
    if n:
        width = max(width, len(str(int(numbers.max()))))
    head = prefix.encode()
    w = len(head) + width
    buf = np.empty((n, w), dtype=np.uint8)
    buf[:, :len(head)] = np.frombuffer(head, dtype=np.uint8)
    x = numbers.astype(np.int64)
    for k in range(w - 1, len(head) - 1, -1):
        buf[:, k] = 48 + x % 10
        x = x // 10
    offsets = np.arange(0, (n + 1) * w, w, dtype=np.int64)
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(buf.ravel())).cast(pa.string())


def vocab_array(words: tuple[str, ...] | list[str], codes: np.ndarray) -> pa.Array:
    """Strings from a small vocabulary; code -1 is NULL."""
    codes = np.asarray(codes, dtype=np.int64)
    return pa.array(list(words), pa.string()).take(pa.array(codes, mask=codes < 0))


def const_array(text: str, n: int) -> pa.Array:
    return vocab_array((text,), np.zeros(n, dtype=np.int64))


def money_array(cents: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    """Cents (exact int64) -> 2-decimal values; DuckDB casts them exactly into DECIMAL(18,2)."""
    return pa.array(np.asarray(cents) / 100.0, pa.float64(), mask=null)


def date_array(days: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    days = np.where(null, 0, days) if null is not None else days
    return pa.array(np.asarray(days, dtype=np.int64).astype("datetime64[D]"), mask=null)


def stamp_array(seconds: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    seconds = np.where(null, 0, seconds) if null is not None else seconds
    return pa.array(np.asarray(seconds, dtype=np.int64).astype("datetime64[s]"), mask=null)


def int_array(values: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    return pa.array(np.asarray(values, dtype=np.int64), pa.int64(), mask=null)


def arrow_frame(columns: dict[str, pa.Array]) -> pd.DataFrame:
    """An Arrow-backed DataFrame: DuckDB scans it without per-row Python objects."""
    return pd.DataFrame({k: pd.arrays.ArrowExtensionArray(v) for k, v in columns.items()})


def concat_parts(parts: list[np.ndarray], dtype: type = np.int64) -> np.ndarray:
    return np.concatenate([np.asarray(p, dtype=dtype) for p in parts]) if parts else np.empty(0, dtype)
