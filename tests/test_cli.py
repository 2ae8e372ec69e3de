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


def test_bootstrap_prints_each_sign_in_by_username_with_its_role(tmp_path: Path, cheap_bcrypt, capsys,
                                                                  monkeypatch) -> None:
    """The demo's own collector and sales rep get the passwords: the printout names them (ana.collector,
    not "collector"), so the README's table and what `make run` prints agree."""
    from tests.collector_data import setup_people

    monkeypatch.setenv("ARDESK_DEMO_PASSWORD", "demo-password-1")
    db = tmp_path / "s.duckdb"
    store = connect(str(db))
    setup_people(store)  # ana.collector, ben.collector, sam.sales, val.viewer: no passwords yet
    store.close()
    assert main(["--db", str(db), "users", "bootstrap"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split() for line in lines[1:]] == [
        ["admin", "admin", "demo-password-1"], ["cfo", "cfo", "demo-password-1"],
        ["ana.collector", "collector", "demo-password-1"], ["analyst", "analyst", "demo-password-1"],
        ["sam.sales", "sales", "demo-password-1"], ["val.viewer", "viewer", "demo-password-1"],
        ["department", "department", "demo-password-1"]]
    assert main(["--db", str(db), "users", "bootstrap"]) == 0
    again = capsys.readouterr().out
    assert "nothing changed" in again and "demo-password-1" not in again
    assert [line.split() for line in again.splitlines()[1:]] == [
        ["admin", "admin"], ["analyst", "analyst"], ["cfo", "cfo"], ["ana.collector", "collector"],
        ["department", "department"], ["sam.sales", "sales"], ["val.viewer", "viewer"]]  # ben.collector has no password: not listed


def test_a_relative_store_path_is_the_current_directorys_as_in_any_shell_command(tmp_path: Path, monkeypatch,
                                                                                 capsys) -> None:
    """`ardesk --db team.duckdb ...` run in a team's folder makes its store there, not in the checkout."""
    root = Path(__file__).resolve().parent.parent
    monkeypatch.chdir(tmp_path)
    assert main(["--db", "team.duckdb", "demo", "--entries", "2000"]) == 0
    assert (tmp_path / "team.duckdb").is_file() and not (root / "team.duckdb").exists()
    capsys.readouterr()
    assert main(["--db", "./team.duckdb", "report", "aging", "--format", "csv"]) == 0
    assert "current" in capsys.readouterr().out.lower()
    assert build_parser().parse_args(["--db", "duckdb:///x.duckdb", "users", "list"]).db == "duckdb:///x.duckdb"
