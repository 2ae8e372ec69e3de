"""How far a long import is: `ImportProgress` reports, `Clock` times the steps.

A run reports rows done of the file's rows at each step (read, validated, staged, written,
committed); the caller's `ProgressFn` draws them (the CLI's line, the Imports page's bar).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ImportProgress:
    """Where a long import is: rows done of the total, and the rate so far."""

    step: str
    rows_done: int
    rows_total: int
    elapsed_s: float

    @property
    def rate(self) -> float:
        """Rows per second so far."""
        return self.rows_done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the current rate (None before the first rows)."""
        return (self.rows_total - self.rows_done) / self.rate if self.rate else None

    @property
    def fraction(self) -> float:
        return min(1.0, self.rows_done / self.rows_total) if self.rows_total else 1.0

    def __str__(self) -> str:
        left = f", {self.eta_s:,.0f} s left" if self.eta_s is not None and self.rows_done < self.rows_total else ""
        return f"{self.step}: {self.rows_done:,} of {self.rows_total:,} rows, {self.rate:,.0f} rows/s{left}"


ProgressFn = Callable[[ImportProgress], None]


class Clock:
    """Times a run of `total` file rows and hands each step to `progress` (if any)."""

    def __init__(self, total: int, progress: ProgressFn | None) -> None:
        self.total, self.progress, self.start = total, progress, time.monotonic()

    def tick(self, step: str, done: int) -> None:
        if self.progress:
            self.progress(ImportProgress(step, done, self.total, time.monotonic() - self.start))

