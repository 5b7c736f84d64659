"""The catalog of every schedule, with random parameter sets.

One entry per registered schedule name (tests check none is missing), so
property, round-trip and framework-parity tests cover every schedule
without test code copied per class.  ``make(rng)`` draws one random,
valid parameter set from a ``numpy.random.Generator``; ``HORIZON`` steps
cover every phase of every drawn schedule (all lengths are drawn below it).
"""
from __future__ import annotations

import numpy as np

import unisched as us
from unisched import presets
from unisched.combinators import Reverse  # not in unisched/__init__ yet

HORIZON = 120


def _lr(rng, low=1e-3, high=1.0):
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def _warmup(rng, base_lr, max_steps=10):
    if rng.random() < 0.4:
        return {}
    return dict(warmup_steps=int(rng.integers(1, max_steps)),
                warmup_begin_lr=float(base_lr * rng.uniform(0, 0.5)),
                warmup_mode=str(rng.choice(WARMUP_MODES)))


WARMUP_MODES = ["linear", "constant", "cosine", "1-sqrt"]


def _length(rng, low, high):
    """A length in updates: mostly whole, sometimes fractional (a phase
    boundary between two updates, as fastai's pct_start * total)."""
    if rng.random() < 0.7:
        return int(rng.integers(low, high))
    return float(rng.uniform(low, high - 1))


def _milestones(rng, count, high=100):
    return sorted(int(v) for v in rng.choice(np.arange(1, high), count,
                                             replace=False))


def constant(rng):
    return us.ConstantScheduler(_lr(rng))


def square_root(rng):
    return us.SquareRootScheduler(_lr(rng))


def factor(rng):
    base = _lr(rng)
    return us.FactorScheduler(
        step=int(rng.integers(1, 30)), factor=float(rng.uniform(0.1, 1.0)),
        stop_factor_lr=float(base * rng.choice([1e-8, 1e-2, 0.3])),
        base_lr=base, **_warmup(rng, base))


def multi_factor(rng):
    base = _lr(rng)
    return us.MultiFactorScheduler(
        step=_milestones(rng, int(rng.integers(1, 5))),
        factor=float(rng.uniform(0.1, 1.0)), base_lr=base,
        **_warmup(rng, base))


def poly(rng):
    base = _lr(rng)
    return us.PolyScheduler(
        max_update=_length(rng, 20, 100), base_lr=base,
        pwr=float(rng.choice([1.0, 2.0, 0.5, rng.uniform(0.3, 4)])),
        final_lr=float(base * rng.uniform(0, 0.2)), **_warmup(rng, base))


def cosine(rng):
    base = _lr(rng)
    shape = {}
    if rng.random() < 0.5:  # Hugging Face's and PyTorch's variants
        shape = dict(cycles=float(rng.choice([1.0, 2.0, 3.0,
                                               rng.uniform(0, 4)])),
                     restarts=bool(rng.random() < 0.5),
                     periodic=bool(rng.random() < 0.5))
    return us.CosineScheduler(
        max_update=_length(rng, 20, 100), base_lr=base,
        final_lr=float(base * rng.uniform(0, 0.2)), **_warmup(rng, base),
        **shape)


def exponential(rng):
    return us.ExponentialScheduler(
        _lr(rng), factor=float(rng.uniform(0.5, 1.0)),
        step=_length(rng, 1, 20), staircase=bool(rng.random() < 0.5))


def inverse_time(rng):
    return us.InverseTimeScheduler(
        _lr(rng), factor=float(rng.uniform(0.0, 2.0)),
        step=int(rng.integers(1, 20)), staircase=bool(rng.random() < 0.5))


def piecewise_constant(rng):
    count = int(rng.integers(1, 5))
    return us.PiecewiseConstantScheduler(
        _milestones(rng, count), [_lr(rng) for _ in range(count + 1)])


def cosine_restarts(rng):
    base = _lr(rng)
    return us.CosineRestartsScheduler(
        first_cycle=int(rng.integers(3, 30)), base_lr=base,
        final_lr=float(base * rng.uniform(0, 0.2)),
        cycle_mult=float(rng.choice([1.0, 2.0, 3.0, rng.uniform(1, 2.5)])),
        cycle_decay=float(rng.choice([1.0, rng.uniform(0.3, 1.0)])))


def cyclic(rng):
    base = _lr(rng, 1e-4, 0.1)
    return us.CyclicScheduler(
        base, base * float(rng.uniform(1.5, 20)),
        step_size_up=int(rng.integers(2, 25)),
        step_size_down=(None if rng.random() < 0.5
                        else int(rng.integers(2, 25))),
        mode=str(rng.choice(["triangular", "triangular2", "exp_range"])),
        gamma=float(rng.uniform(0.95, 1.0)),
        base_momentum=float(rng.uniform(0.7, 0.85)),
        max_momentum=float(rng.uniform(0.86, 0.99)))


