"""The values the report filters offer: every segment, collector, country and currency in use."""

from __future__ import annotations

from analytics.store import Store

DIMENSIONS = ("segment", "collector", "country", "currency")


def filter_choices(store: Store) -> dict[str, list[str]]:
    """For each filter dimension, the distinct non-empty customer values, sorted.

    Collectors are the `customers.collector` usernames (the values the `collector` filter matches).
    """
    frame = store.read(
        "SELECT DISTINCT segment, collector, country, currency FROM customers"
    )
    return {d: sorted(str(v) for v in frame[d].dropna().unique() if str(v)) for d in DIMENSIONS}
