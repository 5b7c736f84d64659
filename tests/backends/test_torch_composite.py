"""PyTorch's composite schedulers converted (``backends/torch/composite``).

Every expectation is what a real ``torch.optim.SGD`` applies under the
real ``SequentialLR`` / ``ChainedScheduler``, stepped the documented way
(``optimizer.step()`` then ``scheduler.step()``), per update or once per
epoch, or a literal table.  Random compositions cover every convertible
child type with random parameters, over the whole horizon and 20 updates
beyond it; rates agree to ``rtol=1e-12`` (PyTorch's chained forms
accumulate rounding, the converted closed forms do not).
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import unisched as us  # noqa: E402
from unisched.backends.torch import native  # noqa: E402
from unisched.backends.torch.composite import COMPOSITE  # noqa: E402

L = torch.optim.lr_scheduler
RTOL = 1e-12
# Building a nested SequentialLR steps its children before any update;
# PyTorch warns about exactly that order.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Detected call of `lr_scheduler.step\\(\\)` before")
BEYOND = 20


def convert(obj, horizon=None):
    """Through ``unisched.from_native``, which dispatches the composites
    to ``COMPOSITE`` and hands them its own dispatch for the children."""
    assert native.COMPOSITE is COMPOSITE
    return us.from_native(obj, horizon=horizon)


def _optimizer(lr: float = 0.3, groups: int = 2) -> torch.optim.SGD:
    ws = [torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
          for _ in range(groups)]
    return torch.optim.SGD([{"params": [w]} for w in ws], lr=lr,
                           momentum=0.9)


def drive(make, updates: int, per_epoch: int = 1, lr: float = 0.3
          ) -> tuple[object, np.ndarray]:
    """The rate every group applied at each update, PyTorch's scheduler
    stepped after every ``per_epoch`` updates; all groups must agree."""
    opt = _optimizer(lr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's own deprecations
        sched = make(opt)
        rates = []
        for k in range(updates):
            rates.append([g["lr"] for g in opt.param_groups])
            opt.step()
            if (k + 1) % per_epoch == 0:
                sched.step()
    rates = np.array(rates)
    assert (rates == rates[:, :1]).all()
    return sched, rates[:, 0]


def _same(sched: us.Schedule, want: np.ndarray, per_epoch: int = 1):
    if per_epoch > 1:
        sched = us.epochwise(sched, per_epoch)
    steps = np.arange(len(want))
    np.testing.assert_allclose(sched.values(steps), want, rtol=RTOL, atol=0)
    np.testing.assert_allclose([sched(int(k)) for k in steps], want,
                               rtol=RTOL, atol=0)


# -- the recipe ----------------------------------------------------------

RECIPE_MAIN = {
    "cosine": lambda o: L.CosineAnnealingLR(o, T_max=95),
    "step": lambda o: L.StepLR(o, step_size=30, gamma=0.1),
    "exponential": lambda o: L.ExponentialLR(o, gamma=0.95),
}


@pytest.mark.parametrize("main", sorted(RECIPE_MAIN))
@pytest.mark.parametrize("main_first", [False, True],
                         ids=["warmup-built-first", "main-built-first"])
@pytest.mark.parametrize("per_epoch", [1, 7])
def test_the_warmup_recipe_equals_torch(main, main_first, per_epoch):
    def make(opt):
        # torchvision's reference script builds the main scheduler first
        if main_first:
            after = RECIPE_MAIN[main](opt)
            warm = L.LinearLR(opt, start_factor=0.01, total_iters=5)
        else:
            warm = L.LinearLR(opt, start_factor=0.01, total_iters=5)
            after = RECIPE_MAIN[main](opt)
        return L.SequentialLR(opt, [warm, after], milestones=[5])

    epochs = 100 + BEYOND
    native_sched, want = drive(make, epochs * per_epoch, per_epoch, lr=0.5)
    sched = convert(native_sched, horizon=epochs)
    _same(sched, want, per_epoch)
    # what the whole 100 epochs are without a horizon
    assert convert(native_sched) == us.join(
        [us.warmup(us.ConstantScheduler(0.5), 5, 0.005),
         {"cosine": us.CosineScheduler(95, 0.5),
          "step": us.ExponentialScheduler(0.5, 0.1, 30, staircase=True),
          "exponential": us.ExponentialScheduler(0.5, 0.95)}[main]], [5])


def test_the_recipe_literal_table():
    # warmup 0.01 -> 1 over 5 updates, then (1 + cos(pi (k - 5) / 95)) / 2,
    # which PyTorch lets rise again after update 100
    _, want = drive(RECIPE, 121, lr=1.0)
    sched = convert(RECIPE(_optimizer(1.0)), horizon=121)
    table = {0: 0.01, 1: 0.208, 4: 0.802, 5: 1.0, 6: 0.999726628670463,
             29: 0.8506183921362442, 52: 0.5082669723831792,
             99: 0.0002733713295369755, 100: 0.0,
             101: 0.0002733713295369755, 120: 0.10542974530180318}
    for k, rate in table.items():
        assert sched(k) == pytest.approx(rate, rel=1e-12, abs=1e-16)
        assert want[k] == pytest.approx(rate, rel=1e-12, abs=1e-16)


def RECIPE(opt):
    return L.SequentialLR(opt, [L.LinearLR(opt, 0.01, total_iters=5),
                                L.CosineAnnealingLR(opt, T_max=95)], [5])


# -- random compositions -------------------------------------------------

def _child(rng, opt, kinds):
    """One random scheduler of a random kind among ``kinds``."""
    kind = kinds[int(rng.integers(len(kinds)))]
    gamma = float(rng.uniform(0.5, 1.0))
    total = int(rng.integers(1, 40))
    if kind == "StepLR":
        return L.StepLR(opt, int(rng.integers(1, 20)), gamma)
    if kind == "MultiStepLR":
        return L.MultiStepLR(opt, sorted(int(m) for m in rng.integers(
            0, 50, int(rng.integers(1, 4)))), gamma)  # repeats, zeros
    if kind == "ExponentialLR":
        return L.ExponentialLR(opt, float(rng.uniform(0.9, 1.0)))
    if kind == "PolynomialLR":
        return L.PolynomialLR(opt, total, float(rng.uniform(0.3, 3.0)))
    if kind == "LinearLR":
        start, end = (float(v) for v in rng.uniform(0.01, 1.0, 2))
        return L.LinearLR(opt, start, end, total)
    if kind == "ConstantLR":
        return L.ConstantLR(opt, float(rng.uniform(0.05, 1.0)), total)
    if kind == "CosineAnnealingLR":
        return L.CosineAnnealingLR(opt, int(rng.integers(2, 40)), float(
            rng.choice([0.0, rng.uniform(0, 1e-3)])))
    if kind == "CyclicLR":
        low = float(rng.uniform(1e-3, 0.1))
        return L.CyclicLR(opt, low, low * float(rng.uniform(1.5, 10)),
                          int(rng.integers(2, 15)),
                          int(rng.integers(2, 15)),
                          str(rng.choice(["triangular", "triangular2",
                                          "exp_range"])), gamma=0.98)
    if kind == "OneCycleLR":
        # longer than any test, so PyTorch never raises for its end
        return L.OneCycleLR(opt, float(rng.uniform(0.1, 1.0)), 500,
                            pct_start=float(rng.uniform(0.1, 0.5)))
    assert kind == "CosineAnnealingWarmRestarts"
    return L.CosineAnnealingWarmRestarts(opt, int(rng.integers(2, 15)),
                                         int(rng.integers(1, 3)))


MULTIPLICATIVE = ["StepLR", "MultiStepLR", "ExponentialLR", "PolynomialLR",
                  "LinearLR", "ConstantLR"]
EVERY = MULTIPLICATIVE + ["CosineAnnealingLR", "CyclicLR", "OneCycleLR",
                          "CosineAnnealingWarmRestarts"]


def _sequential(seed):
    """(factory, horizon): 2-3 children of any kind."""
    rng = np.random.default_rng([seed, 41])
    count = int(rng.integers(2, 4))
    ms = sorted(int(m) for m in rng.choice(np.arange(1, 60), count - 1,
                                           replace=False))

    def make(opt):
        r = np.random.default_rng([seed, 42])
        return L.SequentialLR(opt, [_child(r, opt, EVERY)
                                    for _ in range(count)], ms)
    return make, ms[-1] + 50


@pytest.mark.parametrize("per_epoch", [1, 3])
@pytest.mark.parametrize("seed", range(40))
def test_random_sequential_equals_torch(seed, per_epoch):
    make, horizon = _sequential(seed)
    epochs = horizon + BEYOND
    native_sched, want = drive(make, epochs * per_epoch, per_epoch)
    _same(convert(native_sched, horizon=epochs), want, per_epoch)


def _chained(seed, nested=False):
    rng = np.random.default_rng([seed, 43])
    count = int(rng.integers(2, 4))

    def make(opt):
        r = np.random.default_rng([seed, 44])
        kids = [_child(r, opt, MULTIPLICATIVE) for _ in range(count)]
        if nested:
            kids[1:] = [L.ChainedScheduler(kids[1:])]
        return L.ChainedScheduler(kids)
    return make


@pytest.mark.parametrize("per_epoch", [1, 4])
@pytest.mark.parametrize("seed", range(40))
def test_random_chained_equals_torch(seed, per_epoch):
    make = _chained(seed, nested=seed % 4 == 0)
    native_sched, want = drive(make, (80 + BEYOND) * per_epoch, per_epoch)
    sched = convert(native_sched)
    _same(sched, want, per_epoch)
    assert isinstance(sched, us.Multiply)
    # a stepped chain converts to the same, whole schedule
    assert convert(native_sched) == sched


def _nested(seed):
    """A SequentialLR whose first child is a SequentialLR or a
    ChainedScheduler, the one place PyTorch runs a nested composite."""
    rng = np.random.default_rng([seed, 45])
    inner_ms = sorted(int(m) for m in rng.choice(np.arange(2, 30), int(
        rng.integers(1, 3)), replace=False))
    outer_ms = [int(rng.integers(5, 50))]
    # an ordinary step 0 puts CosineAnnealingLR off its curve: refused
    first = [k for k in EVERY if k != "CosineAnnealingLR"]

    def make(opt):
        r = np.random.default_rng([seed, 46])
        if seed % 3 == 2:
            inner = L.ChainedScheduler([_child(r, opt, MULTIPLICATIVE)
                                        for _ in range(2)])
        else:
            inner = L.SequentialLR(
                opt, [_child(r, opt, first)]
                + [_child(r, opt, EVERY) for _ in inner_ms], inner_ms)
        return L.SequentialLR(opt, [inner, _child(r, opt, EVERY)],
                              outer_ms)
    return make, outer_ms[0] + 50


@pytest.mark.parametrize("seed", range(30))
def test_random_nested_equals_torch(seed):
    make, horizon = _nested(seed)
    native_sched, want = drive(make, horizon + BEYOND)
    _same(convert(native_sched, horizon=horizon + BEYOND), want)


def test_nested_sequential_runs_one_update_ahead_literal():
    # PyTorch steps a nested first child once more than it undid: the
    # inner milestone 3 switches at update 2, and the inner
    # ExponentialLR's step 0 is an ordinary one (gamma applied).
    def make(opt):
        inner = L.SequentialLR(opt, [L.ExponentialLR(opt, 0.5),
                                     L.ConstantLR(opt, 0.5, 10)], [3])
        return L.SequentialLR(opt, [inner, L.StepLR(opt, 2, 0.5)], [6])

    table = [0.5, 0.25, 0.5, 0.5, 0.5, 0.5, 1.0, 1.0, 0.5, 0.5, 0.25]
    native_sched, want = drive(make, len(table), lr=1.0)
    assert want.tolist() == table
    sched = convert(native_sched)
    assert [sched(k) for k in range(len(table))] == table


def _deep(opt):
    inner = L.SequentialLR(opt, [L.ExponentialLR(opt, 0.9),
                                 L.PolynomialLR(opt, 10, 2.0)], [4])
    middle = L.SequentialLR(opt, [inner, L.ConstantLR(opt, 0.5, 3)], [7])
    return L.SequentialLR(opt, [middle, L.StepLR(opt, 2, 0.5)], [12])


def test_nesting_two_deep_runs_two_updates_ahead():
    native_sched, want = drive(_deep, 40, lr=1.0)
    # the innermost milestone 4 acts at update 2, the middle one 7 at 6
    assert want[:8].tolist() == pytest.approx(
        [0.9, 0.81, 1.0, 0.81, 0.64, 0.49, 0.5, 0.5], rel=1e-12)
    sched = convert(native_sched)
    assert sched == us.join([us.join([us.join(
        [us.scale(us.ExponentialScheduler(1.0, 0.9), 0.9),
         us.PolyScheduler(10, 1.0, pwr=2.0)], [2]),
        us.PiecewiseConstantScheduler([2], [0.5, 1.0])], [6]),
        us.ExponentialScheduler(1.0, 0.5, 2, staircase=True)], [12])
    _same(sched, want)


@pytest.mark.parametrize("first", [
    lambda o: L.StepLR(o, 3, 0.5),
    lambda o: L.CosineAnnealingLR(o, 10, 0.01),
], ids=["StepLR", "CosineAnnealingLR"])
def test_first_child_runs_from_the_rate_a_later_one_cycle_set(first):
    # OneCycleLR overwrites initial_lr (max_lr / div_factor); SequentialLR
    # then starts its first child from that, not from the child's base.
    def make(opt):
        head = first(opt)
        return L.SequentialLR(opt, [head, L.OneCycleLR(opt, 0.9, 500)], [30])

    native_sched, want = drive(make, 60)
    assert want[0] == pytest.approx(0.9 / 25, rel=1e-15)
    _same(convert(native_sched, horizon=60), want)


def test_horizon_reaches_every_child():
    # CosineAnnealingLR rises again after T_max: without a horizon the
    # converted piece stays at eta_min, with one it follows PyTorch.
    def make(opt):
        inner = L.SequentialLR(opt, [L.LinearLR(opt, 0.5, total_iters=2),
                                     L.CosineAnnealingLR(opt, 4)], [3])
        return L.SequentialLR(opt, [inner, L.CosineAnnealingLR(opt, 5)],
                              [12])

    native_sched, want = drive(make, 30, lr=1.0)
    _same(convert(native_sched, horizon=30), want)
    # the inner cosine runs from update 2 (one ahead), the outer from 12
    pinned = convert(native_sched)
    for end in (6, 17):
        assert pinned(end) == 0.0 and want[end] == 0.0
        assert pinned(end + 1) == 0.0 and want[end + 1] > 0.09


def test_chained_literal_table():
    def make(opt):
        return L.ChainedScheduler([L.ConstantLR(opt, 0.5, total_iters=4),
                                   L.ExponentialLR(opt, 0.5)])

    table = [0.5, 0.25, 0.125, 0.0625, 0.0625, 0.03125]
    native_sched, want = drive(make, len(table), lr=1.0)
    assert want.tolist() == table
    sched = convert(native_sched)
    assert sched == us.multiply(
        us.PiecewiseConstantScheduler([3], [0.5, 1.0]),
        us.scale(us.ExponentialScheduler(1.0, 0.5), 1.0))
    assert [sched(k) for k in range(len(table))] == table


# -- what is refused, and why --------------------------------------------

def _opt():
    return _optimizer(0.1, groups=1)


def test_composites_after_the_first_child_are_refused():
    # PyTorch itself fails at the milestone
    for late in (lambda o: L.SequentialLR(o, [L.StepLR(o, 2)], []),
                 lambda o: L.ChainedScheduler([L.StepLR(o, 2)])):
        opt = _opt()
        sched = L.SequentialLR(opt, [L.StepLR(opt, 2), late(opt)], [3])
        with pytest.raises(ValueError, match=r"SequentialLR: schedulers\[1"
                           r"\] \((SequentialLR|ChainedScheduler)\): "
                           r"PyTorch restarts it at milestone 3 with "
                           r"_update_lr\(0\).*NotImplementedError"):
            convert(sched)
        with pytest.raises(NotImplementedError):
            for _ in range(4):
                sched.step()


@pytest.mark.parametrize("kind, reason", [
    (lambda o: L.CosineAnnealingLR(o, 10),
     r"its chained step is recursive.*T_max.*no closed form"),
    (lambda o: L.CyclicLR(o, 0.01, 0.1), r"it sets the rate outright"),
    (lambda o: L.OneCycleLR(o, 0.1, 100), r"it sets the rate outright"),
    (lambda o: L.CosineAnnealingWarmRestarts(o, 5), r"it sets the rate"),
    (lambda o: L.SequentialLR(o, [L.StepLR(o, 2)], []),
     r"it restarts its children"),
])
def test_chained_refuses_non_multiplicative_children(kind, reason):
    opt = _opt()
    sched = L.ChainedScheduler([L.StepLR(opt, 3), kind(opt)])
    name = type(sched._schedulers[1]).__name__
    with pytest.raises(ValueError, match=rf"ChainedScheduler: schedulers"
                       rf"\[1\] \({name}\) cannot be chained in closed "
                       rf"form: {reason}.*chainable: ConstantLR, LinearLR"):
        convert(sched)


@pytest.mark.parametrize("code, error, reason", [
    # a LambdaLR converts when it is one of transformers' schedules
    (lambda o: L.LambdaLR(o, lambda k: 0.9 ** k), ValueError,
     r"LambdaLR: lr_lambda .* is code-defined"),
    (lambda o: L.MultiplicativeLR(o, lambda k: 0.9), TypeError,
     r"from_native converts exactly .*got torch.optim.lr_scheduler."
     r"MultiplicativeLR \(code-defined"),
])
def test_code_defined_children_are_refused_with_from_natives_reason(
        code, error, reason):
    opt = _opt()
    child = code(opt)
    name = type(child).__name__
    for sched in (L.SequentialLR(opt, [L.StepLR(opt, 3), child], [4]),
                  L.ChainedScheduler([L.StepLR(opt, 3), child])):
        with pytest.raises(error, match=rf"{type(sched).__name__}: "
                           rf"schedulers\[1\] \({name}\) cannot be "
                           rf"converted: {reason}"):
            convert(sched)


def test_child_errors_name_index_class_and_reason():
    opt = _opt()
    custom = L.CyclicLR(opt, 0.01, 0.1, scale_fn=lambda x: 1.0)
    sched = L.SequentialLR(opt, [L.LinearLR(opt, 0.1), custom], [5])
    with pytest.raises(ValueError, match=r"SequentialLR: schedulers\[1\] "
                       r"\(CyclicLR\) cannot be converted: CyclicLR.*"
                       r"custom scale_fn"):
        convert(sched)


def test_groups_with_different_rates_are_refused():
    opt = torch.optim.SGD([{"params": [torch.nn.Parameter(torch.zeros(1))],
                            "lr": 0.1},
                           {"params": [torch.nn.Parameter(torch.zeros(1))],
                            "lr": 0.2}])
    sched = L.SequentialLR(opt, [L.LinearLR(opt, 0.1), L.StepLR(opt, 3)],
                           [5])
    with pytest.raises(ValueError, match=r"SequentialLR: the param groups "
                       r"have different initial_lr \[0.1, 0.2\]; "
                       r"from_native returns one schedule"):
        convert(sched)


def test_cosine_taking_an_ordinary_step_0_is_refused():
    opt = _opt()
    inner = L.SequentialLR(opt, [L.CosineAnnealingLR(opt, 10),
                                 L.StepLR(opt, 2)], [4])
    sched = L.SequentialLR(opt, [inner, L.StepLR(opt, 2)], [8])
    with pytest.raises(ValueError, match=r"schedulers\[0\] \(CosineAnneal"
                       r"ingLR\): PyTorch gives it an ordinary \(not "
                       r"initial\) step 0.*2 / \(1 \+ cos\(pi / T_max\)\)"):
        convert(sched)


@pytest.mark.parametrize("milestones, match", [
    ([6, 3], r"milestones must be sorted \(PyTorch bisects them\), got "
             r"\[6, 3\]"),
    ([0, 3], r"milestones\[0\] must be > 0 so that schedulers\[0\] runs "
             r"at all, got \[0, 3\]"),
    ([2.5, 3], r"milestones\[0\] must be an integer to convert, got 2.5"),
])
def test_bad_milestones_are_refused(milestones, match):
    opt = _opt()
    sched = L.SequentialLR(opt, [L.StepLR(opt, 2) for _ in range(3)],
                           milestones)
    with pytest.raises(ValueError, match=match):
        convert(sched)


def test_nested_milestone_inside_the_lead_is_refused():
    opt = _opt()
    inner = L.SequentialLR(opt, [L.StepLR(opt, 2), L.StepLR(opt, 3)], [1])
    sched = L.SequentialLR(opt, [inner, L.StepLR(opt, 2)], [8])
    with pytest.raises(ValueError, match=r"milestones\[0\] must be > 1 .*"
                       r"runs 1 update\(s\) ahead"):
        convert(sched)


def test_repeated_milestones_skip_the_child_torch_never_runs():
    make = lambda o: L.SequentialLR(  # noqa: E731
        o, [L.ConstantLR(o, 0.5, 10), L.LambdaLR(o, lambda k: 7.0),
            L.ExponentialLR(o, 0.5)], [3, 3])
    native_sched, want = drive(make, 8, lr=1.0)
    assert want.tolist() == [0.5, 0.5, 0.5, 1.0, 0.5, 0.25, 0.125, 0.0625]
    _same(convert(native_sched), want)


def test_chain_started_from_another_rate_is_refused():
    # A scheduler built earlier on the optimizer leaves its factor in the
    # rate the chain starts from, while the children's base is initial_lr.
    opt = _opt()
    L.ConstantLR(opt, 0.5, total_iters=100)
    sched = L.ChainedScheduler([L.StepLR(opt, 3), L.ExponentialLR(opt, 0.9)])
    with pytest.raises(ValueError, match=r"param group 0 has lr 0.05 at "
                       r"step 0, where a chain started from initial_lr 0.1"
                       r" gives 0.1"):
        convert(sched)
