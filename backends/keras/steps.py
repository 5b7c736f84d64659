"""The Keras LeNet trainer's steps, compiled the way each Keras backend
compiles (Keras 3's ``backend/<name>/trainer.py`` split): what
:class:`~unisched.backends.keras.lenet.KerasTrainer` calls per batch.

One update is one call: forward, loss, gradients (plus PyTorch's L2
``weight_decay``), the bound optimizer's update, the correct count, and
the rates and momentum of the NEXT update read after it (float32, as the
next ``update_step`` evaluates them), returned together as one list
``[loss, correct, *rates, momentum]``.

==========  ===========================================================
tensorflow  one ``tf.function`` (``GradientTape``), optionally XLA
            (``jit_compile``), its batch dimension free: ONE trace per
            trainer, partial batches included
jax         one ``jax.jit`` of the stateless update
            (``model.stateless_call``, ``jax.value_and_grad``,
            ``optimizer.stateless_apply``), as Keras' jax trainer does:
            one trace (and XLA compilation) per batch shape; the new
            values go back into the Keras variables after each call
torch       eager, as Keras' torch trainer runs (``loss.backward()``,
            ``optimizer.apply`` under ``no_grad``): nothing is traced
==========  ===========================================================

Every backend evaluates the bound schedule from ``optimizer.iterations``
inside the update (``backends/keras/_backend.py``).  The rates of the
next update come from :func:`hparams_reader`: ``optimizer.learning_rate``
times each group's multiplier, and the momentum (or ``beta_1``), both as
the optimizer reads them.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from ._backend import BACKEND
from .hparams import ScheduledHyperparameter


def hparams_reader(optimizer: Any, momentum: str,
                   factors: Sequence[float]) -> Callable[[], Any]:
    """A function returning ``[lr * f for f in factors] + [momentum]``
    as one float32 tensor, read as the optimizer's next update reads
    them (``momentum`` is the attribute: ``'momentum'`` or ``'beta_1'``)."""
    def read() -> Any:
        lr = ops.cast(optimizer.learning_rate, "float32")
        mom = getattr(optimizer, momentum)
        if isinstance(mom, ScheduledHyperparameter):
            mom = mom.value()   # torch converts the float itself
        mom = ops.cast(mom, "float32")
        return ops.stack([lr * f for f in factors] + [mom])
    return read


def _hits(logits: Any, y: Any) -> Any:
    return ops.sum(ops.cast(ops.equal(ops.argmax(logits, axis=1),
                                      ops.cast(y, "int32")), "float32"))


class Steps:
    """The compiled update and evaluation of one trainer.

    Args:
        model: the LeNet (NHWC input).
        optimizer: its (bound) optimizer, built.
        loss_fn: ``loss_fn(y, logits)``, the mean loss.
        read: the :func:`hparams_reader`.
        weight_decay: L2 added to the gradients (0: none).
        jit_compile: XLA for the tensorflow ``tf.function``.
        device: where the work runs (a name ``keras.device`` takes).
    """

    def __init__(self, model: Any, optimizer: Any, loss_fn: Any,
                 read: Callable[[], Any], weight_decay: float,
                 jit_compile: bool, device: str) -> None:
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.read, self.wd, self.device = read, weight_decay, device
        self.jit_compile = jit_compile
        self.traces = 0   # of the update; eval and read are traced alike

    def train(self, x: np.ndarray, y: np.ndarray) -> list[float]:
        """One update: ``[loss, correct, *rates, momentum]``."""
        raise NotImplementedError

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> int:
        """Correct predictions, in evaluation mode."""
        raise NotImplementedError

    def hparams(self) -> list[float]:
        """``[*rates, momentum]`` of the next update, read now."""
        return np.asarray(self.read()).tolist()

    def _l2(self, grads: Any, weights: Any) -> Any:
        # PyTorch's (and MXNet's) weight_decay for SGD/Adam: L2.
        if not self.wd:
            return grads
        return [g + self.wd * w for g, w in zip(grads, weights, strict=True)]


class TFSteps(Steps):
    """One ``tf.function`` per step with a free batch dimension: traced
    ONCE, here, under the device scope."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        import tensorflow as tf

        model, optimizer = self.model, self.optimizer
        variables = model.trainable_variables

        def train_step(x, y):
            self.traces += 1   # Python side effect: once per trace
            with tf.GradientTape() as tape:
                logits = model(x, training=True)
                loss = self.loss_fn(y, logits)
            grads = self._l2(tape.gradient(loss, variables), variables)
            optimizer.apply_gradients(zip(grads, variables, strict=True))
            # Read after the update (automatic control dependencies keep
            # program order): the hparams of the NEXT update, for free.
            return tf.concat([tf.stack([tf.cast(loss, tf.float32),
                                        _hits(logits, y)]), self.read()], 0)

        def eval_step(x, y):
            return _hits(model(x, training=False), y)

        sig = [tf.TensorSpec([None, 28, 28, 1], tf.float32, name="x"),
               tf.TensorSpec([None], tf.int64, name="y")]
        self._train = tf.function(train_step, input_signature=sig,
                                  jit_compile=self.jit_compile)
        self._eval = tf.function(eval_step, input_signature=sig,
                                 jit_compile=self.jit_compile)
        self._read = tf.function(self.read, input_signature=[])
        with tf.device(self.device):
            # Traced here, under the device scope, once for the whole run.
            for fn in (self._train, self._eval, self._read):
                fn.get_concrete_function()

    def train(self, x: np.ndarray, y: np.ndarray) -> list[float]:
        return self._train(x, y).numpy().tolist()

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> int:
        return int(self._eval(x, y))

    def hparams(self) -> list[float]:
        return self._read().numpy().tolist()


