"""Native parity: every unisched schedule equals the framework scheduler it
is named after, at every step, over many random parameter sets.

These tests build the frameworks' OWN schedulers (never the unisched
backends) and compare values step by step.  Index convention: unisched
``sched(s)`` is the rate for the s-th update (0-based), and

* MXNet's Factor/MultiFactor/Poly/Cosine schedulers are stateful, so each
  sequence gets a fresh native called with 0, 1, 2, ... in order;
* a PyTorch scheduler is read from ``group['lr']`` (and the momentum or
  Adam beta1 it drives) before each ``optimizer.step()``, then stepped;
* a Keras schedule is called with a whole tensor of steps at once.

Both unisched paths are checked: the scalar ``sched(s)`` and the
vectorized ``sched.values(steps)``.

Tolerances.  MXNet and PyTorch compute in float64 Python math, so the rates
must agree to ``rtol=1e-12``: the only differences are the order of
floating-point operations (MXNet Factor/MultiFactor and torch
ExponentialLR/StepLR multiply the rate once per decay where unisched calls
``pow``: at most a few hundred ulps, ~1e-14).  Keras is checked twice: in
its default float32 (``rtol=2e-6``, ``atol`` a millionth of the initial
rate, for float32 rounding of terms as large as the initial rate) and in
float64 (initial rate passed as a float64 tensor, ``rtol=1e-12``).  Keras
casts the other Python-float arguments through float32 even in a float64
schedule, so every Keras parameter is drawn float32-representable: then
both sides hold the same parameters and only the formulas are compared.

Finding (Keras 3.15 ``CosineDecayRestarts``, TensorFlow backend): for
``t_mul != 1`` the restart index is
``floor(log(1 - x (1 - t_mul)) / log(t_mul))``, which rounds below the
integer at some exact restart steps, in float32 and in float64 alike, and
differently in a vectorized call than in a scalar one.  With
``first_decay_steps=1, t_mul=3`` in float64, ``native(arange(200))`` is 0
(``alpha * initial``, the end of the previous cycle) at restart steps 1, 4,
40 and 121 instead of the new cycle's peak, and scalar calls get step 121
wrong; in float32, ``t_mul=float32(1.3)`` fails at step 1 (vectorized).
PyTorch's CosineAnnealingWarmRestarts (integer counters) gives the peak
there, as unisched does.  So for ``t_mul != 1`` the steps within rounding
of a restart are not compared with Keras' value: there the test checks
that Keras gives one of the two one-sided limits and that unisched equals
an exact rational-arithmetic reference.
"""
from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable, Sequence
from fractions import Fraction

import numpy as np
import pytest

import unisched as us

#: random parameter sets per reference; seeds also pick the mode
#: combinations below so that every combination is covered.
SEEDS = range(24)
#: steps compared for schedules without a natural end (covers every phase
#: of every drawn parameter set; lengths are drawn well below it).
STEPS = 200
F64_RTOL = 1e-12


# -- helpers -----------------------------------------------------------------
def _rng(tag: str, seed: int) -> np.random.Generator:
    # One stream per (reference, seed): adding a test does not change the
    # parameter sets of the others.
    return np.random.default_rng([seed, sum(map(ord, tag))])


def _lr(rng: np.random.Generator, low: float = 1e-4,
        high: float = 1.0) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def _f32(value: float) -> float:
    """``value`` rounded to the nearest float32, as a Python float."""
    return float(np.float32(value))


