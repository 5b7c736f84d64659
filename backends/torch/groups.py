"""Reading and writing ``torch.optim`` param groups for the adapter: the
hyperparameters an optimizer has, by their canonical names, and stores
that keep PyTorch's tensors (capturable / fused optimizers) in place."""
from __future__ import annotations

import numbers
from typing import Any

import torch
from torch.optim import Optimizer

# Param-group entries that are bookkeeping, not hyperparameters.
_NOT_HPARAMS = {"lr", "initial_lr", "max_lr", "min_lr", "max_momentum",
                "base_momentum", "params", "param_names"}


def spellings(optimizer: Optimizer) -> dict[str, str]:
    """Canonical name -> name, for every numeric hyperparameter all param
    groups have (``betas`` is offered as ``beta1`` / ``beta2``)."""
    names = None
    for group in optimizer.param_groups:
        here: set[str] = set()
        for key, value in group.items():
            if key in _NOT_HPARAMS or isinstance(value, bool):
                continue
            if key == "betas":
                here.update(("beta1", "beta2"))
            elif isinstance(value, (numbers.Real, torch.Tensor)):
                here.add(key)
        names = here if names is None else names & here
    return {name: name for name in sorted(names or ())}


def where(name: str) -> tuple[str, int | None]:
    """The param-group key (and ``betas`` index) of a canonical name."""
    return {"beta1": ("betas", 0), "beta2": ("betas", 1)}.get(name,
                                                             (name, None))


def read(group: dict, key: str, index: int | None) -> Any:
    """A group's value as a plain number: a tensor is filled in place
    later, so its value is copied, not the tensor."""
    value = group[key] if index is None else group[key][index]
    return float(value) if isinstance(value, torch.Tensor) else value


def write(group: dict, key: str, index: int | None, value: float) -> None:
    """``group[key] = value`` (or one entry of ``betas``), filling tensors
    in place as PyTorch's schedulers do, so capturable / fused optimizers
    keep their tensor."""
    old = group[key] if index is None else group[key][index]
    if type(old) is not float and isinstance(old, torch.Tensor):
        old.fill_(value)
    elif index is None:
        group[key] = value
    else:
        group[key] = tuple(value if i == index else b
                           for i, b in enumerate(group[key]))
