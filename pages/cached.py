"""Engine calls cached by their arguments AND the store's data version.

`analytics.audit.data_version` changes on every write (imports, actions, demo), so a cached result
is reused only while the data it was computed from is unchanged: a page never shows stale numbers.
Ledger figures (aging, DSO, bad debt, KPI tiles, dunning) key on `figures_version` instead, which
ignores sign-ins, account changes and timeline entries: none of those move them, and collectors
log calls all day. Any other engine call keys on every write. The TTL only bounds memory. Results
are the small aggregated frames the engine returns; large frames (invoice lists) go through
`cached` with a row `limit` in the engine call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import streamlit as st

from analytics.store.connection import Store
from analytics.store.data_version import data_version, figures_version

TTL_SECONDS = 15 * 60
# Engine modules whose results read only the ledger, customers, FX and dunning tables.
FIGURES_MODULES = ("analytics.kpis.aging", "analytics.kpis.dso", "analytics.kpis.bad_debt", "analytics.kpis.summary",
                   "analytics.kpis.dunning_effectiveness", "analytics.ledger.open_items", "analytics.ledger.filters",
                   "analytics.kpis.provision", "analytics.kpis.what_if")


@st.cache_data(ttl=TTL_SECONDS, max_entries=500, show_spinner=False)
def _run(name: str, store_key: str, version: int, args: tuple, kwargs: tuple, _fn: Callable, _store: Store) -> Any:
    # name, store_key, version, args and kwargs form the cache key; _fn and _store are not hashed.
    return _fn(_store, *args, **dict(kwargs))


def cached(fn: Callable[..., pd.DataFrame], store: Store, *args: Any, **kwargs: Any) -> Any:
    """`fn(store, *args, **kwargs)`, reused while the arguments and the data version are unchanged."""
    name = f"{fn.__module__}.{fn.__qualname__}"
    version = figures_version(store) if fn.__module__ in FIGURES_MODULES else data_version(store)
    return _run(name, repr(store), version, args, tuple(sorted(kwargs.items())), fn, store)
