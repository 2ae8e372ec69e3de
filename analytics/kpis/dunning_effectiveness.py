"""How well each dunning configuration (and version) and each of its stages gets invoices paid.

Read from `dunning_stage_results` (one row per invoice and stage reached; its rules are in
`analytics.ledger.stage_results`). A stage reach counts when its first sent/done run is dated in
[start, end], the invoice had something open then, and its customer matches the filters.
Reporting currency at the rate on `end`.
- invoices, amount = invoices that reached the stage, and their open amount on the run date;
- paid_7d_pct / paid_14d_pct / paid_30d_pct = payments and credit notes applied in the N days
  after the run / open amount, over the runs whose N-day window closed by `end` (end - run date
  >= N), so young runs do not drag a share down;
- recovered = payments and credit notes applied up to `end`, each counted ONCE: at the last stage the
  invoice reached before the payment (run date < payment date <= the invoice's next stage run date, of
  any configuration; a payment dated on a run date was already off that stage's open amount, so it
  belongs to the stage before). Summed over a configuration's stages it is the money applied after the
  invoices' first stage in the period, until another configuration takes them over;
- median_days_to_pay = median of (paid_on - run date) over the invoices paid in full by `end`
  (payments and credit notes only: an invoice with a write-off is not "paid");
- reached_final_pct = share of the invoices that, on or after this stage and by `end`, reached the
  last stage of their configuration version or an escalation-channel stage.
Every share's base is the amount (or the invoices) at THAT stage, not at stage 1.

Two configurations are only comparable over alike populations: `populations` gives each side's
invoices, customers, segments and run period; `comparison_warning` says when they differ (segment mix
more than 10 points apart in total variation distance, or sizes more than 2x apart); `like_for_like`
restricts both sides to the segments they share and the period both ran in. A fair test of two
policies is an experiment (random assignment), not this comparison.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

import numpy as np
import pandas as pd

from analytics.ledger.filters import ALL, Filters, filter_sql
from analytics.ledger.fx import fx_at_sql, reporting_params
from analytics.ledger.open_items import current_open_amounts
from analytics.ledger.stage_results import from_payment_sql
from analytics.store.connection import Store, read_df
from analytics.store.schema import STAGE_WINDOWS

EFFECTIVENESS_COLUMNS = [
    "config_id", "config_name", "config_version", "stage_no", "stage_name", "channel", "invoices", "amount",
    "paid_7d_pct", "paid_14d_pct", "paid_30d_pct", "recovered", "median_days_to_pay", "reached_final_pct",
]
WINDOWS = STAGE_WINDOWS


def _reached_sql(filters: Filters, start: date, end: date, runs_until: date | None) -> tuple[str, dict[str, object]]:
    """CTEs `fx` (rates at `end`) and `reached` (the stage reaches counted: first run in [start,
    runs_until or end] with an open amount, in the reporting currency: open_at_run, rate; age = end -
    run date), and the binds (:start, :end, :runs_end, :reporting, the filters')."""
    run_filter, params = filter_sql(filters, "s.customer_id")
    params = {**reporting_params(), **params, "start": start, "end": end, "runs_end": runs_until or end}
    sql = f"""
    {fx_at_sql("end")}, reached AS (
        SELECT s.entry_id, s.customer_id, s.config_id, s.config_version, s.stage_no, s.run_date, s.paid_on,
               CAST(:end AS DATE) - s.run_date AS age,
               CASE WHEN s.currency = :reporting THEN 1 ELSE fx.rate END AS rate,
               s.open_amount * CASE WHEN s.currency = :reporting THEN 1 ELSE fx.rate END AS open_at_run,
               {", ".join(f"s.paid_{n}d" for n in WINDOWS)}, s.paid_after, s.next_run, s.paid_until_next
        FROM dunning_stage_results s
        LEFT JOIN fx ON fx.currency = s.currency
        WHERE s.run_date >= :start AND s.run_date <= :runs_end AND s.open_amount > 0{run_filter}
    )"""  # noqa: S608 - constants and bind names only
    return sql, params


# Each payment once: to the last stage reached before it. `next_run` = the invoice's next stage reach
# (any configuration, kept in dunning_stage_results); the stage owns the payments dated in
# (run_date, next_run], up to `end`.
_RECOVERED_SQL = f"""recovered AS (
        SELECT r.config_id, r.config_version, r.stage_no, SUM(a.amount * r.rate) AS amount
        FROM reached r
        JOIN allocations a ON a.to_entry_id = r.entry_id AND a.allocation_date > r.run_date
                          AND a.allocation_date <= :end
        WHERE (r.next_run IS NULL OR a.allocation_date <= r.next_run) AND {from_payment_sql("a")}
        GROUP BY r.config_id, r.config_version, r.stage_no
    )"""  # noqa: S608 - constants and bind names only
# The same when nothing is dated after `end` (end on or after the activity horizon): every payment
# up to the next reach is already summed in the row, `paid_until_next`.
_RECOVERED_NOW_SQL = """recovered AS (
        SELECT r.config_id, r.config_version, r.stage_no, SUM(r.paid_until_next * r.rate) AS amount
        FROM reached r
        GROUP BY r.config_id, r.config_version, r.stage_no
    )"""


def dunning_effectiveness(store: Store, start: date, end: date, filters: Filters = ALL,
                          runs_until: date | None = None) -> pd.DataFrame:
    """One row per (config_id, config_version, stage_no): config_name, stage_name, channel, invoices,
    amount, paid_7d_pct, paid_14d_pct, paid_30d_pct, recovered, median_days_to_pay, reached_final_pct.
    `runs_until` (default `end`) ends the stage runs counted earlier than the payments (like-for-like)."""
    ctes, params = _reached_sql(filters, start, end, runs_until)
    windows = ", ".join(
        f"SUM(CASE WHEN r.age >= {n} THEN r.open_at_run ELSE 0 END) AS base_{n}, "
        f"SUM(CASE WHEN r.age >= {n} THEN r.paid_{n}d * r.rate ELSE 0 END) AS paid_{n}"
        for n in WINDOWS)
    keys = ["config_id", "config_version", "stage_no"]
    with store.engine.connect() as conn, conn.begin():
        if current_open_amounts(conn, end):  # nothing dated after `end`: each reach holds what it recovered
            recovered, recovered_sum, recovered_join = "", "SUM(r.paid_until_next * r.rate)", ""
        else:
            recovered, recovered_sum = f",\n    {_RECOVERED_SQL}", "0"
            recovered_join = """LEFT JOIN recovered rc ON rc.config_id = ps.config_id
                          AND rc.config_version = ps.config_version AND rc.stage_no = ps.stage_no"""
        frame = read_df(conn, f"""
    WITH {ctes}{recovered}, final_stages AS (
        SELECT s.config_id, s.version, s.stage_no FROM dunning_stages s
        WHERE s.channel = 'escalation'
           OR s.stage_no = (SELECT MAX(s2.stage_no) FROM dunning_stages s2
                            WHERE s2.config_id = s.config_id AND s2.version = s.version)
    ), last_final AS (
        SELECT s.entry_id, s.config_id, s.config_version, MAX(s.run_date) AS run_date
        FROM dunning_stage_results s
        JOIN final_stages fs ON fs.config_id = s.config_id AND fs.version = s.config_version
                            AND fs.stage_no = s.stage_no
        WHERE s.run_date >= :start AND s.run_date <= :end
        GROUP BY s.entry_id, s.config_id, s.config_version
    ), per_stage AS (
        SELECT r.config_id, r.config_version, r.stage_no, COUNT(*) AS invoices,
               SUM(r.open_at_run) AS amount, {windows}, {recovered_sum} AS recovered_now,
               SUM(CASE WHEN lf.run_date >= r.run_date THEN 1 ELSE 0 END) AS reached_final
        FROM reached r
        LEFT JOIN last_final lf ON lf.entry_id = r.entry_id AND lf.config_id = r.config_id
                               AND lf.config_version = r.config_version
        GROUP BY r.config_id, r.config_version, r.stage_no
    )
    SELECT ps.*, {"COALESCE(rc.amount, 0)" if recovered else "COALESCE(ps.recovered_now, 0)"} AS recovered
    FROM per_stage ps
    {recovered_join}
    """, params)  # noqa: S608 - constants and bind names only
        # the median from a histogram of whole days (a median needs every value sorted; the counts per
        # day give the same PERCENTILE_CONT(0.5) without sorting every reach)
        paid_days = read_df(conn, f"""
    WITH {ctes}
    SELECT r.config_id, r.config_version, r.stage_no, r.paid_on - r.run_date AS days, COUNT(*) AS reaches
    FROM reached r WHERE r.paid_on <= :end
    GROUP BY r.config_id, r.config_version, r.stage_no, r.paid_on - r.run_date
    """, params)  # noqa: S608 - constants and bind names only
        names = read_df(conn, """
        SELECT s.config_id, s.version AS config_version, s.stage_no, c.name AS config_name,
               s.name AS stage_name, s.channel
        FROM dunning_stages s JOIN dunning_configs c ON c.config_id = s.config_id AND c.version = s.version
    """)
    medians = {stage: float(np.median(np.repeat(group["days"].to_numpy(float), group["reaches"].to_numpy(int))))
               for stage, group in paid_days.groupby(keys)}
    frame["median_days_to_pay"] = [medians.get(tuple(k), np.nan) for k in frame[keys].itertuples(index=False)]
    frame = frame.merge(names, on=keys, how="left")
    for n in WINDOWS:
        base = frame[f"base_{n}"].astype(float)
        frame[f"paid_{n}d_pct"] = frame[f"paid_{n}"].astype(float) / base.where(base != 0, np.nan) * 100
    frame["reached_final_pct"] = frame["reached_final"] / frame["invoices"] * 100
    frame["invoices"] = frame["invoices"].astype(int)
    for col in ("amount", "recovered"):
        frame[col] = frame[col].astype(float)
    frame["median_days_to_pay"] = frame["median_days_to_pay"].astype(float)
    rounded = ["amount", "recovered", "reached_final_pct", "median_days_to_pay"] + [f"paid_{n}d_pct" for n in WINDOWS]
    frame[rounded] = frame[rounded].round(2)
    return frame.sort_values(["config_id", "config_version", "stage_no"]).reset_index(drop=True)[EFFECTIVENESS_COLUMNS]


def recovery_curve(store: Store, start: date, end: date, filters: Filters = ALL,
                   max_days: int = 60, runs_until: date | None = None) -> pd.DataFrame:
    """Share of the open amount at each stage paid within 0..max_days days after it (cumulative).

    Long format: config_id, config_version, stage_no, days, share_paid_pct; each stage's runs count
    only for the days their window has reached by `end`: share at day d = payments and credit notes
    applied within d days of the run / open amount at the run, both over the runs at least d days old.
    """
    ctes, params = _reached_sql(filters, start, end, runs_until)
    binds = {**params, "max_days": int(max_days)}
    keys = ["config_id", "config_version", "stage_no"]
    capped_age = "CASE WHEN r.age > :max_days THEN :max_days ELSE r.age END"
    bases = store.read(f"""
    WITH {ctes}
    SELECT r.config_id, r.config_version, r.stage_no, {capped_age} AS age, 0 AS offset_days,
           SUM(r.open_at_run) AS amount
    FROM reached r
    GROUP BY r.config_id, r.config_version, r.stage_no, {capped_age}
    """, binds)  # noqa: S608 - constants and bind names only
    paid = store.read(f"""
    WITH {ctes}
    SELECT r.config_id, r.config_version, r.stage_no, {capped_age} AS age,
           a.allocation_date - r.run_date AS offset_days, SUM(a.amount * r.rate) AS amount
    FROM reached r
    JOIN allocations a ON a.to_entry_id = r.entry_id AND a.allocation_date > r.run_date
                      AND a.allocation_date <= :end
    WHERE a.allocation_date > :start AND a.allocation_date - r.run_date <= :max_days AND {from_payment_sql("a")}
    GROUP BY r.config_id, r.config_version, r.stage_no, {capped_age}, a.allocation_date - r.run_date
    """, binds)  # noqa: S608 - constants and bind names only
    if bases.empty:
        return pd.DataFrame(columns=keys + ["days", "share_paid_pct"])
    # per stage s, grid[s, age, offset]: amounts by run age (capped) and days from run to payment
    stages = pd.MultiIndex.from_frame(bases[keys].drop_duplicates().sort_values(keys))
    size = max_days + 1
    opened = np.zeros((len(stages), size))
    np.add.at(opened, (stages.get_indexer(pd.MultiIndex.from_frame(bases[keys])), bases["age"].to_numpy(int)),
              bases["amount"].to_numpy(float))
    grid = np.zeros((len(stages), size, size))
    if not paid.empty:
        np.add.at(grid, (stages.get_indexer(pd.MultiIndex.from_frame(paid[keys])), paid["age"].to_numpy(int),
                         paid["offset_days"].to_numpy(int)), paid["amount"].to_numpy(float))
    days = np.arange(size)
    old_enough = np.cumsum(grid[:, ::-1], axis=1)[:, ::-1]  # [s, d, offset]: runs at least d days old
    paid_by = np.cumsum(old_enough, axis=2)[:, days, days]  # ... paid within d days
    denominator = np.cumsum(opened[:, ::-1], axis=1)[:, ::-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(denominator != 0, paid_by / denominator * 100, np.nan)
    frame = pd.DataFrame({key: np.repeat(stages.get_level_values(key).to_numpy(np.int64), size) for key in keys})
    return frame.assign(days=np.tile(days, len(stages)), share_paid_pct=np.round(share, 2).ravel())


# -- the columns in the users' words: one definition for the page and `ardesk report dunning` -----------
# column -> (header, what it counts and over which base); money headers get the currency appended
EFFECTIVENESS_LABELS: dict[str, tuple[str, str]] = {
    "config_id": ("Configuration id", "The dunning configuration's id."),
    "config_name": ("Configuration", "The dunning configuration's name."),
    "config_version": ("Version", "The configuration's version the stage ran under."),
    "stage_no": ("Stage no.", "The stage's position in its configuration."),
    "stage_name": ("Stage", "The stage's name."),
    "channel": ("Channel", "How the stage reaches the customer (email, letter, call, sms, escalation)."),
    "invoices": ("Invoices", "Invoices whose first run of this stage is dated in the period, with something open then."),
    "amount": ("Open at stage", "What those invoices had open on the stage's run date."),
    **{f"paid_{n}d_pct": (f"Paid ≤ {n} d (%)",
                          f"Payments and credit notes in the {n} days after the stage, as a share of the amount "
                          f"open AT THIS STAGE; only runs at least {n} days before the period end count.")
       for n in WINDOWS},
    "recovered": ("Recovered", "Payments and credit notes up to the period end, each counted once: at the last "
                               "stage the invoice reached before the payment. The stages of a configuration add up."),
    "median_days_to_pay": ("Median days to pay", "Median days from the stage to payment in full, over this "
                                                 "stage's invoices paid in full by the period end."),
    "reached_final_pct": ("Reached final stage (%)", "Share of THIS STAGE's invoices that reached the last or an "
                                                     "escalation stage on or after it, by the period end."),
}
MONEY_COLUMNS = ("amount", "recovered")


def human_headers(frame: pd.DataFrame, currency: str) -> pd.DataFrame:
    """The table with the column headers of EFFECTIVENESS_LABELS (money columns name `currency`)."""
    return frame.rename(columns={c: f"{h} ({currency})" if c in MONEY_COLUMNS else h
                                 for c, (h, _) in EFFECTIVENESS_LABELS.items()})


# -- who each side of a comparison covers ------------------------------------------------------------------
TVD_LIMIT_POINTS = 10.0  # segment mixes further apart than this (total variation distance) are not alike
SIZE_LIMIT_RATIO = 2.0  # nor are populations more than this many times the size of the other


@dataclass(frozen=True)
class Population:
    """The invoices a configuration version dunned in the period (any stage reach counted above)."""

    config_id: int
    config_version: int
    invoices: int
    customers: int
    segments: tuple[tuple[str, int], ...]  # (segment, invoices), largest first
    first_run: date
    last_run: date

    def describe(self) -> str:
        """One line: "1,234 invoices of 56 customers · segments SMB 1,000, Enterprise 234 · runs 2026-01-02 to ..."."""
        mix = ", ".join(f"{s} {n:,}" for s, n in self.segments)
        return (f"{_count(self.invoices, 'invoice')} of {_count(self.customers, 'customer')} · segments {mix} · "
                f"stage runs {self.first_run:%Y-%m-%d} to {self.last_run:%Y-%m-%d}")


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def populations(store: Store, start: date, end: date, filters: Filters = ALL,
                runs_until: date | None = None) -> dict[tuple[int, int], Population]:
    """Per (config_id, config_version): the distinct invoices and customers whose stage reaches count in
    `dunning_effectiveness` over the same period and filters, their segments (invoices per segment)
    and the first and last run date."""
    ctes, binds = _reached_sql(filters, start, end, runs_until)
    frame = store.read(f"""
    WITH {ctes}, invoices AS (
        SELECT r.config_id, r.config_version, r.entry_id, r.customer_id, MIN(r.run_date) AS first_run,
               MAX(r.run_date) AS last_run
        FROM reached r GROUP BY r.config_id, r.config_version, r.entry_id, r.customer_id
    )
    SELECT i.config_id, i.config_version, c.segment, COUNT(*) AS invoices, MIN(i.first_run) AS first_run,
           MAX(i.last_run) AS last_run
    FROM invoices i JOIN customers c ON c.customer_id = i.customer_id
    GROUP BY i.config_id, i.config_version, c.segment
    """, binds)  # noqa: S608 - constants and bind names only
    customers = store.read(f"""
    WITH {ctes}
    SELECT r.config_id, r.config_version, COUNT(DISTINCT r.customer_id) AS customers
    FROM reached r GROUP BY r.config_id, r.config_version
    """, binds)  # noqa: S608 - constants and bind names only
    distinct = {(int(r.config_id), int(r.config_version)): int(r.customers) for r in customers.itertuples()}
    out: dict[tuple[int, int], Population] = {}
    for (config_id, version), rows in frame.groupby(["config_id", "config_version"]):
        rows = rows.sort_values(["invoices", "segment"], ascending=[False, True])
        key = (int(config_id), int(version))
        out[key] = Population(
            config_id=key[0], config_version=key[1], invoices=int(rows["invoices"].sum()),
            customers=distinct[key],
            segments=tuple((str(s), int(n)) for s, n in zip(rows["segment"], rows["invoices"], strict=True)),
            first_run=pd.Timestamp(rows["first_run"].min()).date(),
            last_run=pd.Timestamp(rows["last_run"].max()).date())
    return out


def segment_distance_points(a: Population, b: Population) -> float:
    """Total variation distance of the two segment mixes, in points: ½ Σ |share_a - share_b| × 100
    (0 = the same mix, 100 = no segment in common); shares are of each side's invoices."""
    shares_a = {s: n / a.invoices for s, n in a.segments}
    shares_b = {s: n / b.invoices for s, n in b.segments}
    distance = sum(abs(shares_a.get(s, 0.0) - shares_b.get(s, 0.0)) for s in shares_a.keys() | shares_b.keys())
    return round(distance / 2 * 100, 9)  # 10.000000000000002 is 10


def comparison_warning(a: Population, b: Population) -> str | None:
    """Why a comparison of `a` and `b` is not like-for-like, or None: their segment mixes are more than
    TVD_LIMIT_POINTS apart (total variation distance) or one has more than SIZE_LIMIT_RATIO times the
    other's invoices."""
    reasons = []
    distance = segment_distance_points(a, b)
    if distance > TVD_LIMIT_POINTS:
        reasons.append(f"their segment mixes differ by {distance:.0f} points (total variation distance; "
                       f"alike is at most {TVD_LIMIT_POINTS:.0f})")
    ratio = max(a.invoices, b.invoices) / max(min(a.invoices, b.invoices), 1)
    if ratio > SIZE_LIMIT_RATIO:
        reasons.append(f"one has {ratio:.1f} times the other's invoices ({a.invoices:,} against {b.invoices:,})")
    if not reasons:
        return None
    return ("Not a like-for-like comparison: " + " and ".join(reasons) + ". Differences may come from who was "
            "dunned, not from the policy. Restrict both sides to the same segments and period (like-for-like), "
            "or run an experiment (Experiments page, `ardesk experiments start`): customers assigned at random to "
            "the two policies make a fair test.")


@dataclass(frozen=True)
class LikeForLike:
    """The common ground of two sides: the stage runs of the period both ran in (runs_from to
    runs_until; payments still count up to the report's end) and the segments both dunned."""

    runs_from: date
    runs_until: date
    filters: Filters
    segments: tuple[str, ...]

    def describe(self) -> str:
        return (f"Like-for-like: both sides restricted to segment{'s' if len(self.segments) > 1 else ''} "
                f"{', '.join(self.segments)} and to stage runs from {self.runs_from:%Y-%m-%d} to "
                f"{self.runs_until:%Y-%m-%d} (the segments both have, the period both ran in; payments count up "
                "to the report's end).")


def like_for_like(a: Population, b: Population, filters: Filters = ALL) -> LikeForLike:
    """Both sides over the same ground: the segments both dunned (intersection) and the period both ran in
    (the later first run to the earlier last run). Raises ValueError, saying why, when there is none."""
    common = tuple(sorted({s for s, _ in a.segments} & {s for s, _ in b.segments}))
    if not common:
        raise ValueError("No like-for-like comparison: the two sides have no segment in common "
                         f"({', '.join(s for s, _ in a.segments)} against {', '.join(s for s, _ in b.segments)}).")
    start, end = max(a.first_run, b.first_run), min(a.last_run, b.last_run)
    if start > end:
        raise ValueError(f"No like-for-like comparison: the two sides never ran in the same period "
                         f"({a.first_run} to {a.last_run} against {b.first_run} to {b.last_run}).")
    return LikeForLike(runs_from=start, runs_until=end, filters=replace(filters, segment=common), segments=common)
