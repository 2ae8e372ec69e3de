"""Month arithmetic: the one definition of a month's first and last day, of "N months later" and of
the month ends a monthly series reports on. Pages, reports and the demo all use these.
"""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd


def month_start(d: date) -> date:
    """The first day of d's month."""
    return d.replace(day=1)


def month_end(d: date) -> date:
    """The last day of d's month."""
    return (d.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


def add_months(d: date, months: int) -> date:
    """The first day of the month `months` after d's month (negative: before)."""
    index = d.year * 12 + d.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def previous_month_end(d: date) -> date:
    """The last day of the month before d's month."""
    return d.replace(day=1) - timedelta(days=1)


def months_between(first: date, last: date) -> list[date]:
    """First days of every month from first's month to last's month, inclusive."""
    out, m = [], month_start(first)
    while m <= last:
        out.append(m)
        m = add_months(m, 1)
    return out


def month_ends(start: date, end: date, include_end: bool = True) -> list[date]:
    """Month ends from start's month through end's month, none after `end`.

    With `include_end`, `end` itself closes the list when it is not a month end (a report as of the
    15th shows the month so far as its last point).
    """
    points = [ts.date() for ts in pd.date_range(month_end(start), end, freq="ME")]
    if include_end and (not points or points[-1] != end) and end >= start:
        points.append(end)
    return points
