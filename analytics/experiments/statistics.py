"""The statistics of an experiment, on plain numpy arrays (one value per customer): the same functions
the page, the command line and the simulated-data tests call.

- An arm's metric is a ratio of sums, R = sum(collected_i) / sum(overdue_i), the customer the unit. Its
  variance by the delta method: with d_i = collected_i - R x overdue_i and mean overdue o,
  Var(R) = sum(d_i^2) / (n - 1) / (n x o^2); 95% interval R +/- 1.96 x sqrt(Var(R)).
- Difference (challenger - champion) D = R_B - R_A, Var(D) = Var(R_A) + Var(R_B) (independent arms),
  interval D +/- 1.96 sqrt(Var(D)); z = D / sqrt(Var(D)).
- Relative lift L = R_B / R_A - 1, by the delta method on the ratio of the two arms' ratios:
  Var(L) = (R_B / R_A)^2 x (Var(R_A) / R_A^2 + Var(R_B) / R_B^2); interval L +/- 1.96 sqrt(Var(L)).
- Sample-ratio mismatch: chi^2 = sum over arms (observed - expected)^2 / expected of the assigned counts
  against the planned split; p = erfc(sqrt(chi^2 / 2)) with 1 degree of freedom (two arms),
  exp(-chi^2 / 2) with 2 (three arms). p < 0.001 blocks the verdict.
- Sequential: an O'Brien-Fleming group-sequential plan with K equally spaced looks over the planned
  days; at look k the boundary is z_k = c_K / sqrt(k / K), c_K the constant that keeps the two-sided
  false-positive rate at 5% over all K looks (Jennison & Turnbull's table, checked by simulation in
  the tests). The verdict is read at the latest look passed, against its boundary.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import NormalDist

import numpy as np

Z95 = NormalDist().inv_cdf(0.975)  # 1.959964
SRM_P = 0.001
# O'Brien-Fleming constants c_K for alpha = 0.05 two-sided, K = 1..10 looks (Jennison & Turnbull 2000,
# table 2.3).
OBF_CONSTANTS = {1: 1.960, 2: 1.977, 3: 2.004, 4: 2.024, 5: 2.040, 6: 2.053, 7: 2.063, 8: 2.072, 9: 2.080,
                 10: 2.087}
MAX_LOOKS = max(OBF_CONSTANTS)
SEQUENTIAL_METHOD = "O'Brien-Fleming group-sequential plan (alpha 0.05, two-sided)"


@dataclass(frozen=True)
class ArmFigure:
    """One arm: customers measured, the sums, the ratio and its 95% interval (delta method)."""

    customers: int
    collected: float
    overdue: float
    ratio: float | None
    se: float | None
    low: float | None
    high: float | None

    def as_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


@dataclass(frozen=True)
class Comparison:
    """Challenger (B) against champion (A): difference and relative lift with their 95% intervals."""

    difference: float | None
    difference_low: float | None
    difference_high: float | None
    lift: float | None
    lift_low: float | None
    lift_high: float | None
    z: float | None

    def as_dict(self) -> dict[str, float | None]:
        return asdict(self)


def arm_figure(collected: np.ndarray, overdue: np.ndarray) -> ArmFigure:
    """The arm's ratio sum(collected) / sum(overdue) and its delta-method 95% interval (module rule)."""
    c = np.asarray(collected, dtype=float)
    o = np.asarray(overdue, dtype=float)
    n = int(len(o))
    total_c, total_o = float(c.sum()), float(o.sum())
    if n == 0 or total_o <= 0:
        return ArmFigure(n, total_c, total_o, None, None, None, None)
    ratio = total_c / total_o
    if n < 2:
        return ArmFigure(n, total_c, total_o, ratio, None, None, None)
    d = c - ratio * o
    var = float((d ** 2).sum()) / (n - 1) / (n * (total_o / n) ** 2)
    se = math.sqrt(var)
    return ArmFigure(n, total_c, total_o, ratio, se, ratio - Z95 * se, ratio + Z95 * se)


