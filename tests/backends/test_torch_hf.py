"""Hugging Face ``transformers`` 5.24.0 schedules: ``from_native`` and the
``hf_*`` named schedules against the real ``LambdaLR``.

Every ``get_*_schedule*`` function and every ``get_scheduler`` name runs
on a real ``torch.optim.SGD`` over 40 random parameter sets each (a
seeded grid: warmups of 0 to 30 updates, runs shorter than their warmup,
fractional and whole ``num_cycles``, ``min_lr`` / ``min_lr_rate``,
``lr_end``, ``power`` 0, every WSD shape, negative stable phases), past
``num_training_steps`` by 60 updates.  The rate each update used (the
group's ``lr`` before ``optimizer.step()``) must equal, at every update,
the converted schedule and the named schedule parsed from a spec.

Tolerance: unisched evaluates the same closed forms in another order.
Where transformers computes ``cos(2 pi num_cycles p)`` it rounds the
argument once more than unisched (which reduces it modulo one period
first), so the two differ by ~1e-16 of the argument: the tolerance is
``base_lr * (2e-15 + 1e-15 * phase)`` with ``phase`` the largest
argument of the cosine over the run (at most ~4e-14 here).  Everything
else agrees to ~4e-16 of ``base_lr``.
"""
from __future__ import annotations

import functools
import math
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
HF = pytest.importorskip("transformers.optimization")

import unisched as us  # noqa: E402
from unisched.backends import torch as ust  # noqa: E402

EXTRA = 60  # updates past the end that every run also compares
SETS = 40   # random parameter sets per function


def _lr(rng):
    return float(np.exp(rng.uniform(np.log(1e-5), np.log(1.0))))


def _steps(rng):
    """(num_warmup_steps, num_training_steps), runs shorter than their
    warmup included."""
    warm = int(rng.choice([0, rng.integers(1, 30)]))
    return warm, int(rng.integers(0, 120))


def _lengths(rng):
    """:func:`_steps` as the keywords that take them."""
    warm, total = _steps(rng)
    return {"num_warmup_steps": warm, "num_training_steps": total}


def _cycles(rng):
    return float(rng.choice([0.5, 1.0, 2.0, rng.uniform(0, 4)]))


def _low(rng, base):
    """min_lr or min_lr_rate, as a user passes one of them."""
    if rng.random() < 0.5:
        return {"min_lr": float(base * rng.uniform(0, 0.5))}
    return {"min_lr_rate": float(rng.uniform(0, 0.5))}


# name -> (function, draw(rng, base) -> keyword arguments); the named
# schedule takes the same keywords (and base_lr)
FUNCTIONS = {
    "constant": (HF.get_constant_schedule, lambda rng, base: {}),
    "hf_constant_with_warmup": (
        HF.get_constant_schedule_with_warmup,
        lambda rng, base: {"num_warmup_steps": _steps(rng)[0]}),
    "hf_linear": (
        HF.get_linear_schedule_with_warmup,
        lambda rng, base: _lengths(rng)),
    "hf_cosine": (
        HF.get_cosine_schedule_with_warmup,
        lambda rng, base: dict(_lengths(rng), num_cycles=_cycles(rng))),
    "hf_cosine_with_restarts": (
        HF.get_cosine_with_hard_restarts_schedule_with_warmup,
        lambda rng, base: dict(
            _lengths(rng),
            num_cycles=(int(rng.integers(1, 15)) if rng.random() < 0.6
                        else _cycles(rng)))),
    "hf_polynomial": (
        HF.get_polynomial_decay_schedule_with_warmup,
        lambda rng, base: _polynomial(rng, base)),
    "hf_inverse_sqrt": (
        HF.get_inverse_sqrt_schedule,
        lambda rng, base: {"num_warmup_steps": _steps(rng)[0],
                           "timescale": (None if rng.random() < 0.4 else
                                         int(rng.integers(1, 60)))}),
    "hf_cosine_with_min_lr": (
        HF.get_cosine_with_min_lr_schedule_with_warmup,
        lambda rng, base: dict(
            _lengths(rng),
            num_cycles=_cycles(rng), **_low(rng, base))),
    "hf_cosine_warmup_with_min_lr": (
        HF.get_cosine_with_min_lr_schedule_with_warmup_lr_rate,
        lambda rng, base: dict(
            _lengths(rng),
            num_cycles=_cycles(rng), **_low(rng, base),
            warmup_lr_rate=(None if rng.random() < 0.5
                            else float(rng.uniform(0, 1))))),
    "hf_warmup_stable_decay": (
        HF.get_wsd_schedule, lambda rng, base: _wsd(rng)),
}


