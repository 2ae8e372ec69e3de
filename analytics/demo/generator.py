"""Deterministic demo data: two years of receivables for a realistic customer base.

`generate_demo(store, entries=...)` fills an empty store with customers, contacts, collectors and
sales reps, invoices, payments, credit notes, write-offs, allocations, dunning configurations and
runs, collector activities and FX rates. The same seed and size always give the same data.

How the story is built (all vectorised, per chunk of customers):

- Each customer has a hidden payment behaviour: prompt, slow, chronically late or defaulting.
  The segment shifts the mix (public sector pays slowly, small businesses default more often).
- An invoice's natural payment day is its due date plus a delay drawn for that behaviour. Disputes
  hold payment until they are resolved; defaulters stop paying at their default date, and their
  invoices are written off once they are well over 180 days past due.
- Dunning works: when a stage fires on an unpaid invoice, a share of invoices that depends on the
  configuration (and on the customer's behaviour) pays within 1-7 days. Calls at the call stage
  can end in a promise to pay; a share of promises is kept, depending on the behaviour.
- Payments land on business days; enterprise and public customers pay in weekly payment runs, so
  one payment settles several invoices. Whatever would be paid after `end_date` stays open.

Everything is written in ONE transaction through `bulk_insert`, chunk by chunk, so a failure
leaves the store as it was and memory stays bounded by the chunk size.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from analytics.ledger.stage_results import refresh_stage_results
from analytics.store.connection import Store, bulk_insert, read_df
from analytics.store.ids import extend_reservation, reserve_ids, restart_ids
from analytics.store.schema import (
    ACTIVITY_KINDS,
    ALLOCATION_IDS,
    CUSTOMER_STATUSES,
    DUNNING_RUN_IDS,
    ENTRY_IDS,
    SEGMENTS,
)

Progress = Callable[[str], None]
T = TypeVar("T")

HISTORY_DAYS = 730
CUSTOMERS_PER_CHUNK = 5_000
ENTRY_TOLERANCE = 0.01  # a chunk further than this from its share of `entries` is drawn again
NEVER = 10_000_000  # day number of "not paid, not ever"
SOURCE = "demo"

DATA_TABLES = (
    "customers", "contacts", "ledger_entries", "allocations", "dunning_configs", "dunning_stages",
    "dunning_runs", "dunning_stage_results", "activities", "fx_rates",
)

# --- customers -----------------------------------------------------------------------------------

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
    _Config("Firm early", "small business", 0, "Pre-due reminder and an early call; A/B test against Standard.", (
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
_MAX_STAGES = STAGE_OFFSET.shape[1]
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

# --- activity vocabularies -----------------------------------------------------------------------

KIND = {k: i for i, k in enumerate(ACTIVITY_KINDS)}
DEPARTMENTS = ("collections", "sales", "logistics", "legal", "finance")
OUTCOMES = ("reached", "voicemail", "no_answer", "sent")
STATUSES = ("pending", "kept", "broken", "open", "resolved", "done")
TARGETS = ("manager", "agency")
DISPUTE_REASONS = ("pricing", "damaged goods", "not received", "duplicate billing", "quantity mismatch",
                   "contract terms")
DISPUTE_REASON_SHARES = (0.32, 0.18, 0.18, 0.14, 0.12, 0.06)
DISPUTE_DEPARTMENT = np.array([1, 2, 2, 1, 2, 3])  # index into DEPARTMENTS
SUBJECTS = (
    "Call about", "Overdue invoice", "Promise to pay for", "Dispute on", "Follow up broken promise on",
    "Escalated to manager:", "Find accounts payable email address", "Escalated to manager",
    "Handed to collection agency",
)
(SUBJ_CALL, SUBJ_EMAIL, SUBJ_PROMISE, SUBJ_DISPUTE, SUBJ_BROKEN, SUBJ_ESCALATE_INVOICE, SUBJ_FIND_EMAIL,
 SUBJ_ESCALATE, SUBJ_AGENCY) = range(len(SUBJECTS))
COLLECTOR_NOTES = (
    "Customer confirmed the invoice is approved and scheduled for the next payment run.",
    "AP says the invoice is waiting for a second approval.",
    "Asked for a copy of the invoice and the proof of delivery; sent both.",
    "Customer is changing ERP systems; payments delayed this month.",
    "Statement of account sent to the finance manager.",
    "Customer asked to be contacted by phone, not email.",
    "Cash flow issues mentioned; proposed a payment plan.",
    "Remittance advice received, matching in progress.",
)
SALES_NOTES = (
    "New contract signed; volumes expected to grow next quarter.",
    "Customer unhappy with the last delivery; sales following up.",
    "Price increase announced for next year.",
    "Account review meeting held with purchasing.",
)
BODIES = COLLECTOR_NOTES + SALES_NOTES

# --- names ---------------------------------------------------------------------------------------

_BRANDS = (
    "Northwind", "Blue Harbor", "Summit", "Apex", "Cedar", "Granite", "Silver Lake", "Redwood", "Harbor",
    "Pioneer", "Evergreen", "Keystone", "Lakeside", "Riverbend", "Ironwood", "Maple", "Oakridge",
    "Pinecrest", "Sterling", "Westbrook", "Brightwater", "Clearview", "Crescent", "Eagle", "Falcon",
    "Frontier", "Golden Gate", "Highland", "Horizon", "Liberty", "Meridian", "Monarch", "Orion", "Pacific",
    "Prairie", "Quantum", "Rainier", "Sequoia", "Skyline", "Stonebridge", "Sunrise", "Trident", "Union",
    "Vanguard", "Vertex", "Willow", "Atlas", "Beacon", "Cobalt", "Delta", "Everest", "Fairway", "Global",
    "Heritage", "Insight", "Juniper", "Kingsley", "Lighthouse", "Nova", "Oasis",
)
_MIDDLES = (
    "", "Bay", "Valley", "Point", "Ridge", "Creek", "Park", "Hill", "Field", "Stone", "Bridge", "Port",
    "Star", "Rock", "Wood", "Line", "Gate", "Mill", "Crest", "Vale", "Brook", "Shore", "Peak", "Grove",
)
_TRADES = (
    "Logistics", "Foods", "Medical", "Software", "Engineering", "Manufacturing", "Supply", "Industries",
    "Analytics", "Construction", "Dental Group", "Distribution", "Electric", "Energy", "Fabrication",
    "Freight", "Furniture", "Hardware", "Health", "Hospitality", "Instruments", "Labs", "Marine", "Media",
    "Metals", "Motors", "Networks", "Office Supply", "Packaging", "Paper", "Pharma", "Plastics",
    "Printing", "Robotics", "Security", "Steel", "Systems", "Technologies", "Textiles", "Tools", "Trading",
    "Transport", "Travel", "Water", "Wholesale", "Farms", "Bakery", "Brewing", "Consulting", "Interiors",
)
_LEGAL_FORMS = {  # per country, in COUNTRIES order
    0: ("Inc.", "LLC", "Corp.", "Co."), 1: ("GmbH", "AG"), 2: ("SAS", "SARL"), 3: ("B.V.",),
    4: ("Ltd", "PLC"), 5: ("Ltd.", "Inc."),
}
_PLACE_PREFIXES = ("", "North ", "South ", "East ", "West ", "New ", "Port ", "Fort ", "Lake ", "Mount ",
                   "Glen ", "Upper ", "Lower ")
_PLACES = (
    "Haven", "Ashford", "Bridgeton", "Carlow", "Dunmore", "Elmwood", "Fairfield", "Greenville", "Hampton",
    "Kingston", "Lancaster", "Milford", "Newport", "Oakdale", "Plymouth", "Richmond", "Salem",
    "Springfield", "Trenton", "Weston", "Ashby", "Bexley", "Clifton", "Denton", "Easton", "Franklin",
    "Georgetown", "Hillsboro", "Jackson", "Kendall", "Lexington", "Madison", "Norwood", "Oxford",
    "Preston", "Quincy", "Riverton", "Stratford", "Troy", "Vernon",
)
_PUBLIC_FORMS = (
    "City of {}", "{} County", "{} School District", "{} Water Authority", "{} Public Library",
    "{} Transit Authority", "{} Housing Authority", "{} Community College", "Port of {}", "{} Health Board",
)
_FIRST_NAMES = (
    "James", "Mary", "Robert", "Linda", "Michael", "Sarah", "David", "Laura", "Daniel", "Emma", "Thomas",
    "Olivia", "Lukas", "Sophie", "Jonas", "Lea", "Pierre", "Camille", "Jan", "Sanne", "Oliver", "Amelia",
    "Liam", "Chloe", "Noah", "Grace", "Ethan", "Hannah", "Mateo", "Priya", "Arjun", "Mei", "Kenji",
    "Fatima", "Omar", "Elena", "Marco", "Julia", "Peter", "Anna",
)
_LAST_NAMES = (
    "Smith", "Johnson", "Brown", "Miller", "Davis", "Wilson", "Taylor", "Anderson", "Thomas", "Moore",
    "Martin", "Clark", "Lewis", "Walker", "Young", "King", "Wright", "Scott", "Green", "Baker", "Adams",
    "Nelson", "Hill", "Campbell", "Mitchell", "Roberts", "Carter", "Phillips", "Evans", "Turner",
    "Müller", "Schmidt", "Fischer", "Weber", "Dubois", "Laurent", "Bernard", "de Vries", "Jansen",
    "Bakker", "Murphy", "Kelly", "Tremblay", "Gagnon", "Roy", "Chen", "Nguyen", "Singh", "Khan", "Garcia",
)
_TLDS = (".com", ".de", ".fr", ".nl", ".co.uk", ".ca")
_PHONE_CODES = ("+1", "+49", "+33", "+31", "+44", "+1")
_LEGAL_FORM_AT_END = r" (?:Inc\.|LLC|Corp\.|Co\.|GmbH|AG|SAS|SARL|B\.V\.|Ltd\.?|PLC)(?= \d+$|$)"
CONTACT_ROLES = ("accounts_payable", "finance_manager", "purchasing", "owner")


class StoreNotEmpty(RuntimeError):
    """The store already holds ledger data; the demo only fills an empty store unless replacing."""

    def __init__(self, entries: int, customers: int) -> None:
        self.entries, self.customers = entries, customers
        super().__init__(
            f"The store already holds {entries:,} ledger entries and {customers:,} customers. "
            "The demo only fills an empty store: use --replace to delete the existing data first."
        )


@dataclass
class DemoSummary:
    """What `generate_demo` wrote, and the collection picture it produced."""

    entries_target: int
    seed: int
    start_date: date
    end_date: date
    counts: dict[str, int] = field(default_factory=dict)  # rows written per table
    entries_by_type: dict[str, int] = field(default_factory=dict)
    date_ranges: dict[str, tuple[date, date]] = field(default_factory=dict)
    customers_by_segment: dict[str, int] = field(default_factory=dict)
    customers_by_status: dict[str, int] = field(default_factory=dict)
    customers_by_behaviour: dict[str, int] = field(default_factory=dict)
    # Late = invoices due by end_date that were not fully settled on their due date (incl. still open).
    late_rate_by_segment: dict[str, float] = field(default_factory=dict)
    avg_days_late_by_segment: dict[str, float] = field(default_factory=dict)  # of invoices paid late
    late_rate_by_behaviour: dict[str, float] = field(default_factory=dict)
    open_ar_usd_by_bucket: dict[str, float] = field(default_factory=dict)  # at end_date, in USD
    chunks: int = 0
    redraws: int = 0
    seconds: float = 0.0

    @property
    def entries(self) -> int:
        return self.counts.get("ledger_entries", 0)


# --- small vectorised helpers ----------------------------------------------------------------------


def _day(d: date) -> int:
    return (d - date(1970, 1, 1)).days


def _to_date(day: int) -> date:
    return date(1970, 1, 1) + timedelta(days=int(day))


def _weekday(days: np.ndarray) -> np.ndarray:
    """0 = Monday (1970-01-01 was a Thursday)."""
    return (days + 3) % 7


def _bday(days: np.ndarray, offset: np.ndarray | int = 0) -> np.ndarray:
    """The business day `offset` business days after `days` (a weekend day counts from Monday)."""
    return np.busday_offset(np.asarray(days).astype("datetime64[D]"), offset, roll="forward").astype(np.int64)


def _bday_within(rng: np.random.Generator, first: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """A uniformly drawn business day in [first, stop); `first` itself when there is none."""
    span = np.busday_count(first.astype("datetime64[D]"), stop.astype("datetime64[D]"))
    pick = np.floor(rng.random(len(first)) * np.maximum(span, 0)).astype(np.int64)
    return np.where(span > 0, _bday(first, pick), first)


def _choose(rng: np.random.Generator, shares: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """One draw per element from the categorical distribution `shares[rows[i]]`."""
    cum = np.cumsum(shares, axis=1)[rows]
    pick = (rng.random(len(rows))[:, None] >= cum).sum(axis=1)
    return np.minimum(pick, shares.shape[1] - 1)


def _numbered(prefix: str, numbers: np.ndarray, width: int = 7) -> pa.Array:
    """'INV-0000042'-style strings, built as fixed-width bytes (no Python per row)."""
    n = len(numbers)
    if n:
        width = max(width, len(str(int(numbers.max()))))
    head = prefix.encode()
    w = len(head) + width
    buf = np.empty((n, w), dtype=np.uint8)
    buf[:, :len(head)] = np.frombuffer(head, dtype=np.uint8)
    x = numbers.astype(np.int64)
    for k in range(w - 1, len(head) - 1, -1):
        buf[:, k] = 48 + x % 10
        x = x // 10
    offsets = np.arange(0, (n + 1) * w, w, dtype=np.int64)
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(buf.ravel())).cast(pa.string())


def _vocab(words: tuple[str, ...] | list[str], codes: np.ndarray) -> pa.Array:
    """Strings from a small vocabulary; code -1 is NULL."""
    codes = np.asarray(codes, dtype=np.int64)
    return pa.array(list(words), pa.string()).take(pa.array(codes, mask=codes < 0))


def _const(text: str, n: int) -> pa.Array:
    return _vocab((text,), np.zeros(n, dtype=np.int64))


def _money(cents: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    """Cents (exact int64) -> 2-decimal values; DuckDB casts them exactly into DECIMAL(18,2)."""
    return pa.array(np.asarray(cents) / 100.0, pa.float64(), mask=null)


def _dates(days: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    days = np.where(null, 0, days) if null is not None else days
    return pa.array(np.asarray(days, dtype=np.int64).astype("datetime64[D]"), mask=null)


def _stamps(seconds: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    seconds = np.where(null, 0, seconds) if null is not None else seconds
    return pa.array(np.asarray(seconds, dtype=np.int64).astype("datetime64[s]"), mask=null)


def _ints(values: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    return pa.array(np.asarray(values, dtype=np.int64), pa.int64(), mask=null)


def _frame(columns: dict[str, pa.Array]) -> pd.DataFrame:
    """An Arrow-backed DataFrame: DuckDB scans it without per-row Python objects."""
    return pd.DataFrame({k: pd.arrays.ArrowExtensionArray(v) for k, v in columns.items()})


def _concat(parts: list[np.ndarray], dtype: type = np.int64) -> np.ndarray:
    return np.concatenate([np.asarray(p, dtype=dtype) for p in parts]) if parts else np.empty(0, dtype)


# --- calendar ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Calendar:
    """The history window, and how invoicing spreads over it (seasons, weekdays, month ends)."""

    start: int
    end: int
    cdf: np.ndarray  # cdf[i]: invoicing weight of the days before start + i

    @classmethod
    def build(cls, end_date: date) -> _Calendar:
        end = _day(end_date)
        start = end - HISTORY_DAYS
        days = np.arange(start, end + 1)
        d64 = days.astype("datetime64[D]")
        month = d64.astype("datetime64[M]")
        weekday = _weekday(days)
        weight = SEASON[month.astype(np.int64) % 12] * np.select([weekday < 5, weekday == 5], [1.0, 0.08], 0.02)
        weight *= np.where((d64 + 2).astype("datetime64[M]") != month, 1.6, 1.0)  # month-end billing
        weight *= 1 + 0.08 * (days - start) / 365  # the business grows
        return cls(start, end, np.concatenate([[0.0], np.cumsum(weight)]))

    def mass(self, first: np.ndarray, last: np.ndarray) -> np.ndarray:
        return self.cdf[last - self.start + 1] - self.cdf[first - self.start]

    def sample(self, rng: np.random.Generator, first: np.ndarray, last: np.ndarray) -> np.ndarray:
        """One invoicing day per element, in [first, last], following the seasonal weights."""
        lo = self.cdf[first - self.start]
        u = lo + rng.random(len(first)) * (self.cdf[last - self.start + 1] - lo)
        idx = np.searchsorted(self.cdf, u, side="right") - 1
        return self.start + np.clip(idx, first - self.start, last - self.start)


# --- customers -----------------------------------------------------------------------------------


@dataclass
class _Customers:
    ids: pa.Array
    names: np.ndarray
    seg: np.ndarray
    beh: np.ndarray
    cur: np.ndarray
    country: np.ndarray
    terms: np.ndarray
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


def _make_customers(entries: int, seed: int, cal: _Calendar) -> _Customers:
    rng = np.random.default_rng([seed, 0])
    n = customer_count(entries)
    # Exact segment counts (largest remainder), so every segment is present even at 40 customers.
    raw = SEGMENT_SHARES * n
    counts = np.floor(raw).astype(np.int64)
    counts[np.argsort(counts - raw)[: n - counts.sum()]] += 1
    seg = np.repeat(np.arange(len(SEGMENTS)), counts)
    rng.shuffle(seg)
    beh = _choose(rng, BEHAVIOUR_MIX, seg)
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
    collector = _choose(rng, COLLECTOR_SHARES, seg * 2 + abroad)
    sales = _choose(rng, SALES_SHARES, np.where(abroad == 1, 2, (seg == 2).astype(np.int64)))
    cfg = np.select([seg == 0, seg == 1, seg == 3], [GENTLE, STANDARD, PUBLIC], STANDARD)
    cfg = np.where((seg == 2) & (rng.random(n) < 0.5), FIRM_EARLY, cfg)  # the A/B split

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
    wo = _bday(stop_day + terms + 180 + rng.integers(0, 61, n))
    wo_day = np.where(is_def & (wo <= cal.end), wo, NEVER)
    agency_day = np.where(is_def, np.minimum(_bday(default_day + rng.integers(90, 151, n)), cal.end), NEVER)
    status = np.zeros(n, dtype=np.int64)  # active; the simulation sets the rest
    status_day = np.full(n, cal.end, dtype=np.int64)

    scale = rng.lognormal(0.0, 0.5, n)
    intensity = INVOICES_PER_MONTH[seg] * scale * cal.mass(win_start, stop_day)
    amt_mu = np.log(AMOUNT_MEDIAN[seg]) + rng.normal(0.0, 0.6, n)
    yearly_sales = INVOICES_PER_MONTH[seg] * scale * 12 * np.exp(amt_mu)
    credit_limit = np.maximum(np.round(yearly_sales * terms / 365 * 1.5, -3), 1000) * 100

    return _Customers(
        ids=_numbered("C", np.arange(1, n + 1), 6),
        names=_company_names(rng, seg, country),
        seg=seg, beh=beh, cur=cur, country=country, terms=terms, cfg=cfg, collector=collector,
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
    middle = pd.Series(np.array(_MIDDLES)[rng.integers(0, len(_MIDDLES), n)])
    form = pd.Series(np.empty(n, dtype=object))
    for c, options in _LEGAL_FORMS.items():  # a loop over countries, not rows
        here = np.flatnonzero(country == c)
        form.iloc[here] = np.array(options, dtype=object)[rng.integers(0, len(options), len(here))]
    company = (pd.Series(np.array(_BRANDS)[rng.integers(0, len(_BRANDS), n)])
               + (" " + middle).where(middle != "", "")
               + " " + np.array(_TRADES)[rng.integers(0, len(_TRADES), n)] + " " + form)
    place = (pd.Series(np.array(_PLACE_PREFIXES)[rng.integers(0, len(_PLACE_PREFIXES), n)])
             + np.array(_PLACES)[rng.integers(0, len(_PLACES), n)])
    pattern = pd.Series(np.array(_PUBLIC_FORMS, dtype=object)[rng.integers(0, len(_PUBLIC_FORMS), n)])
    parts = pattern.str.split("{}", regex=False)
    names = company.where(seg != 3, parts.str[0] + place + parts.str[1])
    dup = names.groupby(names).cumcount()
    names = names.where(dup == 0, names + " " + (dup + 1).astype(str))
    return names.to_numpy(dtype=object)


def payment_behaviour(entries: int = 200_000, seed: int = 42, end_date: date = date(2026, 10, 31)) -> pd.Series:
    """The hidden payment behaviour of each demo customer (customer_id -> behaviour name)."""
    c = _make_customers(entries, seed, _Calendar.build(end_date))
    return pd.Series(np.array(BEHAVIOURS)[c.beh], index=c.ids.to_pylist(), name="behaviour")


# --- the simulation of one chunk of customers -----------------------------------------------------------


@dataclass
class _Chunk:
    g: np.ndarray  # invoices, in posting order: global customer index
    posting: np.ndarray
    due: np.ndarray
    amount: np.ndarray
    pay_g: np.ndarray  # payments (including payments on account)
    pay_day: np.ndarray
    pay_amount: np.ndarray
    pay_on_account: np.ndarray
    cn_inv: np.ndarray  # credit notes
    cn_day: np.ndarray
    cn_amount: np.ndarray
    wo_g: np.ndarray  # write-offs, one per written-off customer
    wo_day: np.ndarray
    wo_amount: np.ndarray
    al_kind: np.ndarray  # allocations: 0 payment, 1 credit note, 2 write-off
    al_from: np.ndarray  # index into the payments / credit notes / write-offs of this chunk
    al_inv: np.ndarray
    al_amount: np.ndarray
    al_day: np.ndarray
    run_inv: np.ndarray
    run_stage: np.ndarray
    run_day: np.ndarray
    run_failed: np.ndarray
    acts: dict[str, np.ndarray]
    stats: dict[str, np.ndarray]

    @property
    def entries(self) -> int:
        return len(self.g) + len(self.pay_g) + len(self.cn_inv) + len(self.wo_g)


def _simulate(c: _Customers, lo: int, hi: int, n_invoices: int, rng: np.random.Generator,
              cal: _Calendar, fx_end: np.ndarray) -> _Chunk:
    """Invoices, their settlement, dunning and collector work for customers lo..hi-1."""
    end = cal.end
    m = hi - lo
    lam = c.intensity[lo:hi] / c.intensity[lo:hi].sum()
    counts = 1 + rng.multinomial(n_invoices - m, lam) if n_invoices > m else rng.multinomial(n_invoices, lam)
    g = np.repeat(np.arange(lo, hi), counts)
    posting = cal.sample(rng, c.win_start[g], c.win_end[g])
    order = np.argsort(posting, kind="stable")
    g, posting = g[order], posting[order]
    n = len(g)
    rows = np.arange(n)
    seg, beh, cfg, col = c.seg[g], c.beh[g], c.cfg[g], c.collector[g]
    due = posting + c.terms[g]
    amount = np.maximum(np.rint(np.exp(c.amt_mu[g] + AMOUNT_SIGMA[seg] * rng.standard_normal(n)) * 100), 2000)
    amount = amount.astype(np.int64)

    # Natural payment day: due date + a delay typical of the customer's behaviour.
    d_prompt = -3 + 2 * rng.standard_normal(n) + np.where(rng.random(n) < 0.05, rng.uniform(3, 20, n), 0)
    d_slow = np.where(rng.random(n) < 0.10, rng.normal(0, 2, n), 4 + rng.gamma(2.0, 4.5, n))
    d_chronic = np.minimum(25 + rng.gamma(2.5, 14.0, n), 160)
    d_default = 10 + rng.gamma(2.0, 12.0, n)
    delay = np.choose(beh, [d_prompt, d_slow, d_chronic, d_default]) + c.delay_shift[g]
    pay = np.maximum(due + np.rint(delay).astype(np.int64), posting)
    default_day = c.default_day[g]
    pay = np.where(pay > default_day, NEVER, pay)

    # Disputes hold payment until resolved (still open at end_date: still unpaid).
    disputed = rng.random(n) < DISPUTE_RATE
    opened = _bday(posting, rng.integers(4, 33, n))
    disputed &= opened <= end
    resolved = _bday(opened, rng.integers(5, 55, n))
    pay = np.where(disputed & (pay < NEVER), np.maximum(pay, resolved + rng.integers(1, 11, n)), pay)
    pay = np.where(pay > default_day, NEVER, pay)
    dispute_amount = np.maximum(np.rint(amount * np.where(rng.random(n) < 0.5, 1.0, rng.uniform(0.1, 0.9, n))), 1)
    dispute_amount = dispute_amount.astype(np.int64)

    # Credit notes: a few invoices, and 40% of disputes (dated at the resolution).
    credited = (rng.random(n) < CREDIT_NOTE_RATE) | (disputed & (rng.random(n) < 0.4))
    cn_day = np.where(disputed, resolved, _bday(posting, rng.integers(2, 22, n)))
    credited &= cn_day <= end
    share = np.where(rng.random(n) < 0.3, 1.0, rng.uniform(0.05, 0.95, n))
    cn_amount = np.where(disputed, dispute_amount, np.clip(np.rint(amount * share), 1, amount)).astype(np.int64)
    cn_applied = credited & (disputed | (beh == DEFAULTING) | (rng.random(n) >= CREDIT_NOTE_UNAPPLIED))
    cancelled = cn_applied & (cn_amount == amount)  # fully credited: settled by the credit note
    pay = np.where(cancelled, cn_day, pay)

    # Dunning works: after each stage, a config-specific share of the unpaid invoices pays soon.
    off = STAGE_OFFSET[cfg]
    movable = ~cancelled & ~disputed & (pay < NEVER)
    response = DUNNING_RESPONSE[beh]
    for s in range(_MAX_STAGES):
        t = due + off[:, s]
        hit = movable & (pay > t) & (t <= end) & (rng.random(n) < STAGE_PULL[cfg, s] * response)
        pay = np.where(hit, np.minimum(pay, t + rng.integers(1, 8, n)), pay)

    # Calls at the call stage; a reached contact may promise a date, and some promises are kept.
    # Collectors work the call queue on weekdays, within two business days of the stage.
    t_call = _bday(np.minimum(due + off[rows, CALL_STAGE[cfg]], end + 1), rng.integers(0, 3, n))
    called = (pay > t_call) & (t_call <= end) & (rng.random(n) < EFFORT[col])
    u = rng.random(n)
    call_outcome = np.where(u < 0.45, 0, np.where(u < 0.80, 1, 2))
    promised = called & (call_outcome == 0) & ~disputed & ~cancelled & (rng.random(n) < 0.6)
    promise_day = _bday(t_call, rng.integers(2, 11, n))
    keeps = promised & (pay < NEVER) & (rng.random(n) < PROMISE_KEPT[beh])
    pay = np.where(keeps, np.maximum(t_call + 1, np.minimum(pay, promise_day - rng.integers(0, 3, n))), pay)

    # Money arrives on business days; payment-run customers pay on their weekly run day. An
    # on-time payer moves to the day before (Friday, the previous run) so it stays on time.
    moving = ~cancelled & (pay < NEVER)
    on_time = pay <= due
    weekday = _weekday(pay)
    weekend = moving & (weekday >= 5)
    friday = pay - (weekday - 4)
    pay = np.where(weekend, np.where(on_time & (friday >= posting), friday, pay + 7 - weekday), pay)
    in_run = moving & c.runs[g]
    next_run = pay + (c.run_weekday[g] - _weekday(pay)) % 7
    previous_run = next_run - np.where(next_run > pay, 7, 0)
    pay = np.where(in_run, np.where(on_time & (previous_run >= posting), previous_run, next_run), pay)
    pay = np.where(pay > default_day, NEVER, pay)

    # A partly applied credit note is dated no later than the payment that settles the rest.
    cn_day = np.where(cn_applied & ~cancelled & ~disputed, np.minimum(cn_day, pay), cn_day)
    to_pay = amount - np.where(cn_applied, cn_amount, 0)

    # ~10% of invoices are paid in two instalments; the first may arrive while the rest stays open.
    upto = np.minimum(np.minimum(pay, end + 1), posting + 91)
    partial = ~cancelled & (rng.random(n) < PARTIAL_RATE) & (upto > posting) & (to_pay >= 200)
    first_day = _bday_within(rng, posting, upto)
    first = np.where(partial, np.clip(np.rint(to_pay * rng.uniform(0.3, 0.7, n)), 1, to_pay - 1), 0)
    first = first.astype(np.int64)

    wo_c = c.wo_day[g]
    written = ~cancelled & (pay == NEVER) & (wo_c <= end)
    paid = ~cancelled & ~written & (pay <= end)
    settled = np.select([cancelled, written, paid], [cn_day, wo_c, pay], NEVER)

    # Payments: one per instalment, except weekly runs that settle several invoices at once.
    i1, i2 = np.flatnonzero(partial), np.flatnonzero(paid)
    it_inv = np.concatenate([i1, i2])
    it_day = np.concatenate([first_day[i1], pay[i2]])
    it_amount = np.concatenate([first[i1], to_pay[i2] - first[i2]])
    grouped = np.concatenate([np.zeros(len(i1), bool), c.runs[g[i2]]])
    key = np.where(grouped, g[it_inv] * (1 << 22) + (it_day - cal.start), (1 << 50) + np.arange(len(it_inv)))
    _, head, pay_of_item = np.unique(key, return_index=True, return_inverse=True)
    pay_day = it_day[head]
    chrono = np.argsort(pay_day, kind="stable")
    rank = np.empty_like(chrono)
    rank[chrono] = np.arange(len(chrono))
    pay_of_item = rank[pay_of_item]
    pay_g, pay_day = g[it_inv[head]][chrono], pay_day[chrono]
    pay_amount = np.rint(np.bincount(pay_of_item, weights=it_amount, minlength=len(head))).astype(np.int64)

    # Unapplied cash: a few overpayments, and payments on account with no invoice.
    npay = len(pay_g)
    over = (rng.random(npay) < OVERPAYMENT_RATE) & (c.beh[pay_g] != DEFAULTING)
    pay_amount += np.where(over, np.maximum(np.rint(pay_amount * rng.uniform(0.01, 0.2, npay)), 100), 0).astype(np.int64)
    payers = g[beh != DEFAULTING]
    k = rng.binomial(npay, ON_ACCOUNT_RATE) if len(payers) else 0
    oa_g = payers[rng.integers(0, max(len(payers), 1), k)]
    oa_day = _bday_within(rng, c.win_start[oa_g], np.full(k, end + 1))
    oa_amount = np.rint(np.exp(c.amt_mu[oa_g]) * rng.uniform(0.2, 1.0, k) * 100).astype(np.int64)

    cn_inv = np.flatnonzero(credited)
    cn_rank = np.cumsum(credited) - 1
    ap = np.flatnonzero(cn_applied)
    wi = np.flatnonzero(written)
    wo_g, wo_of_inv = np.unique(g[wi], return_inverse=True)
    wo_inv_amount = to_pay[wi] - first[wi]
    wo_amount = np.bincount(wo_of_inv, weights=wo_inv_amount, minlength=len(wo_g)).round().astype(np.int64)

    # Dunning runs: a stage fires when the invoice is still unsettled on its day.
    run_inv, run_stage, run_day = [], [], []
    for s in range(_MAX_STAGES):
        t = due + off[:, s]
        hit = np.flatnonzero((settled > t) & (t <= end))
        run_inv.append(hit)
        run_stage.append(np.full(len(hit), s))
        run_day.append(t[hit])
    run_inv_a, run_stage_a, run_day_a = _concat(run_inv), _concat(run_stage), _concat(run_day)
    run_failed = ((STAGE_IS_EMAIL[cfg[run_inv_a], run_stage_a] & ~c.has_email[g[run_inv_a]])
                  | (rng.random(len(run_inv_a)) < RUN_FAILURE_RATE))

    acts = _activities(c, lo, hi, rng, cal, g, due, settled, col, beh, called, t_call, call_outcome,
                       promised, promise_day, to_pay, first, first_day, partial, disputed, opened,
                       resolved, dispute_amount, off, cfg)
    _set_statuses(c, lo, hi, rng, cal, g, due, settled, disputed, resolved, beh)

    # Summary figures: late = due by end_date and not settled on the due date.
    due_by_end = due <= end
    late = due_by_end & (settled > due)
    paid_late = late & (settled <= end)
    open_amount = np.where(settled == NEVER, to_pay - np.where(partial, first, 0), 0)
    dpd = end - due
    bucket = np.searchsorted(np.array([0, 30, 60, 90, 120]), dpd, side="left")
    usd = open_amount * fx_end[c.cur[g]]
    stats = {
        "seg_due": np.bincount(seg, weights=due_by_end, minlength=4),
        "seg_late": np.bincount(seg, weights=late, minlength=4),
        "seg_paid_late": np.bincount(seg, weights=paid_late, minlength=4),
        "seg_days_late": np.bincount(seg, weights=np.where(paid_late, settled - due, 0), minlength=4),
        "beh_due": np.bincount(beh, weights=due_by_end, minlength=4),
        "beh_late": np.bincount(beh, weights=late, minlength=4),
        "open_usd": np.bincount(bucket, weights=usd, minlength=6),
    }
    return _Chunk(
        g=g, posting=posting, due=due, amount=amount,
        pay_g=np.concatenate([pay_g, oa_g]), pay_day=np.concatenate([pay_day, oa_day]),
        pay_amount=np.concatenate([pay_amount, oa_amount]),
        pay_on_account=np.concatenate([np.zeros(npay, bool), np.ones(k, bool)]),
        cn_inv=cn_inv, cn_day=cn_day[cn_inv], cn_amount=cn_amount[cn_inv],
        wo_g=wo_g, wo_day=c.wo_day[wo_g], wo_amount=wo_amount,
        al_kind=_concat([np.zeros(len(it_inv)), np.ones(len(ap)), np.full(len(wi), 2)]),
        al_from=_concat([pay_of_item, cn_rank[ap], wo_of_inv]),
        al_inv=_concat([it_inv, ap, wi]),
        al_amount=_concat([it_amount, cn_amount[ap], wo_inv_amount]),
        al_day=_concat([it_day, cn_day[ap], c.wo_day[g[wi]]]),
        run_inv=run_inv_a, run_stage=run_stage_a, run_day=run_day_a, run_failed=run_failed,
        acts=acts, stats=stats,
    )


_ACT_FIELDS = ("cust", "inv", "kind", "sec", "author", "dept", "subject", "body", "outcome", "amount",
               "due", "status", "reason", "assignee", "target", "resolved")


def _activities(c: _Customers, lo: int, hi: int, rng: np.random.Generator, cal: _Calendar,
                g: np.ndarray, due: np.ndarray, settled: np.ndarray, col: np.ndarray, beh: np.ndarray,
                called: np.ndarray, t_call: np.ndarray, call_outcome: np.ndarray,
                promised: np.ndarray, promise_day: np.ndarray, to_pay: np.ndarray, first: np.ndarray,
                first_day: np.ndarray, partial: np.ndarray, disputed: np.ndarray, opened: np.ndarray,
                resolved: np.ndarray, dispute_amount: np.ndarray, off: np.ndarray,
                cfg: np.ndarray) -> dict[str, np.ndarray]:
    """Collector work as columns of codes: calls, promises, emails, disputes, notes, tasks, escalations."""
    end = cal.end
    parts: list[dict[str, np.ndarray]] = []

    def add(cust: np.ndarray, day: np.ndarray, kind: str, **cols: np.ndarray | int) -> None:
        n = len(cust)
        part = {f: np.full(n, -1, dtype=np.int64) for f in _ACT_FIELDS}
        part["cust"] = cust
        part["kind"][:] = KIND[kind]
        part["sec"] = day * 86400 + rng.integers(8 * 3600, 18 * 3600, n)
        part["author"] = c.collector[cust]
        for name, value in cols.items():
            part[name] = np.broadcast_to(np.asarray(value, dtype=np.int64), (n,)).copy()
        parts.append(part)

    # Calls at the call stage (the call is logged on the stage day).
    ci = np.flatnonzero(called & (settled > t_call))
    add(g[ci], t_call[ci], "call", inv=ci, outcome=call_outcome[ci], subject=SUBJ_CALL)
    # Promises to pay: the status follows from when the invoice was actually settled.
    pi = np.flatnonzero(promised & (settled > t_call))
    owed = to_pay[pi] - np.where(partial[pi] & (first_day[pi] <= t_call[pi]), first[pi], 0)
    kept = settled[pi] <= promise_day[pi]
    status = np.where(kept, 1, np.where(promise_day[pi] < end, 2, 0))
    add(g[pi], t_call[pi], "promise", inv=pi, amount=owed, due=promise_day[pi], status=status,
        subject=SUBJ_PROMISE)
    # A follow-up task on some broken promises.
    follow_up = _bday(promise_day[pi], 1)
    broken = (status == 2) & (rng.random(len(pi)) < 0.3) & (follow_up <= end)
    bi, task_day = pi[broken], follow_up[broken]
    task_due = _bday(task_day, 2)
    task_done = task_due < end - 5
    add(g[bi], task_day, "task", inv=bi, due=task_due, status=np.where(task_done, 5, 3),
        assignee=c.collector[g[bi]], subject=SUBJ_BROKEN,
        resolved=np.where(task_done, task_due * 86400 + 16 * 3600, -1))
    # Personal follow-up emails on invoices three weeks late or more.
    e_day = _bday(due, rng.integers(11, 30, len(g)))
    ei = np.flatnonzero((settled > e_day) & (e_day <= end) & (rng.random(len(g)) < 0.12 * EFFORT[col]))
    add(g[ei], e_day[ei], "email", inv=ei, outcome=3, subject=SUBJ_EMAIL)
    # Escalations to a manager at the escalation stage.
    t_esc = _bday(np.minimum(due + off[np.arange(len(g)), ESCALATION_STAGE[cfg]], end + 1), rng.integers(0, 3, len(g)))
    xi = np.flatnonzero((settled > t_esc) & (t_esc <= end) & (rng.random(len(g)) < 0.25 * EFFORT[col]))
    add(g[xi], t_esc[xi], "escalation", inv=xi, target=0, subject=SUBJ_ESCALATE_INVOICE)
    # Disputes, routed to the department that can resolve them.
    di = np.flatnonzero(disputed)
    reason = rng.choice(len(DISPUTE_REASONS), len(di), p=DISPUTE_REASON_SHARES)
    done = resolved[di] <= end
    add(g[di], opened[di], "dispute", inv=di, amount=dispute_amount[di], reason=reason,
        dept=DISPUTE_DEPARTMENT[reason], status=np.where(done, 4, 3), subject=SUBJ_DISPUTE,
        resolved=np.where(done, resolved[di] * 86400 + rng.integers(9 * 3600, 17 * 3600, len(di)), -1))

    # Customer-level work for this chunk's customers.
    cust = np.arange(lo, hi)
    months = (end - c.win_start[cust]) / 30.4
    rate = np.array([0.05, 0.15, 0.35, 0.5])[c.beh[cust]] * EFFORT[c.collector[cust]]
    nn = rng.poisson(rate * months)
    ni = np.repeat(cust, nn)
    note_day = _bday_within(rng, c.win_start[ni], np.full(len(ni), end + 1))
    by_sales = rng.random(len(ni)) < 0.15
    body = np.where(by_sales, len(COLLECTOR_NOTES) + rng.integers(0, len(SALES_NOTES), len(ni)),
                    rng.integers(0, len(COLLECTOR_NOTES), len(ni)))
    add(ni, note_day, "note", body=body, dept=np.where(by_sales, 1, -1),
        author=np.where(by_sales, len(COLLECTORS) + c.sales[ni], c.collector[ni]))
    # Customers without a usable AP email get a task to find one.
    mi = cust[~c.has_email[cust]]
    task_day = np.minimum(_bday(c.win_start[mi], rng.integers(0, 21, len(mi))), end)
    add(mi, task_day, "task", due=task_day + 7, status=3, assignee=c.collector[mi], subject=SUBJ_FIND_EMAIL)
    # Defaulters: escalated to a manager, then handed to the agency.
    fi = cust[c.beh[cust] == DEFAULTING]
    add(fi, np.minimum(_bday(c.default_day[fi], rng.integers(20, 41, len(fi))), end), "escalation", target=0,
        subject=SUBJ_ESCALATE)
    add(fi, c.agency_day[fi], "escalation", target=1, subject=SUBJ_AGENCY)

    out = {f: _concat([p[f] for p in parts]) for f in _ACT_FIELDS}
    order = np.argsort(out["sec"], kind="stable")
    return {f: v[order] for f, v in out.items()}


def _set_statuses(c: _Customers, lo: int, hi: int, rng: np.random.Generator, cal: _Calendar,
                  g: np.ndarray, due: np.ndarray, settled: np.ndarray, disputed: np.ndarray,
                  resolved: np.ndarray, beh: np.ndarray) -> None:
    """Defaulters end written off or with the agency; some customers in dispute or on credit hold."""
    end = cal.end
    status = np.zeros(hi - lo, dtype=np.int64)
    day = np.full(hi - lo, end, dtype=np.int64)
    open_dispute = np.zeros(hi - lo, bool)
    open_dispute[g[disputed & (resolved > end)] - lo] = True
    long_overdue = np.zeros(hi - lo, bool)
    long_overdue[g[(beh == CHRONIC) & (settled > end) & (end - due > 90)] - lo] = True
    hold = long_overdue & (rng.random(hi - lo) < 0.3)
    status[hold] = CUSTOMER_STATUSES.index("on_hold")
    day[hold] = end - rng.integers(0, 60, hold.sum())
    dispute = open_dispute & (rng.random(hi - lo) < 0.5)
    status[dispute] = CUSTOMER_STATUSES.index("in_dispute")
    day[dispute] = end - rng.integers(0, 30, dispute.sum())
    defaulted = c.beh[lo:hi] == DEFAULTING
    written = defaulted & (c.wo_day[lo:hi] <= end)
    status[defaulted] = CUSTOMER_STATUSES.index("with_agency")
    day[defaulted] = c.agency_day[lo:hi][defaulted]
    status[written] = CUSTOMER_STATUSES.index("written_off")
    day[written] = c.wo_day[lo:hi][written]
    c.status[lo:hi], c.status_day[lo:hi] = status, day


# --- frames ----------------------------------------------------------------------------------------


@dataclass
class _Counters:
    entry: int
    allocation: int
    run: int
    docs: dict[str, int] = field(default_factory=lambda: {"INV": 0, "PAY": 0, "CN": 0, "WO": 0})


def _settled_days(entry: np.ndarray, day: np.ndarray, cents: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per entry, the first allocation day from which its allocations sum to `target` (|amount|, in
    cents) with no later day where they do not; -1 when none. `ledger.refresh_settled_on`'s rule,
    vectorised over one chunk (entry = chunk-local index of the invoice or credit)."""
    settled = np.full(len(target), -1, np.int64)
    if len(entry) == 0:
        return settled
    order = np.lexsort((day, entry))
    e, d, a = entry[order], day[order], np.asarray(cents, np.int64)[order]
    new_day = np.ones(len(e), bool)
    new_day[1:] = (e[1:] != e[:-1]) | (d[1:] != d[:-1])
    starts = np.flatnonzero(new_day)
    e, d, daily = e[starts], d[starts], np.add.reduceat(a, starts)
    running = np.cumsum(daily)
    first = np.ones(len(e), bool)
    first[1:] = e[1:] != e[:-1]
    heads = np.flatnonzero(first)
    running -= np.repeat(running[heads] - daily[heads], np.diff(np.append(heads, len(e))))
    closed = running == target[e]
    last_open = np.full(len(target), np.iinfo(np.int64).min)
    np.maximum.at(last_open, e[~closed], d[~closed])
    ok = closed & (d > last_open[e])
    never = np.iinfo(np.int64).max
    best = np.full(len(target), never)
    np.minimum.at(best, e[ok], d[ok])
    settled[best != never] = best[best != never]
    return settled


