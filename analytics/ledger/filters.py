"""The report filters every KPI takes: segment, collector, country, currency, sales rep, customer.

A filter is a property of the customer (customers.segment, .collector, .country, .currency,
.sales_rep, .customer_id). Each field is optional; `None` means "all". A field may also hold a tuple of
values ("any of"). Filters narrow the ledger to the matching customers through one semi-join,
`<alias>.customer_id IN (SELECT customer_id FROM customers WHERE ...)`, so every report applies
them the same way, and the SQL stays parameterised and portable (DuckDB and PostgreSQL).

Attribute filters (`attributes`: name -> values) narrow to the customers whose attribute (see
`customer_attributes`) has any of the values; several attributes must all match. Each is an
`EXISTS` on `customer_attributes` inside the same customers sub-select, so the ledger still meets
the filters through its one semi-join. A customer without the attribute matches no value of it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from analytics.ledger.customer_attributes import attribute_choices, attribute_name
from analytics.store.connection import Store

FilterValue = str | tuple[str, ...] | None
# (name, values) pairs sorted by name: hashable, and the same whatever order they were given in
AttributeFilter = tuple[tuple[str, tuple[str, ...]], ...] | None


@dataclass(frozen=True)
class Filters:
    """Which customers a report covers; every field optional (None = all)."""

    segment: FilterValue = None
    collector: FilterValue = None
    country: FilterValue = None
    currency: FilterValue = None
    customer_id: FilterValue = None
    attributes: AttributeFilter = None  # given as {name: value or values}; names read as attribute_name
    sales_rep: FilterValue = None  # the customers.sales_rep username

    def __post_init__(self) -> None:
        object.__setattr__(self, "attributes", _attribute_pairs(self.attributes))
        # Lists from widgets become tuples so a Filters stays hashable (cache keys).
        for f in fields(self):
            if f.name == "attributes":
                continue
            value = getattr(self, f.name)
            if isinstance(value, Sequence) and not isinstance(value, str):
                object.__setattr__(self, f.name, tuple(value) or None)
            elif value == "":
                object.__setattr__(self, f.name, None)

    @property
    def is_empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))

    def active(self) -> dict[str, tuple[str, ...]]:
        """The customers columns that narrow the report, each as a tuple of allowed values
        (attribute filters are in `attributes`)."""
        out: dict[str, tuple[str, ...]] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "attributes":
                continue
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
    for i, (name, values) in enumerate(filters.attributes or ()):
        a, keys = f"{alias}_a{i}", [f"{prefix}attr{i}_{j}" for j in range(len(values))]
        params[f"{prefix}attr{i}"] = name
        params.update(zip(keys, values, strict=True))
        binds = ", ".join(f":{k}" for k in keys)
        # only aliases and bind names are composed; the name and values bind as parameters
        parts.append(f"EXISTS (SELECT 1 FROM customer_attributes {a} WHERE {a}.customer_id = {alias}.customer_id "  # noqa: S608
                     f"AND {a}.name = :{prefix}attr{i} AND {a}.value IN ({binds}))")
    return (" AND ".join(parts) or "1 = 1"), params


def _attribute_pairs(given: object) -> AttributeFilter:
    """{name: value or values} (or pairs) as sorted (name, values) pairs; None when nothing narrows."""
    if not given:
        return None
    items = given.items() if isinstance(given, Mapping) else given
    pairs: dict[str, tuple[str, ...]] = {}
    for raw_name, raw_values in items:  # type: ignore[union-attr]
        name = attribute_name(raw_name)
        if name is None:
            raise ValueError(f"{raw_name!r} names no customer attribute (see customer_attributes.attribute_name).")
        values = (raw_values,) if isinstance(raw_values, str) else tuple(raw_values or ())
        values = tuple(str(v) for v in values if v is not None and str(v) != "")
        if values:
            pairs[name] = tuple(dict.fromkeys(pairs.get(name, ()) + values))
    return tuple(sorted(pairs.items())) or None


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


DIMENSIONS = ("segment", "collector", "sales_rep", "country", "currency")  # the customer properties a report filters on


def filter_choices(store: Store) -> dict[str, Any]:
    """For each filter dimension, the distinct non-empty customer values, sorted.

    Collectors and sales reps are the `customers.collector` / `.sales_rep` usernames (the values the
    `collector` and `sales_rep` filters match).
    Under "attributes": {name: its values} for each customer attribute with at most
    `customer_attributes.MOST_CHOICES` distinct values (`attribute_choices`).
    """
    frame = store.read(
        "SELECT DISTINCT segment, collector, sales_rep, country, currency FROM customers"
    )
    choices: dict[str, Any] = {d: sorted(str(v) for v in frame[d].dropna().unique() if str(v)) for d in DIMENSIONS}
    choices["attributes"] = attribute_choices(store)
    return choices
