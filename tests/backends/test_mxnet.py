"""Tests for the MXNet Gluon backend (``unisched.backends.mxnet``).

Rates are read from what a real ``gluon.Trainer`` with SGD applies: each
float64 weight is zeroed before every update and has gradient 1, so the
weight after the update is exactly ``-lr * lr_mult``.  MXNet passes the
rate to its update kernels as float32 (the ``lr``/``lrs`` operator
parameters), so the applied rate is ``float32(sched(k))`` to the bit; the
catalog tests compare for equality.  Native parity drives MXNet's own
schedulers in a Trainer (which calls them with ``num_update`` = 1, 2, ...)
next to a Trainer running ``from_native``'s schedule.
"""
from __future__ import annotations

import copy
import doctest
import importlib.util
import json
import os
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest

if importlib.util.find_spec("mxnet") is None:
    pytest.skip("mxnet is not installed", allow_module_level=True)

import unisched as us
from unisched.backends import mxnet as usm

from catalog import HORIZON, draw, samples

mx = usm.mx
gluon = mx.gluon
L = mx.lr_scheduler


# -- helpers ---------------------------------------------------------------

def _param(name: str = "w", ctx=None, dtype: str = "float64"):
    p = gluon.Parameter(name, shape=(1,), dtype=dtype, init=mx.init.Zero())
    p.initialize(ctx=ctx or mx.cpu())
    for g in p.list_grad():
        g[:] = 1
    return p


def _trainer(params, opt="sgd", **opt_params):
    return gluon.Trainer(params, opt, opt_params or None)


def _step(trainer, params, reset: bool = True) -> None:
    """One update with gradient 1 (already in ``grad``); ``reset`` zeroes
    the weights first so that afterwards they hold ``-lr`` (no momentum) or
    the momentum buffer (with momentum)."""
    for p in params:
        for d in p.list_data():
            if reset:
                d *= 0
            d._fresh_grad = True        # what backward() would set
        if len(p.list_ctx()) > 1:
            # Reducing over devices sums the gradients in place.
            for g in p.list_grad():
                g[:] = 1
    trainer.step(len(params[0].list_ctx()))


def _applied(trainer, params, updates: int) -> np.ndarray:
    """(updates, len(params)): the rate each weight got at each update."""
    out = np.empty((updates, len(params)))
    for k in range(updates):
        _step(trainer, params)
        out[k] = [-p.list_data()[0].asnumpy()[0] for p in params]
    return out


def _f32(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float32).astype(np.float64)


# -- applied rate: every schedule in the catalog ---------------------------

# A constant's window cannot show an index shift: it is covered by parity.
CHANGING = [(n, s) for n, s in samples(3) if n != "constant"]


def _window(sched, spe: int = 1) -> int:
    """Updates to run so that the applied rates change at least once (a
    ReduceOnPlateau changes through observe(), see _run)."""
    if sched.stateful:
        return HORIZON
    epochs = sched.values(np.arange(2000))
    changes = np.flatnonzero(epochs[1:] != epochs[:-1])
    assert changes.size, f"{sched!r} is constant: no window shows a shift"
    return max(HORIZON, spe * (int(changes[0]) + 3))


