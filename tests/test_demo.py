"""Demo data: the ledger invariants, determinism, refusal/replace, and the designed behaviour."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from analytics.demo import persistence
from analytics.demo.customers import payment_behaviour
from analytics.demo.experiment_truth import true_effect
from analytics.demo.parameters import SEGMENTS
from analytics.demo.persistence import StoreNotEmpty, generate_demo
from analytics.demo.summary import DemoSummary, demo_summary_table
from analytics.experiments.assignment import arms, buckets
from analytics.migrations import connect
from analytics.store.connection import Store

END = date(2026, 10, 31)
START = END - timedelta(days=730)
ENTRIES = 20_000
SEED = 11


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, DemoSummary]:
    store = connect(str(tmp_path_factory.mktemp("demo") / "t.duckdb"))
    summary = generate_demo(store, entries=ENTRIES, seed=SEED, end_date=END)
    yield store, summary
    store.close()


@pytest.fixture(scope="module")
def s(generated: tuple[Store, DemoSummary]) -> Store:
    return generated[0]


def one(store: Store, sql: str) -> object:
    return store.read(sql).iloc[0, 0]


def ledger_hash(store: Store) -> str:
    frames = [store.read(f"SELECT * EXCLUDE ({key}) FROM {table} ORDER BY {key}")
              for table, key in (("ledger_entries", "entry_id"), ("allocations", "allocation_id"))]
    return hashlib.sha256("".join(f.to_csv(index=False) for f in frames).encode()).hexdigest()


# --- size and shape ------------------------------------------------------------------------------


def test_entry_count_lands_within_two_percent(generated: tuple[Store, DemoSummary]) -> None:
    store, summary = generated
    n = one(store, "SELECT COUNT(*) FROM ledger_entries")
    assert n == summary.entries == summary.counts["ledger_entries"]
    assert abs(n - ENTRIES) <= 0.02 * ENTRIES
    assert summary.entries_by_type["invoice"] + summary.entries_by_type["payment"] > 0.95 * n


def test_customers_cover_every_segment_in_the_designed_shares(s: Store) -> None:
    by_segment = s.read("SELECT segment, COUNT(*) AS n FROM customers GROUP BY 1").set_index("segment").n
    assert set(by_segment.index) == set(SEGMENTS)
    assert by_segment.to_dict() == {"enterprise": 10, "mid-market": 40, "small business": 130, "public sector": 20}
    assert one(s, "SELECT COUNT(*) FROM customers WHERE NOT regexp_full_match(customer_id, 'C[0-9]{6}')") == 0
    assert one(s, "SELECT COUNT(DISTINCT name) = COUNT(*) FROM customers")
    mismatched = one(s, """SELECT COUNT(*) FROM customers WHERE NOT (
        (currency = 'USD' AND country = 'US') OR (currency = 'EUR' AND country IN ('DE', 'FR', 'NL'))
        OR (currency = 'GBP' AND country = 'GB') OR (currency = 'CAD' AND country = 'CA'))""")
    assert mismatched == 0
    terms = s.read("SELECT segment, MODE(payment_terms_days) AS t FROM customers GROUP BY 1").set_index("segment").t
    assert terms.to_dict() == {"enterprise": 60, "mid-market": 45, "small business": 30, "public sector": 60}


def test_posting_dates_span_two_years_up_to_the_end_date(s: Store) -> None:
    lo, hi = s.read("SELECT MIN(posting_date), MAX(posting_date) FROM ledger_entries").iloc[0]
    assert lo.date() >= START and hi.date() <= END
    assert (hi.date() - lo.date()).days >= 700
    assert one(s, "SELECT MAX(run_date) FROM dunning_runs").date() <= END
    assert one(s, "SELECT MAX(occurred_at) FROM activities") < datetime.combine(END + timedelta(days=1), datetime.min.time())


# --- ledger invariants -----------------------------------------------------------------------------


def test_entries_are_signed_numbered_and_in_the_customers_currency(s: Store) -> None:
    bad = s.read("""
        SELECT
          COUNT(*) FILTER (WHERE entry_type = 'invoice' AND amount <= 0) AS bad_invoice_sign,
          COUNT(*) FILTER (WHERE entry_type <> 'invoice' AND amount >= 0) AS bad_credit_sign,
          COUNT(*) FILTER (WHERE entry_type = 'invoice' AND due_date <> posting_date + c.payment_terms_days) AS bad_due,
          COUNT(*) FILTER (WHERE entry_type <> 'invoice' AND due_date IS NOT NULL) AS due_on_credit,
          COUNT(*) FILTER (WHERE e.currency <> c.currency) AS bad_currency,
          COUNT(*) FILTER (WHERE c.customer_id IS NULL) AS unknown_customer,
          COUNT(*) FILTER (WHERE NOT regexp_full_match(document_number,
              CASE entry_type WHEN 'invoice' THEN 'INV' WHEN 'payment' THEN 'PAY'
                              WHEN 'credit_note' THEN 'CN' ELSE 'WO' END || '-[0-9]{7,}')) AS bad_number
        FROM ledger_entries e LEFT JOIN customers c USING (customer_id)""").iloc[0]
    assert bad.to_dict() == dict.fromkeys(bad.index, 0)
    assert one(s, "SELECT COUNT(*) - COUNT(DISTINCT (entry_type, document_number)) FROM ledger_entries") == 0
    assert set(s.read("SELECT DISTINCT entry_type FROM ledger_entries").entry_type) == {
        "invoice", "payment", "credit_note", "write_off"}
    assert str(one(s, "SELECT typeof(amount) FROM ledger_entries LIMIT 1")) == "DECIMAL(18,2)"


def test_allocations_never_exceed_either_side_nor_precede_it(s: Store) -> None:
    bad = s.read("""
        WITH a AS (
          SELECT a.*, f.entry_type AS from_type, f.posting_date AS from_date, f.customer_id AS from_customer,
                 t.entry_type AS to_type, t.posting_date AS to_date, t.customer_id AS to_customer
          FROM allocations a JOIN ledger_entries f ON f.entry_id = a.from_entry_id
                             JOIN ledger_entries t ON t.entry_id = a.to_entry_id)
        SELECT
          COUNT(*) FILTER (WHERE amount <= 0) AS not_positive,
          COUNT(*) FILTER (WHERE to_type <> 'invoice' OR from_type NOT IN ('payment', 'credit_note', 'write_off')) AS wrong_types,
          COUNT(*) FILTER (WHERE allocation_date <> from_date) AS not_on_credit_date,
          COUNT(*) FILTER (WHERE allocation_date < to_date OR allocation_date < from_date) AS too_early,
          COUNT(*) FILTER (WHERE customer_id <> from_customer OR customer_id <> to_customer) AS wrong_customer,
          COUNT(*) FILTER (WHERE allocation_date > DATE '2026-10-31') AS after_end
        FROM a""").iloc[0]
    assert bad.to_dict() == dict.fromkeys(bad.index, 0)
    assert one(s, "SELECT COUNT(*) FROM allocations") == one(s, "SELECT COUNT(*) FROM allocations a JOIN ledger_entries f ON f.entry_id = a.from_entry_id")
    over_invoice = one(s, """SELECT COUNT(*) FROM (SELECT to_entry_id, SUM(a.amount) AS s, ANY_VALUE(e.amount) AS amount
        FROM allocations a JOIN ledger_entries e ON e.entry_id = a.to_entry_id GROUP BY 1) WHERE s > amount""")
    over_credit = one(s, """SELECT COUNT(*) FROM (SELECT from_entry_id, SUM(a.amount) AS s, ANY_VALUE(-e.amount) AS amount
        FROM allocations a JOIN ledger_entries e ON e.entry_id = a.from_entry_id GROUP BY 1) WHERE s > amount""")
    assert (over_invoice, over_credit) == (0, 0)


def test_payments_partial_grouped_and_unapplied(s: Store) -> None:
    p = s.read("""
        WITH p AS (SELECT e.entry_id, -e.amount AS amount, COUNT(a.allocation_id) AS n, COALESCE(SUM(a.amount), 0) AS used
                   FROM ledger_entries e LEFT JOIN allocations a ON a.from_entry_id = e.entry_id
                   WHERE entry_type = 'payment' GROUP BY ALL)
        SELECT COUNT(*) AS payments, AVG((n > 1)::INT) AS several_invoices, AVG((amount > used)::INT) AS unapplied,
               AVG((n = 0)::INT) AS on_account FROM p""").iloc[0]
    assert 0.02 < p.several_invoices < 0.25  # weekly payment runs of enterprise and public customers
    assert 0.005 < p.unapplied < 0.04
    assert p.on_account > 0
    invoices = one(s, "SELECT COUNT(*) FROM ledger_entries WHERE entry_type = 'invoice'")
    two_payments = one(s, """SELECT COUNT(*) FROM (SELECT to_entry_id FROM allocations a JOIN ledger_entries p
        ON p.entry_id = a.from_entry_id WHERE p.entry_type = 'payment' GROUP BY 1 HAVING COUNT(*) > 1)""")
    assert 0.05 < two_payments / invoices < 0.15
    cn = s.read("""SELECT COUNT(*) AS n, AVG((a.from_entry_id IS NULL)::INT) AS unapplied
        FROM ledger_entries e LEFT JOIN (SELECT DISTINCT from_entry_id FROM allocations) a ON a.from_entry_id = e.entry_id
        WHERE entry_type = 'credit_note'""").iloc[0]
    assert 0.02 < cn.n / invoices < 0.06
    assert 0.02 < cn.unapplied < 0.2


def test_write_offs_clear_defaulted_customers_old_invoices(s: Store) -> None:
    wo = s.read("""
        SELECT e.entry_id, -e.amount AS amount, SUM(a.amount) AS allocated, MIN(a.allocation_date - i.due_date) AS min_days
        FROM ledger_entries e JOIN allocations a ON a.from_entry_id = e.entry_id
        JOIN ledger_entries i ON i.entry_id = a.to_entry_id
        WHERE e.entry_type = 'write_off' GROUP BY ALL""")
    assert len(wo) == one(s, "SELECT COUNT(*) FROM ledger_entries WHERE entry_type = 'write_off'") > 0
    assert (wo.amount == wo.allocated).all()
    assert (wo.min_days >= 180).all()
    balances = s.read("""SELECT c.status, SUM(e.amount) AS balance FROM customers c JOIN ledger_entries e USING (customer_id)
        WHERE c.status = 'written_off' GROUP BY c.customer_id, c.status""")
    assert len(balances) and (balances.balance == 0).all()


def test_open_ar_has_a_full_aging_tail(s: Store) -> None:
    open_items = s.read("""
        SELECT DATE '2026-10-31' - e.due_date AS dpd, e.amount - COALESCE(a.s, 0) AS open
        FROM ledger_entries e LEFT JOIN (SELECT to_entry_id, SUM(amount) AS s FROM allocations GROUP BY 1) a
          ON a.to_entry_id = e.entry_id
        WHERE e.entry_type = 'invoice' AND e.amount > COALESCE(a.s, 0)""")
    assert (open_items.dpd <= 0).any() and (open_items.dpd.between(1, 30)).any()
    assert (open_items.dpd > 90).any() and (open_items.dpd > 120).any()
    overdue = open_items.open[open_items.dpd > 0].sum() / open_items.open.sum()
    assert 0.1 < overdue < 0.5


# --- behaviour -------------------------------------------------------------------------------------


def test_late_payment_is_ordered_by_payment_behaviour(s: Store) -> None:
    settled = s.read("""
        SELECT e.customer_id, a.last - e.due_date AS days_after_due
        FROM ledger_entries e JOIN (SELECT to_entry_id, SUM(amount) AS s, MAX(allocation_date) AS last
                                    FROM allocations GROUP BY 1) a ON a.to_entry_id = e.entry_id
        WHERE e.entry_type = 'invoice' AND a.s = e.amount""")
    behaviour = payment_behaviour(ENTRIES, SEED, END)
    settled["behaviour"] = settled.customer_id.map(behaviour)
    by = settled.groupby("behaviour").days_after_due
    mean, late = by.mean(), by.apply(lambda d: (d > 0).mean())
    assert mean["prompt"] < mean["slow"] < mean["chronically late"]
    assert mean["prompt"] <= 0 and 5 <= mean["slow"] <= 20 and 30 <= mean["chronically late"] <= 90
    assert late["prompt"] < 0.25 < 0.8 < late["slow"] and late["chronically late"] > 0.9
    shares = behaviour.value_counts(normalize=True)
    assert 0.35 < shares["prompt"] < 0.55 and shares["defaulting"] > 0.02


def test_defaulters_end_written_off_or_with_agency(s: Store) -> None:
    behaviour = payment_behaviour(ENTRIES, SEED, END)
    status = s.read("SELECT customer_id, status FROM customers").set_index("customer_id").status
    assert set(status[behaviour == "defaulting"]) <= {"written_off", "with_agency"}
    assert set(status[behaviour != "defaulting"]) <= {"active", "in_dispute", "on_hold"}
    assert (status == "active").mean() > 0.85


def test_dunning_configs_differ_and_runs_follow_their_stages(s: Store) -> None:
    stages = s.read("SELECT config_id, stage_no, day_offset, channel FROM dunning_stages ORDER BY 1, 2")
    layouts = {cid: tuple(zip(g.day_offset, g.channel, strict=True)) for cid, g in stages.groupby("config_id")}
    assert len(layouts) >= 3 and len(set(layouts.values())) == len(layouts)
    assert all(list(g.stage_no) == list(range(1, len(g) + 1)) for _, g in stages.groupby("config_id"))
    assert one(s, "SELECT COUNT(*) FROM customers c LEFT JOIN dunning_configs d ON d.config_id = c.dunning_config_id WHERE d.config_id IS NULL") == 0
    # small business keeps Standard as its own policy; its invoices follow the demo experiment's hashed arm
    assert one(s, "SELECT COUNT(DISTINCT dunning_config_id) FROM customers WHERE segment = 'small business'") == 1
    followed = s.read("""
        SELECT DISTINCT x.arm, d.name FROM dunning_runs r JOIN customers c ON c.customer_id = r.customer_id
        LEFT JOIN experiment_assignments x ON x.customer_id = r.customer_id
        JOIN dunning_configs d ON d.config_id = r.config_id WHERE c.segment = 'small business'""")
    assert set(zip(followed.arm, followed.name, strict=True)) == {("champion", "Standard"), ("challenger", "Firm early")}
    bad = s.read("""
        WITH paid AS (SELECT r.run_id, COALESCE(SUM(a.amount), 0) AS paid FROM dunning_runs r
                      LEFT JOIN allocations a ON a.to_entry_id = r.entry_id AND a.allocation_date <= r.run_date GROUP BY 1)
        SELECT
          COUNT(*) FILTER (WHERE st.stage_no IS NULL) AS unknown_stage,
          COUNT(*) FILTER (WHERE r.run_date <> e.due_date + st.day_offset) AS wrong_day,
          COUNT(*) FILTER (WHERE r.run_date > DATE '2026-10-31') AS after_end,
          COUNT(*) FILTER (WHERE p.paid >= e.amount) AS already_settled,
          COUNT(*) FILTER (WHERE r.customer_id <> e.customer_id OR e.entry_type <> 'invoice') AS wrong_invoice,
          COUNT(*) FILTER (WHERE r.outcome NOT IN ('sent', 'failed') OR r.config_version <> 1) AS bad_outcome
        FROM dunning_runs r JOIN ledger_entries e ON e.entry_id = r.entry_id JOIN paid p USING (run_id)
        LEFT JOIN dunning_stages st ON st.config_id = r.config_id AND st.version = r.config_version AND st.stage_no = r.stage_no
        """).iloc[0]
    assert bad.to_dict() == dict.fromkeys(bad.index, 0)
    assert 0 < one(s, "SELECT AVG((outcome = 'failed')::INT) FROM dunning_runs") < 0.1


def test_firm_early_dunning_works_better_than_standard_for_small_business(s: Store) -> None:
    paid_soon = s.read("""
        WITH a AS (SELECT to_entry_id, SUM(amount) AS s, MAX(allocation_date) AS last FROM allocations GROUP BY 1)
        SELECT d.name, AVG((a.s = e.amount AND a.last <= r.run_date + 7)::INT) AS paid_within_7_days
        FROM dunning_runs r JOIN ledger_entries e ON e.entry_id = r.entry_id
        JOIN customers c ON c.customer_id = r.customer_id JOIN dunning_configs d ON d.config_id = r.config_id
        LEFT JOIN a ON a.to_entry_id = r.entry_id
        WHERE c.segment = 'small business' AND r.run_date <= DATE '2026-10-31' - 7 GROUP BY 1""")
    share = paid_soon.set_index("name").paid_within_7_days
    assert share["Firm early"] > share["Standard"] + 0.05


def test_promise_statuses_match_the_payments(s: Store) -> None:
    promises = s.read("""
        SELECT p.status, p.due_date AS promised, p.amount,
               (SELECT SUM(a.amount) FROM allocations a WHERE a.to_entry_id = p.entry_id AND a.allocation_date <= p.due_date) AS by_promise,
               e.amount AS invoice_amount, p.occurred_at, e.customer_id = p.customer_id AS same_customer
        FROM activities p JOIN ledger_entries e ON e.entry_id = p.entry_id WHERE p.kind = 'promise'""")
    assert set(promises.status) == {"kept", "broken", "pending"}
    full = promises.by_promise.fillna(0) >= promises.invoice_amount
    end = pd.Timestamp(END)
    assert full[promises.status == "kept"].all()
    assert (~full[promises.status != "kept"]).all()
    assert (promises.promised[promises.status == "broken"] < end).all()
    assert (promises.promised[promises.status == "pending"] >= end).all()
    assert (promises.promised > promises.occurred_at).all() and promises.same_customer.all()
    assert (promises.amount > 0).all()


def test_activities_are_varied_and_authored_by_the_team(s: Store) -> None:
    kinds = set(s.read("SELECT DISTINCT kind FROM activities").kind)
    assert {"call", "email", "note", "promise", "dispute", "task", "escalation"} <= kinds
    bad = s.read("""
        SELECT
          COUNT(*) FILTER (WHERE u.username IS NULL) AS unknown_author,
          COUNT(*) FILTER (WHERE kind = 'call' AND outcome NOT IN ('reached', 'voicemail', 'no_answer')) AS bad_call,
          COUNT(*) FILTER (WHERE kind = 'dispute' AND (reason IS NULL OR department NOT IN ('sales', 'logistics', 'legal')
                                                       OR a.status NOT IN ('open', 'resolved') OR a.amount <= 0)) AS bad_dispute,
          COUNT(*) FILTER (WHERE kind = 'dispute' AND (a.status = 'resolved') <> (resolved_at IS NOT NULL)) AS bad_resolution,
          COUNT(*) FILTER (WHERE kind = 'escalation' AND target NOT IN ('manager', 'agency')) AS bad_escalation,
          COUNT(*) FILTER (WHERE kind = 'email' AND subject IS NULL) AS email_without_subject,
          COUNT(*) FILTER (WHERE idempotency_key IS NOT NULL) AS keyed,
          COUNT(*) FILTER (WHERE a.entry_id IS NOT NULL AND (e.entry_id IS NULL OR e.customer_id <> a.customer_id)) AS bad_invoice,
          COUNT(*) FILTER (WHERE a.occurred_at::DATE > DATE '2026-10-31') AS after_end
        FROM activities a LEFT JOIN users u ON u.username = a.author
        LEFT JOIN ledger_entries e ON e.entry_id = a.entry_id""").iloc[0]
    assert bad.to_dict() == dict.fromkeys(bad.index, 0)
    assert one(s, "SELECT COUNT(*) FROM activities a JOIN users u ON u.username = a.author WHERE u.role = 'sales' AND a.department = 'sales'") > 0
    assert one(s, "SELECT COUNT(*) FROM activities WHERE kind = 'escalation' AND target = 'agency'") > 0
    # Next activity ids still come from the sequence without colliding.
    assert one(s, "SELECT nextval('activity_id_seq')") > one(s, "SELECT MAX(activity_id) FROM activities")


def test_users_portfolios_and_contacts(s: Store) -> None:
    users = s.read("SELECT username, role, team, password_hash FROM users")
    assert (users.role == "collector").sum() == 6 and (users.role == "sales").sum() == 3
    assert users.password_hash.isna().all()
    portfolio = s.read("SELECT collector, COUNT(*) AS n FROM customers GROUP BY 1").set_index("collector").n
    assert set(portfolio.index) <= set(users.username[users.role == "collector"])
    assert portfolio.max() >= 2 * portfolio.min()
    assert one(s, "SELECT COUNT(*) FROM customers c LEFT JOIN users u ON u.username = c.sales_rep WHERE u.role IS DISTINCT FROM 'sales'") == 0
    contacts = s.read("""SELECT customer_id, COUNT(*) AS n, SUM(is_primary::INT) AS primaries,
        BOOL_AND(NOT is_primary OR role = 'accounts_payable') AS primary_is_ap,
        BOOL_OR(role = 'accounts_payable' AND email IS NULL) AS no_ap_email,
        BOOL_AND(phone IS NOT NULL) AS phones
        FROM contacts GROUP BY 1""")
    assert len(contacts) == one(s, "SELECT COUNT(*) FROM customers")
    assert contacts.n.between(1, 3).all() and (contacts.primaries == 1).all() and contacts.primary_is_ap.all()
    assert contacts.phones.all()
    assert 0 < contacts.no_ap_email.mean() < 0.08


def test_fx_rates_cover_the_period(s: Store) -> None:
    fx = s.read("SELECT currency, COUNT(*) AS days, MIN(rate) AS lo, MAX(rate) AS hi, MIN(rate_date) AS first FROM fx_rates GROUP BY 1").set_index("currency")
    assert set(fx.index) == {"USD", "EUR", "GBP", "CAD"}
    assert (fx.days == 731).all() and fx.loc["USD", "lo"] == fx.loc["USD", "hi"] == 1
    assert 0.5 < fx.loc["CAD", "lo"] and fx.loc["GBP", "hi"] < 2.0


def test_the_run_is_recorded_and_summarised(generated: tuple[Store, DemoSummary]) -> None:
    store, summary = generated
    run = store.read("SELECT * FROM import_runs WHERE kind = 'demo'")
    assert len(run) == 1 and run.status[0] == "ok" and run.rows_inserted[0] == sum(summary.counts.values())
    audit = store.read("SELECT * FROM audit_log WHERE action = 'demo.generate'")
    assert len(audit) == 1 and audit.actor[0] == "system" and audit.entity[0] == "store"
    assert json.loads(audit.new_values[0])["counts"]["ledger_entries"] == summary.entries
    assert set(summary.late_rate_by_segment) == set(SEGMENTS)
    text = demo_summary_table(summary)
    for word in (*SEGMENTS, "late rate", "ledger_entries", "120+", str(END)):
        assert word in text
    for table, n in summary.counts.items():
        assert one(store, f"SELECT COUNT(*) FROM {table}") == n


# --- determinism, refusal, replace, atomicity ------------------------------------------------------


def test_same_seed_gives_the_same_ledger(tmp_path: Path) -> None:
    hashes = []
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        store = connect(str(tmp_path / f"{name}.duckdb"))
        generate_demo(store, entries=5_000, seed=seed, end_date=END)
        hashes.append(ledger_hash(store))
        store.close()
    assert hashes[0] == hashes[1] != hashes[2]


def test_refuses_a_store_with_entries_and_replaces_on_request(tmp_path: Path) -> None:
    store = connect(str(tmp_path / "t.duckdb"))
    first = generate_demo(store, entries=3_000, seed=3, end_date=END)
    before = ledger_hash(store)
    with store.write() as conn:
        conn.exec_driver_sql("INSERT INTO users (username, name, role, created_at) VALUES ('boss', 'Boss', 'admin', now())")
    with pytest.raises(StoreNotEmpty, match=f"{first.entries:,} ledger entries.*--replace"):
        generate_demo(store, entries=3_000, seed=3, end_date=END)
    assert ledger_hash(store) == before
    again = generate_demo(store, entries=3_000, seed=3, end_date=END, replace=True, actor="tester")
    assert again.counts == first.counts | {"users": 11}
    assert ledger_hash(store) == before  # replaced rows reuse the same ids
    assert one(store, "SELECT COUNT(*) FROM users") == 12  # 11 demo users again, and the admin kept
    assert one(store, "SELECT COUNT(*) FROM import_runs WHERE kind = 'demo'") == 2
    assert one(store, "SELECT actor FROM audit_log WHERE action = 'demo.generate' ORDER BY audit_id DESC LIMIT 1") == "tester"
    store.close()


@pytest.mark.parametrize("step", ["chunk_frames", "customer_frames"])  # in the worker thread, then at the end
def test_a_failure_leaves_the_store_as_it_was(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str) -> None:
    store = connect(str(tmp_path / "t.duckdb"))

    def broken(*args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(persistence, step, broken)
    with pytest.raises(RuntimeError, match="boom"):
        generate_demo(store, entries=2_000, seed=1, end_date=END)
    for table in ("ledger_entries", "allocations", "users", "fx_rates", "dunning_configs", "activities", "import_runs"):
        assert one(store, f"SELECT COUNT(*) FROM {table}") == 0
    store.close()


@pytest.fixture(scope="module")
def million(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, DemoSummary]]:
    """One 1M-entry demo store for the module's slow checks."""
    store = connect(str(tmp_path_factory.mktemp("million") / "t.duckdb"))
    yield store, generate_demo(store, entries=1_000_000, seed=42, end_date=END)
    store.close()


