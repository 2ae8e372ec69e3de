"""The demo experiment's true effect, from the generator's own counterfactuals.

Rule: the same demo (entries, seed, end date) is generated twice more with every customer of the
experiment's segment dunned under one arm's policy (`generate_demo(force_arm=...)`: the stored arms
stay the hashed ones, and every random draw that decides when an invoice is paid is the same in both
worlds). The experiment's primary metric over the whole segment (both arms pooled:
Σ collected / Σ overdue at entry, `analytics.experiments.results`) in the all-challenger world minus
the same in the all-champion world is the true effect the experiment estimates; the demo's own
experiment (half the customers in each arm) should find it inside its 95 % interval.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from datetime import date
from pathlib import Path

from analytics.demo.persistence import generate_demo
from analytics.experiments.lifecycle import experiment
from analytics.experiments.results import customer_windows, experiment_result
from analytics.store.connection import Store

DEMO_EXPERIMENT_ID = 1  # the first id of its sequence in a freshly generated store


def _pooled_metric(open_store: Callable[[str], Store], path: Path, entries: int, seed: int, end_date: date,
                   force_arm: str | None) -> tuple[float, dict]:
    store = open_store(str(path))
    try:
        generate_demo(store, entries=entries, seed=seed, end_date=end_date, force_arm=force_arm)
        windows = customer_windows(store, DEMO_EXPERIMENT_ID, end_date)
        measured = experiment_result(store, experiment(store, DEMO_EXPERIMENT_ID), end_date)
    finally:
        store.close()
    return float(windows.collected.sum()) / float(windows.overdue.sum()), measured


def true_effect(open_store: Callable[[str], Store], entries: int = 200_000, seed: int = 42,
                end_date: date = date(2026, 10, 31)) -> dict:
    """{champion_world, challenger_world, true_effect, measured: the demo experiment's result}, each
    world in a fresh DuckDB file opened by `open_store` (`analytics.migrations.connect`)."""
    with tempfile.TemporaryDirectory(prefix="ardesk-truth-") as folder:
        worlds = {arm: _pooled_metric(open_store, Path(folder) / f"{arm}.duckdb", entries, seed, end_date, force)
                  for arm, force in (("champion", "champion"), ("challenger", "challenger"), ("demo", None))}
    champion, challenger, measured = worlds["champion"][0], worlds["challenger"][0], worlds["demo"][1]
    return {"champion_world": champion, "challenger_world": challenger, "true_effect": challenger - champion,
            "measured": measured}