def cyclic_momentum(rng):
    return cyclic(rng).momentum


def one_cycle(rng):
    max_update = int(rng.integers(30, HORIZON))
    three = bool(rng.random() < 0.3)
    return us.OneCycleScheduler(
        _lr(rng), max_update,
        pct_start=float(rng.uniform(0.1, 0.45 if three else 0.8)),
        anneal=str(rng.choice(["cos", "linear"])),
        div_factor=float(rng.uniform(5, 50)),
        final_div_factor=float(rng.choice([1e4, 1e2, rng.uniform(2, 1e3)])),
        three_phase=three, base_momentum=float(rng.uniform(0.7, 0.86)),
        max_momentum=float(rng.uniform(0.87, 0.99)),
        style=str(rng.choice(["torch", "fastai"])))


def one_cycle_momentum(rng):
    return one_cycle(rng).momentum


def warmup_stable_decay(rng):
    base = _lr(rng)
    decay = str(rng.choice(["linear", "cosine", "1-sqrt"]))
    cycles = float(rng.choice([1.0, rng.uniform(0, 4)])) \
        if decay == "cosine" else 1.0
    return us.WarmupStableDecayScheduler(
        base, warmup_steps=int(rng.integers(0, 20)),
        stable_steps=int(rng.integers(0, 40)),
        decay_steps=int(rng.integers(1, 50)),
        final_lr=float(base * rng.uniform(0, 0.2)), decay=decay,
        cycles=cycles)


def reduce_on_plateau(rng):
    sched = us.ReduceOnPlateau(
        _STATELESS[int(rng.integers(len(_STATELESS)))](rng),
        factor=float(rng.uniform(0.1, 0.9)), patience=int(rng.integers(0, 3)),
        min_lr=float(rng.choice([0.0, 1e-4])))
    for metric in rng.uniform(0.5, 1.5, int(rng.integers(0, 8))):
        sched.observe(float(metric))
    return sched


def _base(rng):
    return _STATELESS[int(rng.integers(len(_STATELESS)))](rng)


def warmup(rng):
    inner = _base(rng)
    return us.warmup(inner, int(rng.integers(1, 15)),
                     float(rng.uniform(0, 0.01)),
                     str(rng.choice(WARMUP_MODES)))


def join(rng):
    count = int(rng.integers(2, 4))
    boundaries = _milestones(rng, count - 1)
    if rng.random() < 0.3:  # fastai's phases fall between updates
        boundaries = [b - float(rng.uniform(0, 1)) for b in boundaries]
    return us.join([_base(rng) for _ in range(count)], boundaries)


def reverse(rng):
    # fastai's SchedPoly (a polynomial rise) or any decay played back
    steps = _length(rng, 5, HORIZON - 20)
    base = _lr(rng)
    if rng.random() < 0.5:
        inner = us.PolyScheduler(steps, base, float(rng.uniform(0.3, 4)),
                                 float(base * rng.uniform(0, 0.5)))
    else:
        inner = _DECAYS[int(rng.integers(len(_DECAYS)))](rng)
    return Reverse(inner, steps)


def epochwise(rng):
    return us.epochwise(_base(rng), int(rng.integers(1, 12)))


def shift(rng):
    return us.shift(_base(rng), int(rng.integers(0, 30)))


def scale(rng):
    return us.scale(_base(rng), float(rng.uniform(0.01, 3.0)))


def multiply(rng):
    # the factor as PyTorch's ChainedScheduler children give it: a curve
    # starting near 1 (LinearLR, StepLR, ...) or any other schedule
    factor = _base(rng) if rng.random() < 0.3 else \
        us.warmup(us.ExponentialScheduler(
            1.0, float(rng.uniform(0.5, 1.0)), int(rng.integers(1, 20)),
            bool(rng.random() < 0.5)), int(rng.integers(1, 15)),
            float(rng.uniform(0, 1.0)))
    return us.multiply(_base(rng), factor)


def floor(rng):
    inner = _base(rng)
    return us.floor(inner, float(inner(0) * rng.uniform(0, 0.5)))


# -- Hugging Face's schedules, with its own arguments ------------------------

def _hf_steps(rng):
    """(num_warmup_steps, num_training_steps): a warmup or none, runs
    shorter than their warmup included (transformers decays over one
    update then)."""
    warm = int(rng.choice([0, rng.integers(1, 30)]))
    return warm, int(rng.integers(0 if warm else 1, 100))


def _hf_cycles(rng, whole=False):
    if whole and rng.random() < 0.7:
        return int(rng.integers(1, 6))
    return float(rng.choice([0.5, 1.0, rng.uniform(0, 3)]))


