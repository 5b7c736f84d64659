"""What differs between Keras 3's backends, in one place.

Everything else in this package is written against ``keras`` and
``keras.ops`` and runs unchanged with ``KERAS_BACKEND=tensorflow``,
``jax`` or ``torch``.  The backend is fixed when keras is imported; this
module reads it once and imports only that framework (keras has already
imported it), so TensorFlow is never imported under jax or torch.

=============  ==========================  ===============================
backend        a step is traced when       a hyperparameter becomes a
                                           tensor through
=============  ==========================  ===============================
tensorflow     not executing eagerly       ``__tf_tensor__``
               (``tf.function``, ``fit``)
jax            it is a ``jax.core.Tracer`` ``__jax_array__``
               (``jax.jit``, ``fit``)
torch          ``torch.compile`` traces    nothing: the bound optimizer
                                           sets its current value as a
                                           Python float for each update
                                           (:data:`EAGER_HPARAMS`)
=============  ==========================  ===============================

:data:`FLOAT64_OPS`: ``keras.ops`` functions that return float32 for a
float64 tensor on this backend (Keras' dtype promotion maps float64 to
float32 outside tensorflow: ``cos``, ``floor`` and ``ceil`` on jax even
with x64; ``floor``, ``ceil``, ``minimum`` and ``maximum`` on torch), so
the formulas' ops namespace uses the framework's own function instead.

Precision (:func:`formula_dtype`): the formulas run in float64 on
tensorflow and torch, and on jax when ``jax_enable_x64`` is on; a traced
update then applies ``float32(sched(k))``, the formula rounded once, as an
eager call does.  JAX without x64 has no float64 (a cast to it silently
gives float32), so there the formulas run in float32:

* steps, periods and boundaries are exact up to ``2**24`` = 16 777 216
  updates (:data:`EXACT_FLOAT32`); past it a boundary may apply a few
  updates off (float32 steps near 1e8 are 8 apart);
* a rate is within float32 noise of ``float32(sched(k))`` early on (under
  ~5e-7 of the peak rate over the first hundred updates: one-cycle's
  first rate is 0.00039999932 for 0.0004, its first beta1 0.95000005 for
  0.95), but a step's position inside a cycle is rounded to about
  ``k * 6e-8`` updates, so in short cycles the rate drifts with ``k``: at
  most ~``2e-9 * k`` of the peak over the test catalog (1e-5 at 10 000
  updates, 1e-3 at a million, 2% near ``2**24``);
* Adam magnifies even the early noise where a gradient is tiny (moments
  below ``epsilon``): the LeNet's weights after six one-cycle Adam updates
  differ from tensorflow's by ~0.5% of their change (SGD: ~1e-5).

For rates equal to ``float32(sched(k))`` at any step turn x64 on
(``jax.config.update('jax_enable_x64', True)`` at start-up; Keras' weights
stay float32).  This
package never turns it on: that is the user's global choice.  Eager calls
(a step that is not traced) evaluate the formula in Python floats on
every backend.  Keras' own step counter (``optimizer.iterations``) is
int32 on jax and torch, int64 on tensorflow: at most ``2**31 - 1``
updates there.
"""
from __future__ import annotations

from typing import Any

import keras

#: the Keras backend of this process: 'tensorflow', 'jax' or 'torch'
BACKEND = keras.backend.backend()
if BACKEND not in ("tensorflow", "jax", "torch"):
    raise ImportError(f"unisched.backends.keras supports the tensorflow, "
                      f"jax and torch backends of Keras 3; KERAS_BACKEND "
                      f"is {BACKEND!r}")

#: the dtype of every rate handed to an optimizer (optimizers cast it to
#: each variable's dtype, as they do for Keras' own schedules)
DTYPE = "float32"
#: updates whose index a float32 formula holds exactly
EXACT_FLOAT32 = 2 ** 24
#: True where a hyperparameter cannot convert itself to a tensor (torch:
#: Keras' torch backend reads Python floats as they are), so the bound
#: optimizer sets each one's current value for the update (eager only)
EAGER_HPARAMS = BACKEND == "torch"

