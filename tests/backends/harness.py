"""What a backend supplies to run the adapter contract suite.

The contract (``backends/_contract.py``) is tested once, in
``tests/backends/test_contract_*.py``; every test takes the ``harness``
fixture (``conftest.py``), parametrized over one :class:`Harness` per
backend (and per execution mode, e.g. Keras eager and compiled).  A new
backend passes by adding its harness module
(``tests/backends/harness_<name>.py``) to :data:`HARNESSES`; no test code
is copied.

A harness builds a tiny model of ``n_groups`` parameter groups.  Group
``i`` holds one parameter named ``g{i}`` (a vector of a few float64 or
float32 zeros).  Frameworks without parameter groups (Keras, MXNet, JAX)
treat every parameter as its own group, in the optimizer's order, so the
sequence form of ``multipliers`` has one entry per parameter there.

:meth:`Harness.step` runs real optimizer updates with the gradient 1 on
every weight and reads back what each update applied from the weights
(and, for Adam's beta1, from the first-moment slot):

* plain SGD: ``w_k+1 = w_k - lr_k``, so ``lr_k = w_k - w_k+1``;
* SGD with momentum: a second probe weight per group whose gradient is 1
  at the first update and 0 after decodes the momentum; the harness
  solves for ``lr_k`` and ``m_k`` from the two weights (its docstring
  says how, for its framework's momentum formula);
* Adam: ``beta1_k = (1 - m_k) / (1 - m_k-1)`` from the first moment
  ``m`` (gradient 1), and the rate from the weight update.
"""
from __future__ import annotations

import abc
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass
class Applied:
    """What one update really applied, read back from the weights."""

    rates: list[float]              # one per group
    momentum: float | None = None   # SGD momentum or Adam beta1; None if
    #                                 the optimizer has none


class Harness(abc.ABC):
    """One backend (in one execution mode) for the contract suite."""

    #: shown in test ids: 'torch', 'keras-eager', 'mxnet', ...
    name: str = ""
    #: the framework the harness needs (a module name for find_spec)
    requires: str = ""
    #: relative tolerance of applied rates against sched(k) (float64
    #: frameworks: ~1e-12; float32 ones: ~1e-6)
    rtol: float = 1e-12
    #: whether groups can start at different rates (PyTorch's
    #: param_groups, MXNet's lr_mult); Keras has one rate per optimizer
    group_rates: bool = True
    #: the module implementing the contract (``bind``, ``from_native``)
    module: Any = None
    #: whether ``bind(..., unit='epoch')`` needs ``steps_per_epoch``:
    #: True where the framework counts updates (Keras, MXNet, JAX), False
    #: for PyTorch (without it the scheduler is stepped once per epoch);
    #: None (not declared) lets the suite accept either, each checked
    spe_required: bool | None = None

    @abc.abstractmethod
    def make(self, n_groups: int = 1, *, optimizer: str = "sgd",
             lrs: tuple[float, ...] | None = None, momentum: float = 0.0
             ) -> Any:
        """A fresh model + optimizer: ``optimizer`` is ``'sgd'`` or
        ``'adam'``; ``lrs`` the groups' own starting rates (default 0.1
        each); ``momentum`` SGD's (Adam ignores it).  With ``momentum=0``
        the model has exactly the ``n_groups`` parameters ``g0, g1, ...``
        (the suite's ``multipliers`` tests rely on it).  Returns the object
        ``bind`` takes as ``target`` (or a holder the harness's other
        methods understand, with the bind target at ``.target``)."""

    def bind(self, sched: Any, target: Any, **options: Any) -> Any:
        """The backend's ``bind(sched, target, **options)``."""
        return self.module.bind(sched, self.bind_target(target), **options)

    def bind_target(self, target: Any) -> Any:
        """What ``bind`` gets for a :meth:`make` result."""
        return getattr(target, "target", target)

    @abc.abstractmethod
    def step(self, target: Any, n: int = 1) -> list[Applied]:
        """Run ``n`` optimizer updates (gradient 1 on every weight),
        advancing the adapter as the framework's documented loop does, and
        return what each update applied.

        Where the loop steps the adapter (PyTorch), step the one bound
        last through :meth:`bind` (or :meth:`restore`), and none once it
        was ``unbind()``-ed.  Where a momentum cannot show in the weights
        (the first update of SGD with momentum: its buffer starts as the
        gradient) report the value the optimizer held; the suite compares
        every update's momentum."""

    @abc.abstractmethod
    def own_hparams(self, target: Any) -> dict[str, float]:
        """The optimizer's current hyperparameters as the framework holds
        them: ``{'lr': [...per group], 'momentum' or 'beta1': float}``,
        optionally ``'weight_decay': float`` (the suite then compares the
        driven value; the weights cannot show it, being zeroed)."""

    @abc.abstractmethod
    def save(self, target: Any, adapter: Any, directory: str) -> None:
        """Checkpoint model, optimizer and schedule with the framework's
        own mechanism (torch.save of state_dicts, Keras ``model.save``,
        MXNet ``save_states``) into ``directory``."""

    @abc.abstractmethod
    def restore(self, directory: str, **bind_options: Any
                ) -> tuple[Any, Any]:
        """Fresh objects restored from :meth:`save`'s ``directory`` with
        the framework's own mechanism: ``(target, adapter)``.  Where the
        framework needs the scheduler object to exist before loading
        (PyTorch), bind ``bind_options['sched']`` (default: a constant
        0.0, so that a schedule not taken from the checkpoint shows) with
        the other options first; elsewhere ``bind_options`` with ``sched``
        bind that schedule first, then load (the mismatch case).

        Without ``sched`` the restore must continue the checkpoint's
        schedule, hparams and position as saved (the contract's "no second
        bind"); the suite then passes ``on_mismatch='checkpoint'``, which a
        harness that has to bind first (PyTorch: its placeholder) uses and
        the others ignore.  ``bind_options`` hold only plain data (spec
        strings, numbers): the suite passes them to a new process as
        JSON."""

    def save_spec(self, target: Any, directory: str) -> None:
        """Write ``target.spec`` (the :meth:`make` arguments) beside a
        checkpoint, for :meth:`remake`."""
        with open(os.path.join(directory, "model.json"), "w") as f:
            json.dump(target.spec, f)

    def remake(self, directory: str) -> Any:
        """A fresh :meth:`make` result like the one saved with
        :meth:`save_spec` in ``directory``."""
        with open(os.path.join(directory, "model.json")) as f:
            spec = json.load(f)
        return self.make(spec["n_groups"], optimizer=spec["optimizer"],
                         lrs=tuple(spec["lrs"]), momentum=spec["momentum"])

    @abc.abstractmethod
    def natives(self) -> list[tuple[str, Any, Any]]:
        """Native schedulers to convert: ``(id, make, rates)``, where
        ``make(target)`` builds the native scheduler for a :meth:`make`
        target (momentum 0.9 SGD) and ``rates(n)`` returns the rates and
        momenta ``[(lr, momentum), ...]`` the native scheduler really
        applies over ``n`` updates on a fresh target.  Include one with a
        momentum cycle and one with ``cycle_momentum=False`` where the
        framework has such schedulers."""

    @abc.abstractmethod
    def not_convertible(self) -> list[tuple[str, Any, type]]:
        """``(id, object, expected exception type)``: a subclass of a
        supported native type and an unsupported type (TypeError), and a
        supported type with an attribute that cannot be converted
        (ValueError)."""