def hf_constant_with_warmup(rng):
    return presets.HFConstantWithWarmup(_lr(rng), int(rng.integers(1, 40)))


def hf_linear(rng):
    return presets.HFLinear(_lr(rng), *_hf_steps(rng))


def hf_cosine(rng):
    return presets.HFCosine(_lr(rng), *_hf_steps(rng), _hf_cycles(rng))


def hf_cosine_with_min_lr(rng):
    base = _lr(rng)
    low = {"min_lr": float(base * rng.uniform(0, 0.5))} \
        if rng.random() < 0.5 else {"min_lr_rate": float(rng.uniform(0, 1))}
    return presets.HFCosineWithMinLR(base, *_hf_steps(rng), _hf_cycles(rng),
                                     **low)


def hf_cosine_warmup_with_min_lr(rng):
    rate = None if rng.random() < 0.5 else float(rng.uniform(0, 1))
    return presets.HFCosineWarmupWithMinLR(
        _lr(rng), *_hf_steps(rng), _hf_cycles(rng),
        min_lr_rate=float(rng.uniform(0, 0.5)), warmup_lr_rate=rate)


def hf_cosine_with_restarts(rng):
    return presets.HFCosineWithRestarts(_lr(rng), *_hf_steps(rng),
                                        _hf_cycles(rng, whole=True))


def hf_polynomial(rng):
    base = _lr(rng)
    warm, total = _hf_steps(rng)
    if total == warm:
        total += 1
    return presets.HFPolynomial(
        base, warm, total, lr_end=float(base * rng.uniform(0, 0.5)),
        power=float(rng.choice([1.0, 2.0, 0.0, rng.uniform(0.2, 4)])))


def hf_inverse_sqrt(rng):
    scale = None if rng.random() < 0.5 else int(rng.integers(1, 50))
    return presets.HFInverseSqrt(_lr(rng), int(rng.integers(0, 30)), scale)


def hf_warmup_stable_decay(rng):
    shapes = ["linear", "cosine", "1-sqrt"]
    warm = int(rng.integers(0, 30))
    decay = int(rng.integers(0, 40))
    length = {"num_stable_steps": int(rng.integers(0, 40))} \
        if rng.random() < 0.5 else \
        {"num_training_steps": int(rng.integers(warm + 1, 100))}
    return presets.HFWarmupStableDecay(
        _lr(rng), warm, decay, **length,
        warmup_type=str(rng.choice(shapes)),
        decay_type=str(rng.choice(shapes)),
        min_lr_ratio=float(rng.choice([0.0, rng.uniform(0, 0.5)])),
        num_cycles=_hf_cycles(rng))


_DECAYS = [square_root, poly, cosine, exponential, inverse_time]

_STATELESS = [constant, square_root, factor, multi_factor, poly, cosine,
              exponential, inverse_time, piecewise_constant, cosine_restarts,
              cyclic, one_cycle, warmup_stable_decay]

#: registered name -> factory(rng) -> schedule
CATALOG = {
    "constant": constant, "square_root": square_root, "factor": factor,
    "multi_factor": multi_factor, "poly": poly, "cosine": cosine,
    "exponential": exponential, "inverse_time": inverse_time,
    "piecewise_constant": piecewise_constant,
    "cosine_restarts": cosine_restarts, "cyclic": cyclic,
    "cyclic_momentum": cyclic_momentum, "one_cycle": one_cycle,
    "one_cycle_momentum": one_cycle_momentum,
    "warmup_stable_decay": warmup_stable_decay,
    "reduce_on_plateau": reduce_on_plateau, "warmup": warmup, "join": join,
    "epochwise": epochwise, "shift": shift, "scale": scale,
    "multiply": multiply, "floor": floor, "reverse": reverse,
    "hf_constant_with_warmup": hf_constant_with_warmup,
    "hf_linear": hf_linear, "hf_cosine": hf_cosine,
    "hf_cosine_with_min_lr": hf_cosine_with_min_lr,
    "hf_cosine_warmup_with_min_lr": hf_cosine_warmup_with_min_lr,
    "hf_cosine_with_restarts": hf_cosine_with_restarts,
    "hf_polynomial": hf_polynomial, "hf_inverse_sqrt": hf_inverse_sqrt,
    "hf_warmup_stable_decay": hf_warmup_stable_decay,
}


def draw(name: str, seed: int):
    """The schedule ``name`` with parameter set number ``seed``."""
    return CATALOG[name](np.random.default_rng([seed, len(name)]))


def samples(count: int = 3):
    """(name, seed) pairs: ``count`` parameter sets of every schedule, for
    ``pytest.mark.parametrize``."""
    return [(name, seed) for name in CATALOG for seed in range(count)]
