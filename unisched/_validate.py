"""Argument checks shared by every schedule.

Each check returns the normalised value or raises ``TypeError`` /
``ValueError`` whose message names the argument and the value received, so a
bad argument fails in the constructor instead of producing a wrong learning
rate thousands of updates later.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

#: steps, step counts and lengths are exact integers in float64 below this
MAX_STEP = 2 ** 53


def _is_real(value: Any) -> bool:
    return (isinstance(value, numbers.Real)
            and not isinstance(value, (bool, np.bool_)))


def real(name: str, value: Any) -> float:
    """A finite real number (bools are refused)."""
    if not _is_real(value):
        raise TypeError(f"{name} must be a real number, "
                        f"got {value!r} ({type(value).__name__})")
    try:
        number = float(value)
    except OverflowError:
        raise ValueError(f"{name} must be finite, got an integer of "
                         f"{len(str(abs(int(value))))} digits") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {number!r}")
    return number + 0.0  # -0.0 -> 0.0: equal schedules hash alike


def rate(name: str, value: Any) -> float:
    """A learning rate (or momentum): finite and non-negative."""
    number = real(name, value)
    if number < 0:
        raise ValueError(f"{name} must be >= 0, got {number!r}")
    return number


def positive(name: str, value: Any) -> float:
    number = real(name, value)
    if number <= 0:
        raise ValueError(f"{name} must be > 0, got {number!r}")
    return number


def in_range(name: str, value: Any, low: float, high: float,
             *, low_open: bool = False, high_open: bool = False) -> float:
    """A real number in [low, high]; either end may be open."""
    number = real(name, value)
    too_low = number <= low if low_open else number < low
    too_high = number >= high if high_open else number > high
    if too_low or too_high:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        raise ValueError(f"{name} must be in {left}{low}, {high}{right}, "
                         f"got {number!r}")
    return number


def integer(name: str, value: Any, minimum: int = 0,
            maximum: int = MAX_STEP - 1) -> int:
    """An integer in ``[minimum, maximum]`` (by default below 2**53, where
    every integer is exact in float64); integral floats such as ``10.0``
    pass."""
    if isinstance(value, (bool, np.bool_)) or not _is_real(value):
        raise TypeError(f"{name} must be an integer, "
                        f"got {value!r} ({type(value).__name__})")
    if isinstance(value, numbers.Integral):
        whole = int(value)
    else:
        number = float(value)
        if not math.isfinite(number) or not number.is_integer():
            raise ValueError(f"{name} must be an integer, got {number!r}")
        whole = int(number)
    if whole < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {whole!r}")
    if whole > maximum:
        shown = whole if whole < 10 ** 30 \
            else f"an integer of {len(str(whole))} digits"
        raise ValueError(f"{name} must be <= {maximum}, got {shown}")
    return whole


def choice(name: str, value: Any, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, "
                         f"got {value!r}")
    return value


def boolean(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def length(name: str, value: Any) -> int | float:
    """A length in updates that may be fractional: a finite real > 0
    below 2**53 (an integral value comes back as an ``int``, so that
    ``20.0`` and ``20`` make equal schedules)."""
    number = real(name, value)
    if number <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    if number >= MAX_STEP:
        raise ValueError(f"{name} must be < 2**53, got {number!r}")
    return int(number) if number.is_integer() else number


def increasing(name: str, value: Any, item: Callable[[str, Any], Any],
               what: str = "numbers") -> list[Any]:
    """A non-empty, strictly increasing list, each entry checked by
    ``item(f"{name}[i]", entry)``."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise TypeError(f"{name} must be a list of {what}, got {value!r}")
    items = [item(f"{name}[{i}]", v) for i, v in enumerate(value)]
    if not items:
        raise ValueError(f"{name} must not be empty, got {value!r}")
    for i in range(1, len(items)):
        if items[i] <= items[i - 1]:
            raise ValueError(f"{name} must be strictly increasing, got "
                             f"{items!r} ({name}[{i}]={items[i]} <= "
                             f"{name}[{i - 1}]={items[i - 1]})")
    return items


def increasing_ints(name: str, value: Any, minimum: int = 0) -> list[int]:
    """A non-empty, strictly increasing list of integers >= ``minimum``."""
    return increasing(name, value, lambda n, v: integer(n, v, minimum),
                      "integers")


def increasing_lengths(name: str, value: Any) -> list[int | float]:
    """A non-empty, strictly increasing list of :func:`length` values."""
    return increasing(name, value, length)


def rates(name: str, value: Any) -> list[float]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise TypeError(f"{name} must be a list of rates, got {value!r}")
    return [rate(f"{name}[{i}]", v) for i, v in enumerate(value)]


def pieces(name: str, items: list[Any], boundaries: Sequence[Any]
           ) -> list[Any]:
    """``items`` must hold one entry per piece: ``len(boundaries) + 1``."""
    if len(items) != len(boundaries) + 1:
        raise ValueError(f"{name} must have len(boundaries) + 1 = "
                         f"{len(boundaries) + 1} entries, got "
                         f"{len(items)}: {items!r:.200}")
    return items


def step(value: Any, name: str = "step") -> int:
    """One step index: a non-negative integer (NaN, bools, fractions fail)."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if isinstance(value, (int, np.integer)):
        return integer(name, value, 0)
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            raise ValueError(f"{name} must be an integer, got nan")
        return integer(name, value, 0)
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return step(value.item(), name)
    raise TypeError(f"{name} must be an integer, "
                    f"got {value!r} ({type(value).__name__})")


def steps(value: Any, name: str = "steps"
          ) -> np.ndarray[Any, np.dtype[np.float64]]:
    """An array of step indices as float64 (exact for steps below 2**53)."""
    arr = np.asarray(value)
    if arr.dtype == np.bool_:
        raise TypeError(f"{name} must hold integers, got booleans")
    if arr.dtype.kind in "iu":
        if arr.size and arr.min() < 0:
            raise ValueError(f"{name} must be >= 0, got {arr.min()!r}")
        if arr.size and arr.max() >= MAX_STEP:
            raise ValueError(f"{name} must be < 2**53, got {arr.max()!r}")
        return arr.astype(np.float64)
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr) | (arr != np.floor(arr))
        if bad.any():
            raise ValueError(f"{name} must hold integers, "
                             f"got {arr[bad].flat[0]!r}")
        if arr.size and arr.min() < 0:
            raise ValueError(f"{name} must be >= 0, got {arr.min()!r}")
        if arr.size and arr.max() >= MAX_STEP:
            raise ValueError(f"{name} must be < 2**53, got {arr.max()!r}")
        return arr.astype(np.float64)
    raise TypeError(f"{name} must be an array of integers, "
                    f"got dtype {arr.dtype}")