def _chunk_frames(ch: _Chunk, c: _Customers, ids: _Counters, config_ids: np.ndarray) -> dict[str, pd.DataFrame]:
    """Number the chunk's rows: frames for the four large tables, in insert order."""
    n, npay, ncn, nwo = len(ch.g), len(ch.pay_g), len(ch.cn_inv), len(ch.wo_g)
    base = ids.entry
    inv_id = base + np.arange(n)
    pay_id = base + n + np.arange(npay)
    cn_id = base + n + npay + np.arange(ncn)
    wo_id = base + n + npay + ncn + np.arange(nwo)
    ids.entry += n + npay + ncn + nwo

    def docs(prefix: str, count: int) -> pa.Array:
        start = ids.docs[prefix]
        ids.docs[prefix] += count
        return _numbered(f"{prefix}-", start + 1 + np.arange(count))

    inv_docs = docs("INV", n)
    total = n + npay + ncn + nwo
    amounts = np.concatenate([ch.amount, -ch.pay_amount, -ch.cn_amount, -ch.wo_amount]).astype(np.int64)
    credit_local = np.array([n, n + npay, n + npay + ncn])[ch.al_kind] + ch.al_from
    al_day, al_cents = np.asarray(ch.al_day, np.int64), np.asarray(ch.al_amount, np.int64)
    # an entry is settled by allocations on its own side only (to an invoice, from a credit)
    settled_to = _settled_days(np.asarray(ch.al_inv, np.int64), al_day, al_cents, np.abs(amounts))
    settled_from = _settled_days(credit_local.astype(np.int64), al_day, al_cents, np.abs(amounts))
    settled = np.where(amounts > 0, settled_to, settled_from)
    # open after every allocation: minus those to a debit, plus those from a credit (ledger.open_now)
    applied_to = np.bincount(np.asarray(ch.al_inv, np.int64), weights=al_cents, minlength=total)
    applied_from = np.bincount(credit_local.astype(np.int64), weights=al_cents, minlength=total)
    open_now = amounts - np.rint(applied_to).astype(np.int64) + np.rint(applied_from).astype(np.int64)
    cust = np.concatenate([ch.g, ch.pay_g, ch.g[ch.cn_inv], ch.wo_g])
    has_due = np.arange(total) < n
    reference = pa.concat_arrays([
        pa.nulls(n, pa.string()),
        _vocab(("Payment on account",), np.where(ch.pay_on_account, 0, -1)),
        inv_docs.take(pa.array(ch.cn_inv)),
        _const("Bad debt write-off", nwo),
    ])
    ledger = _frame({
        "entry_id": _ints(np.arange(base, base + total)),
        "customer_id": c.ids.take(pa.array(cust)),
        "entry_type": _vocab(("invoice", "payment", "credit_note", "write_off"),
                             np.repeat([0, 1, 2, 3], [n, npay, ncn, nwo])),
        "document_number": pa.concat_arrays([inv_docs, docs("PAY", npay), docs("CN", ncn), docs("WO", nwo)]),
        "posting_date": _dates(np.concatenate([ch.posting, ch.pay_day, ch.cn_day, ch.wo_day])),
        "due_date": _dates(np.concatenate([ch.due, np.zeros(total - n, np.int64)]), ~has_due),
        "amount": _money(amounts),
        "currency": _vocab(CURRENCIES, c.cur[cust]),
        "reference": reference,
        "source": _const(SOURCE, total),
        "settled_on": _dates(settled, settled < 0),
        "open_now": _money(open_now),
    })

    na = len(ch.al_inv)
    from_id = np.empty(na, dtype=np.int64)
    for kind, credit_ids in enumerate((pay_id, cn_id, wo_id)):
        here = ch.al_kind == kind
        from_id[here] = credit_ids[ch.al_from[here]]
    allocations = _frame({
        "allocation_id": _ints(ids.allocation + np.arange(na)),
        "customer_id": c.ids.take(pa.array(ch.g[ch.al_inv])),
        "from_entry_id": _ints(from_id),
        "to_entry_id": _ints(inv_id[ch.al_inv]),
        "amount": _money(ch.al_amount),
        "allocation_date": _dates(ch.al_day),
    })
    ids.allocation += na

    nr = len(ch.run_inv)
    runs = _frame({
        "run_id": _ints(ids.run + np.arange(nr)),
        "entry_id": _ints(inv_id[ch.run_inv]),
        "customer_id": c.ids.take(pa.array(ch.g[ch.run_inv])),
        "config_id": _ints(config_ids[c.cfg[ch.g[ch.run_inv]]]),
        "config_version": _ints(np.ones(nr)),
        "stage_no": _ints(ch.run_stage + 1),
        "run_date": _dates(ch.run_day),
        "outcome": _vocab(("sent", "failed"), ch.run_failed.astype(np.int64)),
    })
    ids.run += nr

    a = ch.acts
    inv = a["inv"]
    no_inv = inv < 0
    doc = inv_docs.take(pa.array(np.where(no_inv, 0, inv), mask=no_inv))
    subject = _vocab(SUBJECTS, a["subject"])
    activities = _frame({
        "customer_id": c.ids.take(pa.array(a["cust"])),
        "entry_id": _ints(np.where(no_inv, 0, inv_id[np.maximum(inv, 0)]), no_inv),
        "kind": _vocab(ACTIVITY_KINDS, a["kind"]),
        "occurred_at": _stamps(a["sec"]),
        "author": _vocab(USERNAMES, a["author"]),
        "department": _vocab(DEPARTMENTS, a["dept"]),
        "subject": pc.coalesce(pc.binary_join_element_wise(subject, doc, " "), subject),
        "body": _vocab(BODIES, a["body"]),
        "outcome": _vocab(OUTCOMES, a["outcome"]),
        "amount": _money(a["amount"], a["amount"] < 0),
        "due_date": _dates(a["due"], a["due"] < 0),
        "status": _vocab(STATUSES, a["status"]),
        "reason": _vocab(DISPUTE_REASONS, a["reason"]),
        "assignee": _vocab(USERNAMES, a["assignee"]),
        "target": _vocab(TARGETS, a["target"]),
        "resolved_at": _stamps(a["resolved"], a["resolved"] < 0),
    })
    return {"ledger_entries": ledger, "allocations": allocations, "dunning_runs": runs, "activities": activities}


