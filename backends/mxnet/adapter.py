"""MXNet Gluon adapter: a unisched schedule as a Trainer's ``lr_scheduler``
(the contract: :mod:`unisched.backends._contract`).
"""
from __future__ import annotations

import warnings
from typing import Any

# A kvstore server unpickles the optimizer (this class included) while
# ``import mxnet`` is still running: ``mx.lr_scheduler`` may not be set yet.
from mxnet.lr_scheduler import LRScheduler as _MXLRScheduler

import unisched as us
from unisched import _validate as check
from unisched._cache import BLOCK, StepCache

from .. import _contract as C
from ._mx import _BUFFERED, check_buffers, hook_load_states, mx, spellings
from .checkpoint import FORMAT, Checkpointing
from .server import LINK, ships_optimizer


class LRScheduler(C.Attributes, Checkpointing, _MXLRScheduler):
    """A unisched schedule as an MXNet ``lr_scheduler``.

    MXNet calls ``lr_scheduler(num_update)`` with ``num_update = k + 1``
    for update ``k`` (see the package docstring); this returns::

        rate(num_update) = schedule(i),  i = max(num_update - 1, 0)
                                             unit='step'
                         = schedule(i // steps_per_epoch)   unit='epoch'

    and, once bound (:func:`bind`), sets the driven hyperparameters on the
    optimizer to their values at ``i``.  Per-parameter ``lr_mult``
    multiplies the rate.  ``Trainer.learning_rate`` asks with the current
    ``num_update``: the rate of the last update (of the first before any).

    Built directly, it schedules the rate only (give it to a Trainer as
    ``lr_scheduler``); :func:`bind` makes the contract's adapter.

    ``base_lr``: MXNet's Optimizer writes its ``learning_rate`` argument
    here; the attribute is informative only (``schedule(0)``) and another
    value written into it warns that it is ignored.

    Pickling (``Trainer.save_states``, a kvstore shipping the optimizer)
    keeps the binding, a ``ReduceOnPlateau``'s state, the link to the
    optimizer and what :meth:`unbind` restores.

    >>> s = LRScheduler(us.CosineScheduler(10, base_lr=1.0))
    >>> s(1), s(6)      # MXNet's num_update 1 is update 0
    (1.0, 0.5)
    >>> e = LRScheduler("exponential(1.0, factor=0.5)", unit="epoch",
    ...                 steps_per_epoch=3)
    >>> [e(n) for n in range(1, 8)]
    [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25]
    """

    def __init__(self, sched: us.Schedule | str | float, *,
                 unit: str = "step", steps_per_epoch: int | None = None
                 ) -> None:
        sched = C.as_schedule("sched", sched)
        unit, spe = C.check_unit(unit, steps_per_epoch)
        self.on_mismatch = "error"
        # the bound optimizer and Trainer (None: not bound), what bind
        # took from the optimizer (given back by unbind)
        self._optimizer: Any = None
        self._trainer: Any = None
        self._saved: dict[str, Any] | None = None
        self._restored = self._pending = False
        # The optimizer's num_update when the binding started (update 0).
        self._origin = 0
        self._kept: dict[str, float] = {}
        self._setup(C.Binding(sched, {}, None, unit, spe), ())
        super().__init__(base_lr=float(sched(0)))

    def _setup(self, binding: C.Binding, attrs: tuple[str, ...]) -> None:
        self._binding, self._attrs = binding, attrs
        self._steps = StepCache([binding.schedule, *binding.hparams.values()])
        self._stateful = binding.schedule.stateful
        self._divisor = binding.steps_per_epoch or 1
        self._cache_update: int | None = None
        self._cache_rate = 0.0

    # -- what it drives -------------------------------------------------

    @property
    def updates_done(self) -> int:
        """Updates done since the binding started (the optimizer's
        ``num_update`` minus its value at :func:`bind`, or as loaded): the
        next one uses ``sched(updates_done)``."""
        return int(self._bound().num_update) - self._origin

    def _bound(self) -> Any:
        """The bound Trainer's optimizer; a RuntimeError if there is
        none."""
        if self._optimizer is None:
            raise RuntimeError("this LRScheduler is not bound to a Trainer; "
                               "use unisched.backends.mxnet.bind")
        return self._optimizer

    # -- MXNet's side ---------------------------------------------------
    @property
    def base_lr(self) -> float:
        """Informative only: the rate comes from ``schedule``."""
        return self._base_lr

    @base_lr.setter
    def base_lr(self, value: float) -> None:
        # MXNet's Optimizer sets this to its learning_rate argument.
        if "_base_lr" in self.__dict__ and value != self.schedule(0):
            warnings.warn(f"learning_rate={value!r} given to the optimizer "
                          f"is ignored: the unisched schedule gives the rate "
                          f"(schedule(0) = {self.schedule(0)!r})",
                          UserWarning, stacklevel=2)
        self._base_lr = value

    def __call__(self, num_update: int) -> float:
        """The rate for the update MXNet numbers ``num_update`` (1 for the
        first); also sets the driven hyperparameters on the optimizer."""
        # MXNet asks once per parameter group for the same update.
        if num_update == self._cache_update:
            return self._cache_rate
        if type(num_update) is not int or num_update < 0:
            num_update = check.step(num_update, "num_update")
        if self._pending:
            self._apply_pending()
        n = num_update - self._origin
        index = (n - 1 if n > 0 else 0) // self._divisor
        # sched(index) and the hyperparameters from blocks evaluated a few
        # hundred updates at a time (inlined hot path of StepCache.at).
        steps = self._steps
        i = index - steps.start
        row = steps.rows[i] if 0 <= i < BLOCK else steps.at(index)
        if self._attrs:
            opt = self._optimizer
            for name, value in zip(self._attrs, row[1:], strict=True):
                setattr(opt, name, value)
        if not self._stateful:
            # ReduceOnPlateau may change between two calls: never cached.
            self._cache_update, self._cache_rate = num_update, row[0]
        return row[0]

    # -- the contract ---------------------------------------------------
    def observe(self, metric: Any) -> bool:
        """Feed a ``ReduceOnPlateau`` schedule; the next update uses the
        new rate.  Returns True if the rate was cut."""
        plateau = C.plateau(self.schedule, "this LRScheduler")
        servers = _servers(self._trainer)
        step = self._binding.index(self.updates_done) if self._optimizer \
            else 0
        cut = plateau.observe(C.metric_value(metric), step=step)
        self._cache_update = None
        if servers is not None:     # their copy runs: send it this one
            servers.observed()
        return cut

    def unbind(self) -> None:
        """Restore the optimizer's previous scheduler, rate, driven
        hyperparameters and ``lr_mult``; detach."""
        opt, saved = self._optimizer, self._saved
        if opt is None:
            return
        assert saved is not None  # bind saved them with the optimizer
        if opt.lr_scheduler is self:
            opt.lr_scheduler = saved["scheduler"]
        opt.lr = saved["lr"]
        for name, value in saved["hparams"].items():
            setattr(opt, name, value)
        if saved["lr_mult"] is not None:
            for p, mult in zip(self._params(), saved["lr_mult"], strict=True):
                p.lr_mult = mult
        if self._trainer is not None:
            self._trainer.__dict__.pop("load_states", None)
        self._optimizer = self._trainer = None
        self._pending = False
        self._setup(self._binding, ())

    # -- binding --------------------------------------------------------
    def _params(self) -> list:
        if self._trainer is not None:
            return list(self._trainer._params)
        held = self._optimizer.param_dict
        return [held[i] for i in sorted(held)]

    def _plan(self, binding: C.Binding, opt: Any, params: list, done: int
              ) -> tuple[tuple[str, ...], list[float] | None]:
        """Check ``binding`` against the optimizer and its parameters:
        the attributes to drive and the ``lr_mult`` to set."""
        spell = spellings(opt)
        C.check_spelled(binding.hparams, spell, type(opt).__name__)
        if "momentum" in binding.hparams and isinstance(opt, _BUFFERED):
            first = binding.hparams["momentum"](binding.index(done))
            check_buffers(opt, first)
        mults = C.resolve_multipliers(binding.multipliers,
                                      [[p.name] for p in params])
        return tuple(spell[n] for n in binding.hparams), mults

    def _install(self, binding: C.Binding, plan: tuple, opt: Any,
                 ckpt: C.Checkpoint | None) -> None:
        """Drive ``opt`` with ``binding`` (everything checked before)."""
        attrs, mults = plan
        self._optimizer = opt
        opt.lr_scheduler = self
        if self._saved is not None:     # a checkpoint's binding may add some
            for name in attrs:
                self._saved["hparams"].setdefault(name, getattr(opt, name))
        if ckpt is not None:
            C.restore_plateau(binding, ckpt)
        self._setup(binding, attrs)
        if mults is not None:
            for p, mult in zip(self._params(), mults, strict=True):
                p.lr_mult = mult
        row = self._steps.at(binding.index(self.updates_done))
        for name, value in zip(attrs, row[1:], strict=True):
            setattr(opt, name, value)

    def __repr__(self) -> str:
        text = f"LRScheduler({self._binding.describe()}"
        if self.on_mismatch != "error":
            text += f", on_mismatch={self.on_mismatch!r}"
        if self._kept:
            text += f"; keeps the parameters' own lr_mult {self._kept}"
        return text + ")"


