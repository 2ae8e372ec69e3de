"""FX: every amount is in its entry's own currency; reports convert to the reporting currency at the
latest rate on or before the report date (the reporting currency itself converts at 1; no rate gives
NULL, and the item is left out of converted sums and counted as `missing_fx` where reported).
"""

from __future__ import annotations

from datetime import date

from analytics.settings import load_settings


def fx_at_sql(date_param: str) -> str:
    """The CTE `fx AS (...)`: each currency's latest rate (reporting currency per unit) on or before
    the date bound to `:<date_param>`. The one definition of "the FX rate at a date"."""
    cte = ("fx AS (SELECT currency, rate FROM (SELECT currency, rate, ROW_NUMBER() OVER "
           "(PARTITION BY currency ORDER BY rate_date DESC) AS rn FROM fx_rates "
           "WHERE rate_date <= :DATE_PARAM) ranked WHERE rn = 1)")
    return cte.replace("DATE_PARAM", date_param)


# The latest FX rate on or before each spine date, per currency (a CTE named fx: k, currency, rate).
FX_AT_SPINE = """fx AS (
        SELECT k, currency, rate FROM (
            SELECT s.k, r.currency, r.rate,
                   ROW_NUMBER() OVER (PARTITION BY s.k, r.currency ORDER BY r.rate_date DESC) AS rn
            FROM spine s JOIN fx_rates r ON r.rate_date <= s.d
        ) ranked WHERE rn = 1
    )"""


def reporting_params(as_of: date | None = None) -> dict[str, object]:
    """`:reporting` (and `:as_of` when given) for the SQL above."""
    params: dict[str, object] = {"reporting": load_settings().reporting_currency}
    if as_of is not None:
        params["as_of"] = as_of
    return params