def _ascii(text: pd.Series) -> pd.Series:
    """Lower-case a-z/0-9 only ('Müller & Co.' -> 'mullerco'), for email addresses."""
    plain = text.str.normalize("NFKD").str.encode("ascii", "ignore").str.decode("ascii")
    return plain.str.lower().str.replace(r"[^a-z0-9]+", "", regex=True)


def _customer_frames(c: _Customers, seed: int, config_ids: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The customers (with their final status) and 1-3 contacts each, the AP contact first."""
    rng = np.random.default_rng([seed, 3])
    n = len(c)
    changed = c.status != 0
    customers = _frame({
        "customer_id": c.ids,
        "name": pa.array(c.names, pa.string()),
        "segment": _vocab(SEGMENTS, c.seg),
        "country": _vocab(COUNTRIES, c.country),
        "currency": _vocab(CURRENCIES, c.cur),
        "payment_terms_days": _ints(c.terms),
        "credit_limit": _money(c.credit_limit),
        "status": _vocab(CUSTOMER_STATUSES, c.status),
        "collector": _vocab(USERNAMES, c.collector),
        "sales_rep": _vocab(USERNAMES, len(COLLECTORS) + c.sales),
        "dunning_config_id": _ints(config_ids[c.cfg]),
        "created_at": _stamps(c.created_s),
        "updated_at": _stamps(c.status_day * 86400 + 17 * 3600, ~changed),
    })
    per = rng.choice([1, 2, 3], n, p=[0.45, 0.35, 0.20])
    ci = np.repeat(np.arange(n), per)
    m = len(ci)
    rank = np.arange(m) - np.repeat(np.cumsum(per) - per, per)
    other = np.where(c.seg[ci] == 2, rng.integers(1, 4, m), rng.integers(1, 3, m))  # owners: small business
    role = np.where(rank == 0, 0, other)
    first = pd.Series(np.array(_FIRST_NAMES)[rng.integers(0, len(_FIRST_NAMES), m)])
    last = pd.Series(np.array(_LAST_NAMES)[rng.integers(0, len(_LAST_NAMES), m)])
    company = pd.Series(c.names[ci]).str.replace(_LEGAL_FORM_AT_END, "", regex=True)
    domain = _ascii(company).str[:30] + np.array(_TLDS)[c.country[ci]]
    email = _ascii(first) + "." + _ascii(last) + "@" + domain
    no_email = (rank == 0) & ~c.has_email[ci]  # no usable AP address: the worklist flags these
    phone = (pd.Series(np.array(_PHONE_CODES)[c.country[ci]]) + " " + rng.integers(200, 999, m).astype(str)
             + " " + rng.integers(1_000_000, 9_999_999, m).astype(str))
    contacts = _frame({
        "customer_id": c.ids.take(pa.array(ci)),
        "name": pa.array((first + " " + last).to_numpy(dtype=object), pa.string()),
        "email": pa.array(email.to_numpy(dtype=object), pa.string(), mask=no_email),
        "phone": pa.array(phone.to_numpy(dtype=object), pa.string()),
        "role": _vocab(CONTACT_ROLES, role),
        "preferred_channel": _vocab(("email", "phone"), (no_email | (rng.random(m) < 0.1)).astype(np.int64)),
        "is_primary": pa.array(rank == 0),
        "active": pa.array(np.ones(m, bool)),
    })
    return customers, contacts


def _fx_rates(seed: int, cal: _Calendar) -> pd.DataFrame:
    """Daily USD rates per currency unit: a seeded random walk (USD is 1)."""
    rng = np.random.default_rng([seed, 2])
    days = np.arange(cal.start, cal.end + 1)
    frames = [pd.DataFrame({"rate_date": days.astype("datetime64[D]"), "currency": "USD", "rate": 1.0})]
    for cur, start in FX_START.items():
        walk = start * np.exp(np.cumsum(rng.normal(0.0, 0.004, len(days))))
        frames.append(pd.DataFrame({"rate_date": days.astype("datetime64[D]"), "currency": cur,
                                    "rate": np.round(walk, 6)}))
    return pd.concat(frames, ignore_index=True)


def _users(created: datetime) -> pd.DataFrame:
    rows = [(u, name, "collector", "collections") for u, name, _ in COLLECTORS]
    rows += [(u, name, "sales", "sales") for u, name in SALES_REPS]
    return pd.DataFrame({
        "username": [r[0] for r in rows],
        "name": [r[1] for r in rows],
        "email": [f"{r[0]}@ardesk.example" for r in rows],
        "role": [r[2] for r in rows],
        "team": [r[3] for r in rows],
        "password_hash": pd.Series([None] * len(rows), dtype=object),
        "created_at": [created] * len(rows),
    })


def _insert_dunning_configs(conn: sa.Connection, created: datetime) -> np.ndarray:
    """The configurations (version 1) with ids from their sequence; returns the ids in config order."""
    seq = sa.Sequence("dunning_config_id_seq")
    ids = np.array([conn.execute(sa.select(seq.next_value())).fetchall()[0][0] for _ in DUNNING_CONFIGS],
                   dtype=np.int64)
    bulk_insert(conn, "dunning_configs", pd.DataFrame({
        "config_id": ids,
        "version": 1,
        "name": [cfg.name for cfg in DUNNING_CONFIGS],
        "segment": pd.Series([cfg.segment for cfg in DUNNING_CONFIGS], dtype=object),
        "grace_days": [cfg.grace_days for cfg in DUNNING_CONFIGS],
        "active": True,
        "description": [cfg.description for cfg in DUNNING_CONFIGS],
        "created_at": created,
        "created_by": "system",
    }))
    stages = [(ids[i], s + 1, st) for i, cfg in enumerate(DUNNING_CONFIGS) for s, st in enumerate(cfg.stages)]
    bulk_insert(conn, "dunning_stages", pd.DataFrame({
        "config_id": [r[0] for r in stages],
        "version": 1,
        "stage_no": [r[1] for r in stages],
        "name": [r[2].name for r in stages],
        "day_offset": [r[2].day_offset for r in stages],
        "channel": [r[2].channel for r in stages],
        "template": [r[2].template for r in stages],
        "mode": [r[2].mode for r in stages],
    }))
    return ids


def _clear(conn: sa.Connection) -> None:
    """Delete every data row, and the demo's own collectors and sales reps (other users stay)."""
    for table in DATA_TABLES:
        conn.execute(sa.text(f"DELETE FROM {table}"))  # noqa: S608 - our own table names
    for sequence in (ENTRY_IDS, ALLOCATION_IDS, DUNNING_RUN_IDS):
        restart_ids(conn, sequence)
    conn.execute(
        sa.text("DELETE FROM users WHERE role IN ('collector', 'sales') AND username IN :names")
        .bindparams(sa.bindparam("names", expanding=True)),
        {"names": list(USERNAMES)},
    )


def _count(conn: sa.Connection, table: str) -> int:
    return int(conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).fetchall()[0][0])  # noqa: S608


