"""The monthly pack: the month's KPIs, trends, bad debt, dunning, top overdue customers and collectors.

Rule: the pack of month M is what the dashboards show with the as-of date on M's last day and the
period the 12 months ending there (the pages' default period), for the same filters, because every
table comes from the function the page calls:
- KPI tiles: `kpi_summary` at M's end (this month and last month) and at the end of M twelve months
  earlier (same month last year); change = this month − the other, in the tile's unit;
- aging at M's end (`aging_buckets`), the aging trend (`aging_trend`) and DSO (`dso_monthly`) over the
  period; bad debt (`bad_debt_monthly`) and roll rates (`roll_rates`) over the period;
- dunning effectiveness (`dunning_effectiveness`) over the period (its 30-day windows need more than a month);
- the 10 customers with the most overdue AR at M's end (`top_overdue_customers`);
- collector KPIs (`collector_kpis`) over M itself: a month's work;
- the cash forecast from M's end for 13 weeks (`forecasts.cash_forecast`), as its page shows it.

Who may have it: a role that may open every dashboard the pack draws from (DSO & cash, Bad debt,
Dunning effectiveness, Team): today CFO / controller, analyst and administrator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

import pandas as pd

from analytics.access.roles import ROLE_LABELS, Actor, PermissionDenied, allowed_pages
from analytics.forecasts import cash_forecast as forecasts
from analytics.kpis.aging import aging_buckets, aging_trend
from analytics.kpis.bad_debt import bad_debt_monthly, roll_rates
from analytics.kpis.collector_kpis import collector_kpis
from analytics.kpis.dso import dso_monthly
from analytics.kpis.dunning_effectiveness import dunning_effectiveness
from analytics.kpis.summary import kpi_summary, top_overdue_customers
from analytics.ledger.filters import ALL, Filters
from analytics.ledger.months import add_months, month_end, month_start
from analytics.ledger.open_items import ledger_bounds
from analytics.settings import load_settings
from analytics.store.connection import Store

PACK_PAGES = ("dso", "bad_debt", "dunning", "team")  # the dashboards whose figures the pack carries
TOP_CUSTOMERS = 10
PERIOD_MONTHS = 12

# The tiles, in the Overview's order: summary column, label, unit of the value and of its change
TILES: tuple[tuple[str, str, str], ...] = (
    ("open_ar", "Open AR", "money"),
    ("overdue_ar", "Overdue AR", "money"),
    ("overdue_pct", "Overdue share (%)", "pct"),
    ("share_90_plus", "90+ share (%)", "pct"),
    ("bad_debt_pct", "Bad debt, 12 m (%)", "pct"),
    ("dso", "DSO (days)", "days"),
    ("bpdso", "BPDSO (days)", "days"),
    ("add", "ADD (days)", "days"),
    ("cei", "CEI (%)", "pct"),
)
TILE_COLUMNS = ["kpi", "label", "unit", "this_month", "last_month", "change_vs_last_month", "same_month_last_year",
                "change_vs_last_year"]
TILE_LABELS = {"label": "KPI", "unit": "Unit", "this_month": "This month", "last_month": "Last month",
               "change_vs_last_month": "Change vs last month", "same_month_last_year": "Same month last year",
               "change_vs_last_year": "Change vs same month last year"}

# The pack's tables in print order: name -> (title, sheet name)
SECTIONS: dict[str, tuple[str, str]] = {
    "tiles": ("Headline KPIs", "KPIs"),
    "aging": ("Aging at month end", "Aging"),
    "aging_trend": ("Aging at each month end", "Aging trend"),
    "dso": ("DSO and companions, monthly", "DSO"),
    "bad_debt": ("Bad debt, monthly and rolling 12 months", "Bad debt"),
    "roll_rates": ("Roll rates", "Roll rates"),
    "dunning": ("Dunning effectiveness per stage", "Dunning"),
    "top_overdue": ("Top overdue customers", "Top overdue"),
    "collectors": ("Collector KPIs for the month", "Collectors"),
}


class PackError(ValueError):
    """A pack that cannot be made, with the reason in plain words."""


@dataclass(frozen=True)
class Pack:
    """One month's pack: every table as the engine returns it (`SECTIONS` order), plus what it covers."""

    month: date  # first day of the month
    as_of: date  # the month's last day
    period_start: date  # first day of the 12 months the trends cover
    filters: Filters
    currency: str
    tables: dict[str, pd.DataFrame]
    cash_forecast: pd.DataFrame | None = None
    last_posting: date | None = None  # the ledger's last posting date when the pack was made
    made_at: datetime = field(default_factory=lambda: datetime.now().replace(microsecond=0))

    @property
    def title(self) -> str:
        return f"Monthly AR pack, {self.month:%B %Y}"

    def describe_filters(self) -> str:
        """The filters in words, e.g. "segment: SMB; collector: ana, ben", or "all customers"."""
        parts = [f"{name.replace('_', ' ')}: {', '.join(values)}" for name, values in self.filters.active().items()]
        parts += [f"{name}: {', '.join(values)}" for name, values in (self.filters.attributes or ())]
        return "; ".join(parts) or "all customers"


