"""The shared sidebar: as-of date, period, segment, collector, country, currency and customer attributes.

One set of choices per session (st.session_state["view"]) follows the user from page to page, and
is mirrored in the URL query string so a link reproduces the view: the URL is read once, on the
session's first dashboard run, and rewritten on every run after that (page switches clear it).

The period follows the as-of date (the 12 months ending with its month) until the user moves the
period slider; from then on (and for a link with from/to) it stays where they put it. The slider
spans the months of the ledger (first to last posting). Collectors and sales reps open on their own
accounts (analytics.access.roles.my_accounts); clearing the filter shows everybody's.

URL keys: as_of=YYYY-MM-DD, from=YYYY-MM, to=YYYY-MM (only once the user set the period), segment,
collector, sales_rep, country, currency, and attr.NAME per customer attribute (e.g.
attr.industry=Retail; see analytics.ledger.customer_attributes).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import date
from typing import NoReturn

import streamlit as st

from analytics.access.roles import my_accounts
from analytics.ledger.customer_attributes import attribute_name
from analytics.ledger.filters import DIMENSIONS, Filters, filter_choices
from analytics.ledger.months import add_months, month_end, month_start, months_between
from analytics.ledger.open_items import ledger_bounds
from analytics.settings import load_settings
from analytics.store.connection import Store
from analytics.store.data_version import data_version
from pages.cached import cached
from pages.plain_text import escape_markdown
from pages.session import current_actor

ALL = "All"
ATTR = "attr."  # URL key (and widget key f_attr.NAME) prefix of a customer attribute filter
LABELS = {"segment": "Segment", "collector": "Collector", "sales_rep": "Sales rep", "country": "Country",
          "currency": "Currency"}


@dataclass(frozen=True)
class View:
    """What every dashboard draws: the filters, the as-of date and the period (whole months).

    Each filter is a tuple of chosen values; an empty tuple means "all".
    """

    as_of: date
    start: date  # first day of the first month
    end: date  # last day of the last month
    segment: tuple[str, ...] = ()
    collector: tuple[str, ...] = ()
    country: tuple[str, ...] = ()
    currency: tuple[str, ...] = ()
    attributes: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (attribute name, chosen values), by name
    sales_rep: tuple[str, ...] = ()
    period_set: bool = False  # the user chose the period: it no longer follows the as-of date

    @property
    def filters(self) -> Filters:
        return Filters(segment=self.segment or None, collector=self.collector or None,
                       country=self.country or None, currency=self.currency or None,
                       attributes=self.attributes or None, sales_rep=self.sales_rep or None)

    @property
    def reporting_currency(self) -> str:
        return load_settings().reporting_currency

    def describe(self) -> str:
        """The active filters in words, for "nothing matches" messages and captions: markdown, in
        which the values (from the URL or the data) are escaped."""
        chosen = [f"{LABELS[d].lower()} {' or '.join(escape_markdown(v) for v in getattr(self, d))}"
                  for d in DIMENSIONS if getattr(self, d)]
        chosen += [f"{escape_markdown(name)} {' or '.join(escape_markdown(v) for v in values)}"
                   for name, values in self.attributes]
        return ", ".join(chosen) if chosen else "no filter"


# -- URL <-> view ---------------------------------------------------------------------------------
def following_period(first: date, as_of: date) -> tuple[date, date]:
    """The period that follows an as-of date: the 12 months ending with its month (not before `first`)."""
    return max(add_months(as_of, -11), month_start(first)), month_end(as_of)


def default_view(first: date, last: date, mine: dict[str, tuple[str, ...]] | None = None) -> View:
    """As of the last posting date; the 12 months ending with the as-of month; `mine`: the
    role's own accounts (analytics.access.roles.my_accounts)."""
    start, end = following_period(first, last)
    return View(as_of=last, start=start, end=end, **(mine or {}))


