"""Tests for the three-framework LeNet: ``unisched.app.lenet`` and the
``_lenet_torch`` / ``_lenet_keras`` / ``_lenet_mxnet`` backends.

Framework tests skip when that framework is not installed; the numpy tests
always run. Frameworks are imported once per module (imports dominate the
runtime: several seconds each).
"""

from __future__ import annotations

import importlib.util
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from unisched.app.lenet import (
    LENET_INPUT_SHAPE,
    LENET_LAYERS,
    LENET_NUM_CLASSES,
    LENET_PARAM_SHAPES,
    init_lenet_params,
    lenet_forward_numpy,
    validate_lenet_params,
    xavier_bound,
)

# Tolerance of float32 frameworks against the float64 numpy reference.
# Logits here are O(0.5); the longest float32 dot product is fc1's 400
# terms, whose rounding error is ~sqrt(400) * 6e-8 * O(1) ~ 1e-6 at worst,
# and measured max differences are ~3e-7. rtol 1e-4 / atol 1e-5 leaves
# >30x headroom for other BLAS/oneDNN summation orders while staying far
# below a layout bug: un-permuting fc1's flatten order moves logits by
# ~0.5 (test_flatten_order_is_detectable).
RTOL, ATOL = 1e-4, 1e-5

FRAMEWORKS = ("torch", "keras", "mxnet", "jax")


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def params() -> dict[str, np.ndarray]:
    """Canonical params with *non-zero* biases, so a misplaced bias (zero
    at init) cannot go unnoticed by the parity and round-trip tests."""
    p = init_lenet_params(seed=0)
    rng = np.random.default_rng(99)
    for name, shape in LENET_PARAM_SHAPES.items():
        if name.endswith(".bias"):
            p[name] = rng.uniform(-0.1, 0.1, shape).astype(np.float32)
    return p


@pytest.fixture(scope="module")
def batch() -> np.ndarray:
    """16 NCHW float32 images with pixels in [0, 1), like scaled MNIST."""
    rng = np.random.default_rng(123)
    return rng.random((16, *LENET_INPUT_SHAPE), dtype=np.float32)


@pytest.fixture(scope="module")
def reference(params, batch) -> np.ndarray:
    return lenet_forward_numpy(params, batch)


@dataclass(frozen=True)
class Backend:
    """A framework's LeNet module plus how to run it on an NCHW batch."""
    name: str
    module: ModuleType
    forward: Callable[[Any, np.ndarray], np.ndarray]
    layer_names: Callable[[Any], set[str]]


def _load_torch() -> Backend:
    torch = pytest.importorskip("torch")
    from unisched.backends.torch import lenet as _lenet_torch

    def forward(net, x):
        with torch.no_grad():
            return net(torch.from_numpy(x)).numpy()

    return Backend("torch", _lenet_torch, forward,
                   lambda net: {n for n, _ in net.named_children()})


def _load_keras() -> Backend:
    pytest.importorskip("keras")
    from unisched.backends.keras import lenet as _lenet_keras

    def forward(model, x):
        return np.asarray(model(_lenet_keras.to_nhwc(x), training=False))

    return Backend("keras", _lenet_keras, forward,
                   lambda model: {layer.name for layer in model.layers})


def _load_mxnet() -> Backend:
    # Not importorskip("mxnet"): a bare `import mxnet` fails on numpy>=1.24
    # (AttributeError, not ImportError); the backend imports it correctly.
    if importlib.util.find_spec("mxnet") is None:
        pytest.skip("mxnet is not installed")
    from unisched.backends.mxnet import lenet as _lenet_mxnet
    mx = _lenet_mxnet.mx

    def forward(net, x):
        return net(mx.nd.array(x, dtype="float32")).asnumpy()

    def layer_names(net):
        return {blk.prefix[len(net.prefix):].rstrip("_") for blk in net}

    return Backend("mxnet", _lenet_mxnet, forward, layer_names)


def _load_jax() -> Backend:
    pytest.importorskip("flax")
    from unisched.backends.jax import lenet as _lenet_jax

    return Backend("jax", _lenet_jax, lambda net, x: np.asarray(net(x)),
                   lambda net: set(net.params))


_LOADERS = {"torch": _load_torch, "keras": _load_keras,
            "mxnet": _load_mxnet, "jax": _load_jax}


@pytest.fixture(scope="module", params=FRAMEWORKS)
def backend(request) -> Backend:
    return _LOADERS[request.param]()


@pytest.fixture(scope="module")
def run(params, batch) -> Callable[[str], tuple[Backend, Any, np.ndarray]]:
    """``run(name) -> (backend, net built from params, logits on batch)``,
    computed once per framework (skips if the framework is missing)."""
    cache: dict[str, tuple[Backend, Any, np.ndarray]] = {}

    def get(name: str):
        if name not in cache:
            b = _LOADERS[name]()
            net = b.module.build_lenet(params)
            cache[name] = (b, net, b.forward(net, batch))
        return cache[name]

    return get


# ------------------------------------------------------ (a) initialisation

