"""The d2l chapter's LeNet training in Keras 3 (TensorFlow), driven by
unisched.

:class:`KerasTrainer` is the Keras side of :mod:`unisched.app.training`: a
LeNet (``unisched.backends.keras.lenet``, NHWC), a Keras optimizer -- one, or a
``MultiOptimizer`` with one inner optimizer per ``LENET_LAYER_GROUPS``
entry for discriminative rates -- and the schedule bound with the adapter
(:mod:`unisched.backends.keras`), a native Keras schedule or a genuine
``keras.callbacks.LearningRateScheduler``.  :func:`train_lenet`,
:func:`lr_find` and :func:`fit_one_cycle` run it through the shared loops
(:func:`unisched.app.training.fit`, :func:`unisched.app.training.find_lr`), so the
epochs, batches and records are those of every other framework.

The chapter (d2l "Learning Rate Scheduling"): modernized LeNet, softmax
cross-entropy (``SparseCategoricalCrossentropy(from_logits=True)``, mean
over the batch), SGD, batch 256, rate 0.3, 30 epochs; per epoch train
loss, train accuracy, test accuracy.

Speed: one update is one call of a ``tf.function`` (forward, loss,
gradients, ``apply_gradients``, correct count) traced ONCE per trainer:
its input signature has a free batch dimension, so the last, partial
batch of an epoch and every evaluation batch reuse the same graph (see
:attr:`KerasTrainer.traces`).  The schedule is evaluated inside that
graph from ``optimizer.iterations`` (nothing is assigned per step); the
loss and the correct count leave the graph as one tensor, together with
the rates and momentum of the NEXT update: ``optimizer.learning_rate``
and the momentum evaluated in the graph after ``apply_gradients``
(float32, at the new ``optimizer.iterations``), exactly as the next
update's ``update_step`` evaluates them.  That is what
:meth:`KerasTrainer.hparams` returns, at no cost per step; before the
first update and after each epoch end (where a callback or a plateau
may change the rate) an argument-free ``tf.function`` reads them the
same way (~0.4 ms; Keras evaluates a native schedule eagerly in
~1.3 ms).  Nothing here
draws from TensorFlow's random state (weights come from
``unisched.app.lenet.init_lenet_params``, batches from
:func:`unisched.app.data.iterate_batches`, LeNet has no dropout), so on the
CPU two runs with one seed give identical losses.
"""
from __future__ import annotations

import copy
import numbers
import re
import types
from typing import Any, Callable, Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf
import unisched
from unisched import _validate as check
from unisched.app import training as _training
from unisched.app.data import Dataset, num_batches
from unisched.app.lenet import LENET_LAYER_GROUPS
from unisched.app.training import Trainer, find_lr, fit
from unisched.base import Schedule
from unisched.plateau import ReduceOnPlateau
from unisched.tools import LRFinderResult, LRFinderState, Recorder, multipliers

from .adapter import bind
from .groups import group_optimizer
from .hparams import bind_hparams
from .lenet import build_lenet, to_nhwc

from .schedule import LearningRateSchedule

__all__ = ["KerasTrainer", "train_lenet", "lr_find", "fit_one_cycle",
           "OPTIMIZERS", "UNITS", "CHAPTER_LR"]

#: Optimizer names: ``keras.optimizers.SGD`` (``momentum``, no Nesterov),
#: ``Adam`` and ``AdamW`` with Keras' defaults ``beta_1=0.9``,
#: ``beta_2=0.999``, ``epsilon=1e-7`` (Keras adds epsilon to the
#: bias-corrected ``sqrt(v)`` in its "epsilon hat" form; PyTorch uses
#: ``eps=1e-8``), ``amsgrad=False``.
OPTIMIZERS = ("sgd", "adam", "adamw")
UNITS = ("step", "epoch")

#: The chapter's rate, ``tf.keras.optimizers.SGD(learning_rate=0.3)``: the
#: rate the optimizer holds before a per-epoch callable first sets one
#: (the callable receives it as ``lr`` at epoch 0).
CHAPTER_LR = 0.3

_IMAGE_SPEC = tf.TensorSpec([None, 28, 28, 1], tf.float32, name="x")
_LABEL_SPEC = tf.TensorSpec([None], tf.int64, name="y")


