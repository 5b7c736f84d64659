"""Vectorized ``values()`` against a Python loop of scalar calls.

Prints, per schedule, the time per step of each way and their ratio
(goal: ``values`` at least 50x faster over 1,000,000 steps).  Both are
measured in this one run on this machine; compare the ratios, not the
absolute times.  The loop runs over a 100,000-step slice (its cost per step
does not depend on the length) to keep the script short.

    python benchmarks/bench_values.py
"""
from __future__ import annotations

import numpy as np

import unisched as us

from _timing import best_of

N_VEC = 1_000_000
N_LOOP = 100_000

SCHEDULES = {
    "square_root": us.SquareRootScheduler(0.3),
    "multi_factor": us.MultiFactorScheduler([15, 30], 0.5, base_lr=0.5),
    "cosine+warmup": us.CosineScheduler(N_VEC, 0.5, 0.01,
                                        warmup_steps=1000),
    "one_cycle": us.OneCycleScheduler(1.0, N_VEC),
    "cosine_restarts": us.CosineRestartsScheduler(1000, 1.0, cycle_mult=2.0),
    "warmup(join)": us.warmup(us.join([us.ConstantScheduler(0.1),
                                       us.ExponentialScheduler(0.1, 0.99)],
                                      [500_000]), 1000),
}




def main() -> None:
    steps = np.arange(N_VEC)
    loop_steps = range(N_LOOP)
    print(f"{'schedule':<16}{'values ns/step':>16}{'loop ns/step':>14}"
          f"{'speed-up':>10}")
    worst = float("inf")
    for name, sched in SCHEDULES.items():
        # each lambda is timed within its own iteration (B023: no late
        # binding can bite)
        vec = best_of(lambda: sched.values(steps)) / N_VEC  # noqa: B023
        loop = best_of(lambda: [sched(k)  # noqa: B023
                                for k in loop_steps], 2) / N_LOOP
        ratio = loop / vec
        worst = min(worst, ratio)
        print(f"{name:<16}{vec * 1e9:16.1f}{loop * 1e9:14.1f}"
              f"{ratio:9.0f}x")
    print(f"smallest speed-up: {worst:.0f}x (goal: >= 50x)")


if __name__ == "__main__":
    main()
