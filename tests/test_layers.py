"""The engine never imports the UI: the CLI, tests and benchmarks use it without streamlit."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import analytics


def test_engine_imports_without_streamlit() -> None:
    modules = [f"analytics.{m.name}" for m in pkgutil.walk_packages(analytics.__path__)]
    modules += [f"analytics.commands.{m.name}" for m in pkgutil.iter_modules([f"{analytics.__path__[0]}/commands"])]
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print('streamlit' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
    assert len(modules) >= 8
