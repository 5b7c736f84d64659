"""Data-parallel LeNet training through each framework's own engine:
the launcher (framework-neutral: it writes a job file, sets environments
and spawns processes; it never imports a framework).

``unisched train --framework FW --workers N`` calls :func:`train`, which
runs the job in fresh processes and reads the recorded run back:

=========  ===========================================================
torch      ``python -m torch.distributed.run --nproc_per_node N`` (gloo)
           over ``unisched.backends.torch.distributed``
keras      one process, ``tf.distribute.MirroredStrategy`` over N
           logical CPU devices (``unisched.backends.keras.distributed``)
mxnet      the ``dist_sync`` kvstore: 1 scheduler, 1 server and N
           workers on 127.0.0.1 (the ``DMLC_*`` environment)
jax        one process, N host devices (``XLA_FLAGS=--xla_force_host_
           platform_device_count=N``), the batch sharded over them
=========  ===========================================================

Every worker runs :func:`run_worker` with its framework's distributed
trainer: the same global batches as a single process (each worker takes
a contiguous shard of every batch; the gradient is the global batch
mean), so the metrics equal a single-process run's up to float noise
(gradients summed across workers in another order).  Rank 0 writes the
:class:`~unisched.tools.Recorder`.

Processes are started in their own sessions and all of them are ended
when one fails, when the time runs out, or when the caller is
interrupted (:func:`run_processes`).
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, cast

from .. import _validate as check
from .._io import write_text
from ..tools import Recorder

__all__ = ["FRAMEWORKS", "Job", "free_ports", "commands", "run_processes",
           "xla_flags", "train", "run_worker", "shard", "DEFAULT_TIMEOUT"]

FRAMEWORKS = ("torch", "keras", "mxnet", "jax")
#: seconds a whole distributed run may take before every process is ended
DEFAULT_TIMEOUT = 1800.0
#: where a launched MXNet server or scheduler finds its role: not in
#: ``DMLC_ROLE``, which would start the server inside ``import mxnet``,
#: before unisched's adapter (which the server unpickles) can be imported
MXNET_ROLE = "UNISCHED_DMLC_ROLE"


@dataclass
class Job:
    """What every worker of one run needs (written as JSON).

    ``options`` are ``train_lenet``'s (``optimizer``, ``momentum``,
    ``unit``, ``lr``...); ``out`` is where rank 0 writes the recorder.
    ``engine`` holds framework specifics (MXNet: ``update_on_kvstore``).
    """

    schedule: str
    data: str
    epochs: int
    batch_size: int
    workers: int
    out: str
    limit: int | None = None
    seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    engine: dict[str, Any] = field(default_factory=dict)

    def save(self, path: str) -> None:
        options = dict(self.options)
        lr = options.get("lr")
        if isinstance(lr, slice):
            options["lr"] = {"slice": [lr.start, lr.stop]}
        write_text(path, json.dumps(dict(asdict(self), options=options)))

    @classmethod
    def load(cls, path: str) -> Job:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        lr = data["options"].get("lr")
        if isinstance(lr, dict):
            data["options"]["lr"] = slice(*lr["slice"])
        return cls(**data)


def free_ports(n: int = 1) -> list[int]:
    """``n`` distinct TCP ports free on 127.0.0.1 now (held together
    while chosen, so they differ)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(check.integer("n", n, 1)):
            s = stack.enter_context(socket.socket())
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
        return ports


def shard(n: int, rank: int, workers: int) -> tuple[int, int]:
    """Rows ``[lo, hi)`` of a batch of ``n`` that worker ``rank`` of
    ``workers`` takes: contiguous, sizes differing by at most one (a
    shard may be empty when ``n < workers``).

    >>> [shard(5, r, 2) for r in range(2)]
    [(0, 3), (3, 5)]
    """
    base, extra = divmod(n, workers)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (rank < extra)


def _module(framework: str) -> str:
    return f"unisched.backends.{framework}.distributed"


def commands(framework: str, workers: int, job_path: str, *,
             ports: Sequence[int] | None = None
             ) -> list[tuple[list[str], dict[str, str]]]:
    """``(argv, extra environment)`` of every process a run needs."""
    if framework not in FRAMEWORKS:
        raise ValueError(f"framework must be one of {FRAMEWORKS}, got "
                         f"{framework!r}")
    workers = check.integer("workers", workers, 1)
    python = sys.executable
    port = (ports or free_ports())[0]
    if framework == "torch":
        return [([python, "-m", "torch.distributed.run",
                  f"--nproc_per_node={workers}", "--nnodes=1",
                  "--master_addr=127.0.0.1", f"--master_port={port}",
                  "-m", _module("torch"), job_path], {})]
    if framework == "mxnet":
        env = {"DMLC_PS_ROOT_URI": "127.0.0.1",
               "DMLC_PS_ROOT_PORT": str(port), "DMLC_NUM_SERVER": "1",
               "DMLC_NUM_WORKER": str(workers)}
        main = [python, "-m", _module("mxnet"), job_path]
        return ([(main, dict(env, **{MXNET_ROLE: role}))
                 for role in ("scheduler", "server")]
                + [(main, dict(env, DMLC_ROLE="worker"))] * workers)
    env = {}
    if framework == "jax":
        env["XLA_FLAGS"] = xla_flags(workers)
    return [([python, "-m", _module(framework), job_path], env)]


def xla_flags(devices: int) -> str:
    """The caller's ``XLA_FLAGS`` with ``devices`` host devices (JAX's
    CPU platform then shows that many devices)."""
    flags = [f for f in os.environ.get("XLA_FLAGS", "").split()
             if not f.startswith("--xla_force_host_platform_device_count")]
    return " ".join(flags + [f"--xla_force_host_platform_device_count="
                             f"{devices}"])