def bind(sched: us.Schedule | str | float, trainer: Any, *,
         unit: str = "step", steps_per_epoch: int | None = None,
         multipliers: Any = None, hparams: Any = None,
         momentum: Any = "auto", on_mismatch: str = "error"
         ) -> LRScheduler:
    """Make ``trainer`` (a ``gluon.Trainer``) run ``sched``: its ``k``-th
    update from now (``k = 0, 1, ...``; a checkpoint's position after
    ``load_states``) gets rate ``multiplier * sched(k)`` and the driven
    hyperparameters their values at ``k``.  The arguments are the contract's
    (:mod:`unisched.backends._contract`); MXNet specifics:

    * ``multipliers`` set each parameter's ``lr_mult`` (a sequence: one
      per Trainer parameter, in its order; a dict: patterns over
      ``param.name``).  Without them the parameters' own ``lr_mult`` stay
      (MXNet's per-parameter rates).  :meth:`LRScheduler.unbind` restores
      them.
    * ``hparams``: ``momentum`` (SGD, NAG, Signum), ``beta1``, ``beta2``
      (Adam family), ``weight_decay`` or ``wd`` (see :data:`SCHEDULABLE`).
    * ``Trainer.load_states`` (wrapped on this trainer) continues a
      checkpoint's schedule and position in the bound adapter, applying
      ``on_mismatch``; on an error the trainer is left as it was.  The
      order of ``bind`` and ``load_states`` does not matter.

    Returns the :class:`LRScheduler` now in ``trainer.optimizer``.

    >>> w = mx.gluon.Parameter("w", shape=(1,), init=mx.init.Zero())
    >>> w.initialize()
    >>> t = mx.gluon.Trainer([w], "sgd")
    >>> a = bind(us.OneCycleScheduler(1.0, 20), t)
    >>> sorted(a.hparams), t.optimizer.momentum
    (['momentum'], 0.95)
    """
    if not isinstance(trainer, mx.gluon.Trainer):
        raise TypeError(f"trainer must be an mxnet.gluon.Trainer (which "
                        f"owns the optimizer), got "
                        f"{type(trainer).__module__}."
                        f"{type(trainer).__qualname__}")
    if trainer._kv_initialized and trainer._update_on_kvstore and \
            trainer._distributed:
        raise ValueError("the trainer already sent its optimizer to the "
                         "kvstore servers; bind before the first step")
    opt = trainer._optimizer
    adapter = LRScheduler(sched, unit=unit, steps_per_epoch=steps_per_epoch)
    binding = C.Binding(adapter.schedule, C.plan_hparams(
        adapter.schedule, hparams, momentum, spellings(opt),
        type(opt).__name__), C.check_multipliers(multipliers),
        adapter.unit, adapter.steps_per_epoch)
    adapter.on_mismatch = check.choice("on_mismatch", on_mismatch,
                                       C.MISMATCH_POLICIES)
    adapter._trainer = trainer
    prev, ckpt = opt.lr_scheduler, None
    if isinstance(prev, LRScheduler) and prev._restored:
        # load_states came first: the same rules as loading after bind.
        ckpt = C.check_state(C.state_dict(FORMAT, prev._binding,
                                          prev.updates_done), FORMAT)
        binding = C.reconcile(binding, ckpt, adapter.on_mismatch)
        adapter._origin = prev._origin
    else:
        # A new binding starts at its update 0, whatever the optimizer ran.
        adapter._origin = opt.num_update
    plan = adapter._plan(binding, opt, adapter._params(),
                         opt.num_update - adapter._origin)
    # Checked: from here on nothing fails.
    if isinstance(prev, LRScheduler):
        prev.unbind()
    params = adapter._params()
    adapter._saved = {"scheduler": opt.lr_scheduler, "lr": opt.lr,
                      "hparams": {n: getattr(opt, n) for n in plan[0]},
                      "lr_mult": (None if plan[1] is None
                                  else [p.lr_mult for p in params])}
    if plan[1] is None:
        adapter._kept = {p.name: p.lr_mult for p in params
                         if p.lr_mult != 1}
    adapter._install(binding, plan, opt, ckpt)
    # load_states hands the checkpoint to the adapter in use.
    hook_load_states(trainer, adapter._take)
    return adapter


