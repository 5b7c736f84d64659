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

    @abc.abstractmethod
    def make(self, n_groups: int = 1, *, optimizer: str = "sgd",
             lrs: tuple[float, ...] | None = None, momentum: float = 0.0
             ) -> Any:
        """A fresh model + optimizer: ``optimizer`` is ``'sgd'`` or
        ``'adam'``; ``lrs`` the groups' own starting rates (default 0.1
        each); ``momentum`` SGD's (Adam ignores it).  Returns the object
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
        return what each update applied."""

    @abc.abstractmethod
    def own_hparams(self, target: Any) -> dict[str, float]:
        """The optimizer's current hyperparameters as the framework holds
        them: ``{'lr': [...per group], 'momentum' or 'beta1': float}``."""

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
        bind that schedule first, then load (the mismatch case)."""

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
