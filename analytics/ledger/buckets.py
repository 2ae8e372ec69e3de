"""Aging buckets: the one definition of the bucket edges and labels (`[reporting] aging_edges`).

basis "due": days past due; "Current" = not yet past due (due today is current), then one bucket per
edge interval (1-30, 31-60, 61-90, 91-120, 120+ by default); basis "invoice": age = days since
posting, buckets 0-30, 31-60, ..., 120+. Aging reports and the monthly summaries both place
amounts with these.
"""

from __future__ import annotations

from analytics.settings import load_settings

BASES = ("due", "invoice")


def intervals(basis: str) -> list[tuple[str, int | None, int | None]]:
    """(label, low exclusive, high inclusive) per bucket, from the configured edges."""
    if basis not in BASES:
        raise ValueError(f"basis must be one of {', '.join(BASES)}, not {basis!r}")
    edges = load_settings().aging_edges
    out: list[tuple[str, int | None, int | None]] = []
    if basis == "due":
        out.append(("Current", None, 0))
        low = 0
    else:
        out.append((f"0-{edges[0]}", None, edges[0]))
        low, edges = edges[0], edges[1:]
    for high in edges:
        out.append((f"{low + 1}-{high}", low, high))
        low = high
    out.append((f"{low}+", low, None))
    return out


def bucket_labels(basis: str = "due") -> list[str]:
    """The bucket column labels in age order, e.g. Current, 1-30, 31-60, 61-90, 91-120, 120+."""
    return [label for label, _, _ in intervals(basis)]


def bucket_condition(days: str, low: int | None, high: int | None) -> str:
    """SQL: the day count expression `days` lies in (low, high] (None: unbounded)."""
    parts = ([f"{days} > {int(low)}"] if low is not None else []) + ([f"{days} <= {int(high)}"] if high is not None else [])
    return " AND ".join(parts) or "1 = 1"


def bucket_case(days_expr: str, basis: str = "due") -> str:
    """SQL CASE mapping a day count expression to its bucket label (edges are config integers)."""
    whens = " ".join(f"WHEN {bucket_condition(days_expr, lo, hi)} THEN '{label}'" for label, lo, hi in intervals(basis))
    return f"CASE {whens} END"


def bucket_index_case(days_expr: str, basis: str = "due") -> str:
    """SQL CASE mapping a day count expression to its bucket's position (0 = youngest)."""
    whens = " ".join(f"WHEN {bucket_condition(days_expr, lo, hi)} THEN {i}" for i, (_, lo, hi) in enumerate(intervals(basis)))
    return f"CASE {whens} END"
