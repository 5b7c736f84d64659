"""Tests for the PyTorch backend (``unisched.backends.torch``).

Rates are read from what a real ``torch.optim.SGD`` applies: a single
float64 weight is zeroed before each update and gets gradient 1, so the
weight after the update is exactly ``-lr``.  Native parity drives PyTorch's
own schedulers the documented way (``optimizer.step()`` then
``scheduler.step()``) and compares the rates they set with the converted
schedule.
"""
from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import unisched as us  # noqa: E402
from unisched._cache import BLOCK  # noqa: E402
from unisched.backends import torch as ust  # noqa: E402

from catalog import draw, samples  # noqa: E402

L = torch.optim.lr_scheduler
RTOL = 1e-6
UPDATES = 70


def _close(value):
    """Equal up to rounding: the adapter evaluates ``sched.values`` (numpy)
    in blocks, ``sched(k)`` uses ``math``; the two may differ in the last
    bit on some platforms."""
    return pytest.approx(value, rel=1e-14, abs=0)


def _weights(count: int = 1) -> list[torch.nn.Parameter]:
    return [torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
            for _ in range(count)]


def _sgd(count: int = 1, **kwargs) -> tuple[torch.optim.SGD, list]:
    ws = _weights(count)
    return torch.optim.SGD([{"params": [w]} for w in ws], lr=0.1,
                           **kwargs), ws


def _applied(opt, ws, sch, updates: int, per_step: int = 1,
             want=None, observe_at=()) -> np.ndarray:
    """The rate each group applied at each update: weights start at 0,
    gradient 1, so the weight after the update is -lr.  The scheduler is
    stepped after every ``per_step`` updates (an epoch).  ``want(k)``, if
    given, is recorded just before update k (the value the schedule has
    then; a plateau schedule changes as it observes): the result is then
    ``(applied, wanted)``.  A rising metric is observed after each update
    in ``observe_at``."""
    out = np.zeros((updates, len(ws)))
    wanted = []
    for k in range(updates):
        if want is not None:
            wanted.append(want(k))
        for w in ws:
            with torch.no_grad():
                w.zero_()
            w.grad = torch.ones_like(w)
        opt.step()
        out[k] = [-w.item() for w in ws]
        if (k + 1) % per_step == 0:
            sch.step()
        if k in observe_at:
            sch.observe(float(k))
    return out if want is None else (out, np.array(wanted))


# -- applied-rate parity over the whole catalog --------------------------
#
# A window over which the rate never changes cannot show an update that
# used the wrong step; every catalog window below holds a change of rate
# along the steps: schedules that change late get a longer window, and
# schedules constant for good (a plateau's included) are joined to a
# second piece.  Plateau schedules are also cut during the run (a rising
# metric), which the adapter must apply at once.

PLATEAU_CUTS = tuple(range(20, 26))  # patience <= 2: at least two cuts