def _assert_close(got: Sequence[float], want: Sequence[float], rtol: float,
                  atol: float = 0.0, what: str = "",
                  steps: Sequence[int] | None = None) -> None:
    """``|got - want| <= atol + rtol * |want|`` elementwise, naming the
    first failing steps."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, (what, got.shape, want.shape)
    bad = ~(np.abs(got - want) <= atol + rtol * np.abs(want))
    if bad.any():
        idx = np.flatnonzero(bad)[:6]
        at = idx if steps is None else np.asarray(steps)[idx]
        raise AssertionError(
            f"{what}: {bad.sum()} of {bad.size} steps differ; steps {at}: "
            f"unisched {got[idx]!r} vs native {want[idx]!r}")


def _check_both(sched: us.Schedule, want: Sequence[float], rtol: float,
                atol: float = 0.0, what: str = "") -> None:
    """The scalar and the vectorized unisched values both equal ``want``
    (the native's values for steps 0, 1, ...)."""
    n = len(want)
    scalar = [sched(s) for s in range(n)]
    _assert_close(scalar, want, rtol, atol, f"{what} {sched!r} (scalar)")
    _assert_close(sched.values(np.arange(n)), want, rtol, atol,
                  f"{what} {sched!r} (values)")


def _warmup(rng: np.random.Generator, base_lr: float,
            max_steps: int) -> dict:
    """MXNet's built-in warmup arguments (none in 30% of the draws)."""
    if rng.random() < 0.3:
        return {}
    return dict(warmup_steps=int(rng.integers(1, max_steps)),
                warmup_begin_lr=float(base_lr * rng.uniform(0, 0.9)),
                warmup_mode=str(rng.choice(["linear", "constant"])))


# -- MXNet --------------------------------------------------------------------
@pytest.fixture(scope="module")
def mx():
    # find_spec, not importorskip: a bare ``import mxnet`` fails on numpy
    # >= 1.24 without the backend's alias shim.
    if importlib.util.find_spec("mxnet") is None:
        pytest.skip("mxnet is not installed")
    from unisched.backends.mxnet import import_mxnet
    return import_mxnet()


def _mxnet_values(native: Callable[[int], float], n: int) -> list[float]:
    # Stateful natives: called once each with 0, 1, 2, ... in order.
    return [float(native(s)) for s in range(n)]


@pytest.mark.parametrize("seed", SEEDS)
def test_mxnet_factor(mx, seed):
    rng = _rng("mx_factor", seed)
    base = _lr(rng)
    kwargs = dict(step=int(rng.integers(1, 40)),
                  factor=float(1.0 if rng.random() < 0.1
                               else rng.uniform(0.3, 1.0)),
                  # the default (absolute), or a floor the decays reach
                  stop_factor_lr=float(1e-8 if rng.random() < 0.3
                                       else base * rng.uniform(0.05, 0.8)),
                  base_lr=base, **_warmup(rng, base, 30))
    native = mx.lr_scheduler.FactorScheduler(**kwargs)
    _check_both(us.FactorScheduler(**kwargs),
                _mxnet_values(native, STEPS), F64_RTOL, what="Factor")


@pytest.mark.parametrize("seed", SEEDS)
def test_mxnet_multi_factor(mx, seed):
    rng = _rng("mx_multi_factor", seed)
    base = _lr(rng)
    count = int(rng.integers(1, 6))
    milestones = sorted(int(m) for m in rng.choice(
        np.arange(1, STEPS - 10), count, replace=False))
    kwargs = dict(factor=float(rng.uniform(0.1, 1.0)), base_lr=base,
                  **_warmup(rng, base, 40))
    native = mx.lr_scheduler.MultiFactorScheduler(step=list(milestones),
                                                  **kwargs)
    _check_both(us.MultiFactorScheduler(step=milestones, **kwargs),
                _mxnet_values(native, STEPS), F64_RTOL, what="MultiFactor")


def _annealed_kwargs(rng: np.random.Generator) -> dict:
    base = _lr(rng)
    max_update = int(rng.integers(1, STEPS - 20))
    kwargs = dict(max_update=max_update, base_lr=base,
                  final_lr=float(rng.choice(
                      [0.0, base * rng.uniform(0, 0.5)])))
    # warmup_steps < max_update: MXNet divides by max_update - warmup_steps
    # (ZeroDivisionError when they are equal; unisched allows it).
    if max_update > 1:
        kwargs.update(_warmup(rng, base, max_update))
    return kwargs


@pytest.mark.parametrize("seed", SEEDS)
def test_mxnet_poly(mx, seed):
    rng = _rng("mx_poly", seed)
    kwargs = _annealed_kwargs(rng)
    kwargs["pwr"] = float(rng.choice([1.0, 2.0, 3.0, rng.uniform(0.3, 4)]))
    native = mx.lr_scheduler.PolyScheduler(**kwargs)
    _check_both(us.PolyScheduler(**kwargs), _mxnet_values(native, STEPS),
                F64_RTOL, what="Poly")


@pytest.mark.parametrize("seed", SEEDS)
def test_mxnet_cosine(mx, seed):
    rng = _rng("mx_cosine", seed)
    kwargs = _annealed_kwargs(rng)
    native = mx.lr_scheduler.CosineScheduler(**kwargs)
    _check_both(us.CosineScheduler(**kwargs), _mxnet_values(native, STEPS),
                F64_RTOL, what="Cosine")


# -- PyTorch ------------------------------------------------------------------
@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def _torch_run(torch, make: Callable, n: int, lr: float = 0.1,
               optimizer: str = "sgd", momentum: float = 0.0
               ) -> tuple[list[float], list[float]]:
    """Rates (and momenta or Adam beta1) used by updates 0 .. n-1 of an
    optimizer driven by ``make(optimizer)``, read as a training loop
    sees them: before each ``optimizer.step()``, then ``scheduler.step()``.
    """
    param = torch.zeros(1, requires_grad=True)
    if optimizer == "adam":
        opt = torch.optim.Adam([param], lr=lr)
    else:
        opt = torch.optim.SGD([param], lr=lr, momentum=momentum)
    sched = make(opt)
    group = opt.param_groups[0]
    lrs, moms = [], []
    for _ in range(n):
        lrs.append(float(group["lr"]))
        moms.append(float(group["betas"][0] if optimizer == "adam"
                          else group["momentum"]))
        opt.step()  # no gradient: a no-op that keeps torch's order check
        sched.step()
    return lrs, moms


@pytest.mark.parametrize("seed", SEEDS)
def test_torch_exponential_lr(torch, seed):
    rng = _rng("torch_exponential", seed)
    base, gamma = _lr(rng), float(rng.uniform(0.95, 1.01))
    lrs, _ = _torch_run(torch, lambda opt: torch.optim.lr_scheduler
                        .ExponentialLR(opt, gamma=gamma), STEPS, lr=base)
    _check_both(us.ExponentialScheduler(base, factor=gamma, step=1), lrs,
                F64_RTOL, what="ExponentialLR")


@pytest.mark.parametrize("seed", SEEDS)
def test_torch_step_lr(torch, seed):
    rng = _rng("torch_step", seed)
    base, gamma = _lr(rng), float(rng.uniform(0.1, 1.0))
    size = int(rng.integers(1, 50))
    lrs, _ = _torch_run(torch, lambda opt: torch.optim.lr_scheduler.StepLR(
        opt, step_size=size, gamma=gamma), STEPS, lr=base)
    _check_both(us.ExponentialScheduler(base, factor=gamma, step=size,
                                        staircase=True),
                lrs, F64_RTOL, what="StepLR")


@pytest.mark.parametrize("seed", SEEDS)
def test_torch_cosine_warm_restarts(torch, seed):
    rng = _rng("torch_restarts", seed)
    base = _lr(rng)
    t_0, t_mult = int(rng.integers(1, 40)), int(rng.choice([1, 2, 3]))
    eta_min = float(rng.choice([0.0, base * rng.uniform(0, 0.5)]))
    lrs, _ = _torch_run(torch, lambda opt: torch.optim.lr_scheduler
                        .CosineAnnealingWarmRestarts(
                            opt, T_0=t_0, T_mult=t_mult, eta_min=eta_min),
                        STEPS, lr=base)
    sched = us.CosineRestartsScheduler(t_0, base, final_lr=eta_min,
                                       cycle_mult=float(t_mult))
    _check_both(sched, lrs, F64_RTOL, what="CosineAnnealingWarmRestarts")


CYCLIC_CASES = [(mode, down, opt)
                for mode in ("triangular", "triangular2", "exp_range")
                for down in (False, True) for opt in ("sgd", "adam")]


@pytest.mark.parametrize("seed", SEEDS)
def test_torch_cyclic_lr(torch, seed):
    mode, has_down, optimizer = CYCLIC_CASES[seed % len(CYCLIC_CASES)]
    rng = _rng("torch_cyclic", seed)
    base = _lr(rng, 1e-4, 0.1)
    kwargs = dict(base_lr=base, max_lr=base * float(rng.uniform(1.5, 20)),
                  step_size_up=int(rng.integers(1, 40)),
                  step_size_down=(int(rng.integers(1, 40)) if has_down
                                  else None),
                  mode=mode, gamma=float(rng.uniform(0.98, 1.0)),
                  base_momentum=float(rng.uniform(0.6, 0.85)),
                  max_momentum=float(rng.uniform(0.86, 0.99)))
    lrs, moms = _torch_run(
        torch, lambda opt: torch.optim.lr_scheduler.CyclicLR(
            opt, cycle_momentum=True, **kwargs),
        STEPS, optimizer=optimizer, momentum=0.9)
    sched = us.CyclicScheduler(**kwargs)
    _check_both(sched, lrs, F64_RTOL, what=f"CyclicLR lr ({optimizer})")
    _check_both(sched.momentum, moms, F64_RTOL,
                what=f"CyclicLR momentum ({optimizer})")


ONE_CYCLE_CASES = [(three, anneal, opt) for three in (False, True)
                   for anneal in ("cos", "linear") for opt in ("sgd", "adam")]


@pytest.mark.parametrize("seed", SEEDS)
def test_torch_one_cycle_lr(torch, seed):
    three, anneal, optimizer = ONE_CYCLE_CASES[seed % len(ONE_CYCLE_CASES)]
    rng = _rng("torch_one_cycle", seed)
    # Redraw the rare sets that leave a phase empty (0.25% of draws over
    # 2000 seeds, never twice in a row): ten refusals in a row mean the
    # scheduler refuses valid parameters, not bad luck.
    errors = []
    for _ in range(10):
        total = int(rng.integers(10, STEPS))
        kwargs = dict(
            max_lr=_lr(rng), pct_start=float(rng.uniform(
                0.05, 0.45 if three else 0.95)),
            div_factor=float(rng.uniform(2, 50)),
            final_div_factor=float(rng.choice(
                [1e4, rng.uniform(1.5, 1e3)])),
            three_phase=three, base_momentum=float(rng.uniform(0.6, 0.86)),
            max_momentum=float(rng.uniform(0.87, 0.99)))
        try:
            sched = us.OneCycleScheduler(max_update=total, anneal=anneal,
                                         **kwargs)
            break
        except ValueError as exc:
            errors.append(f"max_update={total}, {kwargs}: {exc}")
    else:
        pytest.fail("OneCycleScheduler refused 10 parameter sets in a "
                    "row:\n" + "\n".join(errors))
    lrs, moms = _torch_run(
        torch, lambda opt: torch.optim.lr_scheduler.OneCycleLR(
            opt, total_steps=total, anneal_strategy=anneal,
            cycle_momentum=True, **kwargs),
        total, optimizer=optimizer, momentum=0.9)
    _check_both(sched, lrs, F64_RTOL, what=f"OneCycleLR lr ({optimizer})")
    _check_both(sched.momentum, moms, F64_RTOL,
                what=f"OneCycleLR momentum ({optimizer})")


PLATEAU_CASES = [(mode, tmode) for mode in ("min", "max")
                 for tmode in ("rel", "abs")]


def _metrics(rng: np.random.Generator, n: int, mode: str) -> list[float]:
    """A validation curve with improvements, plateaus (exact ties), noise
    and the odd NaN (a diverged epoch: never an improvement)."""
    sign = 1.0 if mode == "max" else -1.0
    out, value = [], float(rng.uniform(0.5, 2.0))
    for _ in range(n):
        r = rng.random()
        if r < 0.35:
            value += sign * float(rng.exponential(0.05))
        elif r < 0.55:
            value -= sign * float(rng.exponential(0.02))
        out.append(math.nan if rng.random() < 0.03 else round(value, 3))
    return out


@pytest.mark.parametrize("seed", SEEDS)
def test_torch_reduce_lr_on_plateau(torch, seed):
    mode, tmode = PLATEAU_CASES[seed % len(PLATEAU_CASES)]
    rng = _rng("torch_plateau", seed)
    base = _lr(rng, 1e-3, 1.0)
    kwargs = dict(
        mode=mode, factor=float(rng.uniform(0.1, 0.9)),
        patience=int(rng.integers(0, 6)),
        threshold=float(rng.uniform(0, 0.05) if tmode == "rel"
                        else rng.uniform(0, 0.1)),
        threshold_mode=tmode, cooldown=int(rng.integers(0, 5)),
        min_lr=float(rng.choice([0.0, base * rng.uniform(0.01, 0.5)])),
        # the default, or large enough that some cuts are skipped
        eps=float(rng.choice([1e-8, base * rng.uniform(0.01, 0.2)])))
    param = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([param], lr=base)
    native = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, **kwargs)
    sched = us.ReduceOnPlateau(base, **kwargs)
    got, want = [], []
    for epoch, metric in enumerate(_metrics(rng, STEPS, mode)):
        native.step(metric)
        sched.observe(metric, step=epoch)
        want.append(opt.param_groups[0]["lr"])
        got.append(sched(epoch))
        state = sched.state_dict()
        # the counters decide every later cut, so they must agree too
        assert (state["num_bad_epochs"], state["cooldown_counter"],
                state["last_epoch"]) == (native.num_bad_epochs,
                                         native.cooldown_counter,
                                         native.last_epoch), epoch
        assert state["best"] == native.best or (
            math.isnan(state["best"]) and math.isnan(native.best)), epoch
    assert len(set(want)) > 1, "no cut: the metric draw tests nothing"
    _assert_close(got, want, F64_RTOL, what=f"ReduceLROnPlateau {kwargs}")


