"""The demo's customers: segment, hidden payment behaviour, currency and country, terms, portfolio,
dunning configuration, when they joined, and for defaulters when they stop paying.

`policy` is the customer's own dunning configuration (`customers.dunning_config_id`); `cfg` is the one
its invoices are dunned under: the same, except in the demo experiment's segment, where the
challenger arm follows the challenger (`with_experiment_arms`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa

from analytics.demo.arrays import NEVER, business_day, choose, numbered_array
from analytics.demo.calendar import HISTORY_DAYS, Calendar
from analytics.demo.parameters import (
    AMOUNT_MEDIAN,
    BEHAVIOUR_MIX,
    BEHAVIOURS,
    COLLECTOR_SHARES,
    CURRENCIES,
    CURRENCY_SHARES,
    DEFAULTING,
    DELAY_SPREAD,
    DEMO_EXPERIMENT,
    EURO_COUNTRIES,
    EURO_COUNTRY_SHARES,
    GENTLE,
    INVOICES_PER_MONTH,
    PAYMENT_RUN_SHARE,
    PUBLIC,
    SALES_SHARES,
    SEGMENT_SHARES,
    SEGMENTS,
    STANDARD,
    TERMS,
)
from analytics.demo.vocabulary import (
    BRANDS,
    LEGAL_FORMS,
    MIDDLES,
    PLACE_PREFIXES,
    PLACES,
    PUBLIC_FORMS,
    TRADES,
)


@dataclass
class Customers:
    ids: pa.Array
    names: np.ndarray
    seg: np.ndarray
    beh: np.ndarray
    cur: np.ndarray
    country: np.ndarray
    terms: np.ndarray
    policy: np.ndarray
    cfg: np.ndarray
    collector: np.ndarray
    sales: np.ndarray
    created_s: np.ndarray
    win_start: np.ndarray
    win_end: np.ndarray
    default_day: np.ndarray
    wo_day: np.ndarray  # NEVER unless written off by end_date
    agency_day: np.ndarray
    runs: np.ndarray
    run_weekday: np.ndarray
    amt_mu: np.ndarray
    delay_shift: np.ndarray
    has_email: np.ndarray
    intensity: np.ndarray
    credit_limit: np.ndarray  # cents
    status: np.ndarray
    status_day: np.ndarray

    def __len__(self) -> int:
        return len(self.seg)


def customer_count(entries: int) -> int:
    """About one customer per 100 ledger entries, at least 40."""
    return max(40, round(entries / 100))


def make_customers(entries: int, seed: int, cal: Calendar) -> Customers:
    rng = np.random.default_rng([seed, 0])
    n = customer_count(entries)
    # Exact segment counts (largest remainder), so every segment is present even at 40 customers.
    raw = SEGMENT_SHARES * n
    counts = np.floor(raw).astype(np.int64)
    counts[np.argsort(counts - raw)[: n - counts.sum()]] += 1
    seg = np.repeat(np.arange(len(SEGMENTS)), counts)
    rng.shuffle(seg)
    beh = choose(rng, BEHAVIOUR_MIX, seg)
    cur = rng.choice(len(CURRENCIES), n, p=CURRENCY_SHARES)
    country = np.select(
        [cur == 0, cur == 2, cur == 3],
        [0, 4, 5],
        np.array(EURO_COUNTRIES)[rng.choice(3, n, p=EURO_COUNTRY_SHARES)],
    )
    terms = np.empty(n, dtype=np.int64)
    for s, (choices, shares) in enumerate(TERMS):
        idx = np.flatnonzero(seg == s)
        terms[idx] = rng.choice(choices, len(idx), p=shares)
    abroad = (country != 0).astype(np.int64)
    collector = choose(rng, COLLECTOR_SHARES, seg * 2 + abroad)
    sales = choose(rng, SALES_SHARES, np.where(abroad == 1, 2, (seg == 2).astype(np.int64)))
    policy = np.select([seg == 0, seg == 1, seg == 3], [GENTLE, STANDARD, PUBLIC], STANDARD)
    rng.random(n)  # drawn where the arms once were, so every later draw (and the demo's story) stays put

    # 80% were customers before the history starts; the rest join during it. Defaulters are older.
    joined = (rng.random(n) < 0.20) & (beh != DEFAULTING)
    created_day = np.where(
        joined,
        cal.start + rng.integers(0, int(HISTORY_DAYS * 0.85), n),
        cal.start - rng.integers(1, 6 * 365, n),
    )
    created_s = created_day * 86400 + rng.integers(8 * 3600, 18 * 3600, n)
    win_start = np.maximum(created_day, cal.start)

    is_def = beh == DEFAULTING
    default_day = np.where(is_def, cal.start + rng.integers(120, HISTORY_DAYS - 90, n), NEVER)
    stop_day = np.where(is_def, default_day + rng.integers(30, 91, n), cal.end)
    wo = business_day(stop_day + terms + 180 + rng.integers(0, 61, n))
    wo_day = np.where(is_def & (wo <= cal.end), wo, NEVER)
    agency_day = np.where(is_def, np.minimum(business_day(default_day + rng.integers(90, 151, n)), cal.end), NEVER)
    status = np.zeros(n, dtype=np.int64)  # active; the simulation sets the rest
    status_day = np.full(n, cal.end, dtype=np.int64)

    scale = rng.lognormal(0.0, 0.5, n)
    intensity = INVOICES_PER_MONTH[seg] * scale * cal.mass(win_start, stop_day)
    amt_mu = np.log(AMOUNT_MEDIAN[seg]) + rng.normal(0.0, 0.6, n)
    yearly_sales = INVOICES_PER_MONTH[seg] * scale * 12 * np.exp(amt_mu)
    credit_limit = np.maximum(np.round(yearly_sales * terms / 365 * 1.5, -3), 1000) * 100

    return Customers(
        ids=numbered_array("C", np.arange(1, n + 1), 6),
        names=_company_names(rng, seg, country),
        seg=seg, beh=beh, cur=cur, country=country, terms=terms, policy=policy, cfg=policy, collector=collector,
        sales=sales, created_s=created_s, win_start=win_start, win_end=stop_day,
        default_day=default_day, wo_day=wo_day, agency_day=agency_day,
        runs=rng.random(n) < PAYMENT_RUN_SHARE[seg], run_weekday=rng.choice([1, 3, 4], n),
        amt_mu=amt_mu, delay_shift=rng.normal(0.0, 1.0, n) * DELAY_SPREAD[beh], has_email=rng.random(n) >= 0.03,
        intensity=intensity, credit_limit=credit_limit.astype(np.int64),
        status=status, status_day=status_day,
    )


def _company_names(rng: np.random.Generator, seg: np.ndarray, country: np.ndarray) -> np.ndarray:
    """Unique, plausible names: brand + optional word + trade + legal form; public bodies by place."""
    n = len(seg)
    middle = pd.Series(np.array(MIDDLES)[rng.integers(0, len(MIDDLES), n)])
    form = pd.Series(np.empty(n, dtype=object))
    for c, options in LEGAL_FORMS.items():  # a loop over countries, not rows
        here = np.flatnonzero(country == c)
        form.iloc[here] = np.array(options, dtype=object)[rng.integers(0, len(options), len(here))]
    company = (pd.Series(np.array(BRANDS)[rng.integers(0, len(BRANDS), n)])
               + (" " + middle).where(middle != "", "")
               + " " + np.array(TRADES)[rng.integers(0, len(TRADES), n)] + " " + form)
    place = (pd.Series(np.array(PLACE_PREFIXES)[rng.integers(0, len(PLACE_PREFIXES), n)])
             + np.array(PLACES)[rng.integers(0, len(PLACES), n)])
    pattern = pd.Series(np.array(PUBLIC_FORMS, dtype=object)[rng.integers(0, len(PUBLIC_FORMS), n)])
    parts = pattern.str.split("{}", regex=False)
    names = company.where(seg != 3, parts.str[0] + place + parts.str[1])
    dup = names.groupby(names).cumcount()
    names = names.where(dup == 0, names + " " + (dup + 1).astype(str))
    return names.to_numpy(dtype=object)


def payment_behaviour(entries: int = 200_000, seed: int = 42, end_date: date = date(2026, 10, 31)) -> pd.Series:
    """The hidden payment behaviour of each demo customer (customer_id -> behaviour name)."""
    c = make_customers(entries, seed, Calendar.build(end_date))
    return pd.Series(np.array(BEHAVIOURS)[c.beh], index=c.ids.to_pylist(), name="behaviour")


def with_experiment_arms(c: Customers, challenger: np.ndarray) -> Customers:
    """The customers with the challenger arm's invoices dunned under the experiment's challenger
    (`DEMO_EXPERIMENT`); `challenger` is a boolean per customer."""
    return replace(c, cfg=np.where(challenger, DEMO_EXPERIMENT.challenger, c.policy))