if BACKEND == "tensorflow":
    import tensorflow as tf

    def is_traced(value: Any) -> bool:
        return not tf.executing_eagerly()

    def constant(value: float) -> Any:
        # tf.constant: keras.ops.convert_to_tensor costs ~15x more eagerly.
        return tf.constant(value, dtype=DTYPE)

    FLOAT64_OPS: dict[str, Any] = {}

    def formula_dtype() -> str:
        return "float64"

    def devices() -> list[str]:
        return [d.name for d in tf.config.list_logical_devices()]

    def device_name(kind: str, index: int) -> str:
        return f"/device:{kind.upper()}:{index}"

    def device_of(value: Any) -> str | None:
        spec = tf.DeviceSpec.from_string(value.device)
        return device_name(spec.device_type, spec.device_index or 0) \
            if spec.device_type else None

elif BACKEND == "jax":
    import jax

    def is_traced(value: Any) -> bool:
        return isinstance(value, jax.core.Tracer)

    def constant(value: float) -> Any:
        return jax.numpy.asarray(value, dtype=DTYPE)

    FLOAT64_OPS = {"cos": jax.numpy.cos, "floor": jax.numpy.floor,
                   "ceil": jax.numpy.ceil}

    def formula_dtype() -> str:
        x64 = jax.config.jax_enable_x64  # type: ignore[attr-defined]
        return "float64" if x64 else "float32"

    def devices() -> list[str]:
        return [device_name(d.platform, d.id) for d in jax.devices()]

    def device_name(kind: str, index: int) -> str:
        return f"{kind.lower()}:{index}"

    def device_of(value: Any) -> str | None:
        device = next(iter(value.devices()))
        return device_name(device.platform, device.id)

else:
    import torch

    def is_traced(value: Any) -> bool:
        return torch.compiler.is_compiling()

    def constant(value: float) -> Any:
        return keras.ops.convert_to_tensor(value, DTYPE)

    FLOAT64_OPS = {"floor": torch.floor, "ceil": torch.ceil,
                   "minimum": torch.minimum, "maximum": torch.maximum}

    def formula_dtype() -> str:
        return "float64"

    def devices() -> list[str]:
        return ["cpu"] + [device_name("gpu", i)
                          for i in range(torch.cuda.device_count())]

    def device_name(kind: str, index: int) -> str:
        # 'cpu', not 'cpu:0': Keras' torch variables are moved with
        # .to(device), which copies a CPU tensor to 'cpu:0' (a copy is
        # not a leaf: its gradient would never be filled in).
        kind = kind.lower()
        return kind if kind == "cpu" else f"{kind}:{index}"

    def device_of(value: Any) -> str | None:
        device = value.device
        return device_name("cpu" if device.type == "cpu" else "gpu",
                           device.index or 0)

# One docstring per function, whichever backend defined it.
for _fn, _doc in (
        (is_traced, "Whether ``value`` (a step, unwrapped from its "
                    "variable) is symbolic: a formula must be ops."),
        (constant, "``value`` as a :data:`DTYPE` tensor of the backend."),
        (formula_dtype, "The dtype the formulas run in: float64, or "
                        "float32 on jax without x64 (module docstring)."),
        (devices, "This process's devices, as :func:`device_name` names "
                  "them (what ``keras.device`` takes)."),
        (device_name, "The name of device ``index`` of ``kind`` ('cpu', "
                      "'gpu'): '/device:CPU:0' on tensorflow, 'cpu:0' "
                      "on jax, 'cpu' or 'gpu:0' on torch."),
        (device_of, "The device name of a weight's value (None: not "
                    "placed).")):
    _fn.__doc__ = _doc
