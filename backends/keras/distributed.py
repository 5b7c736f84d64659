"""Keras 3 (TensorFlow) under ``tf.distribute``: the bound schedule runs
in every replica's graph, the metric is reduced across replicas and
workers, checkpoints are written atomically by the chief.

Bind inside the strategy's scope (the adapter's variables, such as a
``ReduceOnPlateau``'s scale, are then mirrored)::

    strategy = mirrored(2)                  # or MultiWorkerMirroredStrategy
    with strategy.scope():
        model = build(); model.compile(optimizer="sgd", loss=...)
        adapter = usk.bind(sched, model)
    model.fit(...)                          # every replica: sched(k)
    adapter.observe(mean_across_workers(val_loss, strategy))
    save_checkpoint(model, "ckpt.keras", strategy)

``MultiWorkerMirroredStrategy`` (``TF_CONFIG``) works with a custom loop
(``strategy.run`` + ``optimizer.apply_gradients``); Keras 3.15's
``model.fit`` under it fails in ``_maybe_symbolic_build`` (``Attempt to
convert a value (PerReplica...)``, keras-team/keras#20585).

Importing this module imports tensorflow and keras; ``python -m`` it is
a worker of :func:`unisched.app.distributed.train` (MirroredStrategy over
logical CPU devices).
"""
from __future__ import annotations

import sys
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from unisched._io import atomic_path
from unisched.app.distributed import Job, run_worker, shard

from .lenet import KerasTrainer, _group_variables, to_nhwc

__all__ = ["logical_cpus", "mirrored", "is_chief", "mean_across_workers",
           "barrier", "save_checkpoint", "load_checkpoint",
           "DistributedKerasTrainer"]


