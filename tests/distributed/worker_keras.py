"""The Keras workers of ``test_dist_keras.py``: ``worker_keras.py ENGINE
MODE OUT``.  ENGINE ``mirrored``: one process, ``MirroredStrategy`` over
2 logical CPU devices, ``model.fit`` with callbacks reading every
replica's rate, momentum and weights.  ENGINE ``mwms``: one of 2
``MultiWorkerMirroredStrategy`` workers (``TF_CONFIG``), a custom
``strategy.run`` loop (``model.fit`` under it hits keras-team/keras#20585).
MODE ``run`` (checkpoint at update K) or ``resume`` (from it, fresh
processes; the ``mirrored`` process then crashes, once the MWMS workers
of the launch are done: checkpoints after epochs 1 and 2 of the cosine
schedule, killed while writing the third)."""
from __future__ import annotations

import os
import signal
import sys

import numpy as np


def main(engine: str, mode: str, out: str) -> None:
    import tensorflow as tf

    from unisched.backends.keras import distributed as ukd
    if engine == "mirrored":
        strategy = ukd.mirrored(2)
    else:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    from dist_common import SCHEDULES, WORKERS, wait_for
    for name in SCHEDULES:
        Run(strategy, engine, mode, name, out).train()
    if engine == "mwms":
        rank = strategy.cluster_resolver.task_id
        open(os.path.join(out, f"mwms-{mode}.rank{rank}.done"), "w").close()
    elif mode == "resume":
        for rank in range(WORKERS):     # the workers of the launch first
            wait_for(os.path.join(out, f"mwms-resume.rank{rank}.done"))
        Run(strategy, engine, "crash", "cosine", out).train()


