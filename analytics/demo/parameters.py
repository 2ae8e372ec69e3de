"""What the demo's story is drawn from: segment and behaviour mixes, terms, amounts, currencies, the
team and its portfolios, the dunning configurations and how customers answer them, and the rates of
disputes, credit notes, partial payments and the like. Arrays are indexed in SEGMENTS
and BEHAVIOURS order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analytics.demo.arrays import NEVER

# --- customers -----------------------------------------------------------------------------------

# The demo's segments (a team's own customers may use any words: the segment is free text).
SEGMENTS = ("enterprise", "mid-market", "small business", "public sector")
SEGMENT_SHARES = np.array([0.05, 0.20, 0.65, 0.10])  # in SEGMENTS order
BEHAVIOURS = ("prompt", "slow", "chronically late", "defaulting")
PROMPT, SLOW, CHRONIC, DEFAULTING = range(4)
# Behaviour mix per segment (rows in SEGMENTS order): public sector slow, small business defaults more.
BEHAVIOUR_MIX = np.array([
    [0.55, 0.30, 0.12, 0.03],
    [0.48, 0.30, 0.18, 0.04],
    [0.43, 0.27, 0.245, 0.055],
    [0.30, 0.55, 0.13, 0.02],
])
TERMS = (  # (choices, probabilities) per segment
    ((60, 45, 90), (0.70, 0.20, 0.10)),
    ((45, 30, 60), (0.60, 0.25, 0.15)),
    ((30, 14, 45), (0.75, 0.15, 0.10)),
    ((60, 30, 45), (0.60, 0.20, 0.20)),
)
INVOICES_PER_MONTH = np.array([10.0, 4.0, 1.5, 3.0])
AMOUNT_MEDIAN = np.array([25_000.0, 6_000.0, 900.0, 12_000.0])
AMOUNT_SIGMA = np.array([0.9, 0.8, 0.9, 0.7])
PAYMENT_RUN_SHARE = np.array([0.80, 0.25, 0.03, 0.85])  # customers paying in weekly runs

CURRENCIES = ("USD", "EUR", "GBP", "CAD")
CURRENCY_SHARES = (0.70, 0.15, 0.09, 0.06)
COUNTRIES = ("US", "DE", "FR", "NL", "GB", "CA")
EURO_COUNTRIES = (1, 2, 3)
EURO_COUNTRY_SHARES = (0.5, 0.3, 0.2)
FX_START = {"EUR": 1.08, "GBP": 1.27, "CAD": 0.73}

# --- users -------------------------------------------------------------------------------------

COLLECTORS = (  # username, name, effort: how much of the manual work they get done
    ("ana.collector", "Ana Alvarez", 0.95),
    ("ben.collector", "Ben Okafor", 0.55),
    ("carla.collector", "Carla Rossi", 0.80),
    ("dev.collector", "Dev Patel", 0.90),
    ("eva.collector", "Eva Lindqvist", 0.45),
    ("finn.collector", "Finn Murphy", 0.70),
)
SALES_REPS = (("gina.sales", "Gina Moreau"), ("hugo.sales", "Hugo Brandt"), ("iris.sales", "Iris Tanaka"))
USERNAMES = tuple(u for u, *_ in COLLECTORS) + tuple(u for u, _ in SALES_REPS)
# Other departments (role "department", their queue is their team): they work requests, no portfolio.
DEPARTMENT_STAFF = (("lena.legal", "Lena Hoffmann", "legal"), ("leo.logistics", "Leo Fontaine", "logistics"))
EFFORT = np.array([e for *_, e in COLLECTORS])
# Portfolio rules: collector shares per (segment, domestic US or not); deliberately uneven.
COLLECTOR_SHARES = np.array([
    # ana  ben  carla dev  eva  finn
    [0.75, 0.25, 0.00, 0.00, 0.00, 0.00],  # enterprise, US
    [0.50, 0.00, 0.00, 0.00, 0.50, 0.00],  # enterprise, abroad
    [0.00, 0.45, 0.00, 0.55, 0.00, 0.00],  # mid-market, US
    [0.00, 0.00, 0.20, 0.00, 0.80, 0.00],  # mid-market, abroad
    [0.00, 0.20, 0.15, 0.20, 0.00, 0.45],  # small business, US
    [0.00, 0.00, 0.00, 0.00, 0.60, 0.40],  # small business, abroad
    [0.15, 0.00, 0.85, 0.00, 0.00, 0.00],  # public sector, US
    [0.00, 0.00, 0.50, 0.00, 0.50, 0.00],  # public sector, abroad
])
SALES_SHARES = np.array([
    # gina hugo iris
    [0.80, 0.00, 0.20],  # US, not small business
    [0.20, 0.00, 0.80],  # US, small business
    [0.10, 0.90, 0.00],  # abroad
])

# --- dunning -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Stage:
    name: str
    day_offset: int
    channel: str
    template: str
    mode: str
    pull: float  # share of still-unpaid invoices that pay within 1-7 days after this stage fires


@dataclass(frozen=True)
class _Config:
    name: str
    segment: str | None
    grace_days: int
    description: str
    stages: tuple[_Stage, ...]


DUNNING_CONFIGS = (
    _Config("Standard", None, 3, "Default reminder ladder for commercial customers.", (
        _Stage("Friendly reminder", 1, "email", "reminder_friendly", "automatic", 0.10),
        _Stage("Second reminder", 15, "email", "reminder_firm", "automatic", 0.12),
        _Stage("Reminder letter", 30, "letter", "reminder_letter", "automatic", 0.15),
        _Stage("Collector call", 45, "call", "call_script", "manual", 0.18),
        _Stage("Final notice", 75, "escalation", "final_notice", "manual", 0.10),
    )),
    _Config("Firm early", "small business", 0, "Pre-due reminder and an early call; the challenger to Standard in the small-business experiment.", (
        _Stage("Pre-due reminder", -3, "email", "reminder_predue", "automatic", 0.15),
        _Stage("Overdue notice", 3, "email", "reminder_firm", "automatic", 0.25),
        _Stage("Collector call", 10, "call", "call_script", "manual", 0.30),
        _Stage("Formal letter", 20, "letter", "formal_letter", "automatic", 0.25),
        _Stage("Escalation", 45, "escalation", "final_notice", "manual", 0.15),
    )),
    _Config("Gentle enterprise", "enterprise", 5, "Relationship-first ladder for key accounts.", (
        _Stage("Courtesy email", 7, "email", "reminder_friendly", "automatic", 0.10),
        _Stage("Account manager call", 30, "call", "call_script", "manual", 0.20),
        _Stage("Statement letter", 60, "letter", "statement_letter", "automatic", 0.15),
        _Stage("Escalation", 90, "escalation", "final_notice", "manual", 0.10),
    )),
    _Config("Public sector", "public sector", 10, "Slow, formal ladder matching public payment cycles.", (
        _Stage("Reminder", 14, "email", "reminder_friendly", "automatic", 0.06),
        _Stage("Letter to finance office", 35, "letter", "reminder_letter", "automatic", 0.10),
        _Stage("Call to finance office", 50, "call", "call_script", "manual", 0.15),
        _Stage("Formal notice", 80, "letter", "final_notice", "automatic", 0.10),
        _Stage("Escalation", 120, "escalation", "final_notice", "manual", 0.08),
    )),
)
STANDARD, FIRM_EARLY, GENTLE, PUBLIC = range(4)


@dataclass(frozen=True)
class _Experiment:
    name: str
    segment: int  # index into SEGMENTS
    champion: int  # index into DUNNING_CONFIGS: the segment's own policy
    challenger: int
    challenger_pct: int
    looks: int
    why: str


# The demo's champion/challenger experiment, running since the history starts (so every invoice of the
# segment is dunned under its customer's arm); the arms are hashed as `analytics.experiments` does.
DEMO_EXPERIMENT = _Experiment(
    "Firm early vs Standard, small business", 2, STANDARD, FIRM_EARLY, 50, 4,
    "Does a pre-due reminder and an early call collect more of what falls overdue?")


def _stage_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stage day offsets (NEVER pads short ladders), pull shares and email flags, config x stage."""
    width = max(len(c.stages) for c in DUNNING_CONFIGS)
    offset = np.full((len(DUNNING_CONFIGS), width), NEVER, dtype=np.int64)
    pull = np.zeros((len(DUNNING_CONFIGS), width))
    email = np.zeros((len(DUNNING_CONFIGS), width), dtype=bool)
    for i, cfg in enumerate(DUNNING_CONFIGS):
        for s, stage in enumerate(cfg.stages):
            offset[i, s], pull[i, s], email[i, s] = stage.day_offset, stage.pull, stage.channel == "email"
    return offset, pull, email