def _reserve_first_ids(conn: sa.Connection) -> _Counters:
    """The first entry, allocation and run ids of this run, reserved from their sequences.

    The simulation numbers rows from them on as it goes; `_end_reservations` then moves each
    sequence past the last id used, in the same transaction.
    """
    return _Counters(reserve_ids(conn, ENTRY_IDS, 1), reserve_ids(conn, ALLOCATION_IDS, 1),
                     reserve_ids(conn, DUNNING_RUN_IDS, 1))


def _end_reservations(conn: sa.Connection, first: _Counters, ids: _Counters) -> None:
    for sequence, reserved, next_free in ((ENTRY_IDS, first.entry, ids.entry),
                                          (ALLOCATION_IDS, first.allocation, ids.allocation),
                                          (DUNNING_RUN_IDS, first.run, ids.run)):
        if next_free - 1 > reserved:  # the first id itself is already taken from the sequence
            extend_reservation(conn, sequence, next_free - 1)


def _chunks(n: int) -> list[tuple[int, int]]:
    return [(lo, min(lo + CUSTOMERS_PER_CHUNK, n)) for lo in range(0, n, CUSTOMERS_PER_CHUNK)]


@dataclass
class _Prepared:
    customers_done: int
    frames: dict[str, pd.DataFrame]
    by_type: dict[str, int]
    stats: dict[str, np.ndarray]


