"""Writing the demo into a store.

`generate_demo(store, entries=...)` fills an empty store with customers, contacts, collectors and
sales reps, invoices, payments, credit notes, write-offs, allocations, dunning configurations and
runs, collector activities and FX rates. The same seed and size always give the same data.

Everything is written in ONE transaction through `bulk_insert`, chunk by chunk, so a failure
leaves the store as it was and memory stays bounded by the chunk size. The entry, allocation and
dunning run ids are reserved from their sequences; the next chunk is simulated in a worker thread
while the current one is inserted.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TypeVar

import numpy as np
import pandas as pd
import sqlalchemy as sa

from analytics.demo.arrays import date_of
from analytics.demo.calendar import HISTORY_DAYS, Calendar
from analytics.demo.customers import Customers, make_customers, with_experiment_arms
from analytics.demo.frames import SOURCE, Counters, chunk_frames, customer_frames, demo_users, fx_rates
from analytics.demo.parameters import (
    CURRENCIES,
    DEMO_EXPERIMENT,
    DEPARTMENT_STAFF,
    DUNNING_CONFIGS,
    SEGMENTS,
    USERNAMES,
)
from analytics.demo.simulation import simulate
from analytics.demo.summary import DemoSummary, fill_summary
from analytics.experiments.assignment import arms, buckets
from analytics.ledger.monthly_summaries import refresh_monthly_summaries
from analytics.ledger.stage_results import refresh_stage_results
from analytics.store.connection import Store, bulk_insert, read_df
from analytics.store.ids import extend_reservation, reserve_ids, restart_ids
from analytics.store.schema import ALLOCATION_IDS, DUNNING_RUN_IDS, ENTRY_IDS, EXPERIMENT_IDS

Progress = Callable[[str], None]
T = TypeVar("T")

CUSTOMERS_PER_CHUNK = 5_000
ENTRY_TOLERANCE = 0.01  # a chunk further than this from its share of `entries` is drawn again

DATA_TABLES = (
    "customers", "contacts", "ledger_entries", "allocations", "dunning_configs", "dunning_stages",
    "dunning_runs", "dunning_stage_results", "activities", "fx_rates", "requests", "experiments",
    "experiment_assignments",
)


class StoreNotEmpty(RuntimeError):
    """The store already holds ledger data; the demo only fills an empty store unless replacing."""

    def __init__(self, entries: int, customers: int) -> None:
        self.entries, self.customers = entries, customers
        super().__init__(
            f"The store already holds {entries:,} ledger entries and {customers:,} customers. "
            "The demo only fills an empty store: use --replace to delete the existing data first."
        )


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


def _start_demo_experiment(conn: sa.Connection, c: Customers, cal: Calendar, config_ids: np.ndarray,
                           actor: str, force_arm: str | None) -> tuple[Customers, pd.DataFrame]:
    """`DEMO_EXPERIMENT`, started on the history's first day: its segment's customers hashed into arms
    (`analytics.experiments.assignment`, joining on the later of the start and their creation), and
    the customers whose invoices follow their arm's policy. `force_arm` puts every customer of the
    segment under one arm's policy while the stored arms stay the hashed ones: the counterfactual
    stores `bench/demo_experiment.py` compares to state the experiment's true effect."""
    x = DEMO_EXPERIMENT
    experiment_id = reserve_ids(conn, EXPERIMENT_IDS, 1)
    bulk_insert(conn, "experiments", pd.DataFrame({
        "experiment_id": [experiment_id], "name": [x.name], "segment": [SEGMENTS[x.segment]],
        "champion_config_id": [int(config_ids[x.champion])], "challenger_config_id": [int(config_ids[x.challenger])],
        "challenger_pct": [x.challenger_pct], "holdout_pct": [0], "metric": ["collected_30d"], "looks": [x.looks],
        "planned_days": [HISTORY_DAYS], "started_on": [date_of(cal.start)], "started_by": [actor], "why": [x.why],
        "status": ["running"]}))
    members = np.flatnonzero(c.seg == x.segment)
    ids = c.ids.take(members).to_pylist()
    bucket = buckets(experiment_id, ids)
    arm = arms(bucket, x.challenger_pct, 0)
    joined = np.maximum(c.created_s[members] // 86400, cal.start)
    assignments = pd.DataFrame({"experiment_id": experiment_id, "customer_id": ids, "bucket": bucket,
                                "arm": arm, "assigned_on": pd.to_datetime(joined, unit="D").date})
    challenger = np.zeros(len(c), dtype=bool)
    challenger[members] = (arm == "challenger") if force_arm is None else (force_arm == "challenger")
    return with_experiment_arms(c, challenger), assignments


def _clear(conn: sa.Connection) -> None:
    """Delete every data row, and the demo's own collectors, sales reps and department staff (other users stay)."""
    for table in DATA_TABLES:
        conn.execute(sa.text(f"DELETE FROM {table}"))  # noqa: S608 - our own table names
    for sequence in (ENTRY_IDS, ALLOCATION_IDS, DUNNING_RUN_IDS, EXPERIMENT_IDS):
        restart_ids(conn, sequence)
    conn.execute(
        sa.text("DELETE FROM users WHERE role IN ('collector', 'sales', 'department') AND username IN :names")
        .bindparams(sa.bindparam("names", expanding=True)),
        {"names": list(USERNAMES) + [u for u, *_ in DEPARTMENT_STAFF]},
    )


def _count(conn: sa.Connection, table: str) -> int:
    return int(conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).fetchall()[0][0])  # noqa: S608


