"""The PyTorch backend for the adapter contract suite (see ``harness.py``).

Group ``i`` holds one float64 parameter ``g{i}`` of two entries, and the
optimizer is built from named parameters (so groups keep
``param_names``).  Before each update the harness zeroes the weights (and
Adam's first moment), so each update's effect is read exactly:

* entry 0 gets the gradient 1 at every update, entry 1 the gradient 1 at
  the first update and 0 after;
* plain SGD (and the first update of SGD with momentum, which only
  creates the buffer ``buf = grad``): ``lr_k = -w0``;
* SGD with momentum (``buf_k = m_k buf_k-1 + grad``, ``w -= lr_k buf_k``):
  with the buffers ``a`` (entry 0) and ``b`` (entry 1) after update
  ``k - 1``, the update moves ``d0 = lr_k (m_k a + 1)`` and ``d1 = lr_k
  m_k b``, so ``m_k = r / (b - r a)`` with ``r = d1 / d0``, and ``lr_k =
  d0 / (m_k a + 1)``; the harness carries ``a`` and ``b`` forward from
  the decoded values.  The momentum of the first update is unobservable
  (the buffer starts as the gradient): it is reported as the group held
  it.  Where no weight moves (``lr_k = 0``) the momentum is read from
  the buffer instead (``buf_k = m_k a + 1``);
* Adam (first moment zeroed, so ``m_k = 1 - beta1_k``):
  ``beta1_k = (1 - m_k) / (1 - m_k-1)`` with ``m_k-1 = 0``, and the rate
  from the weight step ``lr_k * m_hat / (sqrt(v_hat) + eps)`` with the
  bias corrections of PyTorch's Adam (``1 - beta ** step``, the current
  betas).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

import torch

from unisched.backends import torch as ust

from harness import Applied, Harness

L = torch.optim.lr_scheduler


@dataclass
class Target:
    """A model's parameters, its optimizer and what the harness steps."""

    params: list[torch.nn.Parameter]
    target: torch.optim.Optimizer
    make_args: dict[str, Any]
    scheduler: Any = None
    # SGD momentum buffers (entry 0, entry 1) per group, after the last
    # update; None until the optimizer created them.
    buffers: list[Any] = field(default_factory=list)