def _prepare_chunks(c: _Customers, cal: _Calendar, fx_end: np.ndarray, entries: int, seed: int,
                    ids: _Counters, config_ids: np.ndarray, summary: DemoSummary) -> Iterator[_Prepared]:
    """Simulate the chunks in order, each sized to its share of the entries still to make.

    A chunk further than ENTRY_TOLERANCE from its target is drawn again (with its own seed) at the
    entries-per-invoice ratio it showed; later chunks use the ratio measured so far.
    """
    ratio = 1.9  # entries per invoice, a first guess
    produced = invoices = 0
    remaining_weight = c.intensity.sum()
    for k, (lo, hi) in enumerate(_chunks(len(c))):
        weight = c.intensity[lo:hi].sum()
        target = (entries - produced) * weight / remaining_weight
        for attempt in range(3):
            rng = np.random.default_rng([seed, 1, k, attempt])
            chunk = _simulate(c, lo, hi, max(round(target / ratio), 1), rng, cal, fx_end)
            if abs(chunk.entries - target) <= ENTRY_TOLERANCE * target or attempt == 2:
                break
            ratio = chunk.entries / len(chunk.g)
            summary.redraws += 1
        produced += chunk.entries
        invoices += len(chunk.g)
        ratio = produced / invoices
        remaining_weight -= weight
        by_type = {"invoice": len(chunk.g), "payment": len(chunk.pay_g), "credit_note": len(chunk.cn_inv),
                   "write_off": len(chunk.wo_g)}
        yield _Prepared(hi, _chunk_frames(chunk, c, ids, config_ids), by_type, chunk.stats)


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def _in_background(items: Iterator[T], depth: int = 1) -> Iterator[T]:
    """Iterate `items` in a worker thread, at most `depth` items ahead of the consumer.

    An error in the worker is raised in the consumer; a consumer that stops early (or fails)
    stops the worker and waits for it, so nothing runs on after the transaction ends.
    """
    out: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(done)
        except BaseException as exc:  # handed to the consumer, raised there
            put(_Failed(exc))

    worker = threading.Thread(target=work, name="demo-generator", daemon=True)
    worker.start()
    try:
        while True:
            item = out.get()
            if item is done:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        stop.set()
        worker.join()