STAGE_OFFSET, STAGE_PULL, STAGE_IS_EMAIL = _stage_arrays()
MAX_STAGES = STAGE_OFFSET.shape[1]
CALL_STAGE = np.array([[s.channel for s in c.stages].index("call") for c in DUNNING_CONFIGS])
ESCALATION_STAGE = np.array([[s.channel for s in c.stages].index("escalation") for c in DUNNING_CONFIGS])

# How strongly each behaviour answers dunning, and how often it keeps a promise to pay.
DUNNING_RESPONSE = np.array([1.0, 0.9, 0.55, 0.35])
PROMISE_KEPT = np.array([0.90, 0.80, 0.55, 0.15])
# Customer-to-customer spread (days) of the usual delay, per behaviour.
DELAY_SPREAD = np.array([1.0, 2.0, 6.0, 3.0])

# --- rates ---------------------------------------------------------------------------------------

DISPUTE_RATE = 0.02
CREDIT_NOTE_RATE = 0.03
CREDIT_NOTE_UNAPPLIED = 0.10
PARTIAL_RATE = 0.10
OVERPAYMENT_RATE = 0.012
ON_ACCOUNT_RATE = 0.005
RUN_FAILURE_RATE = 0.01
SEASON = np.array([0.95, 0.95, 1.05, 1.0, 1.0, 0.95, 0.80, 0.75, 1.05, 1.10, 1.20, 1.25])  # Jan..Dec