class Run:
    """One schedule's run: the model, the bound optimizer, the records."""

    def __init__(self, strategy, engine, mode, name, out):
        import keras

        from unisched.backends import keras as usk
        from unisched.backends.keras import distributed as ukd

        from dist_common import SCHEDULES
        self.strategy, self.engine, self.mode = strategy, engine, mode
        self.name, self.out = name, out
        self.rank = 0 if engine == "mirrored" else \
            strategy.cluster_resolver.task_id
        self.path = os.path.join(out, f"{engine}-{mode}-{name}.keras"
                                 if mode == "crash"
                                 else f"{engine}-{name}.keras")
        spec, momentum = SCHEDULES[name]
        if mode == "resume":
            self.model = ukd.load_checkpoint(self.path, strategy)
            self.adapter = usk.adapter_of(self.model.optimizer)
        else:
            with strategy.scope():
                self.model = keras.Sequential([
                    keras.Input((3,)), keras.layers.Dense(
                        2, kernel_initializer=keras.initializers.Constant(
                            0.5))])
                self.model.compile(keras.optimizers.SGD(
                    1.0, momentum=momentum), loss="mse")
                self.adapter = usk.bind(spec, self.model)
        self.opt = self.model.optimizer
        self.records = None     # one list per local replica

    # -- what each replica sees ------------------------------------------
    def read_hparams(self):
        """Per local replica: (rate, momentum) the optimizer will use
        next, evaluated in the replica's context as update_step does."""
        import tensorflow as tf
        opt = self.opt
        if not hasattr(self, "_read"):
            self._read = tf.function(lambda: tf.stack([
                tf.cast(opt.learning_rate, tf.float64),
                tf.cast(tf.convert_to_tensor(opt.momentum), tf.float64)]))
        got = self.strategy.run(self._read)
        return [v.numpy().tolist()
                for v in self.strategy.experimental_local_results(got)]

    def weights(self):
        per = zip(*[self.strategy.experimental_local_results(v.value)
                    for v in self.model.trainable_variables], strict=True)
        return [[x for t in replica for x in t.numpy().ravel().tolist()]
                for replica in per]

    def begin(self, k):
        self._used = self.read_hparams()
        self._k = k

    def end(self):
        if self.records is None:
            self.records = [[] for _ in self._used]
        for replica, (used, w) in enumerate(zip(self._used,
                                                self.weights(), strict=True)):
            self.records[replica].append({"k": self._k, "lr": used[0],
                                          "momentum": used[1],
                                          "weights": w})

    def epoch_end(self, epoch):
        """epoch counted from 1: the plateau observes the reduced
        metric; checkpoints."""
        import tensorflow as tf

        from unisched.backends.keras import distributed as ukd

        from dist_common import CKPT_EPOCH, metric
        if self.adapter.schedule.stateful:
            if self.engine == "mirrored":    # a value per replica
                spread = self.strategy.\
                    experimental_distribute_values_from_function
                value = spread(lambda ctx: tf.constant(metric(
                    ctx.replica_id_in_sync_group, epoch - 1)))
            else:                            # this worker's number
                value = metric(self.rank, epoch - 1)
            self.adapter.observe(ukd.mean_across_workers(value,
                                                         self.strategy))
        if self.mode == "crash" and epoch == CKPT_EPOCH:
            self.model.save = _dying_save
        if epoch == CKPT_EPOCH or (self.mode == "crash"
                                   and epoch < CKPT_EPOCH):
            ukd.save_checkpoint(self.model, self.path, self.strategy)

    # -- the loops ----------------------------------------------------------
    def train(self):
        from dist_common import UPDATES, write_records
        start = self.adapter.updates_done
        x, y = data(self.rank if self.engine == "mwms" else None)
        if self.engine == "mirrored":
            self.fit(x, y, start)
        else:
            self.loop(x, y, start)
        assert self.records[0][-1]["k"] == UPDATES - 1
        for replica, records in enumerate(self.records):
            rank = replica if self.engine == "mirrored" else self.rank
            write_records(self.out, f"{self.engine}-{self.mode}-"
                          f"{self.name}", rank, records)

    def fit(self, x, y, start):
        import keras

        from dist_common import EPOCHS, PER_EPOCH
        run = self

        class Probe(keras.callbacks.Callback):
            def on_train_batch_begin(self, batch, logs=None):
                run.begin(run.adapter.updates_done)

            def on_train_batch_end(self, batch, logs=None):
                run.end()

            def on_epoch_end(self, epoch, logs=None):
                run.epoch_end(epoch + 1)
        # the global batch of 16 is split into 8 per replica
        self.model.fit(x, y, batch_size=16, epochs=EPOCHS,
                       initial_epoch=start // PER_EPOCH, shuffle=False,
                       verbose=0, callbacks=[Probe()])

    def loop(self, x, y, start):
        import tensorflow as tf

        from dist_common import PER_EPOCH, UPDATES
        model, opt = self.model, self.opt
        replicas = self.strategy.num_replicas_in_sync

        @tf.function
        def step(xb, yb):
            def replica(xb, yb):
                with tf.GradientTape() as tape:
                    loss = tf.reduce_mean((model(xb) - yb) ** 2) / replicas
                grads = tape.gradient(loss, model.trainable_variables)
                opt.apply_gradients(zip(grads, model.trainable_variables,
                                        strict=True))
            self.strategy.run(replica, args=(xb, yb))
        for k in range(start, UPDATES):
            self.begin(k)
            lo = (k % PER_EPOCH) * 8
            step(tf.constant(x[lo:lo + 8]), tf.constant(y[lo:lo + 8]))
            self.end()
            if (k + 1) % PER_EPOCH == 0:
                self.epoch_end((k + 1) // PER_EPOCH)


def data(rank):
    """One epoch of inputs: 4 batches; under MWMS each worker its own."""
    from dist_common import PER_EPOCH
    gen = np.random.RandomState(100 + (rank or 0))
    n = PER_EPOCH * (8 if rank is not None else 16)
    return (gen.randn(n, 3).astype("float32"),
            gen.randn(n, 2).astype("float32"))


def _dying_save(path, *args, **kwargs) -> None:
    """Half a file, then the process is killed."""
    with open(path, "wb") as f:
        f.write(b"PK\x03\x04 half a checkpoint")
        f.flush()
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    main(*sys.argv[1:4])