def _servers(trainer: Any) -> Any:
    """The link :mod:`.distributed`'s ``prepare`` made to the kvstore
    servers that run ``trainer``'s optimizer (``update_on_kvstore=True``
    on a dist kvstore, optimizer sent), else None."""
    if trainer is None or not trainer._kv_initialized or \
            not ships_optimizer(trainer):
        return None
    link = trainer.__dict__.get(LINK)
    if link is None:
        raise ValueError("the kvstore servers run a copy of this optimizer "
                         "(update_on_kvstore=True), which observe() reaches "
                         "only through unisched.backends.mxnet.distributed"
                         ".prepare(trainer, batch_size) before the first "
                         "step")
    return link


def attached(trainer: Any) -> LRScheduler:
    """The :class:`LRScheduler` that ``trainer`` uses now (after a
    ``load_states`` with no bind, the checkpoint's)."""
    if not isinstance(trainer, mx.gluon.Trainer):
        raise TypeError(f"trainer must be an mxnet.gluon.Trainer, got "
                        f"{trainer!r}")
    sched = trainer._optimizer.lr_scheduler
    if not isinstance(sched, LRScheduler):
        raise ValueError(f"trainer's optimizer has no unisched LRScheduler "
                         f"(it has {sched!r}); use bind(schedule, trainer)")
    return sched