def _changing(sched, spe):
    """``(sched, updates)``: update k uses ``sched(k // spe)`` and the
    rate changes with k within the run."""
    values = sched.values(np.arange(50 * UPDATES) // spe)
    change = np.flatnonzero(values != values[0])
    if change.size:
        return sched, max(UPDATES, int(change[0]) + 10)
    other = us.ConstantScheduler(0.5 * values[0] + 0.1)
    return us.join([sched, other], [UPDATES // (2 * spe)]), UPDATES


def _case(name, seed, spe=1):
    """``(sched, updates, observe_at)`` for a catalog schedule."""
    sched = draw(name, seed)
    if not sched.stateful:
        return (*_changing(sched, spe), ())
    inner, updates = _changing(sched.schedule, spe)
    config = dict(sched.to_config(), schedule=inner.to_config())
    plateau = us.from_config(config)
    plateau.load_state_dict(sched.state_dict())
    return plateau, updates, PLATEAU_CUTS


def _assert_changes(values):
    assert np.ptp(values) > 0, "a constant window tests nothing"


@pytest.mark.parametrize("name, seed", samples(3))
def test_applied_rate_is_sched_of_k(name, seed):
    sched, updates, cuts = _case(name, seed)
    opt, ws = _sgd()
    sch = ust.bind(sched, opt, momentum=False)
    got, want = _applied(opt, ws, sch, updates, want=sched,
                         observe_at=cuts)
    _assert_changes(want)
    np.testing.assert_allclose(got[:, 0], want, rtol=RTOL, atol=0)


@pytest.mark.parametrize("name, seed", samples(3))
@pytest.mark.parametrize("per_update", [False, True])
def test_applied_rate_unit_epoch(name, seed, per_update):
    # PyTorch style: step() once per epoch; or, with steps_per_epoch,
    # step() after every update.  Either way update k uses sched(k // spe).
    spe = 1 + seed * 3  # 1, 4, 7 updates per epoch
    sched, updates, cuts = _case(name, seed, spe)
    opt, ws = _sgd()
    options = {"steps_per_epoch": spe} if per_update else {}
    sch = ust.bind(sched, opt, unit="epoch", momentum=False, **options)
    got, want = _applied(opt, ws, sch, updates,
                         per_step=1 if per_update else spe,
                         want=lambda k: sched(k // spe), observe_at=cuts)
    _assert_changes(want)
    np.testing.assert_allclose(got[:, 0], want, rtol=RTOL, atol=0)


@pytest.mark.parametrize("name, seed", samples(3))
def test_applied_rate_with_multipliers(name, seed):
    sched, updates, cuts = _case(name, seed)
    opt, ws = _sgd(2)
    sch = ust.bind(sched, opt, multipliers=[0.1, 2.5], momentum=False)
    got, want = _applied(opt, ws, sch, updates, want=sched,
                         observe_at=cuts)
    _assert_changes(want)
    np.testing.assert_allclose(got[:, 0], 0.1 * want, rtol=RTOL, atol=0)
    np.testing.assert_allclose(got[:, 1], 2.5 * want, rtol=RTOL, atol=0)


def test_literal_rates_and_weight():
    # ENVIRONMENT.md: lr(n) = 1/(n+1), three updates of gradient 1 leave
    # the weight at -1.8333 with LambdaLR; the adapter gives the same.
    results = []
    for make in (lambda o: L.LambdaLR(o, lambda n: 1.0 / (n + 1)),
                 lambda o: ust.bind(us.InverseTimeScheduler(1.0, 1.0), o)):
        w = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
        opt = torch.optim.SGD([w], lr=1.0)
        sch = make(opt)
        lrs = []
        for _ in range(3):
            lrs.append(opt.param_groups[0]["lr"])
            w.grad = torch.ones_like(w)
            opt.step()
            sch.step()
        results.append((lrs, w.item()))
    for lrs, weight in results:
        assert lrs == pytest.approx([1.0, 0.5, 1 / 3], rel=1e-15)
        assert weight == pytest.approx(-1.8333333333333333, rel=1e-15)


# -- call order ----------------------------------------------------------

def test_documented_order_is_silent_and_sets_sched0_at_once():
    sched = us.ExponentialScheduler(1.0, 0.5)
    opt, ws = _sgd()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sch = ust.bind(sched, opt)
        assert opt.param_groups[0]["lr"] == 1.0
        assert sch.last_epoch == 0
        got = _applied(opt, ws, sch, 4)[:, 0]
    assert got.tolist() == [1.0, 0.5, 0.25, 0.125]
    assert sch.last_epoch == 4 and sch.get_last_lr() == [0.0625]


def test_wrong_order_warns_and_shifts_by_one():
    sched = us.ExponentialScheduler(1.0, 0.5)
    opt, ws = _sgd()
    sch = ust.bind(sched, opt)
    with pytest.warns(UserWarning, match="before `optimizer.step"):
        sch.step()
    lrs = []
    for _ in range(3):
        ws[0].grad = torch.ones_like(ws[0])
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sch.step()
    # The warned-about consequence: sched(0) is skipped.
    assert lrs == [0.5, 0.25, 0.125]


def test_rates_across_evaluation_blocks_and_jumps():
    # The adapter evaluates blocks of BLOCK updates at once; crossing
    # and jumping between blocks must not change a rate.  (Weight decay
    # does not touch the applied rate here: the weight is 0.)
    sched = us.warmup(us.CosineScheduler(500, 0.5, 0.01), 40)
    opt, ws = _sgd()
    sch = ust.bind(sched, opt, multipliers=[0.5],
                   hparams={"weight_decay": "cosine(max_update=600, "
                                            "base_lr=0.9, final_lr=0.5)"})
    updates = 2 * BLOCK + 50
    got = _applied(opt, ws, sch, updates)[:, 0]
    np.testing.assert_allclose(got, 0.5 * sched.values(np.arange(updates)),
                               rtol=1e-14)
    for k in (3 * BLOCK + 7, 5, BLOCK - 1, BLOCK, 0):
        sch.step(k)
        assert opt.param_groups[0]["lr"] == _close(0.5 * sched(k))
        assert opt.param_groups[0]["weight_decay"] == _close(
            0.9 - 0.4 * (1 - np.cos(np.pi * min(k, 600) / 600)) / 2)


def test_step_jumps_to_an_integer_and_refuses_a_metric():
    sched = us.CosineScheduler(10, 1.0)
    opt, _ = _sgd()
    sch = ust.bind(sched, opt)
    sch.step(7)
    assert opt.param_groups[0]["lr"] == _close(sched(7))
    assert sch.last_epoch == 7
    with pytest.raises(TypeError, match="observe"):
        sch.step(0.25)
    with pytest.raises(ValueError, match="epoch must be >= 0"):
        sch.step(-1)


def test_last_epoch_argument_follows_torch():
    # PyTorch: last_epoch=n-1 means the next update is update n.
    sched = us.CosineScheduler(10, 1.0)
    opt, _ = _sgd()
    sch = ust.LRScheduler(opt, sched, last_epoch=4)
    assert sch.last_epoch == 5
    assert opt.param_groups[0]["lr"] == _close(sched(5))


def test_get_lr_is_closed_form_and_is_a_torch_scheduler():
    sched = us.CosineScheduler(10, 1.0)
    opt, _ = _sgd(2)
    sch = ust.bind(sched, opt, multipliers=[1.0, 0.5])
    sch.step(3)
    assert isinstance(sch, torch.optim.lr_scheduler.LRScheduler)
    assert sch.get_lr() == _close([sched(3), 0.5 * sched(3)])
    assert sch.get_last_lr() == sch.get_lr()


def test_tensor_lr_is_filled_in_place():
    w = torch.nn.Parameter(torch.zeros(1))
    lr = torch.tensor(0.5)
    opt = torch.optim.Adam([w], lr=lr, foreach=False)
    sched = us.ExponentialScheduler(0.2, 0.5)
    sch = ust.bind(sched, opt)
    w.grad = torch.ones_like(w)
    opt.step()
    sch.step()
    assert opt.param_groups[0]["lr"] is lr
    assert lr.item() == pytest.approx(0.1)


# -- hyperparameters other than lr ---------------------------------------

MOMENTUM_SCHEDULES = [
    us.OneCycleScheduler(0.5, 60, pct_start=0.3, base_momentum=0.8,
                         max_momentum=0.93),
    us.OneCycleScheduler(0.5, 60, three_phase=True, anneal="linear",
                         style="fastai"),
    us.CyclicScheduler(0.01, 0.2, step_size_up=7, step_size_down=11,
                       mode="triangular2", base_momentum=0.75),
    us.warmup(us.CyclicScheduler(0.01, 0.2, 5, mode="exp_range",
                                 gamma=0.97), 6),
]


@pytest.mark.parametrize("sched", MOMENTUM_SCHEDULES, ids=str)
@pytest.mark.parametrize("make", [
    lambda ps: torch.optim.SGD(ps, lr=0.1),  # momentum=0 at first
    lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
    lambda ps: torch.optim.Adam(ps, lr=0.1, betas=(0.5, 0.9)),
    lambda ps: torch.optim.AdamW(ps, lr=0.1),
    lambda ps: torch.optim.RMSprop(ps, lr=0.1, momentum=0.5),
], ids=["sgd", "sgd-nesterov", "adam", "adamw", "rmsprop"])
def test_momentum_follows_sched_momentum(sched, make):
    ws = _weights(2)
    opt = make([{"params": [ws[0]]}, {"params": [ws[1]]}])
    sch = ust.bind(sched, opt)
    key = "betas" if "betas" in opt.defaults else "momentum"
    mom = sched.momentum
    for k in range(60):
        for group in opt.param_groups:
            value = group[key][0] if key == "betas" else group[key]
            assert value == pytest.approx(mom(k), rel=1e-12, abs=0)
            assert group["lr"] == pytest.approx(sched(k), rel=1e-12)
        if key == "betas":
            assert opt.param_groups[0]["betas"][1] == \
                opt.defaults["betas"][1]
        for w in ws:
            w.grad = torch.ones_like(w)
        opt.step()
        sch.step()


def test_momentum_cycle_can_be_turned_off():
    sched = MOMENTUM_SCHEDULES[0]
    quiet = us.OneCycleScheduler(0.5, 60, pct_start=0.3,
                                 cycle_momentum=False)
    for off, options in ((sched, {"momentum": False}), (quiet, {})):
        opt, _ = _sgd(momentum=0.3)
        sch = ust.bind(off, opt, **options)
        sch.step(10)
        assert opt.param_groups[0]["momentum"] == 0.3
        assert sch.hparams == {}
    # a schedule of its own drives momentum instead of the cycle
    opt, _ = _sgd(momentum=0.3)
    sch = ust.bind(sched, opt, momentum="constant(0.5)")
    assert opt.param_groups[0]["momentum"] == 0.5
    assert sch.hparams == {"momentum": us.ConstantScheduler(0.5)}


def test_sgd_built_without_momentum_uses_the_driven_momentum():
    # SGD creates its momentum buffer on the first update with momentum
    # != 0: buf = 1, then 0.9 * 1 + 1 = 1.9; weight -lr * (1 + 1.9).
    opt, ws = _sgd()
    ust.bind(us.ConstantScheduler(0.5), opt, hparams={"momentum": 0.9})
    for _ in range(2):
        ws[0].grad = torch.ones_like(ws[0])
        opt.step()
    assert ws[0].item() == pytest.approx(-0.5 * 2.9, rel=1e-15)


def test_other_hparams_follow_their_schedules():
    w = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([w], lr=0.1)
    wd = us.CosineScheduler(20, 0.1, 0.01)
    b2 = "poly(max_update=10, base_lr=0.99, final_lr=0.9, pwr=1)"
    sch = ust.bind(us.ConstantScheduler(0.1), opt,
                   hparams={"weight_decay": wd, "beta2": b2, "eps": 1e-6})
    for k in range(15):
        group = opt.param_groups[0]
        assert group["weight_decay"] == _close(wd(k))
        assert group["betas"][1] == pytest.approx(0.99 - 0.009 * min(k, 10))
        assert group["betas"][0] == 0.9 and group["eps"] == 1e-6
        w.grad = torch.ones_like(w)
        opt.step()
        sch.step()


# -- ReduceOnPlateau -----------------------------------------------------

def test_observe_cuts_the_rate_at_once():
    sched = us.ReduceOnPlateau(us.CosineScheduler(100, 1.0), factor=0.5,
                               patience=1)
    opt, ws = _sgd()
    sch = ust.bind(sched, opt)
    _applied(opt, ws, sch, 10)
    cuts = [sch.observe(loss) for loss in (1.0, 1.0, torch.tensor(1.0))]
    assert cuts == [False, False, True]
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5 * sched.schedule
                                                      (10), rel=1e-15)
    got = _applied(opt, ws, sch, 5)[:, 0]
    want = [0.5 * sched.schedule(k) for k in range(10, 15)]
    np.testing.assert_allclose(got, want, rtol=1e-15)


def test_observing_the_schedule_directly_counts_from_the_next_step():
    sched = us.ReduceOnPlateau(0.4, factor=0.5, patience=0)
    opt, ws = _sgd()
    sch = ust.bind(sched, opt)
    sched.observe(1.0)
    assert sched.observe(2.0) is True
    assert opt.param_groups[0]["lr"] == 0.4  # not re-applied yet
    assert _applied(opt, ws, sch, 3)[:, 0].tolist() == [0.4, 0.2, 0.2]


def test_observe_needs_a_plateau_schedule():
    opt, _ = _sgd()
    sch = ust.bind(us.ConstantScheduler(0.1), opt)
    with pytest.raises(TypeError, match="ReduceOnPlateau"):
        sch.observe(1.0)


# -- state dicts ---------------------------------------------------------

def _save_load(obj):
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def test_state_dict_is_plain_data_and_round_trips():
    sched = us.ReduceOnPlateau(us.OneCycleScheduler(0.3, 50), patience=0,
                               factor=0.5)
    opt, ws = _sgd(2, momentum=0.9)
    sch = ust.bind(sched, opt, multipliers=[1.0, 0.1])
    _applied(opt, ws, sch, 12)
    sch.observe(2.0)
    sch.observe(3.0)
    state = sch.state_dict()
    json.dumps(state)  # no objects, only plain data
    loaded = _save_load(state)
    assert loaded == state
    assert state["updates_done"] == 12 and state["unit"] == "step"
    assert state["format"] == ust.STATE_FORMAT
    assert state["schedule_state"]["scale"] == 0.5

    sched2 = us.ReduceOnPlateau(us.OneCycleScheduler(0.3, 50), patience=0,
                                factor=0.5)
    opt2, _ = _sgd(2, momentum=0.9)
    sch2 = ust.bind(sched2, opt2, multipliers=[1.0, 0.1])
    sch2.load_state_dict(loaded)
    assert sched2.scale == 0.5 and sch2.updates_done == 12
    for g1, g2 in zip(opt.param_groups, opt2.param_groups, strict=True):
        assert g2["lr"] == g1["lr"] and g2["momentum"] == g1["momentum"]


def _fresh(sched, **options):
    opt, _ = _sgd(momentum=0.9)
    return ust.bind(sched, opt, **options), opt


def test_load_with_another_schedule_refuses_or_follows_the_policy():
    a = us.CosineScheduler(50, 1.0)
    b = us.CosineScheduler(80, 1.0)
    sch, _ = _fresh(a)
    sch.step(20)
    state = sch.state_dict()

    other, opt = _fresh(b)
    with pytest.raises(ValueError, match=r"different schedule: checkpoint "
                       r"cosine\(max_update=50.*bound cosine\(max_update=80"
                       r".*on_mismatch"):
        other.load_state_dict(state)
    assert other.updates_done == 0
    assert opt.param_groups[0]["lr"] == _close(b(0))

    adopt, opt = _fresh(b, on_mismatch="checkpoint")
    adopt.load_state_dict(state)
    assert adopt.schedule == a and opt.param_groups[0]["lr"] == _close(a(20))

    keep, opt = _fresh(b, on_mismatch="bound")
    keep.load_state_dict(state)
    assert keep.schedule == b and opt.param_groups[0]["lr"] == _close(b(20))


def test_load_settles_other_units_and_multipliers_and_refuses_foreign():
    sched = us.CosineScheduler(50, 1.0)
    sch, _ = _fresh(sched, unit="epoch", steps_per_epoch=4)
    sch.step(9)  # update 9: epoch 2
    state = sch.state_dict()
    per_update, _ = _fresh(sched)
    with pytest.raises(ValueError, match="unit='epoch', steps_per_epoch=4"):
        per_update.load_state_dict(state)
    adopt, opt = _fresh(sched, on_mismatch="checkpoint")
    adopt.load_state_dict(state)
    assert (adopt.unit, adopt.steps_per_epoch) == ("epoch", 4)
    assert opt.param_groups[0]["lr"] == _close(sched(2))
    scaled, _ = _fresh(sched, multipliers=[0.5])
    with pytest.raises(ValueError, match="multipliers=\\(0.5,\\)"):
        scaled.load_state_dict(per_update.state_dict())
    native = L.StepLR(torch.optim.SGD(_weights(), lr=0.1), 3).state_dict()
    with pytest.raises(ValueError, match="state format must be 'unisched"
                       ".torch.LRScheduler/2', got None"):
        sch.load_state_dict(native)
    bad = dict(state, updates_done=-3)
    with pytest.raises(ValueError, match="updates_done"):
        sch.load_state_dict(bad)
    assert sch.updates_done == 9  # a bad checkpoint changes nothing


RESUME_SPECS = [
    "one_cycle(max_lr=0.5, max_update=60, three_phase=True)",
    "reduce_on_plateau(cosine(max_update=80, base_lr=0.2), patience=1, "
    "factor=0.5)",
]

# Builds the scheduler from the same spec, as a user's script would, then
# resumes from the checkpoint; one process for every spec (torch's import
# dominates the time).
RESUME_SCRIPT = textwrap.dedent("""
    import json, sys, torch
    from unisched.backends import torch as ust
    rest, results = int(sys.argv[1]), []
    for path, spec in zip(sys.argv[2::2], sys.argv[3::2]):
        w = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
        opt = torch.optim.SGD([w], lr=0.1, momentum=0.5)
        sch = ust.LRScheduler(opt, spec)
        ckpt = torch.load(path, weights_only=True)
        w.data.copy_(ckpt["w"])
        opt.load_state_dict(ckpt["opt"])
        sch.load_state_dict(ckpt["sched"])
        lrs, moms = [], []
        for k in range(rest):
            lrs.append(opt.param_groups[0]["lr"])
            moms.append(opt.param_groups[0]["momentum"])
            w.grad = torch.full_like(w, 1.0 + 0.01 * k)
            opt.step()
            sch.step()
            if sch.schedule.stateful and k % 5 == 4:
                sch.observe(1.0)
        results.append({"lrs": lrs, "moms": moms, "w": w.tolist()})
    print(json.dumps(results))
""")


def _train(sch, opt, w, updates):
    """The script's loop: gradients and observations restart at 0."""
    lrs, moms = [], []
    for k in range(updates):
        lrs.append(opt.param_groups[0]["lr"])
        moms.append(opt.param_groups[0]["momentum"])
        w.grad = torch.full_like(w, 1.0 + 0.01 * k)
        opt.step()
        sch.step()
        if sch.schedule.stateful and k % 5 == 4:
            sch.observe(1.0)
    return lrs, moms


def test_resume_in_a_fresh_process(tmp_path):
    first, rest = 25, 30
    args, wants = [str(rest)], []
    for i, spec in enumerate(RESUME_SPECS):
        w = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
        opt = torch.optim.SGD([w], lr=0.1, momentum=0.5)
        sch = ust.LRScheduler(opt, spec)
        _train(sch, opt, w, first)
        path = tmp_path / f"ckpt{i}.pt"
        torch.save({"w": w.detach().clone(), "opt": opt.state_dict(),
                    "sched": sch.state_dict()}, path)
        args += [str(path), spec]
        lrs, moms = _train(sch, opt, w, rest)  # the uninterrupted run
        wants.append({"lrs": lrs, "moms": moms, "w": w.tolist()})
        if sch.schedule.stateful:  # cuts before and after the split
            assert sch.schedule.state_dict()["num_reductions"] >= 2

    out = subprocess.run([sys.executable, "-c", RESUME_SCRIPT, *args],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == wants


# -- bad targets and arguments -------------------------------------------

def test_bind_needs_an_optimizer():
    with pytest.raises(TypeError, match="torch.optim.Optimizer.*"
                       "builtins.dict"):
        ust.bind("constant(0.1)", {"lr": 0.1})
    with pytest.raises(TypeError, match="sched must be"):
        ust.bind([0.1], _sgd()[0])
    opt, _ = _sgd()
    ust.bind(0.25, opt)  # a number is a constant rate
    assert opt.param_groups[0]["lr"] == 0.25


def test_unknown_hparam_names_what_the_optimizer_has():
    with pytest.raises(ValueError, match=r"'beta1', which SGD does not "
                       r"have; it has \['dampening', 'momentum', "
                       r"'weight_decay'\]"):
        ust.bind("constant(0.1)", _sgd()[0], hparams={"beta1": 0.9})
    adam = torch.optim.Adam(_weights(), lr=0.1)
    with pytest.raises(ValueError, match="'momentum'.*'beta1', 'beta2'"):
        ust.bind("constant(0.1)", adam, hparams={"momentum": 0.9})
    with pytest.raises(ValueError, match="must not contain 'lr'"):
        ust.bind("constant(0.1)", adam, hparams={"lr": 0.9})


def test_momentum_cycle_on_an_optimizer_without_momentum():
    adagrad = torch.optim.Adagrad(_weights(), lr=0.1)
    spec = "one_cycle(max_lr=0.1, max_update=10)"
    with pytest.raises(ValueError, match="Adagrad has neither momentum "
                       "nor beta1; pass momentum=False"):
        ust.bind(spec, adagrad)
    ust.bind(spec, adagrad, momentum=False)
    assert adagrad.param_groups[0]["lr"] == pytest.approx(0.004)


def test_multiplier_count_must_match_the_groups():
    with pytest.raises(ValueError, match="3 entries.*2 parameter group"):
        ust.bind("constant(0.1)", _sgd(2)[0], multipliers=[1, 2, 3])
    opt, _ = _sgd()
    sch = ust.bind("constant(0.1)", opt, multipliers=[1.0])
    opt.add_param_group({"params": _weights()})
    opt.step()
    with pytest.raises(ValueError, match="2 param groups.*1 entries"):
        sch.step()


def test_bad_unit_and_options():
    opt, _ = _sgd()
    with pytest.raises(ValueError, match="unit must be one of.*'batch'"):
        ust.bind("constant(0.1)", opt, unit="batch")
    with pytest.raises(ValueError, match="on_mismatch"):
        ust.bind("constant(0.1)", opt, on_mismatch="ignore")
    with pytest.raises(ValueError, match="last_epoch must be"):
        ust.LRScheduler(opt, "constant(0.1)", last_epoch=-2)


def test_dispatch_through_unisched_bind_and_from_native():
    opt, _ = _sgd()
    sch = us.bind("cosine(max_update=10, base_lr=0.5)", opt)
    assert isinstance(sch, ust.LRScheduler)
    assert us.from_native(sch) == us.CosineScheduler(10, 0.5)
    native = L.ExponentialLR(torch.optim.SGD(_weights(), lr=0.2), 0.9)
    assert us.from_native(native) == us.ExponentialScheduler(0.2, 0.9)


# -- from_native ---------------------------------------------------------

def _lr(rng):
    return float(np.exp(rng.uniform(np.log(1e-3), np.log(1.0))))


def _native_cases():
    """(id, factory(optimizer) -> scheduler, updates, from_native
    options); four random parameter sets per scheduler."""
    cases = []
    for seed in range(4):
        rng = np.random.default_rng([seed, 7])
        gamma = float(rng.uniform(0.3, 1.0))
        size = int(rng.integers(1, 20))
        cases.append((f"StepLR-{seed}", lambda o, s=size, g=gamma:
                      L.StepLR(o, step_size=s, gamma=g), 80, {}))
        ms = sorted(int(m) for m in rng.choice(
            np.arange(0, 60), int(rng.integers(1, 5))))  # repeats allowed
        cases.append((f"MultiStepLR-{seed}", lambda o, m=ms, g=gamma:
                      L.MultiStepLR(o, milestones=m, gamma=g), 80, {}))
        cases.append((f"ExponentialLR-{seed}", lambda o, g=gamma:
                      L.ExponentialLR(o, gamma=0.9 + g / 10), 80, {}))
        t_max = int(rng.integers(5, 40))
        eta = float(rng.choice([0.0, rng.uniform(0, 1e-3)]))
        cases.append((f"CosineAnnealingLR-{seed}", lambda o, t=t_max, e=eta:
                      L.CosineAnnealingLR(o, T_max=t, eta_min=e),
                      t_max + 1, {}))
        cases.append((f"CosineAnnealingLR-horizon-{seed}",
                      lambda o, t=t_max, e=eta:
                      L.CosineAnnealingLR(o, T_max=t, eta_min=e),
                      100, {"horizon": 100}))
        total = int(rng.integers(5, 70))
        power = float(rng.choice([1.0, 2.0, rng.uniform(0.2, 3.0)]))
        cases.append((f"PolynomialLR-{seed}", lambda o, t=total, p=power:
                      L.PolynomialLR(o, total_iters=t, power=p), 80, {}))
        start, end = (float(v) for v in rng.uniform(0.05, 1.0, 2))
        cases.append((f"LinearLR-{seed}", lambda o, s=start, e=end, t=total:
                      L.LinearLR(o, start_factor=s, end_factor=e,
                                 total_iters=t), 80, {}))
        cases.append((f"ConstantLR-{seed}", lambda o, f=start, t=total:
                      L.ConstantLR(o, factor=f, total_iters=t), 80, {}))
        base = _lr(rng)
        mode = ["triangular", "triangular2", "exp_range"][seed % 3]
        up, down = (int(v) for v in rng.integers(2, 20, 2))
        # drawn in the order the cases were always drawn (same cases)
        ratio, top = float(rng.uniform(1.5, 10)), float(rng.uniform(0.9, 0.99))
        cases.append((f"CyclicLR-{mode}-{seed}",
                      lambda o, b=base, u=up, d=down if seed % 2 else None,
                      m=mode, r=ratio, mm=top:
                      L.CyclicLR(o, base_lr=b, max_lr=b * r, step_size_up=u,
                                 step_size_down=d, mode=m, gamma=0.98,
                                 max_momentum=mm),
                      90, {}))
        steps = int(rng.integers(60, 120))
        pct, div = float(rng.uniform(0.1, 0.45)), float(rng.uniform(5, 50))
        cases.append((f"OneCycleLR-{seed}",
                      lambda o, b=base, n=steps, p=pct, three=bool(seed % 2),
                      a=["cos", "linear"][seed // 2], div=div:
                      L.OneCycleLR(o, max_lr=b, total_steps=n, pct_start=p,
                                   anneal_strategy=a, three_phase=three,
                                   div_factor=div, base_momentum=0.8),
                      steps, {}))
        t_0, t_mult = int(rng.integers(2, 15)), int(rng.integers(1, 4))
        cases.append((f"CosineAnnealingWarmRestarts-{seed}",
                      lambda o, t=t_0, m=t_mult, e=eta:
                      L.CosineAnnealingWarmRestarts(o, T_0=t, T_mult=m,
                                                    eta_min=e), 100, {}))
    return cases


NATIVE = _native_cases()


def _drive_native(make, updates, groups=2, lr=0.3):
    """Run PyTorch's scheduler the documented way; the rate (and
    momentum) each update used, per group."""
    ws = _weights(groups)
    opt = torch.optim.SGD([{"params": [w]} for w in ws], lr=lr,
                          momentum=0.9)
    sch = make(opt)
    lrs, moms = [], []
    for _ in range(updates):
        lrs.append([g["lr"] for g in opt.param_groups])
        moms.append([g["momentum"] for g in opt.param_groups])
        for w in ws:
            w.grad = torch.ones_like(w)
        opt.step()
        sch.step()
    return sch, np.array(lrs), np.array(moms)


@pytest.mark.parametrize("case", NATIVE, ids=[c[0] for c in NATIVE])
def test_from_native_equals_the_native_rates(case):
    _, make, updates, options = case
    native, lrs, moms = _drive_native(make, updates)
    sched = ust.from_native(native, **options)
    assert isinstance(sched, us.Schedule)
    want = sched.values(np.arange(updates))
    for group in range(lrs.shape[1]):
        np.testing.assert_allclose(lrs[:, group], want, rtol=1e-9,
                                   atol=1e-15)
    if getattr(native, "cycle_momentum", False):
        np.testing.assert_allclose(
            moms[:, 0], sched.momentum.values(np.arange(updates)),
            rtol=1e-12)
    # A stepped scheduler converts to the same, whole schedule.
    assert ust.from_native(native, **options) == \
        ust.from_native(make(torch.optim.SGD(_weights(), lr=0.3,
                                             momentum=0.9)), **options)


def test_from_native_literal_index_shifts():
    opt = torch.optim.SGD(_weights(), lr=1.0)
    s = ust.from_native(L.MultiStepLR(opt, milestones=[15], gamma=0.1))
    assert (s(14), s(15)) == (1.0, pytest.approx(0.1))
    s = ust.from_native(L.MultiStepLR(opt, milestones=[0, 1, 1], gamma=0.5))
    assert [s(0), s(1), s(2)] == [0.5, 0.125, 0.125]
    s = ust.from_native(L.StepLR(opt, step_size=3, gamma=0.5))
    assert [s(k) for k in (2, 3, 5, 6)] == [1.0, 0.5, 0.5, 0.25]
    s = ust.from_native(L.CosineAnnealingLR(opt, T_max=4))
    assert s == us.CosineScheduler(4, 1.0)
    s = ust.from_native(L.LinearLR(opt, 0.5, 1.0, total_iters=2))
    assert [s(k) for k in range(4)] == [0.5, 0.75, 1.0, 1.0]


def test_cosine_annealing_lr_rises_after_t_max():
    # The reason for ``horizon``: PyTorch's rate is periodic, not pinned.
    _, lrs, _ = _drive_native(lambda o: L.CosineAnnealingLR(o, T_max=4),
                              9, groups=1, lr=1.0)
    np.testing.assert_allclose(
        lrs[:, 0], [1.0, 0.853553, 0.5, 0.146447, 0.0, 0.146447, 0.5,
                    0.853553, 1.0], atol=1e-6)


def test_from_native_refuses_what_it_cannot_represent():
    opt = torch.optim.SGD([{"params": _weights(), "lr": 0.1},
                           {"params": _weights(), "lr": 0.2}], lr=0.1)
    with pytest.raises(ValueError, match=r"different base_lrs \[0.1, 0.2\]"
                       r".*multipliers=\[1.0, 2.0\]"):
        ust.from_native(L.StepLR(opt, 3))
    one = torch.optim.SGD(_weights(), lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="custom scale_fn"):
        ust.from_native(L.CyclicLR(one, 0.01, 0.1, scale_fn=lambda x: 1.0))
    with pytest.raises(ValueError, match="step sizes must be integers"):
        ust.from_native(L.CyclicLR(one, 0.01, 0.1, step_size_up=2.5))
    with pytest.raises(ValueError, match=r"LambdaLR: lr_lambda .*<lambda> "
                       r"is code-defined, not one of transformers"):
        ust.from_native(L.LambdaLR(one, lambda n: 1.0))
    with pytest.raises(TypeError, match="ReduceLROnPlateau.*"
                       "unisched.ReduceOnPlateau"):
        ust.from_native(L.ReduceLROnPlateau(one))

    class Mine(L.StepLR):
        pass

    with pytest.raises(TypeError, match="subclasses"):
        ust.from_native(Mine(one, 3))
    with pytest.raises(TypeError, match="got builtins.str"):
        ust.from_native("cosine")


@pytest.mark.parametrize("cycle", [True, False])
@pytest.mark.parametrize("make", [
    lambda o, c: L.CyclicLR(o, 0.01, 0.2, step_size_up=6, step_size_down=9,
                            mode="triangular2", base_momentum=0.75,
                            max_momentum=0.92, cycle_momentum=c),
    lambda o, c: L.OneCycleLR(o, max_lr=0.4, total_steps=50, pct_start=0.2,
                              three_phase=True, base_momentum=0.8,
                              cycle_momentum=c),
], ids=["CyclicLR", "OneCycleLR"])
def test_bound_conversion_applies_the_natives_rate_and_momentum(make, cycle):
    # bind(from_native(x), opt) sets what x sets, momentum included: the
    # cycle when x cycles it, the optimizer's own 0.9 when it does not.
    updates = 50
    native, lrs, moms = _drive_native(lambda o: make(o, cycle), updates,
                                      groups=1)
    sched = ust.from_native(native)
    assert (sched.momentum is None) is (not cycle)
    ws = _weights()
    opt = torch.optim.SGD(ws, lr=0.3, momentum=0.9)
    sch = ust.bind(sched, opt)
    got_lrs, got_moms = [], []
    for _ in range(updates):
        got_lrs.append(opt.param_groups[0]["lr"])
        got_moms.append(opt.param_groups[0]["momentum"])
        ws[0].grad = torch.ones_like(ws[0])
        opt.step()
        sch.step()
    np.testing.assert_allclose(got_lrs, lrs[:, 0], rtol=1e-12)
    np.testing.assert_allclose(got_moms, moms[:, 0], rtol=1e-12)
    assert np.ptp(moms[:, 0]) > 0 if cycle else set(got_moms) == {0.9}


def test_from_native_names_the_torch_attribute_a_schedule_refuses():
    opt = torch.optim.SGD(_weights(), lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match=r"CyclicLR max_momentum=5(\.0)? "
                       r"cannot be converted: max_momentum must be"):
        ust.from_native(L.CyclicLR(opt, 0.01, 0.1, max_momentum=5))
    with pytest.raises(ValueError, match=r"OneCycleLR pct_start=1\.0 "):
        ust.from_native(L.OneCycleLR(opt, 0.1, total_steps=20,
                                     pct_start=1.0))


# -- the contract: binding, unbinding, multipliers by name ---------------

def _named(lrs=(0.1, 0.1), **kwargs):
    """SGD over a model whose groups hold 'body.w' and 'head.w', built
    from named parameters (torch keeps them as 'param_names')."""
    model = torch.nn.Module()
    model.body, model.head = torch.nn.Module(), torch.nn.Module()
    model.body.w, model.head.w = _weights(2)
    groups = [{"params": [(n, p)], "lr": lr}
              for (n, p), lr in zip(model.named_parameters(), lrs,
                                    strict=True)]
    return torch.optim.SGD(groups, lr=0.1, **kwargs)


def test_multipliers_by_parameter_name():
    opt = _named()
    assert [g["param_names"] for g in opt.param_groups] == \
        [["body.w"], ["head.w"]]
    sched = us.CosineScheduler(10, 1.0)
    sch = ust.bind(sched, opt, multipliers={r"body\..*": 0.1})
    sch.step(4)
    assert [g["lr"] for g in opt.param_groups] == \
        [_close(0.1 * sched(4)), _close(sched(4))]
    assert sch.multipliers == {r"body\..*": 0.1}
    with pytest.raises(ValueError, match="'tail' matches no parameter"):
        ust.bind(sched, opt, multipliers={"tail": 2.0})
    unnamed, _ = _sgd(2)
    with pytest.raises(TypeError, match="named_parameters"):
        ust.bind(sched, unnamed, multipliers={"g0": 2.0})


def test_groups_keep_their_ratios_without_multipliers():
    opt = _named(lrs=(0.2, 0.05))
    sched = us.CosineScheduler(10, 1.0)
    sch = ust.bind(sched, opt)
    sch.step(3)
    assert [g["lr"] for g in opt.param_groups] == \
        [_close(sched(3)), _close(0.25 * sched(3))]
    assert sch.multipliers is None
    assert "multipliers=[1.0, 0.25] (kept from the optimizer's groups)" \
        in repr(sch)
    assert sch.state_dict()["multipliers"] is None


def test_unbind_restores_the_optimizer_and_detaches():
    lr = torch.tensor(0.02)
    w = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([w], lr=lr, betas=(0.7, 0.99), eps=1e-7,
                           foreach=False)
    sch = ust.bind("one_cycle(max_lr=0.5, max_update=20)", opt,
                   hparams={"eps": "poly(max_update=5, base_lr=1e-6, "
                                   "final_lr=1e-8, pwr=1)"})
    sch.step(7)
    assert opt.param_groups[0]["betas"][0] != 0.7
    sch.unbind()
    group = opt.param_groups[0]
    assert group["lr"] is lr and lr.item() == pytest.approx(0.02)
    assert group["betas"] == (0.7, 0.99) and group["eps"] == 1e-7
    assert "initial_lr" not in group
    with pytest.raises(RuntimeError, match="unbound"):
        sch.step()
    assert "unbound" in repr(sch)


def test_binding_again_unbinds_the_previous_adapter():
    opt, ws = _sgd(momentum=0.5)
    first = ust.bind("one_cycle(max_lr=0.5, max_update=20)", opt)
    first.step(5)
    second = ust.bind("cosine(max_update=20, base_lr=0.3)", opt)
    assert not first.bound and second.bound
    # the first one's momentum cycle stopped; 0.5 was captured again
    assert opt.param_groups[0]["momentum"] == 0.5
    assert opt.param_groups[0]["lr"] == 0.3
    with pytest.raises(RuntimeError):
        first.step()
    second.step(3)
    assert opt.param_groups[0]["momentum"] == 0.5
    second.unbind()
    assert opt.param_groups[0]["lr"] == 0.1


def test_load_into_a_fresh_optimizer_applies_the_position_at_once():
    # Regression: the optimizer's own state is NOT loaded here, so only
    # the scheduler's load_state_dict can put sched(K) into the groups.
    sched = us.OneCycleScheduler(0.5, 60, base_momentum=0.8)
    opt, ws = _sgd(2, momentum=0.9)
    sch = ust.bind(sched, opt, multipliers=[1.0, 0.5],
                   hparams={"weight_decay": "cosine(max_update=60, "
                                            "base_lr=0.01)"})
    _applied(opt, ws, sch, 17)
    state = _save_load(sch.state_dict())
    fresh, ws2 = _sgd(2, momentum=0.9)
    sch2 = ust.bind(sched, fresh, multipliers=[1.0, 0.5],
                    hparams={"weight_decay": "cosine(max_update=60, "
                                             "base_lr=0.01)"})
    sch2.load_state_dict(state)
    assert sch2.updates_done == 17
    for g1, g2 in zip(opt.param_groups, fresh.param_groups, strict=True):
        for key in ("lr", "momentum", "weight_decay"):
            assert g2[key] == g1[key]
    assert fresh.param_groups[0]["lr"] == _close(sched(17))
    assert fresh.param_groups[0]["momentum"] == _close(sched.momentum(17))
    # its first update (no momentum buffer yet: the bare rate) uses it
    got = _applied(fresh, ws2, sch2, 1)[0]
    assert got.tolist() == [_close(sched(17)), _close(0.5 * sched(17))]
