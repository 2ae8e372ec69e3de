"""The demo's calendar: the history window ending on `end_date`, and how invoicing spreads over it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from analytics.demo.arrays import day_number, weekday_of
from analytics.demo.parameters import SEASON

HISTORY_DAYS = 730


@dataclass(frozen=True)
class Calendar:
    """The history window, and how invoicing spreads over it (seasons, weekdays, month ends)."""

    start: int
    end: int
    cdf: np.ndarray  # cdf[i]: invoicing weight of the days before start + i

    @classmethod
    def build(cls, end_date: date) -> Calendar:
        end = day_number(end_date)
        start = end - HISTORY_DAYS
        days = np.arange(start, end + 1)
        d64 = days.astype("datetime64[D]")
        month = d64.astype("datetime64[M]")
        weekday = weekday_of(days)
        weight = SEASON[month.astype(np.int64) % 12] * np.select([weekday < 5, weekday == 5], [1.0, 0.08], 0.02)
        weight *= np.where((d64 + 2).astype("datetime64[M]") != month, 1.6, 1.0)  # month-end billing
        weight *= 1 + 0.08 * (days - start) / 365  # the business grows
        return cls(start, end, np.concatenate([[0.0], np.cumsum(weight)]))

    def mass(self, first: np.ndarray, last: np.ndarray) -> np.ndarray:
        return self.cdf[last - self.start + 1] - self.cdf[first - self.start]

    def sample(self, rng: np.random.Generator, first: np.ndarray, last: np.ndarray) -> np.ndarray:
        """One invoicing day per element, in [first, last], following the seasonal weights."""
        lo = self.cdf[first - self.start]
        u = lo + rng.random(len(first)) * (self.cdf[last - self.start + 1] - lo)
        idx = np.searchsorted(self.cdf, u, side="right") - 1
        return self.start + np.clip(idx, first - self.start, last - self.start)
