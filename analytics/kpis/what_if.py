"""What-if (the ROI calculator): what a DSO cut and better roll rates are worth, over a period's figures.

Reporting currency; credit sales and write-offs as in `analytics.kpis.dso.period_figures` (credit
sales = invoices posted, never adjustments; write-offs positive):
- average_daily_sales = credit sales of the period / days of the period;
- cash_released = days_cut x average_daily_sales (each day of DSO is one day of sales held as AR);
- financing_value = cash_released x cost_of_capital_pct / 100 (per year: the interest the released
  cash saves, or earns, at that rate);
- annual_write_offs = write-offs of the period x 365 / days of the period;
- bad_debt_avoided = annual_write_offs x (1 - (1 - improvement_pct / 100) ^ rolls), rolls = the number
  of bucket-to-bucket roll rates (5 with the default edges): a write-off has rolled through every
  bucket, so cutting each roll rate by x % cuts what reaches write-off by that product.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date

from analytics.kpis.aging import bucket_labels
from analytics.kpis.dso import period_figures
from analytics.ledger.filters import ALL, Filters
from analytics.ledger.months import month_ends
from analytics.store.connection import Store


@dataclass(frozen=True)
class WhatIf:
    days: int
    credit_sales: float
    average_daily_sales: float
    days_cut: float
    cash_released: float
    cost_of_capital_pct: float
    financing_value: float
    write_offs: float
    annual_write_offs: float
    improvement_pct: float
    rolls: int
    bad_debt_avoided: float

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def what_if_figures(credit_sales: float, write_offs: float, days: int, days_cut: float, cost_of_capital_pct: float,
                    improvement_pct: float, rolls: int | None = None) -> WhatIf:
    """The what-if from a period's totals (the formulas in the module docstring)."""
    if days <= 0:
        raise ValueError("the period has no days")
    if days_cut < 0 or cost_of_capital_pct < 0:
        raise ValueError("the DSO cut and the cost of capital are 0 or more")
    if not 0 <= improvement_pct <= 100:
        raise ValueError("the roll-rate improvement is a percentage from 0 to 100")
    rolls = len(bucket_labels("due")) - 1 if rolls is None else rolls
    daily = credit_sales / days
    released = days_cut * daily
    annual = write_offs * 365 / days
    return WhatIf(
        days=days, credit_sales=round(credit_sales, 2), average_daily_sales=round(daily, 2), days_cut=days_cut,
        cash_released=round(released, 2), cost_of_capital_pct=cost_of_capital_pct,
        financing_value=round(released * cost_of_capital_pct / 100, 2), write_offs=round(write_offs, 2),
        annual_write_offs=round(annual, 2), improvement_pct=improvement_pct, rolls=rolls,
        bad_debt_avoided=round(annual * (1 - (1 - improvement_pct / 100) ** rolls), 2))


def what_if(store: Store, start: date, end: date, days_cut: float = 5, cost_of_capital_pct: float = 8.0,
            improvement_pct: float = 10.0, filters: Filters = ALL) -> WhatIf:
    """The what-if over the months from start's month to `end` (the period of the dashboards)."""
    points = month_ends(start, end)
    if not points:
        raise ValueError(f"no month between {start} and {end}")
    f = period_figures(store, points, filters, history_months=0)
    f = f[~f["history"]]
    return what_if_figures(float(f["credit_sales"].sum()), float(f["write_offs"].sum()), int(f["days"].sum()),
                           days_cut, cost_of_capital_pct, improvement_pct)
