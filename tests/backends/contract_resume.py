"""Restore checkpoints in a new process and run more updates: the contract
suite's new-process tests (``test_contract_native.py``) run this once per
harness for all their scenarios, since importing a framework costs
seconds.

Usage::

    python contract_resume.py '{"module": "harness_torch",
        "cls": "TorchHarness", "jobs": [{"dir": ..., "updates": 8,
        "bind_options": {}}, ...]}'

For each job it calls ``harness.restore(dir, **bind_options)``, runs
``updates`` updates with ``harness.step`` and reports, as one JSON line
(the last line of stdout), a list with one entry per job::

    {"rates": [[...per group] per update], "momentum": [...],
     "updates_done": n}   or   {"error": "ValueError", "message": "..."}
"""
from __future__ import annotations

import importlib
import json
import os
import sys


def run(spec: dict) -> list[dict]:
    """Every job of ``spec`` (see the module docstring)."""
    harness = getattr(importlib.import_module(spec["module"]), spec["cls"])()
    out = []
    for job in spec["jobs"]:
        try:
            target, adapter = harness.restore(job["dir"],
                                              **job["bind_options"])
            applied = harness.step(target, job["updates"])
            out.append({"rates": [[float(r) for r in a.rates]
                                  for a in applied],
                        "momentum": [None if a.momentum is None
                                     else float(a.momentum)
                                     for a in applied],
                        "updates_done": int(adapter.updates_done)})
        except Exception as err:  # reported to the test, which asserts
            out.append({"error": type(err).__name__, "message": str(err)})
    return out


if __name__ == "__main__":
    sys.path[:0] = [os.path.dirname(os.path.abspath(__file__))]
    print(json.dumps(run(json.loads(sys.argv[1]))))