# -- fastai (not installed: its formula, written from its definition) --
def _fastai_sched_cos(start: float, end: float, pos: float) -> float:
    """fastai ``SchedCos(start, end)(pos)``."""
    return start + (1 + math.cos(math.pi * (1 - pos))) * (end - start) / 2


def _fastai_combined_cos(pct: float, start: float, middle: float,
                         end: float, pos: float) -> float:
    """fastai ``combined_cos(pct, start, middle, end)(pos)``: two SchedCos
    pieces joined by ``combine_scheds([pct, 1 - pct], ...)``, which uses
    the second from ``pos >= pct`` on."""
    if pos < pct:
        return _fastai_sched_cos(start, middle, pos / pct)
    return _fastai_sched_cos(middle, end, (pos - pct) / (1 - pct))


@pytest.mark.parametrize("seed", SEEDS)
def test_fastai_one_cycle(seed):
    rng = _rng("fastai", seed)
    n, max_lr = int(rng.integers(5, 300)), _lr(rng)
    pct = float(rng.uniform(0.05, 0.95))
    div = float(rng.uniform(2, 50))
    div_final = div * float(np.exp(rng.uniform(np.log(2), np.log(1e5))))
    hi = float(rng.uniform(0.9, 0.99))
    moms = (hi, float(rng.uniform(0.7, hi)), hi)
    sched = us.OneCycleScheduler.fastai(max_lr, n, pct_start=pct, div=div,
                                        div_final=div_final, moms=moms)
    # fit_one_cycle: ParamScheduler sets the value for batch k of n at
    # pos = k / n, before the batch.
    pos = [k / n for k in range(n)]
    lrs = [_fastai_combined_cos(pct, max_lr / div, max_lr,
                                max_lr / div_final, p) for p in pos]
    moms_ref = [_fastai_combined_cos(pct, *moms, p) for p in pos]
    # fastai's form ``start + (1 + cos(pi (1 - p))) (end - start) / 2``
    # cancels two terms of size max(start, end) near the end of a falling
    # piece, so the reference itself is only good to a few ulps of
    # max(start, end): hence the atol.
    eps = np.finfo(np.float64).eps
    _check_both(sched, lrs, F64_RTOL, atol=4 * eps * max_lr,
                what="fastai lr")
    _check_both(sched.momentum, moms_ref, F64_RTOL, atol=4 * eps,
                what="fastai momentum")