def run_processes(procs: Sequence[tuple[Sequence[str], Mapping[str, str]]],
                  timeout: float, log_dir: str) -> None:
    """Start every ``(argv, env)`` (each in its own session; stderr to
    ``log_dir``), wait for all of them, and end all of them (their whole
    process groups) when one fails, after ``timeout`` seconds, or on any
    exception (Ctrl-C included): no process outlives the call.  Raises
    ``RuntimeError`` (with the failing process' last stderr lines) or
    ``TimeoutError``."""
    timeout = check.positive("timeout", timeout)
    running: list[tuple[subprocess.Popen, str]] = []
    previous = _exit_on_sigterm()
    try:
        for i, (argv, env) in enumerate(procs):
            log = os.path.join(log_dir, f"process{i}.log")
            with open(log, "wb") as err:
                running.append((subprocess.Popen(
                    list(argv), env={**os.environ, **env}, stderr=err,
                    stdin=subprocess.DEVNULL, start_new_session=True), log))
        deadline = time.monotonic() + timeout
        while True:
            codes = [p.poll() for p, _ in running]
            failed = [(p, log)
                      for (p, log), c in zip(running, codes, strict=True)
                      if c not in (None, 0)]
            if failed:
                proc, log = failed[0]
                argv = cast(list[str], proc.args)  # Popen was given a list
                raise RuntimeError(
                    f"process {' '.join(map(str, argv[-3:]))} exited "
                    f"with {proc.returncode}; its last messages:\n"
                    f"{_tail(log)}")
            if all(c == 0 for c in codes):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the distributed run took more than "
                                   f"{timeout:g} s; every process was "
                                   f"ended")
            time.sleep(0.1)
    finally:
        for proc, _ in running:
            _end(proc)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _exit_on_sigterm() -> Any:
    """While processes run, SIGTERM (a job scheduler, ``kill``) raises
    ``SystemExit`` so that they are ended too (Python's default would
    exit at once, leaving them); returns the handler to put back (None
    off the main thread, where handlers cannot be set)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def terminate(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)
    return signal.signal(signal.SIGTERM, terminate)


def _end(proc: subprocess.Popen) -> None:
    """End ``proc``'s process group (its children too): SIGTERM, then
    SIGKILL if it is still there after 5 s."""
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(wait)
    # the group may outlive its leader (a torchrun child): end it too,
    # and wait (5 s at most) until its last process has gone
    deadline = time.monotonic() + 5.0
    with contextlib.suppress(ProcessLookupError, PermissionError):
        while time.monotonic() < deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            time.sleep(0.05)


def _tail(path: str, lines: int = 25) -> str:
    with open(path, "rb") as f:
        text = f.read().decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:])


def train(framework: str, schedule: str, data: str, num_epochs: int,
          workers: int, *, batch_size: int = 256, limit: int | None = None,
          seed: int = 0, timeout: float = DEFAULT_TIMEOUT,
          engine: Mapping[str, Any] | None = None,
          **options: Any) -> Recorder:
    """Train LeNet data-parallel on ``workers`` workers of
    ``framework``'s engine (see the module docstring) and return rank
    0's :class:`~unisched.tools.Recorder`.

    Args:
        framework: ``'torch'``, ``'keras'``, ``'mxnet'`` or ``'jax'``.
        schedule: a schedule spec (every process parses it).
        data, limit: the data set, as ``load_dataset(data, limit=...)``.
        num_epochs, batch_size: epochs and the GLOBAL batch (each worker
            takes a shard of it).
        workers: processes (torch, mxnet) or devices (keras, jax).
        seed: initial weights and batch order.
        timeout: seconds before every process is ended.
        engine: framework specifics (mxnet: ``update_on_kvstore``).
        options: ``train_lenet``'s other options (``optimizer``,
            ``momentum``, ``unit``, ``lr``...).
    """
    workers = check.integer("workers", workers, 1)
    batch_size = check.integer("batch_size", batch_size, 1)
    if batch_size < workers:
        raise ValueError(f"batch_size ({batch_size}) must be at least "
                         f"workers ({workers}): each worker takes a shard "
                         f"of every batch")
    with tempfile.TemporaryDirectory(prefix="unisched-dist-") as tmp:
        job = Job(schedule, data, check.integer("num_epochs", num_epochs,
                                                1), batch_size, workers,
                  os.path.join(tmp, "run.json"), limit, seed,
                  dict(options), dict(engine or {}))
        job_path = os.path.join(tmp, "job.json")
        job.save(job_path)
        run_processes(commands(framework, workers, job_path), timeout, tmp)
        return Recorder.from_json(job.out)


def run_worker(job_path: str, make_trainer: Callable[..., Any],
               rank: int, **engine: Any) -> Recorder:
    """One worker's part of :func:`train`: load the data, build the
    trainer (``make_trainer(sched, **train options, **engine)``, e.g. a
    backend's distributed trainer class and its strategy or mesh), run
    :func:`unisched.app.training.fit` and, on rank 0, log the epochs and
    write the recorder."""
    from .data import load_dataset, num_batches
    from .training import fit
    job = Job.load(job_path)
    data = load_dataset(job.data, limit=job.limit)
    # as train_lenet builds its trainer
    options = dict(job.options, seed=job.seed, steps_per_epoch=num_batches(
        len(data.y_train), job.batch_size))
    trainer = make_trainer(job.schedule, **options, **engine)
    rec = fit(trainer, data, job.epochs, job.batch_size, job.seed,
              progress=False, log=print if rank == 0 else None)
    if rank == 0:
        rec.to_json(job.out)
    return rec
