"""JAX / optax extras beyond the contract suite: one trace per run under
jit and grad, the exactness ranges of the int32 count, the horizon
refusal, per-leaf multipliers on a nested pytree with Adam (parity with
optax's own Adam), the Orbax round trip and from_native's refusals."""
from __future__ import annotations

import functools
import json
import os

import numpy as np
import pytest

jax = pytest.importorskip("jax")
optax = pytest.importorskip("optax")
import jax.numpy as jnp  # noqa: E402
from jax.experimental import disable_x64, enable_x64  # noqa: E402

import unisched as us  # noqa: E402
from unisched.backends import jax as usj  # noqa: E402

COSINE = us.CosineScheduler(max_update=40, base_lr=0.1, final_lr=0.01)


def _loss(params, x):
    return jnp.sum((params["w"] * x - 1.0) ** 2)


def test_a_whole_run_with_plateau_cuts_traces_the_step_once():
    traces = []
    ad = usj.bind(us.ReduceOnPlateau(COSINE, patience=0, factor=0.5),
                  functools.partial(optax.sgd, momentum=0.9))

    @jax.jit
    def step(params, state, x):
        traces.append(1)  # runs only while tracing
        grads = jax.grad(_loss)(params, x)
        updates, state = ad.tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    params = {"w": jnp.zeros(3)}
    state = ad.init(params)
    rates = []
    for k in range(30):
        params, state = step(params, state, jnp.ones(3))
        state = ad.track(state)
        rates.append(float(state.hyperparams["learning_rate"]))
        if k in (9, 19):
            ad.observe(1.0 if k == 9 else 2.0)   # the second one cuts
            state = ad.state
    assert len(traces) == 1
    assert ad.updates_done == 30 and ad.schedule.scale == 0.5
    want = [COSINE(k) * (0.5 if k >= 20 else 1.0) for k in range(30)]
    np.testing.assert_allclose(rates, want, rtol=1e-6)


def test_the_step_index_is_exact_to_2_24_in_float32_and_int32_with_x64():
    edge = 2 ** 24 - 1
    was = jax.config.jax_enable_x64
    with disable_x64():
        f = usj.OptaxSchedule(us.MultiFactorScheduler([edge], 0.5,
                                                      base_lr=1.0))
        counts = jnp.asarray([edge - 1, edge, edge + 1], jnp.int32)
        assert jax.vmap(f)(counts).tolist() == [1.0, 1.0, 0.5]
        # Past 2**24 float32 cannot tell k from k + 1: a documented limit.
        late = us.MultiFactorScheduler([2 ** 24], 0.5, base_lr=1.0)
        assert late(2 ** 24 + 1) == 0.5
        assert float(usj.OptaxSchedule(late)(jnp.int32(2 ** 24 + 1))) \
            == 1.0
    with enable_x64():
        top = 2 ** 31 - 3
        f64 = usj.OptaxSchedule(us.MultiFactorScheduler([top], 0.5,
                                                         base_lr=1.0))
        got = jax.vmap(f64)(jnp.asarray([top, top + 1], jnp.int32))
        assert got.dtype == jnp.float64 and got.tolist() == [1.0, 0.5]
    assert jax.config.jax_enable_x64 == was  # bind never sets it


def test_epoch_index_is_integer_division_exact_over_int32():
    f = usj.OptaxSchedule(us.MultiFactorScheduler([2], 0.5, base_lr=1.0),
                          steps_per_epoch=10 ** 8)
    counts = jnp.asarray([3 * 10 ** 8 - 1, 3 * 10 ** 8], jnp.int32)
    assert jax.vmap(f)(counts).tolist() == [1.0, 0.5]


@pytest.mark.parametrize("sched,options", [
    (us.CosineScheduler(max_update=2 ** 31, base_lr=0.1), {}),
    (us.CosineScheduler(max_update=3000, base_lr=0.1),
     {"unit": "epoch", "steps_per_epoch": 10 ** 6}),
])
def test_a_horizon_past_the_int32_count_is_refused(sched, options):
    with pytest.raises(ValueError, match=r"2\*\*31 - 1"):
        usj.bind(sched, optax.sgd, **options)
    usj.bind(us.CosineScheduler(max_update=2 ** 31 - 1, base_lr=0.1),
             optax.sgd)  # the last reachable horizon binds