def generate_demo(store: Store, entries: int = 200_000, seed: int = 42, end_date: date = date(2026, 10, 31),
                  replace: bool = False, progress: Progress | None = None, *,
                  actor: str = "system") -> DemoSummary:
    """Fill the store with `entries` (±2%) ledger entries of demo history ending on `end_date`.

    Refuses a store that already has ledger entries or customers (`StoreNotEmpty`) unless
    `replace`, which first deletes all data rows. One transaction: all or nothing.
    """
    if entries < 1:
        raise ValueError("entries must be at least 1")
    t0 = time.perf_counter()
    started = datetime.now().replace(microsecond=0)
    set_up = datetime.combine(end_date - timedelta(days=HISTORY_DAYS + 30), datetime.min.time()).replace(hour=9)
    say = progress or (lambda _message: None)
    cal = _Calendar.build(end_date)
    c = _make_customers(entries, seed, cal)
    fx = _fx_rates(seed, cal)
    fx_end = np.array([1.0] + [fx.loc[fx.currency == cur, "rate"].iloc[-1] for cur in CURRENCIES[1:]])
    summary = DemoSummary(entries_target=entries, seed=seed, start_date=_to_date(cal.start), end_date=end_date)
    counts: dict[str, int] = dict.fromkeys(
        ("users", "customers", "contacts", "ledger_entries", "allocations", "dunning_configs", "dunning_stages",
         "dunning_runs", "activities", "fx_rates"), 0)
    by_type = dict.fromkeys(("invoice", "payment", "credit_note", "write_off"), 0)
    stats: dict[str, np.ndarray] = {}

    with store.write() as conn:
        existing = _count(conn, "ledger_entries"), _count(conn, "customers")
        if any(existing) and not replace:
            raise StoreNotEmpty(*existing)
        if replace:
            say(f"Deleting the existing data ({existing[0]:,} entries, {existing[1]:,} customers)")
            _clear(conn)
        # Users and FX rates may outlive a cleared ledger: add only what is missing.
        users = _users(set_up)
        have = read_df(conn, "SELECT username FROM users")["username"]
        counts["users"] = bulk_insert(conn, "users", users[~users.username.isin(have)])
        known = read_df(conn, "SELECT rate_date, currency FROM fx_rates")
        if len(known):
            fx_key = fx.rate_date.astype("datetime64[ns]").astype(str) + fx.currency
            known_key = pd.to_datetime(known.rate_date).astype("datetime64[ns]").astype(str) + known.currency
            counts["fx_rates"] = bulk_insert(conn, "fx_rates", fx[~fx_key.isin(known_key)])
        else:
            counts["fx_rates"] = bulk_insert(conn, "fx_rates", fx)
        config_ids = _insert_dunning_configs(conn, set_up)
        counts["dunning_configs"] = len(DUNNING_CONFIGS)
        counts["dunning_stages"] = sum(len(cfg.stages) for cfg in DUNNING_CONFIGS)

        ids = _reserve_first_ids(conn)
        first = _Counters(ids.entry, ids.allocation, ids.run)
        # The next chunk is simulated in a worker thread while this one is inserted (2 cores).
        prepared = _prepare_chunks(c, cal, fx_end, entries, seed, ids, config_ids, summary)
        for chunk in _in_background(prepared):
            for table, frame in chunk.frames.items():
                counts[table] += bulk_insert(conn, table, frame)
            for key, n in chunk.by_type.items():
                by_type[key] += n
            for key, value in chunk.stats.items():
                stats[key] = stats.get(key, 0) + value
            say(f"Customers {chunk.customers_done:,}/{len(c):,} · {counts['ledger_entries']:,} entries · "
                f"{time.perf_counter() - t0:.1f} s")
        _end_reservations(conn, first, ids)

        customers, contacts = _customer_frames(c, seed, config_ids)
        counts["customers"] = bulk_insert(conn, "customers", customers)
        counts["contacts"] = bulk_insert(conn, "contacts", contacts)
        say("Dunning stage results")
        refresh_stage_results(conn)
        dates = read_df(conn, (
            "SELECT (SELECT MIN(posting_date) FROM ledger_entries) AS l0, (SELECT MAX(posting_date) FROM ledger_entries) AS l1,"
            " (SELECT MIN(run_date) FROM dunning_runs) AS r0, (SELECT MAX(run_date) FROM dunning_runs) AS r1,"
            " (SELECT MIN(occurred_at) FROM activities) AS a0, (SELECT MAX(occurred_at) FROM activities) AS a1"))
        summary.seconds = time.perf_counter() - t0
        summary.counts, summary.entries_by_type, summary.chunks = counts, by_type, len(_chunks(len(c)))
        _fill_summary(summary, c, stats, dates.iloc[0])
        finished = datetime.now().replace(microsecond=0)
        params = f"entries={entries}, seed={seed}, end_date={end_date.isoformat()}, replace={replace}"
        bulk_insert(conn, "import_runs", pd.DataFrame({
            "kind": ["demo"], "dataset": ["all"], "source": [f"generate_demo({params})"], "actor": [actor],
            "started_at": [started], "finished_at": [finished], "status": ["ok"], "rows_read": [0],
            "rows_inserted": [sum(counts.values())], "customers_created": [counts["customers"]],
        }))
        bulk_insert(conn, "audit_log", pd.DataFrame({
            "logged_at": [finished], "actor": [actor], "action": ["demo.generate"], "entity": ["store"],
            "entity_id": [store.path or SOURCE],
            "new_values": [json.dumps({"counts": counts, "entries_by_type": by_type, "seed": seed,
                                       "entries_target": entries, "end_date": end_date.isoformat()})],
            "detail": [f"Demo data generated in {summary.seconds:.1f} s ({params})"],
        }))
    summary.seconds = time.perf_counter() - t0
    return summary


