"""The report filters every KPI takes: segment, collector, country, currency, customer.

A filter is a property of the customer (customers.segment, .collector, .country, .currency,
.customer_id). Each field is optional; `None` means "all". A field may also hold a tuple of
values ("any of"). Filters narrow the ledger to the matching customers through one semi-join,
`<alias>.customer_id IN (SELECT customer_id FROM customers WHERE ...)`, so every report applies
them the same way, and the SQL stays parameterised and portable (DuckDB and PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from analytics.store.connection import Store

FilterValue = str | tuple[str, ...] | None


@dataclass(frozen=True)
class Filters:
    """Which customers a report covers; every field optional (None = all)."""

    segment: FilterValue = None
    collector: FilterValue = None
    country: FilterValue = None
    currency: FilterValue = None
    customer_id: FilterValue = None

    def __post_init__(self) -> None:
        # Lists from widgets become tuples so a Filters stays hashable (cache keys).
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Sequence) and not isinstance(value, str):
                object.__setattr__(self, f.name, tuple(value) or None)
            elif value == "":
                object.__setattr__(self, f.name, None)

    @property
    def is_empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))

    def active(self) -> dict[str, tuple[str, ...]]:
        """The fields that narrow the report, each as a tuple of allowed values."""
        out: dict[str, tuple[str, ...]] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                out[f.name] = (value,) if isinstance(value, str) else tuple(value)
        return out


def customer_conditions(filters: Filters, alias: str = "c", prefix: str = "f_") -> tuple[str, dict[str, Any]]:
    """`cond AND cond ...` on the customers table aliased `alias`, and its bind parameters.

    Returns ("1 = 1", {}) without filters. Column names come from the dataclass, never from input.
    """
    parts: list[str] = []
    params: dict[str, Any] = {}
    for name, values in filters.active().items():
        keys = [f"{prefix}{name}_{i}" for i in range(len(values))]
        params.update(zip(keys, values, strict=True))
        binds = ", ".join(f":{k}" for k in keys)
        parts.append(f"{alias}.{name} IN ({binds})")
    return (" AND ".join(parts) or "1 = 1"), params


def filter_sql(filters: Filters, customer_column: str = "e.customer_id", prefix: str = "f_") -> tuple[str, dict[str, Any]]:
    """An ` AND <customer_column> IN (SELECT ... FROM customers ...)` fragment and its params.

    Empty string without filters, so callers append it to any WHERE clause unconditionally:
    `f"WHERE e.posting_date <= :as_of{fragment}"`.
    """
    if filters.is_empty:
        return "", {}
    conditions, params = customer_conditions(filters, alias="fc", prefix=prefix)
    fragment = f" AND {customer_column} IN (SELECT fc.customer_id FROM customers fc WHERE {conditions})"  # noqa: S608
    return fragment, params


ALL = Filters()  # the default of every report: all customers (frozen, so safe as a default)


DIMENSIONS = ("segment", "collector", "country", "currency")  # the customer properties a report filters on


def filter_choices(store: Store) -> dict[str, list[str]]:
    """For each filter dimension, the distinct non-empty customer values, sorted.

    Collectors are the `customers.collector` usernames (the values the `collector` filter matches).
    """
    frame = store.read(
        "SELECT DISTINCT segment, collector, country, currency FROM customers"
    )
    return {d: sorted(str(v) for v in frame[d].dropna().unique() if str(v)) for d in DIMENSIONS}
