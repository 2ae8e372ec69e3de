"""The `ardesk` entry point: help for every command, and `demo --if-empty` on a store with data."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd

from analytics.cli.main import build_parser, main
from analytics.migrations import connect
from analytics.store.connection import bulk_insert


def test_every_command_has_help(capsys) -> None:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    commands = sorted(sub.choices)
    assert {"demo", "users", "db", "report", "import", "sync", "outreach"} <= set(commands)
    for command in commands:
        try:
            main([command, "--help"])
        except SystemExit as exc:
            assert exc.code == 0
        assert f"usage: ardesk {command}" in capsys.readouterr().out


def test_demo_if_empty_leaves_a_store_with_customers_alone(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    store = connect(str(db))
    with store.write() as conn:
        bulk_insert(conn, "customers", pd.DataFrame([{
            "customer_id": "C1", "name": "Acme", "segment": "enterprise", "currency": "USD",
            "payment_terms_days": 30, "created_at": pd.Timestamp("2026-01-01")}]))
    store.close()
    out = subprocess.run([sys.executable, "-m", "analytics.cli", "--db", str(db), "demo", "--if-empty",
                          "--entries", "2000"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "already has data" in out.stdout
    store = connect(str(db))
    assert store.scalar("SELECT COUNT(*) FROM ledger_entries") == 0
    store.close()
