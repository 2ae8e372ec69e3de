"""The simulation of one chunk of customers: invoices, their settlement, dunning runs and collector work.

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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analytics.demo.arrays import NEVER, business_day, business_day_within, concat_parts, weekday_of
from analytics.demo.calendar import Calendar
from analytics.demo.customers import Customers
from analytics.demo.parameters import (
    AMOUNT_SIGMA,
    CALL_STAGE,
    CHRONIC,
    COLLECTORS,
    CREDIT_NOTE_RATE,
    CREDIT_NOTE_UNAPPLIED,
    DEFAULTING,
    DISPUTE_RATE,
    DUNNING_RESPONSE,
    EFFORT,
    ESCALATION_STAGE,
    MAX_STAGES,
    ON_ACCOUNT_RATE,
    OVERPAYMENT_RATE,
    PARTIAL_RATE,
    PROMISE_KEPT,
    RUN_FAILURE_RATE,
    STAGE_IS_EMAIL,
    STAGE_OFFSET,
    STAGE_PULL,
)
from analytics.demo.vocabulary import (
    COLLECTOR_NOTES,
    DISPUTE_DEPARTMENT,
    DISPUTE_REASON_SHARES,
    DISPUTE_REASONS,
    KIND,
    SALES_NOTES,
    SUBJ_AGENCY,
    SUBJ_BROKEN,
    SUBJ_CALL,
    SUBJ_DISPUTE,
    SUBJ_EMAIL,
    SUBJ_ESCALATE,
    SUBJ_ESCALATE_INVOICE,
    SUBJ_FIND_EMAIL,
    SUBJ_PROMISE,
)
from analytics.store.schema import CUSTOMER_STATUSES


@dataclass
class Chunk:
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


def simulate(c: Customers, lo: int, hi: int, n_invoices: int, rng: np.random.Generator,
             cal: Calendar, fx_end: np.ndarray) -> Chunk:
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
    opened = business_day(posting, rng.integers(4, 33, n))
    disputed &= opened <= end
    resolved = business_day(opened, rng.integers(5, 55, n))
    pay = np.where(disputed & (pay < NEVER), np.maximum(pay, resolved + rng.integers(1, 11, n)), pay)
    pay = np.where(pay > default_day, NEVER, pay)
    dispute_amount = np.maximum(np.rint(amount * np.where(rng.random(n) < 0.5, 1.0, rng.uniform(0.1, 0.9, n))), 1)
    dispute_amount = dispute_amount.astype(np.int64)

    # Credit notes: a few invoices, and 40% of disputes (dated at the resolution).
    credited = (rng.random(n) < CREDIT_NOTE_RATE) | (disputed & (rng.random(n) < 0.4))
    cn_day = np.where(disputed, resolved, business_day(posting, rng.integers(2, 22, n)))
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
    for s in range(MAX_STAGES):
        t = due + off[:, s]
        hit = movable & (pay > t) & (t <= end) & (rng.random(n) < STAGE_PULL[cfg, s] * response)
        pay = np.where(hit, np.minimum(pay, t + rng.integers(1, 8, n)), pay)

    # Calls at the call stage; a reached contact may promise a date, and some promises are kept.
    # Collectors work the call queue on weekdays, within two business days of the stage.
    t_call = business_day(np.minimum(due + off[rows, CALL_STAGE[cfg]], end + 1), rng.integers(0, 3, n))
    called = (pay > t_call) & (t_call <= end) & (rng.random(n) < EFFORT[col])
    u = rng.random(n)
    call_outcome = np.where(u < 0.45, 0, np.where(u < 0.80, 1, 2))
    promised = called & (call_outcome == 0) & ~disputed & ~cancelled & (rng.random(n) < 0.6)
    promise_day = business_day(t_call, rng.integers(2, 11, n))
    keeps = promised & (pay < NEVER) & (rng.random(n) < PROMISE_KEPT[beh])
    pay = np.where(keeps, np.maximum(t_call + 1, np.minimum(pay, promise_day - rng.integers(0, 3, n))), pay)

    # Money arrives on business days; payment-run customers pay on their weekly run day. An
    # on-time payer moves to the day before (Friday, the previous run) so it stays on time.
    moving = ~cancelled & (pay < NEVER)
    on_time = pay <= due
    weekday = weekday_of(pay)
    weekend = moving & (weekday >= 5)
    friday = pay - (weekday - 4)
    pay = np.where(weekend, np.where(on_time & (friday >= posting), friday, pay + 7 - weekday), pay)
    in_run = moving & c.runs[g]
    next_run = pay + (c.run_weekday[g] - weekday_of(pay)) % 7
    previous_run = next_run - np.where(next_run > pay, 7, 0)
    pay = np.where(in_run, np.where(on_time & (previous_run >= posting), previous_run, next_run), pay)
    pay = np.where(pay > default_day, NEVER, pay)

    # A partly applied credit note is dated no later than the payment that settles the rest.
    cn_day = np.where(cn_applied & ~cancelled & ~disputed, np.minimum(cn_day, pay), cn_day)
    to_pay = amount - np.where(cn_applied, cn_amount, 0)

    # ~10% of invoices are paid in two instalments; the first may arrive while the rest stays open.
    upto = np.minimum(np.minimum(pay, end + 1), posting + 91)
    partial = ~cancelled & (rng.random(n) < PARTIAL_RATE) & (upto > posting) & (to_pay >= 200)
    first_day = business_day_within(rng, posting, upto)
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
    oa_day = business_day_within(rng, c.win_start[oa_g], np.full(k, end + 1))
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
    for s in range(MAX_STAGES):
        t = due + off[:, s]
        hit = np.flatnonzero((settled > t) & (t <= end))
        run_inv.append(hit)
        run_stage.append(np.full(len(hit), s))
        run_day.append(t[hit])
    run_inv_a, run_stage_a, run_day_a = concat_parts(run_inv), concat_parts(run_stage), concat_parts(run_day)
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
    return Chunk(
        g=g, posting=posting, due=due, amount=amount,
        pay_g=np.concatenate([pay_g, oa_g]), pay_day=np.concatenate([pay_day, oa_day]),
        pay_amount=np.concatenate([pay_amount, oa_amount]),
        pay_on_account=np.concatenate([np.zeros(npay, bool), np.ones(k, bool)]),
        cn_inv=cn_inv, cn_day=cn_day[cn_inv], cn_amount=cn_amount[cn_inv],
        wo_g=wo_g, wo_day=c.wo_day[wo_g], wo_amount=wo_amount,
        al_kind=concat_parts([np.zeros(len(it_inv)), np.ones(len(ap)), np.full(len(wi), 2)]),
        al_from=concat_parts([pay_of_item, cn_rank[ap], wo_of_inv]),
        al_inv=concat_parts([it_inv, ap, wi]),
        al_amount=concat_parts([it_amount, cn_amount[ap], wo_inv_amount]),
        al_day=concat_parts([it_day, cn_day[ap], c.wo_day[g[wi]]]),
        run_inv=run_inv_a, run_stage=run_stage_a, run_day=run_day_a, run_failed=run_failed,
        acts=acts, stats=stats,
    )


_ACT_FIELDS = ("cust", "inv", "kind", "sec", "author", "dept", "subject", "body", "outcome", "amount",
               "due", "status", "reason", "assignee", "target", "resolved")


def _activities(c: Customers, lo: int, hi: int, rng: np.random.Generator, cal: Calendar,
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
    follow_up = business_day(promise_day[pi], 1)
    broken = (status == 2) & (rng.random(len(pi)) < 0.3) & (follow_up <= end)
    bi, task_day = pi[broken], follow_up[broken]
    task_due = business_day(task_day, 2)
    task_done = task_due < end - 5
    add(g[bi], task_day, "task", inv=bi, due=task_due, status=np.where(task_done, 5, 3),
        assignee=c.collector[g[bi]], subject=SUBJ_BROKEN,
        resolved=np.where(task_done, task_due * 86400 + 16 * 3600, -1))
    # Personal follow-up emails on invoices three weeks late or more.
    e_day = business_day(due, rng.integers(11, 30, len(g)))
    ei = np.flatnonzero((settled > e_day) & (e_day <= end) & (rng.random(len(g)) < 0.12 * EFFORT[col]))
    add(g[ei], e_day[ei], "email", inv=ei, outcome=3, subject=SUBJ_EMAIL)
    # Escalations to a manager at the escalation stage.
    t_esc = business_day(np.minimum(due + off[np.arange(len(g)), ESCALATION_STAGE[cfg]], end + 1), rng.integers(0, 3, len(g)))
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
    note_day = business_day_within(rng, c.win_start[ni], np.full(len(ni), end + 1))
    by_sales = rng.random(len(ni)) < 0.15
    body = np.where(by_sales, len(COLLECTOR_NOTES) + rng.integers(0, len(SALES_NOTES), len(ni)),
                    rng.integers(0, len(COLLECTOR_NOTES), len(ni)))
    add(ni, note_day, "note", body=body, dept=np.where(by_sales, 1, -1),
        author=np.where(by_sales, len(COLLECTORS) + c.sales[ni], c.collector[ni]))
    # Customers without a usable AP email get a task to find one.
    mi = cust[~c.has_email[cust]]
    task_day = np.minimum(business_day(c.win_start[mi], rng.integers(0, 21, len(mi))), end)
    add(mi, task_day, "task", due=task_day + 7, status=3, assignee=c.collector[mi], subject=SUBJ_FIND_EMAIL)
    # Defaulters: escalated to a manager, then handed to the agency.
    fi = cust[c.beh[cust] == DEFAULTING]
    add(fi, np.minimum(business_day(c.default_day[fi], rng.integers(20, 41, len(fi))), end), "escalation", target=0,
        subject=SUBJ_ESCALATE)
    add(fi, c.agency_day[fi], "escalation", target=1, subject=SUBJ_AGENCY)

    out = {f: concat_parts([p[f] for p in parts]) for f in _ACT_FIELDS}
    order = np.argsort(out["sec"], kind="stable")
    return {f: v[order] for f, v in out.items()}


def _set_statuses(c: Customers, lo: int, hi: int, rng: np.random.Generator, cal: Calendar,
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