def view_from_params(params: dict[str, list[str]], first: date, last: date,
                     mine: dict[str, tuple[str, ...]] | None = None) -> View:
    """A view from URL parameters (each key: its list of values); missing or unreadable: the default
    (`mine` for the filters when the link names no filter at all)."""
    params = {k: v[-1] if k in ("as_of", "from", "to") else v for k, v in params.items() if v}
    linked = any(k in params for k in DIMENSIONS) or any(k.startswith(ATTR) for k in params)
    view = default_view(first, last, None if linked else mine)
    changes: dict[str, object] = {}
    try:
        as_of = date.fromisoformat(params["as_of"])
        changes["as_of"] = min(max(as_of, first), last)
        changes["start"], changes["end"] = following_period(first, changes["as_of"])
    except (KeyError, ValueError):
        pass
    for key, field in (("from", "start"), ("to", "end")):
        try:
            month = date.fromisoformat(params[key] + "-01")
        except (KeyError, ValueError):
            continue
        month = min(max(month, month_start(first)), month_start(last))
        changes[field] = month if field == "start" else month_end(month)
        changes["period_set"] = True
    for d in DIMENSIONS:
        values = tuple(v for v in params.get(d, ()) if v)
        if values:
            changes[d] = values
    attributes = {}
    for key, raw in params.items():  # attr.NAME: a name that is not an attribute name is ignored
        name = attribute_name(key[len(ATTR):]) if key.startswith(ATTR) else None
        values = tuple(v for v in raw if v) if name == key[len(ATTR):] else ()
        if values:
            attributes[name] = values
    if attributes:
        changes["attributes"] = tuple(sorted(attributes.items()))
    view = replace(view, **changes)
    if view.start > view.end:
        view = replace(view, start=month_start(view.end))
    return view


def params_from_view(view: View) -> dict[str, str | list[str]]:
    """The URL parameters that reproduce a view (a filter repeats its key per value; unset: left out)."""
    params: dict[str, str | list[str]] = {"as_of": view.as_of.isoformat()}
    if view.period_set:
        params |= {"from": view.start.strftime("%Y-%m"), "to": view.end.strftime("%Y-%m")}
    params.update({d: list(getattr(view, d)) for d in DIMENSIONS if getattr(view, d)})
    params.update({f"{ATTR}{name}": list(values) for name, values in view.attributes})
    return params


# -- the sidebar ----------------------------------------------------------------------------------
WIDGET_KEYS = ("f_as_of", "f_period", *(f"f_{d}" for d in DIMENSIONS))


def _url_params() -> dict[str, list[str]]:
    return {k: st.query_params.get_all(k) for k in st.query_params}


def _reset(first: date, last: date) -> None:
    for key in WIDGET_KEYS:
        st.session_state.pop(key, None)
    for key in [k for k in st.session_state if str(k).startswith(f"f_{ATTR}")]:
        st.session_state.pop(key, None)
    st.session_state["view"] = default_view(first, last, my_accounts(current_actor()))


def typed_as_of(text: str, first: date, last: date) -> tuple[date | None, str | None]:
    """The as-of date typed in the box (YYYY-MM-DD, within the ledger's first..last posting dates),
    or None and the reason in words."""
    text = (text or "").strip()
    try:
        typed = date.fromisoformat(text)
        if len(text) != 10:  # fromisoformat also takes 20260531 and week dates; the box asks for YYYY-MM-DD
            raise ValueError(text)
    except ValueError:
        return None, (f"“{text}” is not a date: type it as YYYY-MM-DD (e.g. {last.isoformat()}), then press Enter."
                      if text else "Type the as-of date as YYYY-MM-DD, then press Enter.")
    if not first <= typed <= last:
        return None, (f"{typed:%d %b %Y} is outside the ledger: type a date from {first:%d %b %Y} to "
                      f"{last:%d %b %Y} (first to last posting).")
    return typed, None


def _as_of_changed(first: date, last: date) -> None:
    """A new as-of date (applied on Enter, or when the box is left): the period follows it unless the
    user set it; an unreadable date changes nothing (the box says why)."""
    view: View | None = st.session_state.get("view")
    as_of, _ = typed_as_of(st.session_state.get("f_as_of", ""), first, last)
    if as_of is None or (view is not None and view.period_set):
        return
    start, end = following_period(first, as_of)
    st.session_state["f_period"] = (start, month_start(end))


def _period_set() -> None:
    view: View | None = st.session_state.get("view")
    if view is not None:
        st.session_state["view"] = replace(view, period_set=True)