def _fill_summary(s: DemoSummary, c: _Customers, stats: dict[str, np.ndarray], dates: pd.Series) -> None:
    def as_date(value: object) -> date:
        return pd.Timestamp(value).date()

    s.date_ranges = {
        "ledger_entries": (as_date(dates.l0), as_date(dates.l1)),
        "dunning_runs": (as_date(dates.r0), as_date(dates.r1)),
        "activities": (as_date(dates.a0), as_date(dates.a1)),
    }
    s.customers_by_segment = {seg: int((c.seg == i).sum()) for i, seg in enumerate(SEGMENTS)}
    s.customers_by_status = {st: int((c.status == i).sum()) for i, st in enumerate(CUSTOMER_STATUSES)
                             if (c.status == i).any()}
    s.customers_by_behaviour = {b: int((c.beh == i).sum()) for i, b in enumerate(BEHAVIOURS)}
    due, late = stats["seg_due"], stats["seg_late"]
    s.late_rate_by_segment = {seg: float(late[i] / due[i]) if due[i] else 0.0 for i, seg in enumerate(SEGMENTS)}
    paid_late, days = stats["seg_paid_late"], stats["seg_days_late"]
    s.avg_days_late_by_segment = {seg: float(days[i] / paid_late[i]) if paid_late[i] else 0.0
                                  for i, seg in enumerate(SEGMENTS)}
    bdue, blate = stats["beh_due"], stats["beh_late"]
    s.late_rate_by_behaviour = {b: float(blate[i] / bdue[i]) if bdue[i] else 0.0 for i, b in enumerate(BEHAVIOURS)}
    buckets = ("current", "1-30", "31-60", "61-90", "91-120", "120+")
    s.open_ar_usd_by_bucket = {b: round(float(v) / 100, 2) for b, v in zip(buckets, stats["open_usd"], strict=True)}