def logical_cpus(n: int) -> list[str]:
    """Split the host CPU into ``n`` logical devices (names returned), so
    that a ``MirroredStrategy`` has ``n`` replicas on one machine; call it
    before TensorFlow runs anything."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    cpu = tf.config.list_physical_devices("CPU")[0]
    have = tf.config.get_logical_device_configuration(cpu)
    if (len(have) if have else 1) != n:
        try:
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration()] * n)
        except RuntimeError:
            got = len(tf.config.list_logical_devices("CPU"))
            raise RuntimeError(f"TensorFlow is already initialized with "
                               f"{got} CPU device(s); call logical_cpus"
                               f"({n}) before it runs anything") from None
    return [d.name for d in tf.config.list_logical_devices("CPU")]


def mirrored(n: int) -> tf.distribute.MirroredStrategy:
    """A ``MirroredStrategy`` over ``n`` logical CPU devices."""
    return tf.distribute.MirroredStrategy(logical_cpus(n))


def _strategy(strategy: Any) -> tf.distribute.Strategy:
    return tf.distribute.get_strategy() if strategy is None else strategy


def is_chief(strategy: Any = None) -> bool:
    """Whether this process writes checkpoints: always under one-process
    strategies, the chief (or worker 0) under ``MultiWorkerMirrored``."""
    resolver: Any = getattr(_strategy(strategy), "cluster_resolver", None)
    kind = getattr(resolver, "task_type", None)
    return kind in (None, "chief") or (
        kind == "worker" and resolver.task_id == 0 and
        "chief" not in resolver.cluster_spec().as_dict())


def mean_across_workers(value: Any, strategy: Any = None) -> float:
    """The mean of a scalar over every replica of every worker, the same
    float everywhere: a host number (this worker's) or a per-replica
    value (``strategy.run``'s result).  What ``observe`` needs, so that a
    ``ReduceOnPlateau`` cuts at the same epoch on every replica.  Under
    ``MultiWorkerMirroredStrategy`` every worker must call it (a
    collective)."""
    strategy = _strategy(strategy)
    if not isinstance(value, tf.distribute.DistributedValues):
        number = float(value)
        value = strategy.run(lambda: tf.constant(number, tf.float64))
    return float(strategy.reduce(tf.distribute.ReduceOp.MEAN, value,
                                 axis=None))


def barrier(strategy: Any = None) -> None:
    """Return when every worker has reached it (a collective)."""
    mean_across_workers(0.0, strategy)


def save_checkpoint(model: keras.Model, path: str,
                    strategy: Any = None) -> None:
    """``model.save`` (weights, optimizer state and the bound schedule
    with its position) by the chief, into a temporary ``.keras`` file
    renamed over ``path``: a process killed while writing leaves the
    previous checkpoint whole.  Every worker returns once it is
    complete."""
    if not str(path).endswith(".keras"):
        raise ValueError(f"path must end in .keras, got {path!r}")
    if is_chief(strategy):
        with atomic_path(path) as tmp:
            model.save(tmp)
    barrier(strategy)


def load_checkpoint(path: str, strategy: Any = None) -> keras.Model:
    """The model of :func:`save_checkpoint`, built in the strategy's
    scope, with its optimizer and bound adapter
    (``unisched.backends.keras.adapter_of(model.optimizer)``) at the
    checkpoint's position."""
    with _strategy(strategy).scope():
        return keras.models.load_model(path)


class DistributedKerasTrainer(KerasTrainer):
    """:class:`~unisched.backends.keras.KerasTrainer` under a
    ``tf.distribute`` strategy (one process: ``MirroredStrategy``, e.g.
    :func:`mirrored`): model, optimizer and adapter are built in its
    scope; :meth:`batches` yields the GLOBAL batches of a single process,
    and each update runs ``strategy.run`` with a contiguous shard per
    replica (:func:`unisched.app.distributed.shard`), the loss summed
    over the shard and divided by the global batch, so that the
    optimizer's sum across replicas is the global batch mean gradient
    (an L2 ``weight_decay`` is split the same way).  The loss and correct
    count returned are the global batch's; evaluation runs on the first
    replica's weights (all replicas hold the same)."""

    def __init__(self, sched: Any, *, strategy: Any,
                 **options: Any) -> None:
        self.strategy = strategy
        with strategy.scope():
            super().__init__(sched, **options)

    def _compile(self) -> None:
        model, opt, strategy = self.model, self.optimizer, self.strategy
        variables = model.trainable_variables
        replicas = strategy.num_replicas_in_sync
        wd = (self.weight_decay if self.optimizer_name != "adamw"
              else 0.0) / replicas
        loss_sum = keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, reduction="sum")

        def hits(logits: Any, y: Any) -> Any:
            return tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, axis=1),
                                                  y), tf.float32))

        def replica(x: Any, y: Any, n: Any) -> Any:
            with tf.GradientTape() as tape:
                logits = model(x, training=True)
                loss = loss_sum(y, logits)
                scaled = loss / n
            grads = tape.gradient(scaled, variables)
            if wd:
                grads = [g + wd * v
                         for g, v in zip(grads, variables, strict=True)]
            opt.apply_gradients(zip(grads, variables, strict=True))
            return tf.stack([tf.cast(loss, tf.float32), hits(logits, y)])

        def step(x: Any, y: Any, n: Any) -> Any:
            return strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(
                replica, args=(x, y, n)), axis=None)

        # each group's factor, as the bound optimizer's update_step
        # applies it to the group's first variable
        factor = getattr(opt, "_unisched_factor", lambda v: 1.0)
        firsts = [names[0] for names in _group_variables(model)] \
            if self.multipliers is not None else variables[:1]
        factors = [factor(v) for v in firsts]
        momentum = "momentum" if self.optimizer_name == "sgd" else "beta_1"

        def read() -> Any:
            lr = tf.cast(opt.learning_rate, tf.float32)
            mom = tf.cast(tf.convert_to_tensor(getattr(opt, momentum)),
                          tf.float32)
            return tf.stack([lr * f for f in factors] + [mom])

        self._dist_step = tf.function(step)
        self._dist_eval = tf.function(lambda x, y: hits(model(x), y))
        self._dist_read = tf.function(read)

    def _per_replica(self, array: np.ndarray) -> Any:
        """``array``'s contiguous shard for each replica."""
        count = self.strategy.num_replicas_in_sync

        def local(ctx: Any) -> Any:
            lo, hi = shard(len(array), ctx.replica_id_in_sync_group, count)
            return tf.constant(array[lo:hi])
        return self.strategy.experimental_distribute_values_from_function(
            local)

    def train_batch(self, x: np.ndarray, y: np.ndarray) -> tuple[float, int]:
        total, hits = self._dist_step(
            self._per_replica(to_nhwc(x)), self._per_replica(y),
            tf.constant(float(len(y)))).numpy().tolist()
        return total / len(y), int(hits)

    def count_correct(self, x: np.ndarray, y: np.ndarray) -> int:
        return int(self._dist_eval(tf.constant(to_nhwc(x)),
                                   tf.constant(y)))

    def hparams(self) -> tuple[list[float], float | None]:
        values = self._dist_read().numpy().tolist()
        return values[:-1], values[-1]


def main(argv: list[str]) -> int:
    """The process of ``unisched train --framework keras --workers N``:
    one ``MirroredStrategy`` replica per logical CPU device."""
    run_worker(argv[0], DistributedKerasTrainer, 0,
               strategy=mirrored(Job.load(argv[0]).workers))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