def _reserve_first_ids(conn: sa.Connection) -> Counters:
    """The first entry, allocation and run ids of this run, reserved from their sequences.

    The simulation numbers rows from them on as it goes; `_end_reservations` then moves each
    sequence past the last id used, in the same transaction.
    """
    return Counters(reserve_ids(conn, ENTRY_IDS, 1), reserve_ids(conn, ALLOCATION_IDS, 1),
                    reserve_ids(conn, DUNNING_RUN_IDS, 1))


def _end_reservations(conn: sa.Connection, first: Counters, ids: Counters) -> None:
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


def _prepare_chunks(c: Customers, cal: Calendar, fx_end: np.ndarray, entries: int, seed: int,
                    ids: Counters, config_ids: np.ndarray, summary: DemoSummary) -> Iterator[_Prepared]:
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
            chunk = simulate(c, lo, hi, max(round(target / ratio), 1), rng, cal, fx_end)
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
        yield _Prepared(hi, chunk_frames(chunk, c, ids, config_ids), by_type, chunk.stats)


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
                  actor: str = "system", force_arm: str | None = None) -> DemoSummary:
    """Fill the store with `entries` (±2%) ledger entries of demo history ending on `end_date`.

    Refuses a store that already has ledger entries or customers (`StoreNotEmpty`) unless
    `replace`, which first deletes all data rows. One transaction: all or nothing.
    """
    if entries < 1:
        raise ValueError("entries must be at least 1")
    if force_arm not in (None, "champion", "challenger"):
        raise ValueError(f"force_arm must be champion or challenger, not {force_arm!r}")
    t0 = time.perf_counter()
    started = datetime.now().replace(microsecond=0)
    set_up = datetime.combine(end_date - timedelta(days=HISTORY_DAYS + 30), datetime.min.time()).replace(hour=9)
    say = progress or (lambda _message: None)
    cal = Calendar.build(end_date)
    c = make_customers(entries, seed, cal)
    fx = fx_rates(seed, cal)
    fx_end = np.array([1.0] + [fx.loc[fx.currency == cur, "rate"].iloc[-1] for cur in CURRENCIES[1:]])
    summary = DemoSummary(entries_target=entries, seed=seed, start_date=date_of(cal.start), end_date=end_date)
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
        users = demo_users(set_up)
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
        c, assignments = _start_demo_experiment(conn, c, cal, config_ids, actor, force_arm)

        ids = _reserve_first_ids(conn)
        first = Counters(ids.entry, ids.allocation, ids.run)
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

        customers, contacts = customer_frames(c, seed, config_ids)
        counts["customers"] = bulk_insert(conn, "customers", customers)
        counts["contacts"] = bulk_insert(conn, "contacts", contacts)
        bulk_insert(conn, "experiment_assignments", assignments)
        say("Dunning stage results")
        refresh_stage_results(conn)
        say("Monthly summaries")
        refresh_monthly_summaries(conn)
        dates = read_df(conn, (
            "SELECT (SELECT MIN(posting_date) FROM ledger_entries) AS l0, (SELECT MAX(posting_date) FROM ledger_entries) AS l1,"
            " (SELECT MIN(run_date) FROM dunning_runs) AS r0, (SELECT MAX(run_date) FROM dunning_runs) AS r1,"
            " (SELECT MIN(occurred_at) FROM activities) AS a0, (SELECT MAX(occurred_at) FROM activities) AS a1"))
        summary.seconds = time.perf_counter() - t0
        summary.counts, summary.entries_by_type, summary.chunks = counts, by_type, len(_chunks(len(c)))
        fill_summary(summary, c, stats, dates.iloc[0])
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

