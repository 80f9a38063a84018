"""Small helpers shared by the benchmarks."""

from __future__ import annotations

import statistics
import time
from contextlib import contextmanager


@contextmanager
def timed(results: list):
    t0 = time.perf_counter()
    yield
    results.append(time.perf_counter() - t0)


def median(values):
    return statistics.median(values)


def row(label: str, value: str, target: str = "", baseline: str = "") -> str:
    return f"  {label:<44} {value:>12}   {target:<14} {baseline}"