def _resolve_device(device: Any, model: keras.Model | None) -> str:
    """The TensorFlow device name the trainer places its work on.

    None: the device of the model's weights if a model is given, else the
    first GPU TensorFlow sees, else the CPU.  A name (``'cpu'``,
    ``'GPU:0'``, ``'/device:CPU:0'``) must be a logical device of this
    process."""
    logical = {d.name: d for d in tf.config.list_logical_devices()}
    if device is None:
        if model is not None and model.weights:
            spec = tf.DeviceSpec.from_string(model.weights[0].value.device)
            if spec.device_type:
                return f"/device:{spec.device_type}:{spec.device_index or 0}"
        gpus = tf.config.list_logical_devices("GPU")
        return gpus[0].name if gpus else "/device:CPU:0"
    if not isinstance(device, str):
        raise TypeError(f"device must be None or a TensorFlow device name "
                        f"such as 'cpu' or 'GPU:0', got {device!r}")
    body = device.strip().lstrip("/")
    if body.lower().startswith("device:"):
        body = body[len("device:"):]
    kind, _, index = body.partition(":")
    full = f"/device:{kind.upper()}:{index or 0}"
    if not kind.isalpha() or (index and not index.isdigit()) \
            or full not in logical:
        raise ValueError(f"device={device!r} is not a device TensorFlow "
                         f"sees here; available: {', '.join(logical)}")
    return full


class _Scaled(keras.optimizers.schedules.LearningRateSchedule):
    """``factor * schedule(index)`` where ``index`` is the optimizer step,
    or ``step // steps_per_epoch`` when ``steps_per_epoch`` is given: a
    Keras schedule (native, or the adapter around a ReduceOnPlateau)
    scaled for one parameter group and/or counted in epochs.  Used only
    where :func:`unisched.backends.keras.group_optimizer` and
    ``unisched.epochwise`` cannot serve (those need a stateless unisched
    schedule)."""

    def __init__(self, schedule: Any, factor: float = 1.0,
                 steps_per_epoch: int | None = None) -> None:
        super().__init__()
        self.schedule = schedule
        self.factor = float(factor)
        self.steps_per_epoch = steps_per_epoch

    def __call__(self, step: Any) -> Any:
        if self.steps_per_epoch is not None:
            step = step // self.steps_per_epoch
        value = self.schedule(step)
        if self.factor == 1.0:
            return value
        return value * tf.cast(self.factor, value.dtype)

    def get_config(self) -> dict[str, Any]:
        return {"schedule": keras.saving.serialize_keras_object(
                    self.schedule),
                "factor": self.factor,
                "steps_per_epoch": self.steps_per_epoch}


def _epochwise_plateau(sched: ReduceOnPlateau, steps_per_epoch: int
                       ) -> ReduceOnPlateau:
    """The same ReduceOnPlateau (arguments and state) over
    ``epochwise(inner, steps_per_epoch)``."""
    args = sched.args
    args["schedule"] = unisched.epochwise(args["schedule"], steps_per_epoch)
    out = ReduceOnPlateau(**args)
    out.load_state_dict(sched.state_dict())
    return out


def _group_patterns(model: keras.Model) -> list[str]:
    """One regular expression per ``LENET_LAYER_GROUPS`` entry matching
    exactly the paths of that group's variables (whatever the model's
    name), checked to cover every trainable variable."""
    patterns, covered = [], 0
    for names in LENET_LAYER_GROUPS:
        paths = []
        for layer in names:
            try:
                paths += [v.path for v in
                          model.get_layer(layer).trainable_variables]
            except ValueError:
                raise ValueError(f"model has no layer {layer!r}; "
                                 f"discriminative rates need the LeNet of "
                                 f"build_lenet") from None
        covered += len(paths)
        patterns.append("|".join(re.escape(p) for p in paths))
    total = len(model.trainable_variables)
    if covered != total:  # not the canonical LeNet
        raise ValueError(f"LENET_LAYER_GROUPS covers {covered} of the "
                         f"model's {total} trainable variables")
    return patterns