class TorchHarness(Harness):
    name = "torch"
    requires = "torch"
    rtol = 1e-12
    group_rates = True
    module = ust
    #: without steps_per_epoch, step() is called once per epoch
    spe_required = False

    def make(self, n_groups: int = 1, *, optimizer: str = "sgd",
             lrs: tuple[float, ...] | None = None, momentum: float = 0.0
             ) -> Target:
        lrs = tuple(lrs) if lrs is not None else (0.1,) * n_groups
        params = [torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
                  for _ in range(n_groups)]
        groups = [{"params": [(f"g{i}", p)], "lr": lr}
                  for i, (p, lr) in enumerate(zip(params, lrs, strict=True))]
        if optimizer == "sgd":
            opt = torch.optim.SGD(groups, lr=0.1, momentum=momentum)
        elif optimizer == "adam":
            opt = torch.optim.Adam(groups, lr=0.1)
        else:
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got "
                             f"{optimizer!r}")
        return Target(params, opt, dict(n_groups=n_groups,
                                        optimizer=optimizer, lrs=lrs,
                                        momentum=momentum),
                      buffers=[None] * n_groups)

    def bind(self, sched: Any, target: Target, **options: Any) -> Any:
        target.scheduler = ust.bind(sched, target.target, **options)
        return target.scheduler

    def step(self, target: Target, n: int = 1) -> list[Applied]:
        out = []
        for _ in range(n):
            out.append(self._update(target))
            sch = target.scheduler
            if sch is not None and getattr(sch, "bound", True):
                sch.step()
        return out

    def _update(self, t: Target) -> Applied:
        opt = t.target
        held = [g.get("momentum") for g in opt.param_groups]
        for p, ab in zip(t.params, t.buffers, strict=True):
            with torch.no_grad():
                p.zero_()
            # Entry 1 gets 1 while the momentum buffer does not exist yet.
            p.grad = torch.tensor([1.0, 1.0 if ab is None else 0.0],
                                  dtype=torch.float64)
            if "exp_avg" in opt.state.get(p, {}):
                opt.state[p]["exp_avg"].zero_()
        opt.step()
        if t.make_args["optimizer"] == "adam":
            return self._adam(t)
        rates, moms = [], []
        for i, p in enumerate(t.params):
            d0, d1 = -p[0].item(), -p[1].item()
            buf = opt.state.get(p, {}).get("momentum_buffer")
            if t.buffers[i] is None:
                lr, m = d0, held[i]
                if buf is not None:
                    t.buffers[i] = (1.0, 1.0)
            elif d0 == 0:
                # No weight moved: the buffer itself tells the momentum.
                lr, m = 0.0, (buf[0].item() - 1) / t.buffers[i][0]
                t.buffers[i] = (buf[0].item(), buf[1].item())
            else:
                a, b = t.buffers[i]
                r = d1 / d0
                m = r / (b - r * a)
                lr = d0 / (m * a + 1)
                t.buffers[i] = (m * a + 1, m * b)
            rates.append(lr)
            moms.append(m)
        return Applied(rates, moms[0])

    @staticmethod
    def _adam(t: Target) -> Applied:
        opt, rates, beta1 = t.target, [], None
        for p, g in zip(t.params, opt.param_groups, strict=True):
            st = opt.state[p]
            step = float(st["step"])
            m, v = st["exp_avg"][0].item(), st["exp_avg_sq"][0].item()
            b1, b2 = (float(b) for b in g["betas"])
            beta1 = (1 - m) / (1 - 0.0)
            m_hat = m / (1 - b1 ** step)
            v_hat = v / (1 - b2 ** step)
            rates.append(-p[0].item() * (math.sqrt(v_hat) + g["eps"])
                         / m_hat)
        return Applied(rates, beta1)

    def own_hparams(self, target: Target) -> dict[str, Any]:
        groups = target.target.param_groups
        out: dict[str, Any] = {"lr": [float(g["lr"]) for g in groups],
                               "weight_decay": float(groups[0][
                                   "weight_decay"])}
        if "betas" in groups[0]:
            out["beta1"] = float(groups[0]["betas"][0])
        else:
            out["momentum"] = float(groups[0]["momentum"])
        return out

    def save(self, target: Target, adapter: Any, directory: str) -> None:
        os.makedirs(directory, exist_ok=True)
        torch.save({"params": [p.detach().clone() for p in target.params],
                    "make": target.make_args, "buffers": target.buffers},
                   os.path.join(directory, "model.pt"))
        torch.save(target.target.state_dict(),
                   os.path.join(directory, "optimizer.pt"))
        torch.save(adapter.state_dict(),
                   os.path.join(directory, "scheduler.pt"))

    def restore(self, directory: str, **bind_options: Any
                ) -> tuple[Target, Any]:
        def load(name):
            return torch.load(os.path.join(directory, name),
                              weights_only=True)

        model = load("model.pt")
        make = dict(model["make"])
        target = self.make(make.pop("n_groups"), **make)
        with torch.no_grad():
            for p, saved in zip(target.params, model["params"], strict=True):
                p.copy_(saved)
        target.buffers = [None if b is None else tuple(b)
                          for b in model["buffers"]]
        sched = bind_options.pop("sched", 0.0)
        # PyTorch's order: the scheduler exists before the optimizer's
        # state is loaded; its load_state_dict then re-applies the rate.
        adapter = self.bind(sched, target, **bind_options)
        target.target.load_state_dict(load("optimizer.pt"))
        adapter.load_state_dict(load("scheduler.pt"))
        return target, adapter

    def natives(self) -> list[tuple[str, Any, Any]]:
        def rates_of(make):
            def rates(n):
                target = self.make(1, momentum=0.9)
                target.scheduler = make(target)
                return [(a.rates[0], a.momentum)
                        for a in self.step(target, n)]
            return rates

        makers = {
            "CyclicLR-momentum": lambda t: L.CyclicLR(
                t.target, 0.01, 0.1, step_size_up=5, step_size_down=7,
                mode="triangular2", base_momentum=0.8, max_momentum=0.95),
            "CyclicLR-no-momentum": lambda t: L.CyclicLR(
                t.target, 0.01, 0.1, step_size_up=4, mode="exp_range",
                gamma=0.97, cycle_momentum=False),
            "OneCycleLR": lambda t: L.OneCycleLR(
                t.target, max_lr=0.3, total_steps=400, pct_start=0.05,
                base_momentum=0.8),
            "StepLR": lambda t: L.StepLR(t.target, step_size=3, gamma=0.5),
            "MultiStepLR": lambda t: L.MultiStepLR(
                t.target, milestones=[2, 5, 5, 9], gamma=0.7),
            "CosineAnnealingWarmRestarts": lambda t:
                L.CosineAnnealingWarmRestarts(t.target, T_0=4, T_mult=2,
                                              eta_min=0.001),
        }
        return [(name, make, rates_of(make))
                for name, make in makers.items()]

    def not_convertible(self) -> list[tuple[str, Any, type]]:
        class MyStepLR(L.StepLR):
            pass

        def opt():
            return self.make(1, momentum=0.9).target

        return [
            ("subclass", MyStepLR(opt(), 3), TypeError),
            # code: MultiplicativeLR is refused as a type; a LambdaLR is a
            # supported type (transformers' schedules) whose lambda is not
            ("MultiplicativeLR", L.MultiplicativeLR(opt(), lambda n: 1.0),
             TypeError),
            ("LambdaLR", L.LambdaLR(opt(), lambda n: 1.0), ValueError),
            ("not-a-scheduler", object(), TypeError),
            ("CyclicLR-scale_fn", L.CyclicLR(opt(), 0.01, 0.1,
                                             scale_fn=lambda x: 1.0),
             ValueError),
            ("CyclicLR-max_momentum", L.CyclicLR(opt(), 0.01, 0.1,
                                                 max_momentum=5),
             ValueError),
        ]