def _nested():
    return {"dense": {"kernel": jnp.arange(4.0).reshape(2, 2) / 7,
                      "bias": jnp.ones(2) / 3},
            "head": {"kernel": jnp.full((2,), 0.25)}}


@pytest.mark.parametrize("multipliers,factors", [
    ({"dense/.*": 0.5}, {"dense": 0.5, "head": 1.0}),
    ([0.5, 0.5, 2.0], {"dense": 0.5, "head": 2.0}),  # bias, kernel, head
])
def test_multipliers_scale_adams_final_update_per_leaf(multipliers,
                                                       factors):
    params = _nested()
    assert usj.leaf_names(params) == ["dense/bias", "dense/kernel",
                                      "head/kernel"]
    ad = usj.bind(0.01, optax.adam, multipliers=multipliers)
    own = optax.inject_hyperparams(optax.adam)(learning_rate=0.01)
    state, ref = ad.init(params), own.init(params)
    own_update = jax.jit(own.update)  # as ad.update: the same XLA fusion
    for k in range(5):
        grads = jax.tree_util.tree_map(lambda p, c=k + 1: p * c - 0.1,
                                       params)
        got, state = ad.update(grads, state, params)
        want, ref = own_update(grads, ref, params)
        for key, factor in factors.items():
            # within 2 float32 ulps: XLA fuses the scaling into Adam's
            # arithmetic differently from optax's own chain
            jax.tree_util.tree_map(
                lambda g, w, f=factor: np.testing.assert_allclose(
                    g, w * f, rtol=2.5e-7), got[key], want[key])


def test_orbax_round_trip_continues_bitwise(tmp_path):
    factory = functools.partial(optax.adam, b2=0.99)
    sched = us.OneCycleScheduler(0.1, 30)
    params = _nested()
    grads = jax.tree_util.tree_map(lambda p: p - 0.5, params)
    ad = usj.bind(sched, factory)
    state = ad.init(params)
    for _ in range(7):
        _, state = ad.update(grads, state, params)
    usj.save(str(tmp_path), ad, params=params)
    on = [ad.update(grads, state, params)[0] for _ in range(1)]
    blank = jax.tree_util.tree_map(jnp.zeros_like, params)
    back, restored, got_params = usj.restore(str(tmp_path), factory, blank)
    assert back.updates_done == 7 and back.schedule == sched
    assert back.hparams == {"beta1": sched.momentum}
    jax.tree_util.tree_map(np.testing.assert_array_equal, got_params,
                           params)
    jax.tree_util.tree_map(np.testing.assert_array_equal,
                           restored.inner_state, state.inner_state)
    again, _ = back.update(grads, restored, params)
    jax.tree_util.tree_map(np.testing.assert_array_equal, again, on[0])


def test_orbax_save_commits_last_a_failed_save_keeps_the_previous(
        tmp_path, monkeypatch):
    """The JSON that names the state folder is written last: a save that
    dies before it leaves the previous checkpoint whole and loadable,
    and a completed save leaves one state folder."""
    from unisched.backends.jax import native
    factory = functools.partial(optax.sgd, momentum=0.9)
    params, grads = {"w": jnp.ones(3)}, {"w": jnp.full(3, 0.5)}
    ad = usj.bind(us.CosineScheduler(20, 0.1), factory)
    state = ad.init(params)
    for _ in range(3):
        _, state = ad.update(grads, state, params)
    usj.save(str(tmp_path), ad, params=params)
    for _ in range(2):
        _, state = ad.update(grads, state, params)

    def dies(*args, **kwargs):
        raise KeyboardInterrupt("killed")
    monkeypatch.setattr(native, "write_text", dies)
    with pytest.raises(KeyboardInterrupt):
        usj.save(str(tmp_path), ad, params=params)
    monkeypatch.undo()
    back, restored, _ = usj.restore(str(tmp_path), factory, params)
    assert back.updates_done == 3 and int(restored.count) == 3
    usj.save(str(tmp_path), ad, params=params)
    assert sorted(e for e in os.listdir(tmp_path)
                  if e.startswith("state")) == [
        json.load(open(tmp_path / "unisched.json"))["state_dir"]]
    assert usj.restore(str(tmp_path), factory, params)[0].updates_done == 5