def demo_summary_table(summary: DemoSummary) -> str:
    """Plain text for the CLI: rows per table, date ranges, late-payment rates per segment, open AR."""
    s = summary
    lines = [
        f"Demo data: {s.entries:,} ledger entries (target {s.entries_target:,}), seed {s.seed}, "
        f"{s.start_date} to {s.end_date}, {s.seconds:.1f} s",
        "",
        "Rows written",
    ]
    lines += [f"  {table:<16} {rows:>12,}" for table, rows in s.counts.items()]
    lines += ["", "Ledger entries by type"]
    lines += [f"  {kind:<16} {rows:>12,}" for kind, rows in s.entries_by_type.items()]
    lines += ["", "Date ranges"]
    lines += [f"  {table:<16} {lo} to {hi}" for table, (lo, hi) in s.date_ranges.items()]
    lines += ["", f"  {'segment':<16} {'customers':>10} {'late rate':>10} {'avg days late':>14}"]
    lines += [
        f"  {seg:<16} {s.customers_by_segment.get(seg, 0):>10,} {s.late_rate_by_segment.get(seg, 0):>10.1%} "
        f"{s.avg_days_late_by_segment.get(seg, 0):>14.1f}"
        for seg in SEGMENTS
    ]
    lines += ["", "Customer status"]
    lines += [f"  {st:<16} {n:>12,}" for st, n in s.customers_by_status.items()]
    lines += ["", f"Open AR at {s.end_date} (USD) by days past due"]
    lines += [f"  {bucket:<16} {amount:>16,.2f}" for bucket, amount in s.open_ar_usd_by_bucket.items()]
    lines.append("")
    lines.append("Late rate: invoices due by the end date that were not settled on their due date (or are still open).")
    return "\n".join(lines)