# -- Keras --------------------------------------------------------------------
@pytest.fixture(scope="module")
def keras():
    return pytest.importorskip("keras")


F32_RTOL = 2e-6
F32_ATOL = 1e-6  # times the initial rate: float32 rounding of its terms


def _keras_values(keras, native, n: int, dtype: str) -> np.ndarray:
    """``native`` at steps 0 .. n-1, in one vectorized call."""
    out = keras.ops.convert_to_numpy(native(keras.ops.arange(n)))
    assert out.dtype == np.dtype(dtype), out.dtype  # the intended precision
    return out.astype(np.float64)


def _keras_lr(keras, value: float, dtype: str):
    """The initial rate, which sets a Keras schedule's computing dtype."""
    return value if dtype == "float32" else \
        keras.ops.convert_to_tensor(value, dtype="float64")


def _tolerances(dtype: str, scale: float) -> tuple[float, float]:
    if dtype == "float32":
        return F32_RTOL, F32_ATOL * scale
    return F64_RTOL, 0.0


DTYPES = ("float32", "float64")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", SEEDS)
def test_keras_exponential_decay(keras, seed, dtype):
    rng = _rng("keras_exponential", seed)
    base, staircase = _f32(_lr(rng)), bool(seed % 2)
    steps = int(rng.integers(1, 50))
    # decay to no less than 1e-3 of the initial rate over the horizon:
    # float32 pow's relative error grows with |log(result)|
    rate = _f32(np.exp(rng.uniform(np.log(1e-3) * steps / STEPS, 0.0)))
    native = keras.optimizers.schedules.ExponentialDecay(
        _keras_lr(keras, base, dtype), decay_steps=steps, decay_rate=rate,
        staircase=staircase)
    sched = us.ExponentialScheduler(base, factor=rate, step=steps,
                                    staircase=staircase)
    rtol, atol = _tolerances(dtype, base)
    _check_both(sched, _keras_values(keras, native, STEPS, dtype), rtol,
                atol, what=f"ExponentialDecay {dtype}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", SEEDS)
