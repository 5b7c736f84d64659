"""LeNet's 2x2, stride-2 max pooling for XLA on the CPU: a reshape and a
max, with the gradient PyTorch and ``flax.linen.max_pool`` give.

``nn.max_pool`` lowers to ``reduce_window``, whose gradient is XLA's
``select_and_scatter``.  On the CPU that one op took half of the LeNet
training step (batch 256, jaxlib 0.7.1, 2 cores: 73 ms per step, 40 ms
with this pooling; ``benchmarks/bench_train_jax.py``).  Non-overlapping
windows need no window op: ``(N, H, W, C)`` reshapes to ``(N, H/2, 2,
W/2, 2, C)`` and the max is taken over the two window axes.

The forward values are the same (a max is exact).  The gradient is
written out rather than left to ``jnp.max``'s, which shares it equally
among tied maxima: as ``select_and_scatter`` and ``torch.nn.functional.
max_pool2d`` do, the whole gradient goes to the *first* maximum of each
window in row-major order.  Ties are common after a ReLU over a blank
background, so this keeps the trained weights equal to the bit to
``nn.max_pool``'s and within float noise of PyTorch's.  Rows and columns
past an even size are dropped, as ``nn.max_pool``'s ``'VALID'`` padding
does.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def _windows(x: jax.Array) -> jax.Array:
    """``(N, H, W, C)`` -> ``(N, H//2, 2, W//2, 2, C)``, odd edges cut."""
    n, h, w, c = x.shape
    x = x[:, :h // 2 * 2, :w // 2 * 2]
    return x.reshape(n, h // 2, 2, w // 2, 2, c)


@jax.custom_vjp
def max_pool_2x2(x: jax.Array) -> jax.Array:
    """Max over 2x2 windows with stride 2 of an NHWC array."""
    return jnp.max(_windows(x), axis=(2, 4))


def _forward(x: jax.Array) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
    y = max_pool_2x2(x)
    return y, (x, y)


def _backward(res: tuple[jax.Array, jax.Array], g: jax.Array
              ) -> tuple[jax.Array]:
    x, y = res
    windows = _windows(x)
    taken = jnp.zeros(y.shape, bool)
    rows = []
    for p in (0, 1):
        row = []
        for q in (0, 1):
            first = (windows[:, :, p, :, q] == y) & ~taken
            taken = taken | first
            row.append(jnp.where(first, g, jnp.zeros_like(g)))
        rows.append(jnp.stack(row, axis=3))         # (N, H/2, W/2, 2, C)
    grad = jnp.stack(rows, axis=2)                  # (N, H/2, 2, W/2, 2, C)
    n, h, w, c = x.shape
    grad = grad.reshape(n, h // 2 * 2, w // 2 * 2, c)
    return (jnp.pad(grad, ((0, 0), (0, h % 2), (0, w % 2), (0, 0))),)


max_pool_2x2.defvjp(_forward, _backward)

__all__ = ["max_pool_2x2"]