# -- helpers the suite compares with ------------------------------------

def values(sched: Any, start: int, stop: int) -> list[float]:
    """``[sched(k) for k in range(start, stop)]``: what updates ``start``
    to ``stop - 1`` must apply."""
    return [sched(k) for k in range(start, stop)]


def close(got: float | None, want: float, rtol: float) -> bool:
    """``got`` equals ``want`` up to ``rtol`` (relative; an absolute
    ``rtol * 1e-3`` lets a zero rate read back as a float32 zero)."""
    return got is not None and math.isclose(got, want, rel_tol=rtol,
                                            abs_tol=rtol * 1e-3)


def assert_applied(applied: Sequence[Applied], rates: Sequence[Any],
                   momenta: Sequence[float] | None = None, *,
                   rtol: float, first: int = 0) -> None:
    """Every update's rates (and momentum) read back equal the expected
    ones.  ``rates[j]`` is one number (every group) or one per group;
    ``first`` numbers the updates in the message.  Fails at the first
    difference, naming the update, the group and both values."""
    assert len(applied) == len(rates), (len(applied), len(rates))
    for j, (got, want) in enumerate(zip(applied, rates, strict=True)):
        k = first + j
        want = [want] * len(got.rates) if isinstance(want, (int, float)) \
            else list(want)
        assert len(got.rates) == len(want), \
            f"update {k}: {len(got.rates)} groups, expected {len(want)}"
        for i, (g, w) in enumerate(zip(got.rates, want, strict=True)):
            assert close(g, w, rtol), \
                f"update {k} group {i}: applied rate {g!r}, expected {w!r}"
        if momenta is not None:
            assert close(got.momentum, momenta[j], rtol), \
                f"update {k}: applied momentum {got.momentum!r}, " \
                f"expected {momenta[j]!r}"