class KerasTrainer(Trainer):
    """LeNet, a Keras optimizer and a schedule, one update at a time (the
    operations :func:`unisched.app.training.fit` needs).

    Update ``k`` (``k = 0, 1, ...`` updates done by this trainer) gives
    layer group ``i`` the rate::

        lr_i(k) = m_i * sched(k)                     unit='step'
        lr_i(k) = m_i * sched(k // steps_per_epoch)  unit='epoch'

    with ``m = unisched.tools.multipliers(lr, 3)`` over
    ``LENET_LAYER_GROUPS`` (conv body, hidden dense layers, head) when
    ``lr`` is given -- one inner optimizer per group, built by
    :func:`unisched.backends.keras.group_optimizer` -- else one optimizer
    with ``m = [1]``.  A schedule with a momentum cycle (``sched.momentum``)
    also drives SGD's ``momentum`` or Adam's ``beta_1``, in the graph (the
    adapter's default).

    Args:
        sched: what sets the rate:

            * a unisched schedule or a spec string: bound with
              :func:`unisched.backends.keras.bind` (the adapter's
              ``LearningRateSchedule``, evaluated in the graph at
              ``optimizer.iterations``); ``unit='epoch'`` binds
              ``unisched.epochwise(sched, steps_per_epoch)``, exact at
              every update, no callback;
            * a number: a constant rate;
            * a ``keras.optimizers.schedules.LearningRateSchedule``
              (``PiecewiseConstantDecay``, ``CosineDecay``, ...): given
              to the optimizer as is, so Keras indexes it itself (with
              ``optimizer.iterations``, 0 for the first update); with
              ``unit='epoch'`` it is called with ``iterations //
              steps_per_epoch``; with ``lr`` each group gets it times
              ``m_i``;
            * a callable ``(epoch, lr) -> rate`` or ``epoch -> rate``
              (``unit='epoch'`` only): the chapter's TensorFlow style, a
              genuine ``keras.callbacks.LearningRateScheduler``.  There is
              no ``model.fit`` here, so the trainer calls that callback's
              own ``on_epoch_begin(epoch)`` before the first update of
              each epoch, exactly where ``fit`` would (on a stand-in
              model whose ``optimizer`` is this trainer's); the optimizer
              starts at :data:`CHAPTER_LR`, the ``lr`` the callable sees
              first.  Not with ``lr`` groups (the callback sets one rate
              on every inner optimizer).

            A ``unisched.ReduceOnPlateau`` observes the epoch's mean
            training loss after each epoch (``mode='min'`` only); the
            trainer works on a copy, so the caller's object is unchanged.
        optimizer: ``'sgd'``, ``'adam'`` or ``'adamw'`` (see
            :data:`OPTIMIZERS`).
        momentum: SGD momentum in [0, 1); must be 0 for Adam/AdamW
            (their ``beta_1`` is Keras' 0.9 unless the schedule cycles
            it).
        weight_decay: PyTorch's meaning, so that runs compare across
            frameworks: for SGD and Adam an L2 penalty added to the
            gradients (``g + wd * w``) in the train step; for AdamW
            Keras' decoupled decay (``w -= lr * wd * w``, which is
            PyTorch's AdamW; 0 here, where Keras' default is 0.004).
        lr: discriminative rates, fastai semantics: a number, ``slice(hi)``,
            ``slice(lo, hi)`` or a list of 3; None = one group.
        unit: ``'step'`` or ``'epoch'``: what the schedule counts.
        steps_per_epoch: updates per epoch; required with ``unit='epoch'``
            (except for a per-epoch callable, which counts epochs itself).
        model: a LeNet from ``build_lenet`` to train in place; default: a
            new one from ``params``.
        params: canonical initial weights; default
            ``init_lenet_params(seed)``.
        seed: seed of the default initial weights.
        device: None = the model's device, else the GPU if TensorFlow sees
            one, else the CPU; or a device name (``'cpu'``, ``'GPU:0'``).
        jit_compile: compile the train step with XLA (off by default, as
            Keras' own ``fit`` on a CPU-only machine).

    Attributes:
        model, optimizer (the Keras optimizer or ``MultiOptimizer``),
        group_optimizers (the optimizer of each recorded group),
        schedule (the unisched schedule bound, counting updates: the
        ``epochwise`` one for ``unit='epoch'``, the trainer's own copy of
        a ReduceOnPlateau; None for a native one or a callable), adapter
        (the adapter's ``LearningRateSchedule`` when one is bound),
        callback (the ``LearningRateScheduler`` of a per-epoch callable),
        device, loss_fn.

    Example:
        >>> t = KerasTrainer("cosine(max_update=100, base_lr=0.3)")
        >>> t.hparams()
        ([0.30000001192092896], 0.0)
    """

    framework = "keras"

    def __init__(self, sched: Any, *, optimizer: str = "sgd",
                 momentum: float = 0.0, weight_decay: float = 0.0,
                 lr: float | slice | Sequence[float] | None = None,
                 unit: str = "step", steps_per_epoch: int | None = None,
                 model: keras.Model | None = None,
                 params: Mapping[str, np.ndarray] | None = None,
                 seed: int = 0, device: Any = None,
                 jit_compile: bool = False) -> None:
        self.optimizer_name = check.choice("optimizer", optimizer,
                                           OPTIMIZERS)
        self.unit = check.choice("unit", unit, UNITS)
        momentum = check.in_range("momentum", momentum, 0.0, 1.0,
                                  high_open=True)
        if momentum and self.optimizer_name != "sgd":
            raise ValueError(f"momentum={momentum!r} applies to 'sgd' only; "
                             f"{self.optimizer_name!r} uses beta_1 (0.9, "
                             f"or the schedule's momentum cycle)")
        self.weight_decay = check.rate("weight_decay", weight_decay)
        self.jit_compile = check.boolean("jit_compile", jit_compile)
        if steps_per_epoch is not None:
            steps_per_epoch = check.integer("steps_per_epoch",
                                            steps_per_epoch, 1)
        mults = None if lr is None else multipliers(
            lr, len(LENET_LAYER_GROUPS))
        if model is not None and params is not None:
            raise ValueError("give model or params, not both")
        if model is not None and not isinstance(model, keras.Model):
            raise TypeError(f"model must be a keras.Model from "
                            f"build_lenet, got {type(model).__name__}")
        kind, target = self._classify(sched)
        if kind == "callable":
            if self.unit != "epoch":
                raise ValueError(
                    f"a callable sched ({target!r}) is a per-epoch "
                    f"function for keras.callbacks.LearningRateScheduler: "
                    f"pass unit='epoch' (for per-update rates pass a "
                    f"unisched schedule or a keras.optimizers.schedules."
                    f"LearningRateSchedule)")
            if mults is not None:
                raise ValueError(
                    f"lr={lr!r} needs one rate per group, but a callable "
                    f"sched goes through keras.callbacks."
                    f"LearningRateScheduler, which sets the same rate on "
                    f"every optimizer; pass a unisched schedule instead")
        elif self.unit == "epoch" and steps_per_epoch is None:
            raise ValueError("unit='epoch' needs steps_per_epoch (updates "
                             "per epoch) to count epochs in the graph")
        self.steps_per_epoch = steps_per_epoch
        self.device = _resolve_device(device, model)
        with tf.device(self.device):
            self.model = model if model is not None else build_lenet(
                params, seed=seed)
            patterns = None if mults is None else _group_patterns(
                self.model)
            self._build_optimizer(kind, target, momentum, mults, patterns)
            self.optimizer.build(self.model.trainable_variables)
        self.loss_fn = keras.losses.SparseCategoricalCrossentropy(
            from_logits=True)
        self._epoch = 0
        self._pending = self.callback is not None  # epoch 0 not begun
        self._epoch_loss = 0.0
        self._epoch_seen = 0
        # The hparams of the next update, as the last train step read them
        # after its update; None: read them anew (first update, after an
        # epoch end, or after a callback set a rate).
        self._next: list[float] | None = None
        self._compile()

    # -- construction -------------------------------------------------------
    @staticmethod
    def _classify(sched: Any) -> tuple[str, Any]:
        """('schedule', Schedule), ('native', keras schedule) or
        ('callable', per-epoch function)."""
        if isinstance(sched, LearningRateSchedule):
            sched = sched.schedule  # the adapter: bind its schedule
        if isinstance(sched, Schedule):
            return "schedule", sched
        if isinstance(sched, str):
            return "schedule", unisched.parse(sched)
        if isinstance(sched, numbers.Real) and \
                not isinstance(sched, (bool, np.bool_)):
            return "schedule", unisched.ConstantScheduler(
                check.rate("sched", sched))
        if isinstance(sched, keras.optimizers.schedules.LearningRateSchedule):
            return "native", sched
        if callable(sched):
            return "callable", sched
        raise TypeError(f"sched must be a unisched schedule, a spec "
                        f"string, a number, a keras.optimizers.schedules."
                        f"LearningRateSchedule or a per-epoch callable "
                        f"(epoch[, lr]) -> rate, got {sched!r} "
                        f"({type(sched).__name__})")

    def _make(self, learning_rate: Any, momentum: float
              ) -> keras.optimizers.Optimizer:
        """A new optimizer of the chosen kind (Keras' defaults)."""
        if self.optimizer_name == "sgd":
            return keras.optimizers.SGD(learning_rate, momentum=momentum)
        if self.optimizer_name == "adam":
            return keras.optimizers.Adam(learning_rate)
        return keras.optimizers.AdamW(learning_rate,
                                      weight_decay=self.weight_decay)

    def _build_optimizer(self, kind: str, target: Any, momentum: float,
                         mults: list[float] | None,
                         patterns: list[str] | None) -> None:
        self.schedule = None
        self.adapter = None
        self.callback = None
        self._plateau = False
        spe = self.steps_per_epoch if self.unit == "epoch" else None
        if kind == "callable":
            opt = self._make(CHAPTER_LR, momentum)
            self.callback = keras.callbacks.LearningRateScheduler(target)
            # The callback reads only ``model.optimizer``: no fit here.
            self.callback.set_model(types.SimpleNamespace(optimizer=opt))
            self.optimizer, self.group_optimizers = opt, [opt]
            return
        if kind == "schedule" and target.stateful:
            if getattr(target, "mode", "min") != "min":
                raise ValueError(
                    f"the trainer feeds the epoch's mean training loss to "
                    f"{type(target).__name__}, which needs mode='min', got "
                    f"mode={target.mode!r}")
            target = copy.deepcopy(target)  # leave the caller's alone
            self._plateau = True
        if kind == "schedule":
            if spe is not None:
                target = (_epochwise_plateau(target, spe) if self._plateau
                          else unisched.epochwise(target, spe))
            self.schedule = target
            if mults is None:
                opt = self._make(CHAPTER_LR, momentum)
                self.adapter = bind(target, opt)
                self.optimizer, self.group_optimizers = opt, [opt]
                return
            if not self._plateau:
                self._build_groups(target, momentum, mults, patterns)
                return
            # group_optimizer scales stateless schedules only: share one
            # adapter (one plateau variable) and scale it per group.
            self.adapter = LearningRateSchedule(target)
            rates = [_Scaled(self.adapter, m) for m in mults]
            self._build_native_groups(rates, momentum, patterns,
                                      cycle=target.momentum)
            return
        # a native Keras schedule
        if mults is None:
            rate = target if spe is None else _Scaled(target, 1.0, spe)
            opt = self._make(rate, momentum)
            self.optimizer, self.group_optimizers = opt, [opt]
            return
        rates = [_Scaled(target, m, spe) for m in mults]
        self._build_native_groups(rates, momentum, patterns, cycle=None)

    def _build_groups(self, sched: Schedule, momentum: float,
                      mults: list[float], patterns: list[str]) -> None:
        """The adapter's group_optimizer: groups 0 and 1 by pattern, the
        head (multiplier 1, the schedule itself) as the default."""
        table = dict(zip(patterns[:-1], mults[:-1]))
        multi = group_optimizer(
            sched, lambda rate: self._make(rate, momentum), table,
            default_multiplier=mults[-1])
        # MultiOptimizer lists the mapped optimizers in insertion order,
        # then the default one: the order of LENET_LAYER_GROUPS.
        self.optimizer, self.group_optimizers = multi, list(multi.optimizers)

    def _build_native_groups(self, rates: list[Any], momentum: float,
                             patterns: list[str],
                             cycle: Schedule | None) -> None:
        opts = [self._make(rate, momentum) for rate in rates]
        if cycle is not None:
            for opt in opts:
                name = "beta_1" if self.optimizer_name != "sgd" \
                    else "momentum"
                bind_hparams(opt, {name: cycle})
        table = keras.optimizers.OptimizerMap(opts[-1])
        for pattern, opt in zip(patterns[:-1], opts[:-1]):
            table[pattern] = opt
        multi = keras.optimizers.MultiOptimizer(table)
        self.optimizer, self.group_optimizers = multi, list(multi.optimizers)
        if any(a is not b for a, b in zip(self.group_optimizers, opts)):
            raise RuntimeError("MultiOptimizer reordered the groups")

    def _compile(self) -> None:
        """Trace the train step, the evaluation step and the hparams read
        once, on the trainer's device."""
        model, optimizer, loss_fn = self.model, self.optimizer, self.loss_fn
        variables = model.trainable_variables
        wd = self.weight_decay if self.optimizer_name != "adamw" else 0.0

        opts = self.group_optimizers
        mom_name = "momentum" if self.optimizer_name == "sgd" else "beta_1"

        def read_hparams():
            # What the optimizer's update_step reads, evaluated the same
            # way (float32, from optimizer.iterations).
            lrs = [tf.cast(o.learning_rate, tf.float32) for o in opts]
            mom = tf.cast(tf.convert_to_tensor(getattr(opts[0], mom_name)),
                          tf.float32)
            return tf.stack(lrs + [mom])

        def train_step(x, y):
            with tf.GradientTape() as tape:
                logits = model(x, training=True)
                loss = loss_fn(y, logits)
            grads = tape.gradient(loss, variables)
            if wd:
                # PyTorch's (and MXNet's) weight_decay for SGD/Adam: L2.
                grads = [g + wd * v for g, v in zip(grads, variables)]
            optimizer.apply_gradients(zip(grads, variables))
            hits = tf.reduce_sum(tf.cast(
                tf.equal(tf.argmax(logits, axis=1), y), tf.float32))
            # Read after the update (automatic control dependencies keep
            # program order): the hparams of the NEXT update, for free.
            return tf.concat([tf.stack([tf.cast(loss, tf.float32), hits]),
                              read_hparams()], axis=0)

        def eval_step(x, y):
            logits = model(x, training=False)
            return tf.reduce_sum(tf.cast(
                tf.equal(tf.argmax(logits, axis=1), y), tf.int32))

        sig = [_IMAGE_SPEC, _LABEL_SPEC]
        self._train_step = tf.function(train_step, input_signature=sig,
                                       jit_compile=self.jit_compile)
        self._eval_step = tf.function(eval_step, input_signature=sig,
                                      jit_compile=self.jit_compile)
        self._read_hparams = tf.function(read_hparams, input_signature=[])
        with tf.device(self.device):
            # Traced here, under the device scope, once for the whole run.
            self._train_step.get_concrete_function()
            self._eval_step.get_concrete_function()
            self._read_hparams.get_concrete_function()

    @property
    def traces(self) -> int:
        """How many times the train step has been traced (1: the batch
        dimension is free, so partial batches reuse the graph)."""
        return self._train_step.experimental_get_tracing_count()

    # -- the Trainer operations ---------------------------------------------
    def _begin_epoch(self) -> None:
        """A per-epoch callable: Keras' callback sets this epoch's rate,
        before its first update (where fit calls on_epoch_begin)."""
        self.callback.on_epoch_begin(self._epoch)
        self._pending = False
        self._next = None

    def train_batch(self, x: np.ndarray, y: np.ndarray) -> tuple[float, int]:
        """One update on ``(x, y)`` (NCHW float32 images, int64 labels):
        forward, mean cross-entropy, gradients, ``apply_gradients`` in one
        compiled call.  Returns the batch's mean loss and correct count,
        both from the forward pass before the update (as the chapter
        measures them)."""
        if self._pending:
            self._begin_epoch()
        out = self._train_step(to_nhwc(x), y).numpy().tolist()
        self._next = out[2:]
        loss, hits = out[0], out[1]
        if self._plateau:
            self._epoch_loss += loss * len(y)
            self._epoch_seen += len(y)
        return loss, int(hits)

    def count_correct(self, x: np.ndarray, y: np.ndarray) -> int:
        """Correct predictions on ``(x, y)`` in inference mode."""
        return int(self._eval_step(to_nhwc(x), y))

    def hparams(self) -> tuple[list[float], float | None]:
        """The rate of every group's optimizer and the momentum (SGD) or
        beta_1 (Adam, AdamW) of group 0 that the next update will apply:
        ``optimizer.learning_rate`` (the schedule at
        ``optimizer.iterations``, or the rate variable a callback set) and
        the momentum attribute, evaluated in float32 as ``update_step``
        does -- by the last train step after its update, or afresh before
        the first update of the trainer and of each epoch.  (Change the
        optimizer only through the trainer: a change made between two
        updates from outside is not seen until the next epoch.)"""
        if self._pending:
            self._begin_epoch()
        values = self._next
        if values is None:
            values = self._read_hparams().numpy().tolist()
            self._next = values
        return values[:-1], values[-1]

    def end_epoch(self) -> None:
        """Feed a plateau schedule the epoch's mean training loss; a
        per-epoch callable is called for the next epoch before its first
        update."""
        if self._plateau:
            metric = self._epoch_loss / max(self._epoch_seen, 1)
            self._epoch_loss, self._epoch_seen = 0.0, 0
            step = int(self.group_optimizers[0].iterations.numpy())
            self.adapter.observe(metric, step)
        self._next = None
        self._epoch += 1
        self._pending = self.callback is not None