def _run(trainer, ps, adapter, updates: int, spe: int = 1):
    """(applied rates per update and weight, sched(k // spe) per update);
    a ReduceOnPlateau observes a worsening metric every 10 updates."""
    sched, got, want = adapter.schedule, [], []
    for k in range(updates):
        want.append(sched(k // spe))
        got.append(_applied(trainer, ps, 1)[0])
        if sched.stateful and k % 10 == 9:
            adapter.observe(k if sched.mode == "min" else -k)
    assert len(set(want)) > 1, "the window shows no change of rate"
    return np.array(got), np.array(want)


@pytest.mark.parametrize("name, seed", CHANGING)
def test_applied_rate_is_sched_of_k(name, seed):
    """Update k applies sched(k); a weight with lr_mult m gets m*sched(k).
    Momentum cycles are off here (momentum=False), see the momentum
    tests."""
    sched = copy.deepcopy(draw(name, seed))
    ps = [_param("a"), _param("b")]
    trainer = _trainer(ps)
    mult = 0.25 + 0.5 * seed
    adapter = usm.bind(sched, trainer, multipliers={"b": mult},
                       momentum=False)
    assert [p.lr_mult for p in ps] == [1.0, mult]
    got, want = _run(trainer, ps, adapter, _window(sched))
    np.testing.assert_array_equal(got[:, 0], _f32(want))
    np.testing.assert_array_equal(got[:, 1], _f32(mult * want))


@pytest.mark.parametrize("name, seed", CHANGING)
def test_applied_rate_unit_epoch(name, seed):
    sched = copy.deepcopy(draw(name, seed))
    spe = 1 + 3 * seed          # 1, 4, 7 updates per epoch
    p = _param()
    trainer = _trainer([p])
    adapter = usm.bind(sched, trainer, unit="epoch", steps_per_epoch=spe,
                       momentum=False)
    updates = _window(sched, spe)
    got, want = _run(trainer, [p], adapter, updates, spe)
    np.testing.assert_array_equal(got[:, 0], _f32(want))
    if not sched.stateful:
        np.testing.assert_array_equal(got[:, 0], _f32(us.epochwise(
            sched, spe).values(np.arange(updates))))


def test_step_cache_blocks_over_600_updates():
    """Issue 15: a wrong look-up of the cache's second block crashed at
    update 256, past every test's length.  600 updates (three blocks of
    256) under a real Trainer: every applied rate is sched(k)."""
    sched = us.CosineScheduler(600, base_lr=0.5, final_lr=0.01,
                               warmup_steps=30)
    ps = [_param("a"), _param("b")]     # two calls per update
    trainer = _trainer(ps)
    adapter = usm.bind(sched, trainer, multipliers=[1.0, 0.5])
    got = _applied(trainer, ps, 600)
    want = sched.values(np.arange(600))
    assert len(np.unique(want[250:262])) == 12    # changes at the border
    np.testing.assert_array_equal(got[:, 0], _f32(want))
    np.testing.assert_array_equal(got[:, 1], _f32(0.5 * want))
    assert adapter.updates_done == 600


def test_trainer_learning_rate_reads_last_update():
    sched = us.ExponentialScheduler(1.0, factor=0.5)
    p = _param()
    trainer = _trainer([p])
    usm.bind(sched, trainer)
    assert trainer.learning_rate == 1.0          # before any update
    _step(trainer, [p])
    _step(trainer, [p])
    assert trainer.learning_rate == 0.5          # the rate update 1 used
    assert trainer.optimizer.num_update == 2


# -- momentum ----------------------------------------------------------------

@pytest.mark.parametrize("name, seed", [(n, s) for n in ("cyclic",
                                                          "one_cycle")
                                        for s in range(3)])
def test_sgd_momentum_follows_schedule(name, seed):
    """MXNet's SGD: mom = momentum * mom - lr * grad; w += mom.  With the
    weight zeroed before each update, w after update k is mom_k, so the
    momentum used at k is (mom_k + lr_k) / mom_{k-1}."""
    sched = draw(name, seed)
    p = _param()
    trainer = _trainer([p])                     # plain SGD, momentum 0
    adapter = usm.bind(sched, trainer)
    assert list(adapter.hparams) == ["momentum"]
    moms = []
    for _ in range(HORIZON):
        _step(trainer, [p])
        moms.append(p.data().asnumpy()[0])
    moms = np.array(moms)
    lr = _f32([sched(k) for k in range(HORIZON)])
    mu = _f32([sched.momentum(k) for k in range(HORIZON)])
    sim, buf = [], 0.0
    for k in range(HORIZON):
        buf = mu[k] * buf - lr[k]
        sim.append(buf)
    np.testing.assert_allclose(moms, sim, rtol=1e-12, atol=0)
    used = (moms[1:] + lr[1:]) / moms[:-1]
    np.testing.assert_allclose(used, mu[1:], rtol=1e-6)
    # One update off would be visibly different.
    assert not np.allclose(used[1:], mu[1:-1], rtol=1e-6)


def test_momentum_in_epoch_units():
    sched = us.OneCycleScheduler(0.5, 12, pct_start=0.4)
    spe = 5
    p = _param()
    trainer = _trainer([p], momentum=0.9)
    usm.bind(sched, trainer, unit="epoch", steps_per_epoch=spe)
    seen = []
    for _ in range(60):
        _step(trainer, [p])
        seen.append(trainer.optimizer.momentum)
    assert seen == [sched.momentum(k // spe) for k in range(60)]


def _spy(base: type, name: str, log: list) -> type:
    """``base`` with attribute ``name`` logging (num_update, value) at
    every read."""
    def get(self):
        value = self.__dict__["_spy"]
        log.append((self.num_update, value))
        return value

    def put(self, value):
        self.__dict__["_spy"] = value

    return type(f"Spy{base.__name__}", (base,), {name: property(get, put)})


@pytest.mark.parametrize("klass, name", [
    (k, n) for k, names in usm.SCHEDULABLE.items() for n in names.values()])
def test_hparam_read_in_the_update_it_was_set_for(klass, name):
    """Every read the optimizer makes of the hyperparameter during update k
    (num_update = k + 1) sees hp(k): the scheduler call comes first.
    The hyperparameter is given by the optimizer's own attribute name."""
    log: list = []
    hp = us.ExponentialScheduler(0.9, factor=0.97)
    opt = _spy(klass, name, log)(**{name: 0.5})
    p = _param(dtype="float32")
    trainer = gluon.Trainer([p], opt)
    usm.bind(us.ConstantScheduler(0.01), trainer, hparams={name: hp})
    log.clear()                         # bind's own checks read it too
    for _ in range(6):
        _step(trainer, [p])
    reads = {n for n, _ in log}
    assert reads >= set(range(1, 7))
    for n, value in log:
        # values() and a scalar call may differ in the last bit
        assert value == pytest.approx(hp(max(n - 1, 0)), rel=1e-14), \
            (n, value)


# -- per-parameter multipliers ----------------------------------------------

def test_multipliers_set_lr_mult_and_unbind_restores_them():
    ps = [_param("net_a_weight"), _param("net_a_bias"), _param("net_b")]
    ps[2].lr_mult = 3.0                     # MXNet's own per-parameter rate
    trainer = _trainer(ps)
    adapter = usm.bind("constant(0.5)", trainer,
                       multipliers={r"net_a_.*": 0.5})
    # Parameters no pattern matches get 1 (the contract), not their own.
    assert [p.lr_mult for p in ps] == [0.5, 0.5, 1.0]
    assert list(_applied(trainer, ps, 1)[0]) == [0.25, 0.25, 0.5]
    adapter.unbind()
    assert [p.lr_mult for p in ps] == [1.0, 1.0, 3.0]
    assert trainer.optimizer.lr_scheduler is None
    usm.bind("constant(0.5)", trainer, multipliers=[2.0, 0.0, 1.0])
    assert list(_applied(trainer, ps, 1)[0]) == [1.0, 0.0, 0.5]


def test_own_lr_mult_is_kept_and_shown():
    ps = [_param("a"), _param("b")]
    ps[1].lr_mult = 0.1
    trainer = _trainer(ps)
    adapter = usm.bind("constant(0.5)", trainer)
    assert adapter.multipliers is None
    assert repr(adapter) == ("LRScheduler(constant(base_lr=0.5); keeps the "
                             "parameters' own lr_mult {'b': 0.1})")
    np.testing.assert_array_equal(_applied(trainer, ps, 1)[0],
                                  [0.5, _f32(0.5) * _f32(0.1)])
    plain = usm.bind("constant(0.5)", _trainer([_param("c")]))
    assert repr(plain) == "LRScheduler(constant(base_lr=0.5))"


def test_multipliers_errors_change_nothing():
    ps = [_param("a"), _param("b")]
    trainer = _trainer(ps)
    with pytest.raises(ValueError, match="2 entries but the optimizer has "
                       "3 parameter group"):
        usm.bind("constant(0.1)", _trainer(ps + [_param("c")]),
                 multipliers=[1.0, 2.0])
    with pytest.raises(ValueError, match="'c' matches no parameter; "
                       r"parameters: \['a', 'b'\]"):
        usm.bind("constant(0.1)", trainer, multipliers={"c": 1.0})
    with pytest.raises(ValueError, match=r"multipliers\['a'\] must be"):
        usm.bind("constant(0.1)", trainer, multipliers={"a": -1})
    assert [p.lr_mult for p in ps] == [1.0, 1.0]
    assert trainer.optimizer.lr_scheduler is None


def _warm(rng, base: float) -> dict:
    if rng.random() < 0.3:
        return {}
    return dict(warmup_steps=int(rng.integers(1, 12)),
                warmup_begin_lr=float(base * rng.uniform(0, 1)),
                warmup_mode=str(rng.choice(["linear", "constant"])))


def _native(kind: str, seed: int):
    rng = np.random.default_rng([seed, len(kind)])
    base = float(np.exp(rng.uniform(-5, 0)))
    if kind == "factor":
        return L.FactorScheduler(
            step=int(rng.integers(1, 12)),
            factor=float(rng.choice([0.0, 1.0, rng.uniform(0.1, 1)])),
            stop_factor_lr=float(base * rng.choice([0, 1e-8, 0.3, 2.0])),
            base_lr=base, **_warm(rng, base))
    if kind == "multi_factor":
        steps = sorted(int(v) for v in rng.choice(
            np.arange(1, 40), int(rng.integers(1, 5)), replace=False))
        return L.MultiFactorScheduler(step=steps,
                                      factor=float(rng.uniform(0, 1)),
                                      base_lr=base, **_warm(rng, base))
    top = int(rng.integers(1, 50))
    warm = _warm(rng, base)
    if warm.get("warmup_steps") == top:
        warm["warmup_steps"] += 1
    if kind == "poly":
        return L.PolyScheduler(top, base, pwr=float(rng.choice(
            [1.0, 2.0, 0.5, rng.uniform(0.3, 4)])),
            final_lr=float(base * rng.uniform(0, 0.3)), **warm)
    if warm.get("warmup_steps") == top:
        top += 1
    return L.CosineScheduler(top, base, final_lr=float(
        base * rng.uniform(0, 0.3)), **warm)


EDGE_CASES = {
    "factor_warmup_inside_period": lambda: L.FactorScheduler(
        4, 0.5, base_lr=1.0, warmup_steps=6, warmup_begin_lr=0.1),
    "factor_warmup_on_period": lambda: L.FactorScheduler(
        3, 0.5, base_lr=1.0, warmup_steps=4, warmup_mode="constant",
        warmup_begin_lr=0.2),
    "factor_stop_above_base": lambda: L.FactorScheduler(
        5, 0.5, stop_factor_lr=2.0, base_lr=1.0),
    "factor_zero": lambda: L.FactorScheduler(2, 0.0, stop_factor_lr=0.0,
                                             base_lr=1.0, warmup_steps=5),
    "multi_factor_milestone_1": lambda: L.MultiFactorScheduler(
        [1, 3, 9], 0.5, base_lr=1.0),
    "multi_factor_milestones_in_warmup": lambda: L.MultiFactorScheduler(
        [1, 2, 8], 0.5, base_lr=1.0, warmup_steps=5, warmup_begin_lr=0.1),
    "multi_factor_optimizer_set_base": lambda: _overwritten(
        L.MultiFactorScheduler([10], 0.5, base_lr=1.0, warmup_steps=4)),
    "poly_no_warmup": lambda: L.PolyScheduler(30, 1.0, pwr=2, final_lr=0.1),
    "poly_one_step": lambda: L.PolyScheduler(1, 1.0, final_lr=0.1),
    "poly_warmup_past_max": lambda: L.PolyScheduler(
        5, 1.0, warmup_steps=8, warmup_begin_lr=0.5),
    "cosine_warmup_1": lambda: L.CosineScheduler(20, 1.0, 0.1,
                                                 warmup_steps=1),
    "cosine_one_step": lambda: L.CosineScheduler(1, 1.0, 0.1),
    # the d2l chapter's cosine: no warmup, so shifted by one update
    "cosine_d2l": lambda: L.CosineScheduler(20, 0.5, 0.01),
    "cosine_called_before": lambda: _called(L.CosineScheduler(
        20, 1.0, 0.1, warmup_steps=3), 30),
}


def _overwritten(native):
    """As after ``Optimizer(learning_rate=0.3, lr_scheduler=native)``:
    base_lr is 0.3, the warmup still ends at the original 1.0."""
    native.base_lr = 0.3
    return native


def _called(native, count: int):
    for n in range(count):
        native(n)
    return native


NATIVE_CASES = ([(kind, seed) for kind in ("factor", "multi_factor", "poly",
                                           "cosine") for seed in range(8)]
                + [(name, None) for name in EDGE_CASES])


@pytest.mark.parametrize("kind, seed", NATIVE_CASES)
def test_from_native_same_rate_at_same_update(kind, seed):
    native = EDGE_CASES[kind]() if seed is None else _native(kind, seed)
    converted = usm.from_native(native)
    # The definition: update k gets native(k + 1) (native called in order).
    calls = copy.deepcopy(native)
    direct = [calls(n) for n in range(1, 81)]
    np.testing.assert_allclose(converted.values(np.arange(80)), direct,
                               rtol=1e-12, atol=0)
    # And what the two Trainers really apply.
    pn, pu = _param("n"), _param("u")
    tn = _trainer([pn], lr_scheduler=native)
    tu = _trainer([pu])
    usm.bind(converted, tu)
    got_n, got_u = _applied(tn, [pn], 80), _applied(tu, [pu], 80)
    np.testing.assert_allclose(got_u, got_n, rtol=2.0 ** -23, atol=0)
    # Round trip: the conversion is a plain unisched schedule.
    assert us.from_config(converted.to_config()) == converted


def test_native_index_shift_literal():
    """MXNet's MultiFactorScheduler(step=[15]) decays when num_update > 15;
    under a Trainer num_update is 16 at update index 15, so the decayed
    rate is first applied at index 15, which unisched writes as step=[14].
    Called with 0, 1, 2, ... (as the d2l chapter plots it) it decays at 16.
    """
    native = L.MultiFactorScheduler(step=[15], factor=0.5, base_lr=1.0)
    plot = copy.deepcopy(native)
    plotted = [plot(n) for n in range(18)]
    assert plotted.index(0.5) == 16
    assert usm.from_native(native) == us.MultiFactorScheduler(
        [14], 0.5, base_lr=1.0)
    p = _param()
    rates = _applied(_trainer([p], lr_scheduler=native), [p], 18)[:, 0]
    assert list(rates[13:17]) == [1.0, 1.0, 0.5, 0.5]
    # The same numbers given to unisched mean "after update 15".
    q = _param()
    trainer = _trainer([q])
    usm.bind(us.MultiFactorScheduler([15], 0.5, base_lr=1.0), trainer)
    assert list(_applied(trainer, [q], 18)[13:17, 0]) == [1.0, 1.0, 1.0,
                                                          0.5]


def test_native_warmup_shift_literal():
    """A 4-step linear warmup under a Trainer applies n / 4 at update
    n - 1: 0.25, 0.5, 0.75, then the cosine from its top."""
    native = L.CosineScheduler(max_update=10, base_lr=1.0, warmup_steps=4)
    assert usm.from_native(native) == us.CosineScheduler(
        9, base_lr=1.0, warmup_steps=3, warmup_begin_lr=0.25)
    p = _param()
    rates = _applied(_trainer([p], lr_scheduler=native), [p], 5)[:, 0]
    assert list(rates[:4]) == [0.25, 0.5, 0.75, 1.0]
    assert rates[4] == pytest.approx((1 + np.cos(np.pi / 6)) / 2, rel=1e-7)
    # Factor decays when num_update > 10 * j: from update 10 * j on, a
    # staircase exponential in k (floored at stop_factor_lr).
    factor = L.FactorScheduler(step=10, factor=0.5, base_lr=1.0)
    assert usm.from_native(factor) == us.floor(us.ExponentialScheduler(
        1.0, 0.5, 10, staircase=True), 1e-8)
    q = _param()
    got = _applied(_trainer([q], lr_scheduler=factor), [q], 21)[:, 0]
    assert list(got[[0, 9, 10, 19, 20]]) == [1.0, 1.0, 0.5, 0.5, 0.25]


def test_from_native_refuses_what_it_cannot_convert():
    supported = ("CosineScheduler, FactorScheduler, LRScheduler, "
                 "MultiFactorScheduler, PolyScheduler; got")

    class Mine(L.CosineScheduler):
        pass

    class MyAdapter(usm.LRScheduler):
        pass

    for obj in (object(), L.LRScheduler(), Mine(10, warmup_steps=2),
                MyAdapter(us.ConstantScheduler(0.1))):
        with pytest.raises(TypeError) as err:
            usm.from_native(obj)
        assert supported in str(err.value)
        assert str(err.value).endswith(type(obj).__qualname__)
    stepped = _called(L.FactorScheduler(2, 0.5, base_lr=1.0), 4)
    with pytest.raises(ValueError, match="^cannot convert mxnet.lr_scheduler"
                       ".FactorScheduler: count=2: .*build a fresh one"):
        usm.from_native(stepped)
    stepped = _called(L.MultiFactorScheduler([2], 0.5, base_lr=1.0), 4)
    with pytest.raises(ValueError, match="MultiFactorScheduler: "
                       "cur_step_ind=1: "):
        usm.from_native(stepped)
    same = L.PolyScheduler(5, 1.0, warmup_steps=5)
    with pytest.raises(ValueError, match="PolyScheduler: warmup_steps=5 == "
                       "max_update=5"):
        usm.from_native(same)
    # ...because MXNet itself fails there.
    p = _param()
    with pytest.raises(ZeroDivisionError):
        _applied(_trainer([p], lr_scheduler=same), [p], 5)
    with pytest.raises(ValueError, match="power=0: the exponent must be"):
        usm.from_native(L.PolyScheduler(5, 1.0, pwr=0))


def test_from_native_of_an_adapter_and_dispatch():
    sched = us.CosineScheduler(20, base_lr=0.5)
    assert usm.from_native(usm.LRScheduler(sched)) == sched
    assert usm.from_native(usm.LRScheduler(
        sched, unit="epoch", steps_per_epoch=3)) == us.epochwise(sched, 3)
    assert us.from_native(L.PolyScheduler(10, 1.0, warmup_steps=2)) == \
        us.PolyScheduler(9, 1.0, warmup_steps=1, warmup_begin_lr=0.5)
    p = _param()
    trainer = _trainer([p])
    assert isinstance(us.bind("constant(0.2)", trainer), usm.LRScheduler)
    assert _applied(trainer, [p], 1)[0, 0] == _f32(0.2)


# -- saving, loading, pickling ---------------------------------------------

RESUME_SPLIT, RESUME_TOTAL = 25, 60
METRICS = [1.0, 1.2, 0.9, 1.5, 1.6]


def _resume_setup(name: str):
    """A fresh model + Trainer for scenario ``name`` (no schedule bound)."""
    ps = [_param(f"{name}_a"), _param(f"{name}_b")]
    trainer = _trainer(ps, momentum=0.9 if name == "one_cycle" else 0.0)
    return ps, trainer


def _resume_bind(name: str, trainer):
    # lr_mult is not in save_states: the adapter sets it again on loading.
    return usm.bind(_resume_schedule(name), trainer,
                    multipliers={f"{name}_b": 0.5})


def _resume_schedule(name: str) -> us.Schedule:
    if name == "one_cycle":
        return us.OneCycleScheduler(0.5, 50, pct_start=0.3)
    return us.ReduceOnPlateau(us.CosineScheduler(60, 0.3, 0.01),
                              factor=0.5, patience=0)


def _resume_run(name, trainer, ps, start: int, stop: int) -> list:
    """Updates start..stop-1 (weights not reset: momentum buffers and
    weights carry over); the plateau schedule observes a metric every 10
    updates through attached(trainer), the adapter in use."""
    out = []
    for k in range(start, stop):
        _step(trainer, ps, reset=False)
        out.append([float(p.data().asnumpy()[0]) for p in ps])
        if name == "plateau" and (k + 1) % 10 == 0:
            usm.attached(trainer).observe(METRICS[k // 10 % 5])
    return out


def _resume_second_half(folder: str) -> dict:
    """Run in a fresh process: load and continue each scenario."""
    result = {}
    for name in ("one_cycle", "plateau"):
        ps, trainer = _resume_setup(name)
        saved = mx.nd.load(os.path.join(folder, f"{name}.params"))
        for p in ps:
            p.set_data(saved[p.name])
        trainer.load_states(os.path.join(folder, f"{name}.states"))
        adapter = usm.attached(trainer)
        result[name] = {
            "num_update": trainer.optimizer.num_update,
            "updates_done": adapter.updates_done,
            "multipliers": adapter.multipliers,
            "momentum_driven": list(adapter.hparams),
            "scale": getattr(adapter.schedule, "scale", None),
            "weights": _resume_run(name, trainer, ps, RESUME_SPLIT,
                                   RESUME_TOTAL)}
    return result


def test_resume_in_a_fresh_process(tmp_path):
    """Train, save_states + params, continue in a new Python process with
    no bind: the weights (so every rate, multiplier and momentum) equal an
    uninterrupted run's bit for bit; the position, the multipliers and
    the plateau cuts come back."""
    whole = {}
    for name in ("one_cycle", "plateau"):
        ps, trainer = _resume_setup(name)
        _resume_bind(name, trainer)
        whole[name] = _resume_run(name, trainer, ps, 0, RESUME_TOTAL)
        ps, trainer = _resume_setup(name)
        _resume_bind(name, trainer)
        _resume_run(name, trainer, ps, 0, RESUME_SPLIT)
        mx.nd.save(str(tmp_path / f"{name}.params"),
                   {p.name: p.data() for p in ps})
        trainer.save_states(str(tmp_path / f"{name}.states"))
    here = os.path.dirname(__file__)
    code = ("import json, sys, warnings\n"
            "warnings.simplefilter('ignore')\n"
            f"sys.path.insert(0, {here!r})\n"
            f"sys.path.insert(0, {os.path.dirname(here)!r})\n"
            "import test_mxnet as t\n"
            f"print(json.dumps(t._resume_second_half({str(tmp_path)!r})))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    second = json.loads(done.stdout.strip().splitlines()[-1])
    assert second["one_cycle"]["num_update"] == RESUME_SPLIT
    assert second["plateau"]["updates_done"] == RESUME_SPLIT
    assert second["plateau"]["multipliers"] == {"plateau_b": 0.5}
    assert second["one_cycle"]["momentum_driven"] == ["momentum"]
    assert second["plateau"]["scale"] == 0.5   # 1.0, then 1.2: one cut
    for name in whole:
        np.testing.assert_array_equal(second[name]["weights"],
                                      whole[name][RESUME_SPLIT:])


def test_save_load_in_process_keeps_plateau_state(tmp_path):
    sched = us.ReduceOnPlateau(0.1, factor=0.5, patience=0)
    p = _param()
    trainer = _trainer([p])
    adapter = usm.bind(sched, trainer)
    _applied(trainer, [p], 3)
    sched.observe(1.0)
    sched.observe(2.0)                  # not better: cut
    assert _applied(trainer, [p], 1)[0, 0] == _f32(0.05)
    trainer.save_states(str(tmp_path / "s"))
    q = _param()
    fresh = _trainer([q])
    fresh.load_states(str(tmp_path / "s"))
    loaded = usm.attached(fresh)
    assert loaded is not adapter and loaded.schedule == sched
    assert fresh.optimizer.num_update == 4
    loaded.schedule.observe(3.0)        # cuts the loaded copy only
    assert _applied(fresh, [q], 1)[0, 0] == _f32(0.025)
    assert _applied(trainer, [p], 1)[0, 0] == _f32(0.05)


@pytest.mark.parametrize("protocol", [0, pickle.HIGHEST_PROTOCOL])
def test_pickle_adapter_and_optimizer(protocol):
    """Protocol 0 is what a dist kvstore uses to ship the optimizer."""
    sched = us.ReduceOnPlateau(us.OneCycleScheduler(1.0, 30), patience=0)
    sched.observe(1.0)
    sched.observe(1.0)
    p = _param()
    trainer = _trainer([p])
    adapter = usm.bind(sched, trainer, unit="epoch", steps_per_epoch=2)
    opt = pickle.loads(pickle.dumps(trainer.optimizer, protocol))
    back = opt.lr_scheduler
    assert isinstance(back, usm.LRScheduler) and back is not adapter
    assert back._optimizer is opt        # the link survives the pickle
    assert back.schedule == sched and back.schedule.scale == 0.1
    assert (back.unit, back.steps_per_epoch) == ("epoch", 2)
    for n in range(1, 40):
        assert back(n) == adapter(n) == sched((n - 1) // 2)
        assert opt.momentum == trainer.optimizer.momentum == \
            sched.momentum((n - 1) // 2)
    alone = pickle.loads(pickle.dumps(adapter, protocol))
    assert alone.schedule == sched and alone(7) == adapter(7)
    assert repr(alone) == repr(adapter)


def test_kvstore_on_two_devices(tmp_path):
    """Two CPU contexts: the Trainer sums gradients over a kvstore and
    updates either in the kvstore or per device; both use sched(k), and
    save/load through the kvstore keeps counting."""
    sched = us.CosineScheduler(12, base_lr=0.5, final_lr=0.05)
    ctx = [mx.cpu(0), mx.cpu(1)]

    def weights(trainer, p, updates):
        # The kvstore keeps its own copy of the weight: no zeroing here.
        out = []
        for _ in range(updates):
            _step(trainer, [p], reset=False)
            out.append([d.asnumpy()[0] for d in p.list_data()])
        return np.array(out)

    rates = _f32(sched.values(range(14)))
    for on_kv in (True, False):
        p = _param(f"kv{on_kv}", ctx=ctx)
        trainer = gluon.Trainer([p], "sgd", update_on_kvstore=on_kv)
        usm.bind(sched, trainer)
        got = weights(trainer, p, 8)
        assert trainer._update_on_kvstore is on_kv
        for device in range(2):
            np.testing.assert_allclose(got[:, device],
                                       -np.cumsum(rates[:8]), rtol=1e-12)
        trainer.save_states(str(tmp_path / f"{on_kv}"))
        q = _param(f"kv{on_kv}", ctx=ctx)
        fresh = gluon.Trainer([q], "sgd", update_on_kvstore=on_kv)
        fresh.load_states(str(tmp_path / f"{on_kv}"))
        got = weights(fresh, q, 6)
        np.testing.assert_allclose(got[:, 0], -np.cumsum(rates[8:]),
                                   rtol=1e-12)


# -- base_lr, attach, errors -------------------------------------------------

def test_learning_rate_argument_is_ignored_with_a_warning():
    adapter = usm.LRScheduler(us.ConstantScheduler(0.1))
    assert adapter.base_lr == 0.1
    p = _param()
    with pytest.warns(UserWarning, match="learning_rate=0.5 .* ignored"):
        trainer = _trainer([p], learning_rate=0.5, lr_scheduler=adapter)
    assert _applied(trainer, [p], 2)[:, 0].tolist() == [_f32(0.1)] * 2
    p = _param()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _trainer([p], learning_rate=0.1, lr_scheduler=usm.LRScheduler(
            us.ConstantScheduler(0.1)))
    assert not [w for w in caught if w.category is UserWarning]


def test_unbound_adapter_schedules_the_rate_only():
    """Given straight to a Trainer the adapter schedules the rate; bind
    replaces it (and drives momentum), unbind gives it back."""
    sched = us.CyclicScheduler(0.1, 1.0, 4)
    p = _param()
    plain = usm.LRScheduler(sched)
    trainer = _trainer([p], lr_scheduler=plain, momentum=0.5)
    assert _applied(trainer, [p], 1)[0, 0] == _f32(0.1)
    assert trainer.optimizer.momentum == 0.5
    with pytest.raises(RuntimeError, match="not bound"):
        _ = plain.updates_done
    adapter = usm.bind(sched, trainer)
    _step(trainer, [p])
    assert trainer.optimizer.momentum == sched.momentum(0)
    adapter.unbind()
    assert trainer.optimizer.lr_scheduler is plain
    assert trainer.optimizer.momentum == 0.5


def test_default_hparams_per_optimizer():
    sched = us.OneCycleScheduler(1.0, 20)
    p = _param()
    assert list(usm.bind(sched, _trainer([p], "adam")).hparams) == ["beta1"]
    with pytest.raises(ValueError, match="AdaGrad has neither momentum nor "
                       "beta1; pass momentum=False"):
        usm.bind(sched, _trainer([p], "adagrad"))
    assert usm.bind(sched, _trainer([p], "adagrad"),
                    momentum=False).hparams == {}
    assert usm.bind(sched, _trainer([p]), momentum=False).hparams == {}
    plain = usm.bind(us.CosineScheduler(10), _trainer([p]))
    assert plain.hparams == {}
    trainer = _trainer([p])
    fixed = usm.bind(sched, trainer, momentum=0.8)
    assert fixed.hparams == {"momentum": us.ConstantScheduler(0.8)}
    assert trainer.optimizer.momentum == 0.8
    trainer = _trainer([p], "adam")
    both = usm.bind(sched, trainer, hparams={"wd": "constant(0.01)",
                                             "beta2": 0.99})
    assert sorted(both.hparams) == ["beta1", "beta2", "weight_decay"]
    assert (trainer.optimizer.wd, trainer.optimizer.beta2) == (0.01, 0.99)


def test_bind_errors():
    sched = us.CosineScheduler(10)
    p = _param()
    trainer = _trainer([p])
    with pytest.raises(TypeError, match="gluon.Trainer .*got builtins.obj"):
        usm.bind(sched, object())
    with pytest.raises(TypeError, match="sched must be"):
        usm.bind([0.1], trainer)
    with pytest.raises(us.SpecError):
        usm.bind("cosine(", trainer)
    with pytest.raises(ValueError, match="unit must be one of.*'epochs'"):
        usm.bind(sched, trainer, unit="epochs")
    with pytest.raises(ValueError, match="steps_per_epoch is required"):
        usm.bind(sched, trainer, unit="epoch")
    with pytest.raises(ValueError, match="steps_per_epoch must be >= 1"):
        usm.bind(sched, trainer, unit="epoch", steps_per_epoch=0)
    with pytest.raises(ValueError, match="steps_per_epoch must be an int"):
        usm.bind(sched, trainer, unit="epoch", steps_per_epoch=2.5)
    with pytest.raises(ValueError, match="only for unit='epoch'"):
        usm.bind(sched, trainer, steps_per_epoch=3)
    with pytest.raises(ValueError, match="on_mismatch must be one of"):
        usm.bind(sched, trainer, on_mismatch="ignore")
    with pytest.raises(TypeError, match=r"hparams\['momentum'\] must be"):
        usm.bind(sched, trainer, hparams={"momentum": [0.9]})
    with pytest.raises(TypeError, match="momentum must be 'auto', False"):
        usm.bind(sched, trainer, momentum=True)
    mom = us.ConstantScheduler(0.9)
    with pytest.raises(ValueError, match="hparams names 'nesterov', which "
                       "SGD does not have"):
        usm.bind(sched, trainer, hparams={"nesterov": mom})
    with pytest.raises(ValueError, match="'momentum', which Adam does not"):
        usm.bind(sched, _trainer([p], "adam"), hparams={"momentum": mom})
    with pytest.raises(ValueError, match="'beta1', which AdaGrad does not"):
        usm.bind(sched, _trainer([p], "adagrad"), hparams={"beta1": mom})
    for name in ("lbsgd", "adadelta"):
        with pytest.raises(ValueError, match="cannot schedule"):
            usm.bind(sched, _trainer([p], name))
    with pytest.raises(ValueError, match="gives 0 at the first update"):
        usm.bind(sched, trainer, hparams={"momentum": us.ConstantScheduler(
            0.0)})
    _step(trainer, [p])                  # ran with momentum 0: no buffers
    with pytest.raises(ValueError, match="ran 1 updates with momentum=0"):
        usm.bind(us.OneCycleScheduler(1.0, 10), trainer)
    with pytest.raises(ValueError, match="no unisched LRScheduler"):
        usm.attached(_trainer([p]))
    mixed = us.join([us.OneCycleScheduler(1.0, 10), sched], [10])
    with pytest.raises(ValueError, match="momentum=False"):
        usm.bind(mixed, _trainer([p]))
    assert trainer.optimizer.lr_scheduler is None   # nothing half-bound


# -- position, checkpoints and the mismatch policy --------------------------

def test_load_state_dict_sets_the_optimizer_counters():
    """Position K goes into num_update, begin_num_update and every
    per-parameter count (Adam's bias correction reads them), so the next
    update uses sched(K)."""
    sched = us.ExponentialScheduler(1.0, factor=0.5)
    ps = [_param("a"), _param("b")]
    trainer = _trainer(ps, "adam")
    adapter = usm.bind(sched, trainer)
    _applied(trainer, ps, 3)
    state = adapter.state_dict()
    assert state["updates_done"] == 3
    state["updates_done"] = 7
    adapter.load_state_dict(state)
    opt = trainer.optimizer
    assert (opt.num_update, opt.begin_num_update) == (7, 7)
    assert opt._index_update_count == {0: 7, 1: 7}
    assert adapter.updates_done == 7
    assert trainer.learning_rate == sched(6)
    q = _param("c")
    fresh = _trainer([q])               # no update yet: no per-index count
    other = usm.bind(sched, fresh)
    other.load_state_dict(state)
    assert _applied(fresh, [q], 1)[0, 0] == _f32(sched(7))
    assert fresh.optimizer._index_update_count == {0: 8}


def test_rebind_counts_from_zero_and_restores_momentum():
    p = _param()
    trainer = _trainer([p], momentum=0.9)
    usm.bind(us.OneCycleScheduler(1.0, 20), trainer)
    _applied(trainer, [p], 4)
    sched = us.ExponentialScheduler(1.0, factor=0.5)
    adapter = usm.bind(sched, trainer, momentum=False)
    assert trainer.optimizer.momentum == 0.9
    assert adapter.updates_done == 0
    got = _applied(trainer, [p], 3)[:, 0]
    # The buffer carries over (w zeroed: -w = -mom = 0.9 * -mom + lr);
    # the rates start again at 1: update 2 of the new binding uses 0.25.
    assert trainer.optimizer.momentum == 0.9
    assert adapter.updates_done == 3 and trainer.optimizer.num_update == 7
    assert got[2] == pytest.approx(0.9 * got[1] + 0.25, rel=1e-6)


def _checkpoint(folder, sched="cosine(max_update=40, base_lr=0.5)"):
    p = _param("w")
    trainer = _trainer([p], momentum=0.9)
    usm.bind(sched, trainer)
    _applied(trainer, [p], 6)
    trainer.save_states(str(folder / "t.states"))
    return str(folder / "t.states")


@pytest.mark.parametrize("order", ["bind_then_load", "load_then_bind"])
@pytest.mark.parametrize("policy", ["error", "checkpoint", "bound"])
def test_mismatch_policy_does_not_depend_on_the_order(tmp_path, order,
                                                      policy):
    path = _checkpoint(tmp_path)
    p = _param("w")
    trainer = _trainer([p], momentum=0.9)

    def bind():
        return usm.bind("constant(0.2)", trainer, on_mismatch=policy)

    if order == "bind_then_load":
        adapter = bind()
        opt = trainer.optimizer
        before = (opt.num_update, dict(trainer._updaters[0].states))
        load = lambda: trainer.load_states(path)   # noqa: E731
    else:
        trainer.load_states(path)
        opt = trainer.optimizer
        before = (opt.num_update, dict(trainer._updaters[0].states))
        load = bind
    if policy == "error":
        with pytest.raises(ValueError, match=r"checkpoint cosine\(max_"
                           r"update=40, base_lr=0.5\); bound constant\("
                           r"base_lr=0.2\)"):
            load()
        # The trainer is exactly as before the failed call.
        assert trainer.optimizer is opt
        assert (opt.num_update, trainer._updaters[0].states) == before
        return
    adapter = load() if order == "load_then_bind" else (load(), adapter)[1]
    assert usm.attached(trainer) is adapter
    assert adapter.updates_done == 6
    want = us.CosineScheduler(40, 0.5)(6) if policy == "checkpoint" else 0.2
    assert adapter.schedule == (us.parse("cosine(max_update=40, "
                                         "base_lr=0.5)")
                                if policy == "checkpoint"
                                else us.ConstantScheduler(0.2))
    w0 = p.data().asnumpy()[0]
    mom = trainer._updaters[0].states[0].asnumpy()[0]
    _step(trainer, [p], reset=False)
    # SGD momentum 0.9: the buffer carries over from the checkpoint.
    assert p.data().asnumpy()[0] - w0 == pytest.approx(
        0.9 * mom - float(_f32(want)), rel=1e-6)


def test_docstring_examples():
    assert doctest.testmod(usm, verbose=False).failed == 0
