"""Before an experiment starts: how many customers it needs, the smallest effect it can detect, and how
long it will take.

The primary metric (the share of the overdue balance collected in 30 days) is treated as a proportion
p for planning (normal approximation for two proportions, unpooled variances):
- customers per arm: n_A = (z_(1-alpha/2) + z_power)^2 x (p_A(1 - p_A) + p_B(1 - p_B) / r) / effect^2,
  with p_B = p_A + effect and r = n_B / n_A (the challenger's size relative to the champion's);
  n_B = r x n_A. At a 60% baseline, +5 points, alpha 0.05, power 80%, 50/50: 1,468 per arm.
- minimum detectable effect with n_A and n_B customers: the smallest d with
  d = (z_(1-alpha/2) + z_power) x sqrt(p_A(1 - p_A) / n_A + p_B(1 - p_B) / n_B), p_B = p_A + d
  (solved by fixed-point iteration).
- expected duration: a customer counts once its 30-day window after entry has closed and it had an
  overdue balance at entry; with E such customers of the segment now and a arriving per day,
  days = 30 + max(0, ceil((needed - E) / a)) (infinite when more are needed and none arrive).
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from statistics import NormalDist

from analytics.experiments.results import segment_baseline
from analytics.store.connection import Store

WINDOW_DAYS = 30
ARRIVAL_DAYS = 90  # arrivals per day are counted over this many days before the as-of date


def _z(alpha: float, power: float) -> float:
    return NormalDist().inv_cdf(1 - alpha / 2) + NormalDist().inv_cdf(power)


def sample_size_per_arm(baseline: float, effect: float, alpha: float = 0.05, power: float = 0.80,
                        ratio: float = 1.0) -> int:
    """Customers needed in the champion arm (the challenger needs ceil(ratio x that)); formula above."""
    if not 0 < baseline < 1 or not 0 < baseline + effect < 1 or effect == 0:
        raise ValueError("The baseline and baseline + effect must be shares between 0 and 1, the effect not 0.")
    if ratio <= 0:
        raise ValueError("The ratio of the arms' sizes must be positive.")
    p_b = baseline + effect
    n = _z(alpha, power) ** 2 * (baseline * (1 - baseline) + p_b * (1 - p_b) / ratio) / effect ** 2
    return math.ceil(n - 1e-9)


def sample_sizes(baseline: float, effect: float, challenger_pct: int, alpha: float = 0.05,
                 power: float = 0.80) -> tuple[int, int]:
    """(champion, challenger) customers needed at a split giving the challenger `challenger_pct` %."""
    ratio = challenger_pct / (100 - challenger_pct)
    n_a = sample_size_per_arm(baseline, effect, alpha, power, ratio)
    return n_a, math.ceil(n_a * ratio - 1e-9)


def minimum_detectable_effect(baseline: float, n_champion: int, n_challenger: int, alpha: float = 0.05,
                              power: float = 0.80) -> float | None:
    """The smallest absolute rise of the baseline detectable with these arm sizes (formula above);
    None without customers in both arms."""
    if n_champion <= 0 or n_challenger <= 0 or not 0 < baseline < 1:
        return None
    z = _z(alpha, power)
    effect = z * math.sqrt(2 * baseline * (1 - baseline) / min(n_champion, n_challenger))
    for _ in range(50):
        p_b = min(baseline + effect, 1 - 1e-9)
        effect = z * math.sqrt(baseline * (1 - baseline) / n_champion + p_b * (1 - p_b) / n_challenger)
    return effect


def expected_days(needed: int, eligible_now: int, arrivals_per_day: float,
                  window_days: int = WINDOW_DAYS) -> float:
    """Days until `needed` customers are measured: window + the days arrivals need to make up the gap."""
    gap = max(0, needed - eligible_now)
    if gap == 0:
        return float(window_days)
    if arrivals_per_day <= 0:
        return math.inf
    return float(window_days + math.ceil(gap / arrivals_per_day))


_PROFILE_SQL = """
WITH seg AS (SELECT customer_id FROM customers WHERE segment = :segment),
overdue AS (
    SELECT DISTINCT e.customer_id FROM ledger_entries e JOIN seg s ON s.customer_id = e.customer_id
    WHERE e.amount > 0 AND e.posting_date <= :as_of AND COALESCE(e.due_date, e.posting_date) < :as_of
      AND (e.settled_on IS NULL OR e.settled_on > :as_of)
), firsts AS (
    SELECT e.customer_id, MIN(e.posting_date) AS first_invoice FROM ledger_entries e
    JOIN seg s ON s.customer_id = e.customer_id WHERE e.amount > 0 GROUP BY e.customer_id
)
SELECT (SELECT COUNT(*) FROM seg) AS customers,
       (SELECT COUNT(*) FROM overdue) AS overdue_customers,
       (SELECT COUNT(*) FROM firsts WHERE first_invoice > :since AND first_invoice <= :as_of) AS arrivals
"""


def segment_profile(store: Store, segment: str, as_of: date) -> dict[str, float | int | None]:
    """The segment's size for planning: customers, those overdue on D (settled_on only prunes: an
    entry whose settled_on is after D was open then), arrivals per day (customers whose first invoice
    fell in the 90 days to D, / 90) and the baseline: the share of the overdue balance of D - 30
    collected by D (`results.window_frame` with every customer entering on D - 30)."""
    row = store.read(_PROFILE_SQL, {"segment": segment, "as_of": as_of,
                                    "since": as_of - timedelta(days=ARRIVAL_DAYS)}).iloc[0]
    return {"customers": int(row.customers), "overdue_customers": int(row.overdue_customers),
            "arrivals_per_day": int(row.arrivals) / ARRIVAL_DAYS,
            "baseline": segment_baseline(store, segment, as_of)}


def plan(store: Store, segment: str, challenger_pct: int, holdout_pct: int, as_of: date, effect: float = 0.05,
         alpha: float = 0.05, power: float = 0.80) -> dict[str, float | int | None]:
    """What the start form shows: the segment's customers; the arms' sizes if its customers overdue now
    were split as planned, and the minimum detectable effect at those sizes (measured once their
    30-day window closes); the customers a rise of `effect` needs at that split and the expected days
    to measure them (`expected_days`), at the segment's baseline (0.5 when it has none yet)."""
    profile = segment_profile(store, segment, as_of)
    eligible = profile["overdue_customers"] * (100 - holdout_pct) / 100
    n_b = int(eligible * challenger_pct / 100)
    n_a = int(eligible) - n_b
    baseline = profile["baseline"] or 0.5
    mde = minimum_detectable_effect(baseline, n_a, n_b, alpha, power)
    needed = days = None
    if 0 < baseline + effect < 1:
        need_a, need_b = sample_sizes(baseline, effect, challenger_pct, alpha, power)
        needed = math.ceil((need_a + need_b) * 100 / (100 - holdout_pct))
        days = expected_days(needed, profile["overdue_customers"], profile["arrivals_per_day"])
    return {**profile, "baseline_used": baseline, "champion_customers": n_a, "challenger_customers": n_b,
            "minimum_detectable_effect": mde, "effect": effect, "customers_needed": needed, "expected_days": days}