def train_lenet(sched: Any, data: Dataset, num_epochs: int,
                batch_size: int = 256, optimizer: str = "sgd",
                momentum: float = 0.0, unit: str = "step", seed: int = 0,
                *, weight_decay: float = 0.0,
                lr: float | slice | Sequence[float] | None = None,
                params: Mapping[str, np.ndarray] | None = None,
                device: Any = None, recorder: Recorder | None = None,
                max_updates: int | None = None,
                progress: bool | None = None,
                log: Callable[[str], Any] | None = print) -> Recorder:
    """Train the chapter's LeNet in Keras 3 under ``sched``.

    Update ``k`` of group ``i`` uses ``multipliers(lr, 3)[i] * sched(k)``
    (``sched(k // steps_per_epoch)`` with ``unit='epoch'``); see
    :class:`KerasTrainer` for every accepted ``sched`` (schedule, spec
    string, number, native Keras schedule, per-epoch callable) and
    option.  The epochs, batch order (``seed``) and records are those of
    :func:`unisched.app.training.fit`, identical in every framework.

    Args:
        sched: the schedule (see :class:`KerasTrainer`).
        data: a :class:`unisched.app.data.Dataset`.
        num_epochs: epochs to train.
        batch_size: images per update.
        optimizer: ``'sgd'``, ``'adam'`` or ``'adamw'``.
        momentum: SGD momentum.
        unit: ``'step'`` or ``'epoch'``: what ``sched`` counts.
        seed: initial weights (``init_lenet_params(seed)``) and batch
            order.
        weight_decay: PyTorch's ``weight_decay`` (see
            :class:`KerasTrainer`).
        lr: discriminative rates over ``LENET_LAYER_GROUPS``.
        params: initial weights (canonical dict) instead of the seed's.
        device: None = GPU if TensorFlow sees one, else CPU.
        recorder: a :class:`~unisched.tools.Recorder` to append to.
        max_updates: stop after this many updates.
        progress: tqdm bar (None: only for runs over 50 updates).
        log: called with the chapter's line after each epoch (None:
            silent).

    Returns:
        The recorder: per update the rates and momentum read from the
        optimizer and the loss; per epoch train loss/acc, test acc, time.

    Example:
        >>> from unisched.app.data import load_dataset
        >>> rec = train_lenet("cosine(max_update=30, base_lr=0.3)",
        ...                   load_dataset("digits"), 5, log=None)
        ...                   # doctest: +SKIP
        >>> rec.epochs[-1]["test_acc"] > 0.8  # doctest: +SKIP
        True
    """
    data = _training.check_data(data)
    batch_size = check.integer("batch_size", batch_size, 1)
    trainer = KerasTrainer(
        sched, optimizer=optimizer, momentum=momentum,
        weight_decay=weight_decay, lr=lr, unit=unit,
        steps_per_epoch=num_batches(len(data.y_train), batch_size),
        params=params, seed=seed, device=device)
    return fit(trainer, data, num_epochs, batch_size, seed,
               recorder=recorder, max_updates=max_updates,
               progress=progress, log=log)