def _polynomial(rng, base):
    warm, total = _steps(rng)
    if total == warm:  # transformers divides by zero there
        total += 1
    return dict(num_warmup_steps=warm, num_training_steps=total,
                lr_end=float(base * rng.uniform(0, 0.9)),
                power=float(rng.choice([1.0, 2.0, 0.0,
                                        rng.uniform(0.1, 4)])))


def _wsd(rng):
    shapes = ["linear", "cosine", "1-sqrt"]
    warm, decay = int(rng.integers(0, 30)), int(rng.integers(0, 40))
    # num_training_steps below warmup + decay: a negative stable phase
    length = {"num_stable_steps": int(rng.integers(0, 40))} \
        if rng.random() < 0.5 else \
        {"num_training_steps": int(rng.integers(0, 100))}
    return dict(num_warmup_steps=warm, num_decay_steps=decay, **length,
                warmup_type=str(rng.choice(shapes)),
                decay_type=str(rng.choice(shapes)),
                min_lr_ratio=float(rng.choice([0.0, rng.uniform(0, 0.5)])),
                num_cycles=_cycles(rng))


def _draws(name):
    rng = np.random.default_rng([len(name), 12])
    for _ in range(SETS):
        base = _lr(rng)
        yield base, FUNCTIONS[name][1](rng, base)


def _updates(kwargs):
    ends = [kwargs.get(k) or 0 for k in ("num_warmup_steps",
                                          "num_training_steps",
                                          "num_decay_steps",
                                          "num_stable_steps")]
    return sum(ends[2:]) + max(ends[:2]) + EXTRA


