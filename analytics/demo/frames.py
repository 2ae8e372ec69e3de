"""The simulated arrays as rows of the store's tables: numbered entries, allocations, dunning runs and
activities per chunk, then the customers and their contacts, the FX rates and the team.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from analytics.demo.arrays import (
    arrow_frame,
    const_array,
    date_array,
    int_array,
    money_array,
    numbered_array,
    stamp_array,
    vocab_array,
)
from analytics.demo.calendar import Calendar
from analytics.demo.customers import Customers
from analytics.demo.parameters import (
    COLLECTORS,
    COUNTRIES,
    CURRENCIES,
    DEPARTMENT_STAFF,
    FX_START,
    SALES_REPS,
    SEGMENTS,
    USERNAMES,
)
from analytics.demo.simulation import Chunk
from analytics.demo.vocabulary import (
    BODIES,
    CONTACT_ROLES,
    DEPARTMENTS,
    DISPUTE_REASONS,
    FIRST_NAMES,
    LAST_NAMES,
    LEGAL_FORM_AT_END,
    OUTCOMES,
    PHONE_CODES,
    STATUSES,
    SUBJECTS,
    TARGETS,
    TLDS,
)
from analytics.store.schema import ACTIVITY_KINDS, CUSTOMER_STATUSES

SOURCE = "demo"


@dataclass
class Counters:
    """The next entry, allocation and dunning run ids, and the last document number per prefix."""

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


def chunk_frames(ch: Chunk, c: Customers, ids: Counters, config_ids: np.ndarray) -> dict[str, pd.DataFrame]:
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
        return numbered_array(f"{prefix}-", start + 1 + np.arange(count))

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
        vocab_array(("Payment on account",), np.where(ch.pay_on_account, 0, -1)),
        inv_docs.take(pa.array(ch.cn_inv)),
        const_array("Bad debt write-off", nwo),
    ])
    ledger = arrow_frame({
        "entry_id": int_array(np.arange(base, base + total)),
        "customer_id": c.ids.take(pa.array(cust)),
        "entry_type": vocab_array(("invoice", "payment", "credit_note", "write_off"),
                                  np.repeat([0, 1, 2, 3], [n, npay, ncn, nwo])),
        "document_number": pa.concat_arrays([inv_docs, docs("PAY", npay), docs("CN", ncn), docs("WO", nwo)]),
        "posting_date": date_array(np.concatenate([ch.posting, ch.pay_day, ch.cn_day, ch.wo_day])),
        "due_date": date_array(np.concatenate([ch.due, np.zeros(total - n, np.int64)]), ~has_due),
        "amount": money_array(amounts),
        "currency": vocab_array(CURRENCIES, c.cur[cust]),
        "reference": reference,
        "source": const_array(SOURCE, total),
        "settled_on": date_array(settled, settled < 0),
        "open_now": money_array(open_now),
    })

    na = len(ch.al_inv)
    from_id = np.empty(na, dtype=np.int64)
    for kind, credit_ids in enumerate((pay_id, cn_id, wo_id)):
        here = ch.al_kind == kind
        from_id[here] = credit_ids[ch.al_from[here]]
    allocations = arrow_frame({
        "allocation_id": int_array(ids.allocation + np.arange(na)),
        "customer_id": c.ids.take(pa.array(ch.g[ch.al_inv])),
        "from_entry_id": int_array(from_id),
        "to_entry_id": int_array(inv_id[ch.al_inv]),
        "amount": money_array(ch.al_amount),
        "allocation_date": date_array(ch.al_day),
    })
    ids.allocation += na

    nr = len(ch.run_inv)
    runs = arrow_frame({
        "run_id": int_array(ids.run + np.arange(nr)),
        "entry_id": int_array(inv_id[ch.run_inv]),
        "customer_id": c.ids.take(pa.array(ch.g[ch.run_inv])),
        "config_id": int_array(config_ids[c.cfg[ch.g[ch.run_inv]]]),
        "config_version": int_array(np.ones(nr)),
        "stage_no": int_array(ch.run_stage + 1),
        "run_date": date_array(ch.run_day),
        "outcome": vocab_array(("sent", "failed"), ch.run_failed.astype(np.int64)),
    })
    ids.run += nr

    a = ch.acts
    inv = a["inv"]
    no_inv = inv < 0
    doc = inv_docs.take(pa.array(np.where(no_inv, 0, inv), mask=no_inv))
    subject = vocab_array(SUBJECTS, a["subject"])
    activities = arrow_frame({
        "customer_id": c.ids.take(pa.array(a["cust"])),
        "entry_id": int_array(np.where(no_inv, 0, inv_id[np.maximum(inv, 0)]), no_inv),
        "kind": vocab_array(ACTIVITY_KINDS, a["kind"]),
        "occurred_at": stamp_array(a["sec"]),
        "author": vocab_array(USERNAMES, a["author"]),
        "department": vocab_array(DEPARTMENTS, a["dept"]),
        "subject": pc.coalesce(pc.binary_join_element_wise(subject, doc, " "), subject),
        "body": vocab_array(BODIES, a["body"]),
        "outcome": vocab_array(OUTCOMES, a["outcome"]),
        "amount": money_array(a["amount"], a["amount"] < 0),
        "due_date": date_array(a["due"], a["due"] < 0),
        "status": vocab_array(STATUSES, a["status"]),
        "reason": vocab_array(DISPUTE_REASONS, a["reason"]),
        "assignee": vocab_array(USERNAMES, a["assignee"]),
        "target": vocab_array(TARGETS, a["target"]),
        "resolved_at": stamp_array(a["resolved"], a["resolved"] < 0),
    })
    return {"ledger_entries": ledger, "allocations": allocations, "dunning_runs": runs, "activities": activities}


def _ascii(text: pd.Series) -> pd.Series:
    """Lower-case a-z/0-9 only ('Müller & Co.' -> 'mullerco'), for email addresses."""
    plain = text.str.normalize("NFKD").str.encode("ascii", "ignore").str.decode("ascii")
    return plain.str.lower().str.replace(r"[^a-z0-9]+", "", regex=True)


def customer_frames(c: Customers, seed: int, config_ids: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The customers (with their final status) and 1-3 contacts each, the AP contact first."""
    rng = np.random.default_rng([seed, 3])
    n = len(c)
    changed = c.status != 0
    customers = arrow_frame({
        "customer_id": c.ids,
        "name": pa.array(c.names, pa.string()),
        "segment": vocab_array(SEGMENTS, c.seg),
        "country": vocab_array(COUNTRIES, c.country),
        "currency": vocab_array(CURRENCIES, c.cur),
        "payment_terms_days": int_array(c.terms),
        "credit_limit": money_array(c.credit_limit),
        "status": vocab_array(CUSTOMER_STATUSES, c.status),
        "collector": vocab_array(USERNAMES, c.collector),
        "sales_rep": vocab_array(USERNAMES, len(COLLECTORS) + c.sales),
        "dunning_config_id": int_array(config_ids[c.policy]),
        "created_at": stamp_array(c.created_s),
        "updated_at": stamp_array(c.status_day * 86400 + 17 * 3600, ~changed),
    })
    per = rng.choice([1, 2, 3], n, p=[0.45, 0.35, 0.20])
    ci = np.repeat(np.arange(n), per)
    m = len(ci)
    rank = np.arange(m) - np.repeat(np.cumsum(per) - per, per)
    other = np.where(c.seg[ci] == 2, rng.integers(1, 4, m), rng.integers(1, 3, m))  # owners: small business
    role = np.where(rank == 0, 0, other)
    first = pd.Series(np.array(FIRST_NAMES)[rng.integers(0, len(FIRST_NAMES), m)])
    last = pd.Series(np.array(LAST_NAMES)[rng.integers(0, len(LAST_NAMES), m)])
    company = pd.Series(c.names[ci]).str.replace(LEGAL_FORM_AT_END, "", regex=True)
    domain = _ascii(company).str[:30] + np.array(TLDS)[c.country[ci]]
    email = _ascii(first) + "." + _ascii(last) + "@" + domain
    no_email = (rank == 0) & ~c.has_email[ci]  # no usable AP address: the worklist flags these
    phone = (pd.Series(np.array(PHONE_CODES)[c.country[ci]]) + " " + rng.integers(200, 999, m).astype(str)
             + " " + rng.integers(1_000_000, 9_999_999, m).astype(str))
    contacts = arrow_frame({
        "customer_id": c.ids.take(pa.array(ci)),
        "name": pa.array((first + " " + last).to_numpy(dtype=object), pa.string()),
        "email": pa.array(email.to_numpy(dtype=object), pa.string(), mask=no_email),
        "phone": pa.array(phone.to_numpy(dtype=object), pa.string()),
        "role": vocab_array(CONTACT_ROLES, role),
        "preferred_channel": vocab_array(("email", "phone"), (no_email | (rng.random(m) < 0.1)).astype(np.int64)),
        "is_primary": pa.array(rank == 0),
        "active": pa.array(np.ones(m, bool)),
    })
    return customers, contacts