def lr_find(data: Dataset, start_lr: float = 1e-7, end_lr: float = 10.0,
            num_it: int = 100, batch_size: int = 256,
            optimizer: str = "sgd", momentum: float = 0.0, seed: int = 0,
            *, model: keras.Model | None = None,
            params: Mapping[str, np.ndarray] | None = None,
            stop_div: bool = True) -> LRFinderResult:
    """fastai's learning-rate finder on LeNet in Keras 3.

    Update ``k`` uses ``start_lr * (end_lr / start_lr) ** (k / num_it)``
    (:func:`unisched.tools.lr_finder_schedule`); the sweep stops after
    ``num_it`` updates, when the smoothed loss exceeds 4x its best
    (``stop_div``), or on a NaN loss.  Batches cycle through the training
    set as many epochs as needed.

    Args:
        data: a :class:`unisched.app.data.Dataset`.
        start_lr, end_lr, num_it: the sweep.
        batch_size: images per update.
        optimizer, momentum: as in :func:`train_lenet` (a fresh optimizer;
            the model's own ``model.optimizer``, if compiled, is not
            touched).
        seed: initial weights (when neither ``model`` nor ``params``) and
            batch order.
        model: a LeNet from ``build_lenet`` to probe in place; all its
            weights are restored afterwards, bit for bit, even if the
            sweep raises.
        params: initial weights for a new LeNet instead.
        stop_div: stop when the loss diverges.

    Returns:
        :class:`unisched.tools.LRFinderResult` with the curve and the
        ``minimum``, ``steep``, ``valley`` and ``slide`` suggestions.

    Example:
        >>> from unisched.app.data import load_dataset
        >>> res = lr_find(load_dataset("digits"))  # doctest: +SKIP
        >>> sorted(res.suggestions)  # doctest: +SKIP
        ['minimum', 'slide', 'steep', 'valley']
    """
    data = _training.check_data(data)
    state = LRFinderState(start_lr, end_lr, num_it, stop_div=stop_div)
    saved = None
    if model is not None:
        if not isinstance(model, keras.Model):
            raise TypeError(f"model must be a keras.Model from "
                            f"build_lenet, got {type(model).__name__}")
        saved = [np.array(w, copy=True) for w in model.get_weights()]
    try:
        trainer = KerasTrainer(state.schedule, optimizer=optimizer,
                               momentum=momentum, model=model,
                               params=params, seed=seed)
        return find_lr(trainer, data, state, batch_size, seed)
    finally:
        if saved is not None:
            # assign() in place: the caller's variables stay the same
            # objects (a compiled model keeps working).
            model.set_weights(saved)


