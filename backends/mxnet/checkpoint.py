"""Checkpoints of the MXNet adapter: its plain-data ``state_dict``, what
``Trainer.load_states`` hands it, and pickling (``save_states``, a kvstore
server)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import _contract as C
from ._mx import set_position

FORMAT = "unisched.mxnet.LRScheduler"


class Checkpointing:
    """The checkpoint half of :class:`~unisched.backends.mxnet.LRScheduler`
    (which supplies ``_binding``, ``_plan``, ``_install``, ``_params``,
    ``_setup`` and the optimizer links)."""

    if TYPE_CHECKING:  # what the host class supplies
        _binding: C.Binding
        _optimizer: Any
        _trainer: Any
        _origin: int
        _pending: bool
        _restored: bool
        on_mismatch: str
        multipliers: Any

        @property
        def updates_done(self) -> int: ...
        def _bound(self) -> Any: ...
        def _params(self) -> list[Any]: ...
        def _plan(self, binding: C.Binding, opt: Any, params: list[Any],
                  done: int
                  ) -> tuple[tuple[str, ...], list[float] | None]: ...
        def _install(self, binding: C.Binding, plan: tuple[Any, ...],
                     opt: Any, ckpt: C.Checkpoint | None) -> None: ...
        def _setup(self, binding: C.Binding, attrs: tuple[str, ...]
                   ) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        """Plain data: the binding, the position and a plateau's state."""
        return C.state_dict(FORMAT, self._binding, self.updates_done)

    def load_state_dict(self, state: Any) -> None:
        """Validate ``state`` whole, reconcile it with the binding
        (``on_mismatch``), then set the position into the optimizer's
        update counters: the next update uses ``sched(updates_done)``."""
        self._adopt(C.check_state(state, FORMAT), self._bound())

    def _adopt(self, ckpt: C.Checkpoint, opt: Any, origin: int | None = None
               ) -> None:
        """Continue ``ckpt`` (reconciled with the binding) on ``opt``:
        with ``origin`` (a loaded optimizer's) its counters stay, else
        they are set to the checkpoint's position."""
        binding = C.reconcile(self._binding, ckpt, self.on_mismatch)
        plan = self._plan(binding, opt, self._params(), ckpt.updates_done)
        if origin is None:
            set_position(opt, ckpt.updates_done)
        self._origin = origin or 0
        self._install(binding, plan, opt, ckpt)

    def _take(self, opt: Any) -> None:
        """After ``load_states`` replaced the optimizer by ``opt``: continue
        the checkpoint's binding and position, by ``on_mismatch``."""
        loaded = opt.lr_scheduler
        if isinstance(loaded, Checkpointing):
            ckpt = C.check_state(C.state_dict(
                FORMAT, loaded._binding, opt.num_update - loaded._origin),
                FORMAT)
            self._adopt(ckpt, opt, loaded._origin)
            return
        if self.on_mismatch == "error":
            raise ValueError(f"the checkpoint was made without a unisched "
                             f"schedule (lr_scheduler={loaded!r}); bound "
                             f"{self._binding.describe()}. Pass on_mismatch="
                             f"'checkpoint' or 'bound'")
        if self.on_mismatch == "bound":
            self._origin = 0
            self._install(self._binding, self._plan(
                self._binding, opt, self._params(), opt.num_update), opt,
                None)
        else:                               # the checkpoint's scheduler runs
            self._trainer.__dict__.pop("load_states", None)
            self._optimizer = self._trainer = None
            self._setup(self._binding, ())

    def _apply_pending(self) -> None:
        # Unpickled by load_states with no bind: lr_mult is not saved, so
        # set it once the Trainer has given the optimizer its parameters.
        if self._optimizer is None or not self._optimizer.param_dict:
            return
        self._pending = False
        params = self._params()
        mults = C.resolve_multipliers(self.multipliers,
                                      [[p.name] for p in params])
        assert mults is not None  # pending only with multipliers
        for p, mult in zip(params, mults, strict=True):
            p.lr_mult = mult

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.update(_trainer=None, _cache_update=None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._restored = True
        self._pending = self._optimizer is not None and \
            self.multipliers is not None
