"""LeNet's JAX pooling (``backends/jax/_pool.py``): the values and the
gradient of ``flax.linen.max_pool`` and ``torch``'s ``max_pool2d``, ties
included (the whole gradient to the first maximum of a window)."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import linen as nn

from unisched.backends.jax._pool import max_pool_2x2


def flax_pool(x):
    return nn.max_pool(x, (2, 2), strides=(2, 2))


def grads(pool, x, weights):
    return np.asarray(jax.grad(lambda v: jnp.sum(pool(v) * weights))(x))


def test_ties_send_the_gradient_to_the_first_maximum_literal():
    x = jnp.asarray([[1.0, 1.0, 0.0, 2.0],
                     [0.0, 1.0, 2.0, 2.0]])[None, :, :, None]
    assert np.asarray(max_pool_2x2(x))[0, :, :, 0].tolist() == [[1.0, 2.0]]
    g = grads(max_pool_2x2, x, jnp.asarray([[3.0, 5.0]])[None, :, :, None])
    assert g[0, :, :, 0].tolist() == [[3.0, 0.0, 0.0, 5.0],
                                      [0.0, 0.0, 0.0, 0.0]]


@pytest.mark.parametrize("shape", [(3, 8, 6, 2), (2, 7, 9, 3), (1, 28, 28, 6)])
def test_values_and_gradient_equal_flax_max_pool(shape):
    rng = np.random.default_rng(sum(shape))
    # small integers after a ReLU: many ties, as over a blank background
    x = jnp.asarray(np.maximum(rng.integers(-3, 3, shape), 0), jnp.float32)
    out = max_pool_2x2(x)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(flax_pool(x)))
    w = jnp.asarray(rng.standard_normal(out.shape), jnp.float32)
    np.testing.assert_array_equal(grads(max_pool_2x2, x, w),
                                  grads(flax_pool, x, w))


def test_gradient_equals_torch_max_pool2d_with_ties():
    rng = np.random.default_rng(0)
    x = np.maximum(rng.integers(-2, 3, (2, 10, 10, 4)), 0).astype(np.float32)
    w = rng.standard_normal((2, 5, 5, 4)).astype(np.float32)
    tx = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
    out = torch.nn.functional.max_pool2d(tx, 2)
    (out * torch.tensor(w.transpose(0, 3, 1, 2))).sum().backward()
    np.testing.assert_array_equal(
        grads(max_pool_2x2, jnp.asarray(x), jnp.asarray(w)),
        tx.grad.numpy().transpose(0, 2, 3, 1))