def compare(champion: ArmFigure, challenger: ArmFigure) -> Comparison:
    """Difference and relative lift of challenger over champion, with 95% intervals (module rule)."""
    a, b = champion, challenger
    if a.ratio is None or b.ratio is None or a.se is None or b.se is None:
        return Comparison(None, None, None, None, None, None, None)
    diff = b.ratio - a.ratio
    se = math.sqrt(a.se ** 2 + b.se ** 2)
    z = diff / se if se > 0 else None
    lift = lift_low = lift_high = None
    if a.ratio > 0 and b.ratio > 0:
        lift = b.ratio / a.ratio - 1
        lift_se = (b.ratio / a.ratio) * math.sqrt((a.se / a.ratio) ** 2 + (b.se / b.ratio) ** 2)
        lift_low, lift_high = lift - Z95 * lift_se, lift + Z95 * lift_se
    return Comparison(diff, diff - Z95 * se, diff + Z95 * se, lift, lift_low, lift_high, z)


def compare_arrays(champion_collected: np.ndarray, champion_overdue: np.ndarray,
                   challenger_collected: np.ndarray, challenger_overdue: np.ndarray) -> Comparison:
    """`compare` straight from per-customer arrays."""
    return compare(arm_figure(champion_collected, champion_overdue),
                   arm_figure(challenger_collected, challenger_overdue))


def srm_check(observed: dict[str, int], planned: dict[str, float]) -> dict[str, float | int | bool]:
    """Chi-square of the assigned counts against the planned shares (arms with a share > 0):
    {chi2, df, p, blocked}; p by erfc (1 df) or exp (2 df), blocked when p < 0.001."""
    arms = [a for a, share in planned.items() if share > 0]
    total = sum(int(observed.get(a, 0)) for a in arms)
    if total == 0 or len(arms) < 2:
        return {"chi2": 0.0, "df": max(len(arms) - 1, 0), "p": 1.0, "blocked": False}
    chi2 = sum((int(observed.get(a, 0)) - total * planned[a]) ** 2 / (total * planned[a]) for a in arms)
    df = len(arms) - 1
    p = math.erfc(math.sqrt(chi2 / 2)) if df == 1 else math.exp(-chi2 / 2)
    return {"chi2": chi2, "df": df, "p": p, "blocked": p < SRM_P}


def obf_boundaries(looks: int) -> list[float]:
    """The O'Brien-Fleming boundaries z_1..z_K: c_K / sqrt(k / K)."""
    if looks not in OBF_CONSTANTS:
        raise ValueError(f"Plan between 1 and {MAX_LOOKS} looks (not {looks}).")
    c = OBF_CONSTANTS[looks]
    return [c / math.sqrt(k / looks) for k in range(1, looks + 1)]


def current_look(days_elapsed: int, planned_days: int, looks: int) -> int:
    """The looks passed after `days_elapsed` of `planned_days` (look k falls on day k x planned / K), 0..K."""
    if planned_days <= 0:
        return looks
    return max(0, min(looks, math.floor(days_elapsed * looks / planned_days)))


def verdict(comparison: Comparison, srm: dict, look: int, looks: int) -> dict[str, object]:
    """The decision at the current look: {decision, reason, boundary}. decision is one of blocked,
    no_data, too_early, challenger_wins, champion_wins, no_difference, continue."""
    if srm.get("blocked"):
        return {"decision": "blocked", "boundary": None,
                "reason": (f"Sample ratio mismatch: the arms' sizes differ from the planned split "
                           f"(chi-square {srm['chi2']:.1f}, p = {srm['p']:.2g} < 0.001), so the assignment "
                           "is not random and no verdict can be trusted. Find why customers were lost or "
                           "moved before reading the result.")}
    if comparison.z is None:
        return {"decision": "no_data", "boundary": None,
                "reason": "Not enough measured customers in both arms yet (30-day windows still open)."}
    if look == 0:
        return {"decision": "too_early", "boundary": None,
                "reason": "Before the first planned look: no verdict yet (looking early inflates false positives)."}
    boundary = obf_boundaries(looks)[look - 1]
    z = comparison.z
    if abs(z) >= boundary:
        winner = "challenger_wins" if z > 0 else "champion_wins"
        who = "The challenger" if z > 0 else "The champion"
        return {"decision": winner, "boundary": boundary,
                "reason": f"{who} collects more: |z| = {abs(z):.2f} crosses the boundary {boundary:.2f} "
                          f"at look {look} of {looks}."}
    if look >= looks:
        return {"decision": "no_difference", "boundary": boundary,
                "reason": f"No difference detected at the final look: |z| = {abs(z):.2f} < {boundary:.2f}."}
    return {"decision": "continue", "boundary": boundary,
            "reason": f"Not significant at look {look} of {looks} (|z| = {abs(z):.2f} < {boundary:.2f}): "
                      "keep running."}