def sidebar_filters(store: Store) -> View | None:
    """Draw the shared filters in the sidebar and return the view; None when the ledger is empty."""
    first, last = cached(ledger_bounds, store)
    if last is None:
        return None
    view: View | None = st.session_state.get("view")
    if view is None:
        view = view_from_params(_url_params(), first, last, my_accounts(current_actor()))
        st.session_state["view"] = view

    with st.sidebar:
        st.subheader("Filters")
        # a callback may have moved the period (it follows the as-of date): that state wins
        # a text box, not st.date_input: Streamlit's date field commits a typed date only on blur,
        # a text box commits on Enter (and on blur)
        typed = st.text_input("As of (YYYY-MM-DD)", value=min(view.as_of, last).isoformat(), key="f_as_of",
                              max_chars=10, on_change=_as_of_changed, args=(first, last),
                              help=f"Open items and ages are measured on this date: type it, then press Enter "
                                   f"(the ledger runs from {first:%d %b %Y} to {last:%d %b %Y}).")
        as_of, problem = typed_as_of(typed, first, last)
        if problem:
            st.error(problem, icon=":material/event_busy:")
            as_of = min(view.as_of, last)  # the last good date stays in force
        months = months_between(first, last)
        start, end = st.select_slider(
            "Period", options=months, format_func=lambda m: m.strftime("%b %Y"), key="f_period",
            value=st.session_state.get("f_period") or (month_start(view.start), month_start(view.end)),
            on_change=_period_set, help="The months the trends and period KPIs cover; they follow the as-of "
                                        "date until you move them.",
        )
        view = st.session_state["view"]
        choices = cached(filter_choices, store)
        picked: dict[str, tuple[str, ...]] = {}
        for d in DIMENSIONS:
            options = sorted(set(choices[d]) | set(getattr(view, d)))  # keep a linked value visible
            picked[d] = tuple(st.multiselect(LABELS[d], options, default=list(getattr(view, d)),
                                             key=f"f_{d}", placeholder="All"))
        chosen = dict(view.attributes)
        attributes = []
        for name in sorted(set(choices.get("attributes", {})) | set(chosen)):  # the extra customer columns
            options = sorted(set(choices.get("attributes", {}).get(name, [])) | set(chosen.get(name, ())))
            values = st.multiselect(escape_markdown(name.replace("_", " ").capitalize()), options,
                                    default=list(chosen.get(name, ())), key=f"f_{ATTR}{name}", placeholder="All",
                                    help=f"Customer attribute {escape_markdown(name)} (a column of the customers file).")
            if values:
                attributes.append((name, tuple(values)))
        st.button("Reset filters", key="f_reset", icon=":material/restart_alt:", on_click=_reset,
                  args=(first, last))

    view = View(as_of=as_of, start=start, end=month_end(end), **picked, attributes=tuple(attributes),
                period_set=view.period_set)
    st.session_state["view"] = view
    params = params_from_view(view)
    if _url_params() != {k: v if isinstance(v, list) else [v] for k, v in params.items()}:
        st.query_params.from_dict(params)
    return view


# -- what every dashboard says the same way --------------------------------------------------------
EMPTY_LEDGER = "The ledger is empty. Import an ERP export or run `ardesk demo` to see the portfolio."


def dashboard(store: Store, title: str) -> View:
    """The page title and the shared sidebar; stops the page with a plain message on an empty ledger."""
    st.session_state["_page_started"] = time.perf_counter()
    view = sidebar_filters(store)
    st.title(title)
    if view is None:
        st.info(EMPTY_LEDGER)
        st.stop()
    st.caption(f"As of **{view.as_of:%d %b %Y}** · period **{view.start:%b %Y} – {view.end:%b %Y}** · "
               f"{view.describe()} · amounts in {view.reporting_currency}")
    return view


def nothing_matches(view: View, what: str = "open items") -> None:
    """The plain-words message for a filter (or a date) that matches nothing."""
    if view.describe() == "no filter":
        st.info(f"No {what} for this date and period.", icon=":material/filter_alt_off:")
    else:
        st.info(f"No {what} match {view.describe()} for this date and period. "
                "Widen the filters in the "
                "sidebar, or press Reset filters.", icon=":material/filter_alt_off:")


def stop_when_nothing_matches(store: Store, view: View, what: str = "open items") -> NoReturn:
    """A dashboard with nothing to show: the plain-words message, the footer, and no more of the page."""
    nothing_matches(view, what)
    footer(store)
    st.stop()


def footer(store: Store) -> None:
    """The last line of every dashboard: data version and time to compute (the bench waits on it)."""
    elapsed = time.perf_counter() - st.session_state.get("_page_started", time.perf_counter())
    st.caption(f"Data version {data_version(store)} · computed in {elapsed:.2f} s")
