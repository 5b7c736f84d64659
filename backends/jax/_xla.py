"""XLA's CPU compiler options for unisched's JAX backend (imported first).

Measured here (jax/jaxlib 0.7.1, 2 CPU cores): XLA's new CPU fusion
emitters take 30-40 s to compile the LeNet training step at batch 32 (and
12 s at 64, 5 s at 256: the transposing fusion that applies the update to
the conv2 kernel), against ~7 s with the older emitters, for the same step
time.  Every trainer compiles its own step (the schedule is inside it),
so unless the user chose (``xla_cpu_use_fusion_emitters`` already in
``XLA_FLAGS``, or ``UNISCHED_XLA_DEFAULTS=0``), this appends
``--xla_cpu_use_fusion_emitters=false`` to ``XLA_FLAGS``.  XLA reads the
flags when JAX creates its CPU client (the first computation), so this
takes effect if nothing ran in JAX before ``unisched.backends.jax`` was
imported, and is harmless otherwise.  Only for the jaxlib versions where
the flag was verified to exist: XLA aborts the process on an unknown one.
"""
from __future__ import annotations

import os

FLAG = "--xla_cpu_use_fusion_emitters"
VERIFIED = ("0.7.",)


def apply_defaults() -> bool:
    """Append ``FLAG=false`` to ``XLA_FLAGS`` where allowed; True if it
    did."""
    from jaxlib.version import __version__ as jaxlib_version

    flags = os.environ.get("XLA_FLAGS", "")
    if os.environ.get("UNISCHED_XLA_DEFAULTS", "1") == "0" or \
            FLAG in flags or not jaxlib_version.startswith(VERIFIED):
        return False
    os.environ["XLA_FLAGS"] = f"{flags} {FLAG}=false".strip()
    return True


apply_defaults()