def test_init_is_deterministic_per_seed():
    a, b = init_lenet_params(seed=7), init_lenet_params(seed=7)
    assert list(a) == list(b)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])


def test_init_differs_across_seeds():
    a, b = init_lenet_params(seed=0), init_lenet_params(seed=1)
    for name in LENET_PARAM_SHAPES:
        if name.endswith(".weight"):
            assert not np.array_equal(a[name], b[name]), name


def test_init_reference_values():
    # Pins the draw order and the numpy stream: a change here changes every
    # experiment's starting point, so it must be deliberate.
    p = init_lenet_params(seed=0)
    np.testing.assert_array_equal(
        p["conv1.weight"].ravel()[:3],
        np.array([0.050720755, -0.08525444, -0.16999038], np.float32))
    assert p["fc3.weight"].ravel()[-1] == np.float32(-0.19624509)


def test_init_shapes_dtypes_and_zero_biases():
    p = init_lenet_params()
    assert list(p) == list(LENET_PARAM_SHAPES)
    for name, shape in LENET_PARAM_SHAPES.items():
        assert p[name].shape == shape, name
        assert p[name].dtype == np.float32, name
        if name.endswith(".bias"):
            assert not p[name].any(), name
    validate_lenet_params(p)


def test_param_spec_matches_architecture():
    shapes = LENET_PARAM_SHAPES
    assert shapes["conv1.weight"][1] == LENET_INPUT_SHAPE[0]
    # 28 -pad 2, 5x5-> 28 -pool-> 14 -5x5-> 10 -pool-> 5: 16 * 5 * 5 = 400.
    assert shapes["fc1.weight"][1] == shapes["conv2.weight"][0] * 5 * 5
    assert shapes["fc3.weight"][0] == LENET_NUM_CLASSES
    assert {n.split(".")[0] for n in shapes} == set(LENET_LAYERS)


@pytest.mark.parametrize(
    "shape, expected",
    [((6, 1, 5, 5), np.sqrt(6 / (25 + 150))),
     ((120, 400), np.sqrt(6 / 520))])
def test_xavier_bound_values(shape, expected):
    assert xavier_bound(shape) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_init_respects_xavier_bound_and_std(seed):
    p = init_lenet_params(seed)
    for name, shape in LENET_PARAM_SHAPES.items():
        if not name.endswith(".weight"):
            continue
        w = p[name].astype(np.float64)
        bound = xavier_bound(shape)
        # float32 rounding is monotone, so |w| <= float32(bound) exactly.
        assert np.abs(p[name]).max() <= np.float32(bound), name
        # U(-b, b) has std b / sqrt(3). The sample std of n uniform draws
        # has relative standard error sqrt((kurtosis - 1) / (4 n)) =
        # sqrt(0.2 / n); allow 5 such errors (n >= 150 here: <= 19 %).
        n = w.size
        xavier_std = bound / np.sqrt(3)
        assert w.std() == pytest.approx(
            xavier_std, rel=5 * np.sqrt(0.2 / n)), name
        assert abs(w.mean()) <= 5 * xavier_std / np.sqrt(n), name


@pytest.mark.parametrize("seed", [-1, 1.5, True, "0"])
def test_init_rejects_bad_seed(seed):
    with pytest.raises((TypeError, ValueError), match="seed"):
        init_lenet_params(seed)


# ------------------------------------------------ numpy reference forward