def fit_one_cycle(data: Dataset, num_epochs: int,
                  max_lr: float | slice | Sequence[float],
                  preset: str = "fastai", batch_size: int = 256,
                  optimizer: str = "sgd", seed: int = 0,
                  **train_options: Any) -> Recorder:
    """fastai's ``fit_one_cycle`` on LeNet in Keras 3: ``train_lenet``
    with ``unisched.tools.one_cycle(max_lr, num_epochs * steps_per_epoch,
    preset)``, which also drives SGD's momentum or Adam's beta_1 in the
    graph (fastai: 0.95 -> 0.85 -> 0.95).

    Args:
        data: a :class:`unisched.app.data.Dataset`.
        num_epochs: epochs; the cycle spans all their updates.
        max_lr: the peak rate, or fastai's discriminative form
            (``slice(hi)``, ``slice(lo, hi)``, a list of 3): the last
            group peaks at ``hi``, the others at their share of it (then
            do not pass ``lr``).
        preset: ``'fastai'`` or ``'torch'`` (see ``one_cycle``).
        batch_size, optimizer, seed: as in :func:`train_lenet`.
        **train_options: other :func:`train_lenet` keywords (``unit``
            must stay ``'step'``).

    Example:
        >>> from unisched.app.data import load_dataset
        >>> rec = fit_one_cycle(load_dataset("digits"), 3, 0.5,
        ...                     log=None)  # doctest: +SKIP
    """
    return _training.fit_one_cycle(train_lenet, data, num_epochs, max_lr,
                                   preset, batch_size, optimizer, seed,
                                   **train_options)