def closed_month(as_of: date) -> date:
    """The latest month that has ended by `as_of` (its first day): as_of's own month on its last day,
    else the month before (a pack reports a whole month)."""
    return month_start(as_of) if as_of == month_end(as_of) else add_months(as_of, -1)


def may_have_pack(actor: Actor) -> bool:
    """Whether the actor's role may open every dashboard in `PACK_PAGES` (the pack's rule on roles)."""
    return set(PACK_PAGES) <= {p.key for p in allowed_pages(actor.role)}


def require_pack(actor: Actor) -> None:
    """Raise `PermissionDenied` unless `may_have_pack`."""
    if not may_have_pack(actor):
        label = ROLE_LABELS.get(actor.role, actor.role)
        raise PermissionDenied(f"{actor.username} ({label}) may not have the monthly pack: it carries the "
                               "DSO, bad debt, dunning and team dashboards, which this role does not see.")


def parse_month(text: str) -> date:
    """"YYYY-MM" as the month's first day; `PackError` with the reason otherwise."""
    try:
        return datetime.strptime(text.strip(), "%Y-%m").date()
    except ValueError:
        raise PackError(f"{text!r} is not a month: write it as YYYY-MM, e.g. 2026-05.") from None


def cash_forecast(store: Store, actor: Actor, as_of: date, filters: Filters) -> pd.DataFrame:
    """The cash forecast from the month's end: expected collections per week for 13 weeks (promises
    first, then predicted payment dates; the interval from the latest stored backtest), as the Cash
    forecast page shows it (`forecasts.cash_forecast`)."""
    weekly = forecasts.cash_forecast(store, actor, as_of, forecasts.WEEKS, filters)["weekly"]
    return weekly.drop(columns=["week"], errors="ignore")


def tiles(store: Store, as_of: date, filters: Filters) -> pd.DataFrame:
    """One row per tile (`TILES`): this month (at `as_of`), last month, same month last year, and
    the changes (this month − the other, to the cent or hundredth of a point; NaN when either is missing)."""
    now = kpi_summary(store, as_of, filters)
    year_ago = kpi_summary(store, month_end(add_months(as_of, -12)), filters)
    rows = []
    for column, label, unit in TILES:
        this, last, last_year = (pd.to_numeric(pd.Series([now.iloc[0][column], now.iloc[1][column],
                                                          year_ago.iloc[0][column]]), errors="coerce"))
        rows.append({"kpi": column, "label": label, "unit": unit, "this_month": this, "last_month": last,
                     "change_vs_last_month": round(this - last, 2), "same_month_last_year": last_year,
                     "change_vs_last_year": round(this - last_year, 2)})
    return pd.DataFrame(rows, columns=TILE_COLUMNS)


def month_problem(store: Store, month: date) -> str | None:
    """Why the ledger has no pack for `month` (empty, or the month is before its first or after its last
    posting), or None when it has one."""
    first, last = ledger_bounds(store)
    start_of_month = month_start(month)
    if first is None or last is None:
        return "The ledger is empty: load data first (`ardesk demo` or an import)."
    if month_end(start_of_month) < first:
        return f"The ledger starts on {first}: there is nothing to report for {start_of_month:%Y-%m}."
    if start_of_month > last:
        return f"The ledger's last posting is on {last}: {start_of_month:%Y-%m} has not begun in it."
    return None


def monthly_pack(store: Store, actor: Actor, month: date, filters: Filters = ALL) -> Pack:
    """The pack of `month` (any day in it) for `filters` (the module rule); `PackError` when the ledger
    has nothing up to the month's end, `PermissionDenied` for a role that may not have it."""
    require_pack(actor)
    if problem := month_problem(store, month):
        raise PackError(problem)
    start_of_month = month_start(month)
    as_of = month_end(start_of_month)
    _, last = ledger_bounds(store)
    period_start = add_months(start_of_month, -(PERIOD_MONTHS - 1))
    tables = {
        "tiles": tiles(store, as_of, filters),
        "aging": aging_buckets(store, as_of, filters),
        "aging_trend": aging_trend(store, period_start, as_of, filters),
        "dso": dso_monthly(store, period_start, as_of, filters),
        "bad_debt": bad_debt_monthly(store, period_start, as_of, filters),
        "roll_rates": roll_rates(store, period_start, as_of, filters),
        "dunning": dunning_effectiveness(store, period_start, as_of, filters),
        "top_overdue": top_overdue_customers(store, as_of, filters, TOP_CUSTOMERS),
        "collectors": collector_kpis(store, start_of_month, as_of, filters),
    }
    return Pack(start_of_month, as_of, period_start, filters, load_settings().reporting_currency, tables,
                cash_forecast(store, actor, as_of, filters), last)