def test_unbind_continues_the_same_state_with_own_hyperparameters():
    factory = functools.partial(optax.sgd, learning_rate=0.2, momentum=0.5)
    ad = usj.bind(us.OneCycleScheduler(0.1, 30), factory)
    params = {"w": jnp.zeros(2)}
    state = ad.init(params)
    for _ in range(3):
        _, state = ad.update({"w": jnp.ones(2)}, state, params)
    tx = ad.unbind()
    state = ad.state
    assert {k: float(v) for k, v in state.hyperparams.items()} == {
        "learning_rate": pytest.approx(0.2), "momentum": 0.5,
        "weight_decay": 0.0}
    trace = float(state.inner_state[1][0].trace["w"][0])
    updates, _ = tx.update({"w": jnp.ones(2)}, state, params)
    assert float(updates["w"][0]) == pytest.approx(
        -0.2 * (1 + 0.5 * trace), rel=1e-6)
    with pytest.raises(RuntimeError, match="unbound"):
        ad.update({"w": jnp.ones(2)}, state, params)


def test_unbind_without_an_own_rate_is_refused():
    ad = usj.bind(0.1, optax.sgd)
    with pytest.raises(ValueError, match="learning_rate"):
        ad.unbind()


@pytest.mark.parametrize("target,shown", [
    (optax.sgd(0.1), "GradientTransformation"),
    (object(), "object"),
])
def test_bind_needs_a_factory(target, shown):
    with pytest.raises(TypeError, match=shown):
        usj.bind(0.1, target)


def test_from_native_explains_optax_closures_and_states():
    with pytest.raises(TypeError, match="closures"):
        usj.from_native(optax.cosine_decay_schedule(0.1, 100))
    state = optax.inject_hyperparams(optax.sgd)(0.1).init({"w": jnp.ones(1)})
    with pytest.raises(TypeError, match="values of the last update"):
        usj.from_native(state)
    one = us.OneCycleScheduler(0.1, 30)
    assert usj.from_native(usj.bind(one, optax.sgd)) == one
    assert usj.from_native(usj.OptaxSchedule(one)).momentum is None


def test_the_schedule_runs_inside_grad_through_an_update():
    """Differentiating through an optimizer update (as meta-learning
    does) traces the schedule inside ``jax.grad``: the result equals the
    same computation with optax's own SGD at the rate sched(k)."""
    sched = us.MultiFactorScheduler([2], 0.5, base_lr=0.3)
    ad = usj.bind(sched, optax.sgd)
    params = {"w": jnp.array([0.5, -1.0])}
    state = ad.init(params)
    x = jnp.array([1.0, 2.0])

    def after_one_update(tx, state):
        def outer(p):
            updates, _ = tx.update(jax.grad(_loss)(p, x), state, p)
            return _loss(optax.apply_updates(p, updates), x)
        return jax.jit(jax.grad(outer))

    for k in range(4):
        got = after_one_update(ad.tx, state)(params)["w"]
        own = optax.sgd(sched(k))
        want = after_one_update(own, own.init(params))(params)["w"]
        np.testing.assert_allclose(got, want, rtol=1e-6)
        _, state = ad.update({"w": jnp.ones(2)}, state, params)
    assert ad._update._cache_size() == 1  # adapter.update: one trace


@pytest.mark.parametrize("env, expected", [
    ({}, "--xla_cpu_use_fusion_emitters=false"),
    ({"XLA_FLAGS": "--xla_force_host_platform_device_count=2"},
     "--xla_force_host_platform_device_count=2 "
     "--xla_cpu_use_fusion_emitters=false"),
    ({"XLA_FLAGS": "--xla_cpu_use_fusion_emitters=true"},
     "--xla_cpu_use_fusion_emitters=true"),        # the user's choice
    ({"UNISCHED_XLA_DEFAULTS": "0"}, None),        # opted out
])
def test_xla_defaults_respect_the_users_flags(monkeypatch, env, expected):
    from unisched.backends.jax import _xla
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    monkeypatch.delenv("UNISCHED_XLA_DEFAULTS", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    _xla.apply_defaults()
    assert os.environ.get("XLA_FLAGS") == expected