def _naive_logits(p: dict[str, np.ndarray], img: np.ndarray) -> np.ndarray:
    """One image (1, 28, 28) through LeNet with explicit loops: an
    independent check of the vectorised reference."""
    p = {k: v.astype(np.float64) for k, v in p.items()}

    def conv_relu(x, w, b, pad):
        x = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
        k = w.shape[-1]
        h, wd = x.shape[1] - k + 1, x.shape[2] - k + 1
        out = np.empty((w.shape[0], h, wd))
        for i in range(h):
            for j in range(wd):
                patch = x[:, i:i + k, j:j + k]
                out[:, i, j] = np.tensordot(w, patch, axes=3) + b
        return np.maximum(out, 0.0)

    def pool(x):
        c, h, w = x.shape
        out = np.empty((c, h // 2, w // 2))
        for i in range(h // 2):
            for j in range(w // 2):
                out[:, i, j] = x[:, 2 * i:2 * i + 2,
                                 2 * j:2 * j + 2].max(axis=(1, 2))
        return out

    x = pool(conv_relu(img, p["conv1.weight"], p["conv1.bias"], 2))
    x = pool(conv_relu(x, p["conv2.weight"], p["conv2.bias"], 0))
    flat = np.empty(400)
    for c, h, w in itertools.product(range(16), range(5), range(5)):
        flat[c * 25 + h * 5 + w] = x[c, h, w]  # documented (C, H, W) order
    x = np.maximum(p["fc1.weight"] @ flat + p["fc1.bias"], 0.0)
    x = np.maximum(p["fc2.weight"] @ x + p["fc2.bias"], 0.0)
    return p["fc3.weight"] @ x + p["fc3.bias"]


def test_numpy_forward_matches_naive_loops(params, batch, reference):
    assert reference.shape == (len(batch), LENET_NUM_CLASSES)
    assert reference.dtype == np.float64
    for i in (0, 5):
        np.testing.assert_allclose(
            reference[i], _naive_logits(params, batch[i]),
            rtol=1e-12, atol=1e-12)


def test_flatten_order_is_detectable(params, batch, reference):
    # fc1 columns in Keras' (H, W, C) order instead of (C, H, W): the
    # parity tolerance must be far tighter than the error this causes.
    wrong = dict(params)
    wrong["fc1.weight"] = (params["fc1.weight"].reshape(120, 16, 5, 5)
                           .transpose(0, 2, 3, 1).reshape(120, 400))
    diff = np.abs(lenet_forward_numpy(wrong, batch) - reference).max()
    assert diff > 1000 * ATOL


@pytest.mark.parametrize("shape", [(2, 28, 28), (2, 28, 28, 1),
                                   (2, 3, 28, 28), (2, 1, 32, 32)])
def test_numpy_forward_rejects_bad_input_shape(params, shape):
    with pytest.raises(ValueError, match="x.shape"):
        lenet_forward_numpy(params, np.zeros(shape, np.float32))


def test_validate_rejects_missing_extra_and_misshapen(params):
    missing = {k: v for k, v in params.items() if k != "fc2.bias"}
    with pytest.raises(ValueError, match="fc2.bias"):
        validate_lenet_params(missing)
    with pytest.raises(ValueError, match="fc4.weight"):
        validate_lenet_params({**params, "fc4.weight": np.zeros(1)})
    with pytest.raises(ValueError, match="conv1.weight"):
        validate_lenet_params({**params, "conv1.weight":
                               params["conv1.weight"].transpose(2, 3, 1, 0)})


# ------------------------------------------------- (b) numpy == framework

@pytest.mark.parametrize("name", FRAMEWORKS)
def test_framework_logits_match_numpy(run, reference, name):
    _, _, logits = run(name)
    assert logits.shape == reference.shape
    assert logits.dtype == np.float32
    np.testing.assert_allclose(logits, reference, rtol=RTOL, atol=ATOL)


def test_mxnet_hybridized_logits_match_numpy(params, batch, reference):
    b = _load_mxnet()
    net = b.module.build_lenet(params)
    net.hybridize()
    np.testing.assert_allclose(b.forward(net, batch), reference,
                               rtol=RTOL, atol=ATOL)


# ------------------------------------------------------ (c) round trips

def test_get_params_round_trips_exactly(run, params, backend):
    _, net, _ = run(backend.name)
    got = backend.module.get_params(net)
    assert list(got) == list(LENET_PARAM_SHAPES)
    for name, value in got.items():
        assert value.dtype == np.float32, name
        np.testing.assert_array_equal(value, params[name], err_msg=name)


def test_build_from_seed_equals_init(backend):
    net = backend.module.build_lenet(seed=3)
    expected = init_lenet_params(seed=3)
    got = backend.module.get_params(net)
    for name in LENET_PARAM_SHAPES:
        np.testing.assert_array_equal(got[name], expected[name])


def test_layers_are_named(run, backend):
    _, net, _ = run(backend.name)
    assert set(LENET_LAYERS) <= backend.layer_names(net)


def test_build_rejects_wrong_layout(params, backend):
    # A Keras-layout (HWIO) conv kernel must not be loaded silently.
    bad = {**params,
           "conv2.weight": params["conv2.weight"].transpose(2, 3, 1, 0)}
    with pytest.raises(ValueError, match="conv2.weight"):
        backend.module.build_lenet(bad)


def test_torch_build_leaves_global_rng_alone():
    torch = pytest.importorskip("torch")
    from unisched.backends.torch import lenet as _lenet_torch
    state = torch.random.get_rng_state()
    _lenet_torch.build_lenet(seed=0)
    assert torch.equal(state, torch.random.get_rng_state())


def test_keras_to_nhwc(batch):
    pytest.importorskip("keras")
    from unisched.backends.keras.lenet import to_nhwc
    x = to_nhwc(batch)
    assert x.shape == (16, 28, 28, 1) and x.flags["C_CONTIGUOUS"]
    assert x[3, 7, 11, 0] == batch[3, 0, 7, 11]
    with pytest.raises(ValueError, match="x.shape"):
        to_nhwc(batch[0])


# ------------------------------------------- (d) frameworks agree pairwise

def test_frameworks_agree_with_each_other(run):
    logits = {}
    for name in FRAMEWORKS:
        try:
            logits[name] = run(name)[2]
        except pytest.skip.Exception:
            pass
    if len(logits) < 2:
        pytest.skip(f"needs two frameworks, have {sorted(logits)}")
    for a, b in itertools.combinations(logits, 2):
        np.testing.assert_allclose(logits[a], logits[b], rtol=RTOL,
                                   atol=ATOL, err_msg=f"{a} vs {b}")