class JaxSteps(Steps):
    """One ``jax.jit`` of the stateless update (traced per batch shape)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        import jax

        model, optimizer = self.model, self.optimizer
        self._weights = (model.trainable_variables,
                         model.non_trainable_variables)

        def loss(trainable, non_trainable, x, y):
            logits, non_trainable = model.stateless_call(
                trainable, non_trainable, x, training=True)
            return self.loss_fn(y, logits), (logits, non_trainable)

        grad = jax.value_and_grad(loss, has_aux=True)

        def train_step(state, x, y):
            self.traces += 1   # Python side effect: once per trace
            trainable, non_trainable, opt_vars = state
            (value, (logits, non_trainable)), grads = grad(
                trainable, non_trainable, x, y)
            trainable, opt_vars = optimizer.stateless_apply(
                opt_vars, self._l2(grads, trainable), trainable)
            with keras.StatelessScope(state_mapping=list(zip(
                    optimizer.variables, opt_vars, strict=True))):
                after = self.read()
            out = ops.concatenate([ops.stack([
                ops.cast(value, "float32"), _hits(logits, y)]), after])
            return (trainable, non_trainable, opt_vars), out

        def eval_step(trainable, non_trainable, x, y):
            logits, _ = model.stateless_call(trainable, non_trainable, x,
                                             training=False)
            return _hits(logits, y)

        self._train = jax.jit(train_step)
        self._eval = jax.jit(eval_step)

    def _state(self) -> tuple[list[Any], ...]:
        # The optimizer's variables are read anew: a later bind may add
        # some (a plateau's scale), and the new structure retraces.
        return (*self._weights, self.optimizer.variables)

    def train(self, x: np.ndarray, y: np.ndarray) -> list[float]:
        variables = self._state()
        with keras.device(self.device):
            state, out = self._train(
                tuple([v.value for v in group] for group in variables),
                x, y)
        for group, values in zip(variables, state, strict=True):
            for variable, value in zip(group, values, strict=True):
                variable.assign(value)
        return np.asarray(out).tolist()

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> int:
        trainable, non_trainable = ([v.value for v in group]
                                    for group in self._weights)
        with keras.device(self.device):
            return int(self._eval(trainable, non_trainable, x, y))


class TorchSteps(Steps):
    """Eager, as Keras' torch trainer runs: nothing is traced."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        if self.jit_compile:
            raise ValueError("jit_compile=True is TensorFlow's XLA switch; "
                             "Keras' torch backend runs the step eagerly")
        import torch
        self._torch = torch

    def _tensors(self, x: np.ndarray, y: np.ndarray) -> tuple[Any, Any]:
        with keras.device(self.device):
            return ops.convert_to_tensor(x), ops.convert_to_tensor(y)

    def train(self, x: np.ndarray, y: np.ndarray) -> list[float]:
        x, y = self._tensors(x, y)
        model = self.model
        logits = model(x, training=True)
        model.zero_grad()   # the previous step's gradients
        loss = self.loss_fn(y, logits)
        loss.backward()
        weights = model.trainable_variables
        with self._torch.no_grad():
            grads = self._l2([w.value.grad for w in weights],
                             [w.value for w in weights])
            self.optimizer.apply(grads, weights)
            hits = _hits(logits, y)
            out = ops.concatenate([ops.stack([loss, hits]), self.read()])
        return out.cpu().numpy().tolist()

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> int:
        x, y = self._tensors(x, y)
        with self._torch.no_grad():
            return int(_hits(self.model(x, training=False), y))


#: the steps of each Keras backend
STEPS = {"tensorflow": TFSteps, "jax": JaxSteps, "torch": TorchSteps}


def make_steps(*args: Any) -> Steps:
    """The :class:`Steps` of this process's Keras backend (arguments as
    :class:`Steps`)."""
    return STEPS[BACKEND](*args)
