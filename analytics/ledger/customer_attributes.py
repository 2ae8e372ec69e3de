"""Customer attributes: the extra columns of a customers file, kept by name (industry, region, ...).

Naming rule (`attribute_name`): a column header becomes an attribute name in lower snake case:
accents are dropped (é → e), letters are lower-cased, every run of other characters (spaces,
punctuation, symbols) becomes one `_`, and leading/trailing `_` are removed. "Vehicle Class" →
`vehicle_class`, "Région" → `region`, "Credit Rating (S&P)" → `credit_rating_s_p`. A header with
no letter or digit, or one longer than `NAME_LENGTH` characters once normalised, names no attribute.

A value is the cell's text, trimmed, at most `VALUE_LENGTH` characters (the store column's length);
a customer has at most one value per attribute. Filters match values exactly ("any of").
"""

from __future__ import annotations

import re
import unicodedata

import pandas as pd

from analytics.store.connection import Store
from analytics.store.schema import customer_attributes

NAME_LENGTH: int = customer_attributes.c.name.type.length
VALUE_LENGTH: int = customer_attributes.c.value.type.length
# The sidebar offers an attribute as a filter only up to this many distinct values: more (a tax id,
# a phone number) is an identifier, not a grouping; the command line still filters on it.
MOST_CHOICES = 200


def attribute_name(header: str) -> str | None:
    """The attribute name a column header gives (see the module's naming rule); None if it gives none."""
    plain = unicodedata.normalize("NFKD", str(header)).encode("ascii", "ignore").decode("ascii")
    name = re.sub(r"[^a-z0-9]+", "_", plain.lower()).strip("_")
    return name if name and len(name) <= NAME_LENGTH else None


def attribute_summary(store: Store) -> pd.DataFrame:
    """One row per attribute: its name, how many customers have a value, how many distinct values."""
    return store.read("""
        SELECT name, COUNT(*) AS customers, COUNT(DISTINCT value) AS distinct_values
        FROM customer_attributes GROUP BY name ORDER BY name""")


def attribute_choices(store: Store, most: int = MOST_CHOICES) -> dict[str, list[str]]:
    """Each attribute with at most `most` distinct values, and those values sorted (the filter's options)."""
    frame = store.read("""
        SELECT a.name, a.value FROM customer_attributes a
        WHERE a.name IN (SELECT name FROM customer_attributes GROUP BY name HAVING COUNT(DISTINCT value) <= :most)
        GROUP BY a.name, a.value""", {"most": most})
    # sorted in Python: the same order on every engine, whatever its collation
    return {str(name): sorted(str(v) for v in group["value"]) for name, group in frame.groupby("name", sort=True)}