def test_keras_inverse_time_decay(keras, seed, dtype):
    rng = _rng("keras_inverse_time", seed)
    base, staircase = _f32(_lr(rng)), bool(seed % 2)
    steps, rate = int(rng.integers(1, 50)), _f32(rng.uniform(0.0, 2.0))
    native = keras.optimizers.schedules.InverseTimeDecay(
        _keras_lr(keras, base, dtype), decay_steps=steps, decay_rate=rate,
        staircase=staircase)
    sched = us.InverseTimeScheduler(base, factor=rate, step=steps,
                                    staircase=staircase)
    rtol, atol = _tolerances(dtype, base)
    _check_both(sched, _keras_values(keras, native, STEPS, dtype), rtol,
                atol, what=f"InverseTimeDecay {dtype}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", SEEDS)
def test_keras_piecewise_constant_decay(keras, seed, dtype):
    rng = _rng("keras_piecewise", seed)
    count = int(rng.integers(1, 6))
    boundaries = sorted(int(b) for b in rng.choice(
        np.arange(0, STEPS - 10), count, replace=False))
    values = [_f32(_lr(rng)) for _ in range(count + 1)]
    native_values = [_keras_lr(keras, v, dtype) for v in values]
    native = keras.optimizers.schedules.PiecewiseConstantDecay(
        boundaries, native_values)
    sched = us.PiecewiseConstantScheduler(boundaries, values)
    # a lookup, not arithmetic: exact in either precision
    _check_both(sched, _keras_values(keras, native, STEPS, dtype), 0.0,
                what=f"PiecewiseConstantDecay {dtype}")


