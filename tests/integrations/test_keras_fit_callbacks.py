"""The Keras adapter inside a user's own ``model.fit`` callback list.

The bound optimizer runs the schedule in the graph; the adapter's only
callback (``adapter.callback(monitor)``, a ReduceOnPlateau feed) sits
between the user's callbacks and Keras' own (TerminateOnNaN, CSVLogger,
ModelCheckpoint, EarlyStopping).  Update k must still apply the replayed
``sched(k)`` (weight probe: ``w * 1`` under MAE against a far target has
gradient 1 and the weight is reset before each batch, so the weight
after it is minus the rate), every callback sees the rate of the next
update, the callbacks after the adapter's see the epoch's cut at once,
and each ModelCheckpoint file carries the position and plateau state of
its epoch.
"""
from __future__ import annotations

import csv

import numpy as np
import pytest

keras = pytest.importorskip("keras")

import unisched as us  # noqa: E402
from unisched.backends import keras as uk  # noqa: E402

BATCH, SPE, EPOCHS = 4, 3, 5


def probe_model():
    model = keras.Sequential([
        keras.Input((1,)),
        keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros",
                           name="probe")])
    model.compile(optimizer=keras.optimizers.SGD(), loss="mae")
    return model


class Watch(keras.callbacks.Callback):
    """The rate the optimizer reports before each batch and at each
    epoch's end; with ``probe`` also the rate the weight moved by."""

    def __init__(self, probe=False):
        super().__init__()
        self.probe = probe
        self.before, self.at_epoch_end, self.moved = [], [], []

    def kernel(self):
        return self.model.get_layer("probe").kernel

    def rate(self):
        return float(keras.ops.convert_to_numpy(
            self.model.optimizer.learning_rate))

    def on_train_batch_begin(self, batch, logs=None):
        self.before.append(self.rate())
        if self.probe:
            self.kernel().assign(np.zeros((1, 1)))

    def on_train_batch_end(self, batch, logs=None):
        if self.probe:
            self.moved.append(-float(self.kernel().numpy()[0, 0]))

    def on_epoch_end(self, epoch, logs=None):
        self.at_epoch_end.append(self.rate())


def plateau():
    # mode='max' on a falling loss, patience 0: every epoch after the
    # first cuts the rate in half
    return us.ReduceOnPlateau(us.CosineScheduler(40, base_lr=0.2,
                                                 final_lr=0.01),
                              mode="max", factor=0.5, patience=0)


def test_adapter_among_a_users_callbacks(tmp_path):
    model = probe_model()
    sched = plateau()
    adapter = uk.bind(sched, model)
    first, last = Watch(), Watch(probe=True)
    history = keras.callbacks.History()
    callbacks = [
        first, keras.callbacks.TerminateOnNaN(),
        keras.callbacks.CSVLogger(str(tmp_path / "log.csv")),
        adapter.callback(monitor="loss"),
        keras.callbacks.ModelCheckpoint(str(tmp_path / "e{epoch}.keras")),
        keras.callbacks.EarlyStopping(monitor="loss", patience=100),
        history, last]
    x = np.ones((SPE * BATCH, 1), np.float32)
    y = np.full((SPE * BATCH, 1), -1e4, np.float32)
    model.fit(x, y, batch_size=BATCH, epochs=EPOCHS, shuffle=False,
              callbacks=callbacks, verbose=0)

    # the replay: the losses Keras logged, observed after each epoch
    replay, want, scales = plateau(), [], []
    for epoch in range(EPOCHS):
        want += [replay(SPE * epoch + j) for j in range(SPE)]
        replay.observe(history.history["loss"][epoch])
        scales.append(replay.scale)
    assert scales == [1.0, 0.5, 0.25, 0.125, 0.0625]
    assert sched.scale == 0.0625 and adapter.updates_done == SPE * EPOCHS
    np.testing.assert_allclose(last.moved, want, rtol=1e-6)
    np.testing.assert_allclose(first.before, want, rtol=1e-6)
    np.testing.assert_allclose(last.before, want, rtol=1e-6)
    # at an epoch's end, the next update's rate: before the adapter's
    # callback without this epoch's cut, after it with the cut
    nxt = sched.schedule.values(SPE * np.arange(1, EPOCHS + 1))
    np.testing.assert_allclose(first.at_epoch_end,
                               nxt * np.array([1.0, *scales[:-1]]),
                               rtol=1e-6)
    np.testing.assert_allclose(last.at_epoch_end, nxt * scales, rtol=1e-6)
    # Keras' own callbacks ran: the CSV log and the checkpoints
    with open(tmp_path / "log.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["epoch"]) for r in rows] == list(range(EPOCHS))
    for epoch in (1, 3):
        saved = keras.models.load_model(tmp_path / f"e{epoch}.keras")
        state = uk.adapter_of(saved.optimizer).state_dict()
        assert state["updates_done"] == SPE * epoch
        assert state["schedule_state"]["scale"] == scales[epoch - 1]