@pytest.mark.slow
def test_a_million_entries_keep_the_invariants(million: tuple[Store, DemoSummary]) -> None:
    store, summary = million
    assert abs(summary.entries - 1_000_000) <= 20_000
    over = one(store, """SELECT COUNT(*) FROM (SELECT to_entry_id, SUM(a.amount) AS s, ANY_VALUE(e.amount) AS amount
        FROM allocations a JOIN ledger_entries e ON e.entry_id = a.to_entry_id GROUP BY 1) WHERE s > amount""")
    assert over == 0
    assert one(store, "SELECT COUNT(*) - COUNT(DISTINCT document_number) FROM ledger_entries WHERE entry_type = 'invoice'") == 0


def pandas_monthly_balances(entries: pd.DataFrame, allocations: pd.DataFrame, through: date) -> pd.DataFrame:
    """Oracle (no installments): at each month end M, each debit posted by M owes its amount minus
    its allocations dated by M; summed per M, customer, currency and due-basis bucket (0 = Current,
    then one per aging edge interval, past due days = M - due date), non-zero sums only."""
    from analytics.settings import load_settings

    debits = entries[entries["amount"] > 0].copy()
    debits["due"] = debits["due_date"].fillna(debits["posting_date"])
    debits["first"] = debits["posting_date"] + pd.offsets.MonthEnd(0)
    alloc = allocations.merge(debits[["entry_id", "first"]], left_on="to_entry_id", right_on="entry_id")
    alloc["month"] = (alloc["allocation_date"] + pd.offsets.MonthEnd(0)).clip(lower=alloc["first"])
    per_month = alloc.groupby(["entry_id", "month"], as_index=False)["amount"].sum()
    applied = per_month.groupby("entry_id")["amount"].sum()
    last_month = per_month.groupby("entry_id")["month"].max()
    # open from its posting month until its last allocation's month, or through the end when still open
    settled = (applied.reindex(debits["entry_id"]).fillna(0).to_numpy() >= debits["amount"].to_numpy() - 0.001)
    end = last_month.reindex(debits["entry_id"]).to_numpy()
    debits["last"] = pd.Series(end, index=debits.index).where(settled, pd.Timestamp(through))
    months = ((debits["last"].dt.year - debits["first"].dt.year) * 12
              + debits["last"].dt.month - debits["first"].dt.month + 1).clip(lower=1)
    rows = debits.loc[debits.index.repeat(months)].copy()
    index = rows["first"].dt.year * 12 + rows["first"].dt.month - 1 + rows.groupby(level=0).cumcount()
    rows["month"] = pd.to_datetime(pd.DataFrame({"year": index // 12, "month": index % 12 + 1, "day": 1})) + pd.offsets.MonthEnd(0)
    rows = rows.merge(per_month.rename(columns={"amount": "applied"}), on=["entry_id", "month"], how="left")
    rows["applied"] = rows["applied"].fillna(0.0)
    rows = rows.sort_values(["entry_id", "month"])
    rows["open"] = rows["amount"] - rows.groupby("entry_id")["applied"].cumsum()
    days = (rows["month"] - rows["due"]).dt.days
    edges = [0, *load_settings().aging_edges]
    rows["bucket"] = sum((days > e).astype(int) for e in edges)
    out = rows.groupby(["month", "customer_id", "currency", "bucket"], as_index=False)["open"].sum()
    out = out[out["open"].round(2) != 0]
    return out.sort_values(["month", "customer_id", "currency", "bucket"]).reset_index(drop=True)


@pytest.mark.slow
def test_a_million_entries_monthly_summaries_equal_a_pandas_computation(million: tuple[Store, DemoSummary]) -> None:
    store, _ = million
    assert one(store, "SELECT COUNT(*) FROM invoice_installments") == 0  # the oracle has no schedules
    entries = store.read("SELECT entry_id, customer_id, entry_type, posting_date, due_date, amount, currency "
                         "FROM ledger_entries")
    for column in ("posting_date", "due_date"):
        entries[column] = pd.to_datetime(entries[column])
    entries["amount"] = entries["amount"].astype(float)
    allocations = store.read("SELECT to_entry_id, amount, allocation_date FROM allocations")
    allocations["allocation_date"] = pd.to_datetime(allocations["allocation_date"])
    allocations["amount"] = allocations["amount"].astype(float)
    through = pd.Timestamp(one(store, "SELECT through FROM monthly_summary_state")).date()
    expected = pandas_monthly_balances(entries, allocations, through)
    kept = store.read("SELECT month_end, customer_id, currency, bucket, open_amount FROM monthly_balances "
                      "ORDER BY month_end, customer_id, currency, bucket")
    assert len(kept) == len(expected) > 100_000, (len(kept), len(expected))
    assert (pd.to_datetime(kept["month_end"]).to_numpy() == expected["month"].to_numpy()).all()
    assert (kept["customer_id"].to_numpy() == expected["customer_id"].to_numpy()).all()
    assert (kept["bucket"].astype(int).to_numpy() == expected["bucket"].to_numpy()).all()
    assert (kept["open_amount"].astype(float) - expected["open"]).abs().max() < 0.005

    entries["month"] = entries["posting_date"] + pd.offsets.MonthEnd(0)
    flows = (entries[entries["entry_type"].isin(["invoice", "payment", "write_off"])]
             .pivot_table(index=["month", "customer_id", "currency"], columns="entry_type", values="amount",
                          aggfunc="sum", fill_value=0.0).reset_index())
    kept_flows = store.read("SELECT month_end, customer_id, currency, credit_sales, collections, write_offs "
                            "FROM monthly_flows ORDER BY month_end, customer_id, currency")
    assert len(kept_flows) == len(flows)
    flows = flows.sort_values(["month", "customer_id", "currency"]).reset_index(drop=True)
    assert (kept_flows["customer_id"].to_numpy() == flows["customer_id"].to_numpy()).all()
    for column, source, sign in (("credit_sales", "invoice", 1), ("collections", "payment", -1),
                                 ("write_offs", "write_off", -1)):
        assert (kept_flows[column].astype(float) - sign * flows[source]).abs().max() < 0.005, column


def test_the_demo_experiment_is_stored_as_started_and_every_segment_customer_is_in_an_arm(s: Store) -> None:
    exp = s.read("SELECT * FROM experiments").iloc[0]
    assert (exp.experiment_id, exp.segment, exp.status, exp.challenger_pct, exp.holdout_pct) == (
        1, "small business", "running", 50, 0)
    stored = s.read("SELECT a.customer_id, a.bucket, a.arm, a.assigned_on, c.created_at FROM experiment_assignments a "
                    "JOIN customers c ON c.customer_id = a.customer_id ORDER BY 1")
    assert len(stored) == one(s, "SELECT COUNT(*) FROM customers WHERE segment = 'small business'")
    assert stored.bucket.tolist() == buckets(1, stored.customer_id).tolist()  # as the engine hashes them
    assert stored.arm.tolist() == arms(stored.bucket.to_numpy(), 50, 0).tolist()
    joined = pd.to_datetime(stored.created_at).dt.date.clip(lower=pd.Timestamp(exp.started_on).date())
    assert (pd.to_datetime(stored.assigned_on).dt.date == joined).all()  # the start, or the day they arrived


@pytest.mark.slow
def test_the_demo_experiment_finds_the_true_effect_of_the_generators_counterfactuals() -> None:
    """The README's figures: the default demo's experiment against the same demo generated with the
    whole segment under each arm's policy (three 200k-entry stores)."""
    truth = true_effect(connect)
    c = truth["measured"]["comparison"]
    assert c["difference_low"] <= truth["true_effect"] <= c["difference_high"]
    assert truth["true_effect"] == pytest.approx(0.133, abs=0.0005)  # README: +13.3 points
    assert round(c["difference"], 3) == 0.085 and truth["measured"]["verdict"]["decision"] == "challenger_wins"
