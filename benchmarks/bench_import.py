"""The cost of ``import unisched`` next to ``import numpy``.

Each import is timed inside a fresh interpreter (nothing cached in
``sys.modules``), the two alternating so that both see the same load on
the machine; the best of ``REPEATS`` runs of each is kept.  ``import
unisched`` includes numpy, so the ratio is at least 1; goal: under 2 (the
core adds less than numpy itself costs).  Also times ``unisched.tools`` and
``unisched.app`` for reference.  Compare ratios, not absolute times: the
machine is shared.

    python benchmarks/bench_import.py
"""
from __future__ import annotations

import subprocess
import sys

REPEATS = 7
MODULES = ("numpy", "unisched", "unisched.tools", "unisched.app")

_CODE = ("import time; t = time.perf_counter(); import {name}; "
         "print(time.perf_counter() - t)")


def import_seconds(name: str) -> float:
    """Seconds ``import name`` takes in a fresh interpreter.

    Example: ``import_seconds("numpy")`` -> e.g. 0.09
    """
    run = subprocess.run([sys.executable, "-c", _CODE.format(name=name)],
                         capture_output=True, text=True, check=True)
    return float(run.stdout.strip().splitlines()[-1])


def main() -> None:
    times: dict[str, list[float]] = {name: [] for name in MODULES}
    for _ in range(REPEATS):
        for name in MODULES:  # interleaved: same load for each
            times[name].append(import_seconds(name))
    best = {name: min(values) for name, values in times.items()}
    print(f"best of {REPEATS} fresh interpreters each:")
    for name in MODULES:
        ratio = best[name] / best["numpy"]
        print(f"  import {name:<15} {best[name] * 1000:7.1f} ms  "
              f"{ratio:5.2f} x numpy")


if __name__ == "__main__":
    main()
