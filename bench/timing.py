"""The benchmarks' one timing rule: the best of `repeat` runs (the least disturbed by the machine)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def best(fn: Callable[[], Any], repeat: int = 3) -> tuple[float, Any]:
    """(the shortest wall time in seconds of `repeat` calls of `fn`, the last call's result)."""
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result
