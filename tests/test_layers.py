"""The architecture holds: import-linter's contracts (pyproject.toml) pass on the tree, fail on a
deliberate violation, and the engine imports without streamlit at run time too."""

from __future__ import annotations

import os
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import analytics

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(cwd)}  # the copy's packages before the installed ones
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_contracts_hold() -> None:
    out = _lint_imports(ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "5 kept, 0 broken" in out.stdout


def test_a_violation_breaks_its_contract(tmp_path: Path) -> None:
    for folder in ("analytics", "pages"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    with (tmp_path / "analytics" / "kpis" / "aging.py").open("a") as f:  # a KPI reading the workflow
        f.write("\nfrom analytics.collections import worklist  # noqa\n")
    with (tmp_path / "analytics" / "store" / "schema.py").open("a") as f:  # the store reaching up
        f.write("\nfrom analytics.ledger import months  # noqa\n")
    with (tmp_path / "analytics" / "ledger" / "months.py").open("a") as f:  # the engine drawing UI
        f.write("\nimport streamlit  # noqa\n")

    out = _lint_imports(tmp_path)

    assert out.returncode == 1, out.stdout + out.stderr
    assert "0 kept, 5 broken" not in out.stdout and "1 kept, 4 broken" in out.stdout, out.stdout
    assert "analytics.kpis.aging -> analytics.collections.worklist" in out.stdout
    assert "analytics.store.schema -> analytics.ledger.months" in out.stdout
    assert "analytics.ledger.months -> streamlit" in out.stdout
    assert "Pages call the engine: no SQL driver, no command line KEPT" in out.stdout


def test_engine_imports_without_streamlit() -> None:
    modules = [m.name for m in pkgutil.walk_packages(analytics.__path__, "analytics.")
               if not m.name.endswith("__main__")]
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print('streamlit' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
    assert len(modules) >= 40