def _restart_starts(first: int, t_mul: float, n: int) -> list[Fraction]:
    """Exact restart steps (as rationals) of cycles starting before n."""
    starts, start, length = [], Fraction(0), Fraction(first)
    while start < n:
        starts.append(start)
        start, length = start + length, length * Fraction(t_mul)
    return starts


def _exact_restarts_value(step: int, first: int, base: float, final: float,
                          t_mul: float, m_mul: float) -> float:
    """SGDR at ``step`` with the cycle found in exact rational arithmetic
    (the parameters are binary floats, so their rationals are exact)."""
    starts = _restart_starts(first, t_mul, step + 1)
    i = len(starts) - 1
    length = Fraction(first) * Fraction(t_mul) ** i
    p = float((step - starts[i]) / length)
    return final + (base - final) * m_mul ** i \
        * (1 + math.cos(math.pi * p)) / 2


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", SEEDS)
def test_keras_cosine_decay_restarts(keras, seed, dtype):
    rng = _rng("keras_restarts", seed)
    base = _f32(_lr(rng))
    first = int(rng.integers(1, 40))
    t_mul = _f32(rng.choice([1.0, 2.0, 3.0, 1.5, rng.uniform(1.0, 3.0)]))
    m_mul = _f32(rng.choice([1.0, rng.uniform(0.3, 1.0)]))
    alpha = _f32(rng.choice([0.0, rng.uniform(0.0, 0.5)]))
    native = keras.optimizers.schedules.CosineDecayRestarts(
        _keras_lr(keras, base, dtype), first_decay_steps=first, t_mul=t_mul,
        m_mul=m_mul, alpha=alpha)
    final = alpha * base
    sched = us.CosineRestartsScheduler(first, base, final_lr=final,
                                       cycle_mult=t_mul, cycle_decay=m_mul)
    want = _keras_values(keras, native, STEPS, dtype)
    rtol, atol = _tolerances(dtype, base)
    # Steps within rounding of a restart: Keras' log-based restart index
    # may land on either side there (see the module docstring).
    # With t_mul = 1 Keras takes floor(step / first_decay_steps), exact.
    window = 1e-5 if dtype == "float32" else 1e-9
    starts = _restart_starts(first, t_mul, STEPS)
    near = {s: i for i, start in enumerate(starts[1:], 1)
            for s in (math.floor(start), math.ceil(start))
            if t_mul != 1.0 and s < STEPS
            and abs(s - start) <= window * max(1, s)}
    far = np.array([s for s in range(STEPS) if s not in near])
    _assert_close([sched(int(s)) for s in far], want[far], rtol, atol,
                  f"CosineDecayRestarts {dtype} {sched!r} (scalar)", far)
    _assert_close(sched.values(far), want[far], rtol, atol,
                  f"CosineDecayRestarts {dtype} {sched!r} (values)", far)
    for s, i in near.items():
        peak = final + (base - final) * m_mul ** i
        assert any(math.isclose(want[s], side, rel_tol=rtol,
                                abs_tol=atol + 1e-6 * base)
                   for side in (peak, final)), (s, want[s], peak, final)
        # abs_tol: just before a restart the value is final_lr plus a
        # term of order (1 - p)**2, whose float rounding is relative to
        # base_lr, not to that tiny term.
        exact = _exact_restarts_value(s, first, base, final, t_mul, m_mul)
        for got in (sched(s), sched.values([s])[0]):
            assert math.isclose(got, exact, rel_tol=F64_RTOL,
                                abs_tol=1e-14 * base), (s, got, exact)