def fx_rates(seed: int, cal: Calendar) -> pd.DataFrame:
    """Daily USD rates per currency unit: a seeded random walk (USD is 1)."""
    rng = np.random.default_rng([seed, 2])
    days = np.arange(cal.start, cal.end + 1)
    frames = [pd.DataFrame({"rate_date": days.astype("datetime64[D]"), "currency": "USD", "rate": 1.0})]
    for cur, start in FX_START.items():
        walk = start * np.exp(np.cumsum(rng.normal(0.0, 0.004, len(days))))
        frames.append(pd.DataFrame({"rate_date": days.astype("datetime64[D]"), "currency": cur,
                                    "rate": np.round(walk, 6)}))
    return pd.concat(frames, ignore_index=True)


def demo_users(created: datetime) -> pd.DataFrame:
    rows = [(u, name, "collector", "collections") for u, name, _ in COLLECTORS]
    rows += [(u, name, "sales", "sales") for u, name in SALES_REPS]
    rows += [(u, name, "department", team) for u, name, team in DEPARTMENT_STAFF]
    return pd.DataFrame({
        "username": [r[0] for r in rows],
        "name": [r[1] for r in rows],
        "email": [f"{r[0]}@ardesk.example" for r in rows],
        "role": [r[2] for r in rows],
        "team": [r[3] for r in rows],
        "password_hash": pd.Series([None] * len(rows), dtype=object),
        "created_at": [created] * len(rows),
    })