def _run(make, updates, groups=1, lr=0.1, group_lrs=None):
    """The rate every update used, per group, and the scheduler."""
    weights = [torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
               for _ in range(groups)]
    params = [{"params": [w]} for w in weights]
    if group_lrs is not None:
        for group, rate in zip(params, group_lrs, strict=True):
            group["lr"] = rate
    opt = torch.optim.SGD(params, lr=lr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # wsd: both lengths given
        sched = make(opt)
    rates = []
    for _ in range(updates):
        rates.append([g["lr"] for g in opt.param_groups])
        for w in weights:
            w.grad = torch.ones_like(w)
        opt.step()
        sched.step()
    return sched, np.array(rates), weights


def _phase(name, kwargs, updates):
    """The largest cosine argument transformers evaluates (see the
    module docstring)."""
    cycles = kwargs.get("num_cycles", 0.0)
    if name == "hf_warmup_stable_decay":
        return 2 * math.pi * cycles
    if name in ("hf_cosine", "hf_cosine_with_min_lr",
                "hf_cosine_warmup_with_min_lr"):
        warm = kwargs["num_warmup_steps"]
        span = max(1, kwargs["num_training_steps"] - warm)
        return 2 * math.pi * cycles * (updates - warm + 1) / span
    return 0.0


def _assert_same(got, want, base, phase, what):
    tol = base * (2e-15 + 1e-15 * phase)
    err = np.abs(np.asarray(got) - want)
    assert err.max() <= tol, (what, int(err.argmax()), err.max() / base)


def _spec(name, base, kwargs):
    inner = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    if name == "constant":
        return f"constant(base_lr={base!r})"
    return f"{name}(base_lr={base!r}, {inner})"


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_function_equals_the_real_lambda_lr(name):
    function = FUNCTIONS[name][0]
    for base, kwargs in _draws(name):
        updates = _updates(kwargs)
        sched, rates, _ = _run(functools.partial(function, **kwargs),
                               updates, lr=base)
        want = rates[:, 0]
        phase = _phase(name, kwargs, updates)
        steps = np.arange(updates)
        converted = us.from_native(sched)
        _assert_same(converted.values(steps), want, base, phase,
                     f"from_native {converted.to_spec()}")
        named = us.parse(_spec(name, base, kwargs))
        _assert_same(named.values(steps), want, base, phase,
                     f"parse {named.to_spec()}")
        assert converted.name == named.name == name


GET_SCHEDULER = {
    # get_scheduler name: scheduler_specific_kwargs
    "linear": {}, "cosine": {"num_cycles": 1.5},
    "cosine_with_restarts": {"num_cycles": 3},
    "polynomial": {"lr_end": 1e-4, "power": 2.0}, "constant": {},
    "constant_with_warmup": {}, "inverse_sqrt": {"timescale": 7},
    "cosine_with_min_lr": {"min_lr": 1e-3},
    "cosine_warmup_with_min_lr": {"min_lr_rate": 0.05,
                                  "warmup_lr_rate": 0.1},
    "warmup_stable_decay": {"num_decay_steps": 20,
                            "warmup_type": "1-sqrt", "decay_type": "cosine",
                            "min_lr_ratio": 0.02, "num_cycles": 0.75},
}


@pytest.mark.parametrize("name", sorted(GET_SCHEDULER))
@pytest.mark.parametrize("warm, total", [(10, 80), (0, 50), (30, 12)])
def test_every_get_scheduler_name(name, warm, total):
    # the names TrainingArguments.lr_scheduler_type takes, with two
    # param groups sharing the rate (decay / no decay, as the Trainer)
    make = functools.partial(
        HF.get_scheduler, name, num_warmup_steps=warm,
        num_training_steps=total,
        scheduler_specific_kwargs=GET_SCHEDULER[name])
    updates = max(warm, total) + 20 + EXTRA
    sched, rates, _ = _run(make, updates, groups=2, lr=3e-3)
    converted = ust.from_native(sched)
    want = converted.values(np.arange(updates))
    for group in range(2):
        _assert_same(rates[:, group], want, 3e-3, 2 * math.pi * 10 * 6,
                     name)


def test_a_bound_conversion_trains_like_the_lambda_lr():
    # the converted schedule bound to a fresh SGD moves the weights
    # exactly as transformers' scheduler did
    make = functools.partial(
        HF.get_cosine_with_hard_restarts_schedule_with_warmup,
        num_warmup_steps=7, num_training_steps=61, num_cycles=4)
    sched, rates, weights = _run(make, 90, lr=0.05)
    w = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = torch.optim.SGD([w], lr=0.05)
    adapter = ust.bind(us.from_native(sched), opt)
    for _ in range(90):
        w.grad = torch.ones_like(w)
        opt.step()
        adapter.step()
    assert w.item() == pytest.approx(weights[0].item(), rel=1e-13)
    assert w.item() == pytest.approx(-rates[:, 0].sum(), rel=1e-13)


# -- literal specs of converted schedulers --------------------------------

def _opt(lr=3e-4, groups=1):
    return torch.optim.SGD([{"params": [torch.nn.Parameter(
        torch.zeros(1))]} for _ in range(groups)], lr=lr)


def test_converted_specs_read_like_the_transformers_call():
    opt = _opt()
    cases = {
        HF.get_cosine_schedule_with_warmup(opt, 100, 1000):
            "hf_cosine(base_lr=0.0003, num_warmup_steps=100, "
            "num_training_steps=1000)",
        HF.get_linear_schedule_with_warmup(opt, 10, 500):
            "hf_linear(base_lr=0.0003, num_warmup_steps=10, "
            "num_training_steps=500)",
        HF.get_constant_schedule(opt): "constant(base_lr=0.0003)",
        HF.get_wsd_schedule(opt, 5, 20, num_training_steps=100):
            "hf_warmup_stable_decay(base_lr=0.0003, num_warmup_steps=5, "
            "num_decay_steps=20, num_stable_steps=75)",
    }
    for native, spec in cases.items():
        sched = ust.from_native(native)
        assert sched.to_spec() == spec
        assert us.parse(spec) == sched
    assert ust.from_native(HF.get_cosine_schedule_with_warmup(
        opt, 100, 1000)).expanded == us.CosineScheduler(
            1000, 3e-4, warmup_steps=100, periodic=True)


def test_a_stepped_scheduler_converts_to_the_whole_schedule():
    fresh = ust.from_native(HF.get_linear_schedule_with_warmup(_opt(), 3, 9))
    sched, _, _ = _run(lambda o: HF.get_linear_schedule_with_warmup(o, 3, 9),
                       5, lr=3e-4)
    assert ust.from_native(sched) == fresh


def test_polynomial_groups_away_from_the_default_rate():
    # transformers scales lr_end by the optimizer's default rate (lr_init):
    # a group at another rate ends at lr_end * its rate / lr_init
    make = functools.partial(HF.get_polynomial_decay_schedule_with_warmup,
                             num_warmup_steps=4, num_training_steps=30,
                             lr_end=0.01, power=1.5)
    sched, rates, _ = _run(make, 50, lr=0.1, group_lrs=[0.4])
    converted = ust.from_native(sched)
    assert converted.lr_end == pytest.approx(0.04, rel=1e-15)
    _assert_same(converted.values(np.arange(50)), rates[:, 0], 0.4, 0,
                 "polynomial")


# -- refusals ---------------------------------------------------------------

def _get_linear_schedule_with_warmup_lr_lambda(step, *, num_warmup_steps,
                                               num_training_steps):
    """A look-alike of transformers' function, by name only."""
    return 1.0


@pytest.mark.parametrize("lr_lambda, match", [
    (lambda k: 0.9 ** k, r"lr_lambda .*<lambda> is code-defined, not one "
                         r"of transformers.optimization's"),
    (functools.partial(_get_linear_schedule_with_warmup_lr_lambda,
                       num_warmup_steps=2, num_training_steps=9),
     r"functools.partial\(.*test_torch_hf._get_linear_schedule_with_warmup"
     r"_lr_lambda, .*\) is code-defined"),
    (functools.partial(HF._get_linear_schedule_with_warmup_lr_lambda, 2,
                       num_training_steps=9),
     r"has positional arguments \(2,\)"),
    (functools.partial(HF._get_linear_schedule_with_warmup_lr_lambda,
                       num_warmup_steps=2, num_training_steps=9, extra=1),
     r"_get_linear_schedule_with_warmup_lr_lambda.*cannot be converted:"
     r".*extra"),
    (functools.partial(HF._get_linear_schedule_with_warmup_lr_lambda,
                       num_warmup_steps=2),
     r"cannot be converted:.*num_training_steps"),
    (functools.partial(HF._get_cosine_schedule_with_warmup_lr_lambda,
                       num_warmup_steps=2, num_training_steps=9,
                       num_cycles=-1.0),
     r"cannot be converted: num_cycles must be >= 0, got -1.0"),
    (functools.partial(HF._get_inverse_sqrt_schedule_lr_lambda,
                       num_warmup_steps=2, timescale=2.5),
     r"cannot be converted: timescale must be an integer, got 2.5"),
])
def test_code_that_is_not_transformers_schedule_is_refused(lr_lambda,
                                                           match):
    sched = torch.optim.lr_scheduler.LambdaLR(_opt(), lambda k: 1.0)
    # set after construction: LambdaLR calls its lambda at once, and the
    # converter must refuse without calling it
    sched.lr_lambdas = [lr_lambda]
    with pytest.raises(ValueError, match=match):
        us.from_native(sched)


def test_groups_must_share_the_lambda_and_the_rate():
    opt = _opt(groups=2)
    lam = functools.partial(HF._get_linear_schedule_with_warmup_lr_lambda,
                            num_warmup_steps=2, num_training_steps=9)
    other = functools.partial(HF._get_linear_schedule_with_warmup_lr_lambda,
                              num_warmup_steps=3, num_training_steps=9)
    with pytest.raises(ValueError, match="different lr_lambdas"):
        ust.from_native(torch.optim.lr_scheduler.LambdaLR(opt, [lam,
                                                               other]))
    opt = torch.optim.SGD([{"params": [torch.nn.Parameter(torch.zeros(1))],
                            "lr": rate} for rate in (0.1, 0.3)], lr=0.1)
    with pytest.raises(ValueError, match=r"different base_lrs \[0.1, 0.3\]"
                       r".*multipliers=\[1.0, 2.99"):
        ust.from_native(HF.get_linear_schedule_with_warmup(opt, 2, 9))


def test_schedulers_that_are_not_schedules_are_refused():
    opt = _opt()
    with pytest.raises(TypeError, match="ReduceLROnPlateau.*"
                       "unisched.ReduceOnPlateau"):
        us.from_native(HF.get_scheduler("reduce_lr_on_plateau", opt))
    with pytest.raises(TypeError, match="GreedyLR"):
        us.from_native(HF.get_scheduler("greedy", opt))
    # a LambdaLR subclass that reads the rate from Adafactor's state
    with pytest.raises(TypeError, match="subclasses.*AdafactorSchedule"):
        us.from_native(HF.AdafactorSchedule(opt))


# -- the periodic cosine, for PyTorch too ------------------------------------

def test_cosine_annealing_lr_with_a_horizon_is_the_periodic_cosine():
    # the cosine Hugging Face needed (periodic=True) is also PyTorch's
    # CosineAnnealingLR past T_max: equal far beyond any horizon given
    make = functools.partial(torch.optim.lr_scheduler.CosineAnnealingLR,
                             T_max=7, eta_min=0.01)
    sched, rates, _ = _run(make, 200, lr=0.5)
    converted = ust.from_native(sched, horizon=20)
    assert converted == us.CosineScheduler(7, 0.5, 0.01, periodic=True)
    np.testing.assert_allclose(converted.values(np.arange(200)),
                               rates[:, 0], rtol=1e-9, atol=1e-15)
    # within T_max + 1 updates it reads as the pinned d2l cosine
    assert ust.from_native(sched, horizon=8) == us.CosineScheduler(
        7, 0.5, 0.01)
