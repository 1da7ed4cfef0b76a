"""Carlini-Wagner L2 attack: CleverHans 4.0.0's TF2 implementation with its bugs fixed.

Implements the L2 attack of Carlini & Wagner (2017), "Towards evaluating the robustness of
neural networks" (IEEE S&P), as used by Alemi et al. (2017, "Deep Variational Information
Bottleneck", section 4.2). The structure follows
`cleverhans.tf2.attacks.carlini_wagner_l2.CarliniWagnerL2` (cleverhans 4.0.0) and reuses its
sound helpers (`clip_tanh`, `l2`); the parts listed in third_party/cleverhans_tf2/README.md are
replaced:

* one constant c per example (upstream: c has the input's shape and mixes examples, #1205);
* `targeted` is honoured (upstream derives it from whether labels were given, #1228);
* labels travel with their images (upstream: #1241);
* the confidence kappa is applied to the label/target logit only (upstream shifts every logit,
  so kappa never changes the success check);
* the binary search uses this binary-search step's success (upstream uses the best-ever
  score and multiplies the constant of successful examples by 10 after halving it);
* Adam (TF1 `AdamOptimizer` maths, as in C&W's code) is implemented on per-example state that
  is reset for every binary-search step (upstream: one Keras optimizer shared across batches
  whose `variables()` call fails under Keras 3);
* early abort is decided per example (an example's binary-search step ends when its own loss
  has not decreased by more than 0.01% over max_iterations/10 iterations), so results do not
  depend on which other examples are optimised alongside;
* the defaults are C&W's (9 binary-search steps, 10,000 iterations, lr 1e-2, c0 1e-3).

Scheduling (not in upstream). The attack optimises a pool of `batch_size` slots, each holding
one example with its own binary-search state, constant, Adam state and iteration counter. One
iteration (forward pass, loss, input gradient, Adam update, best-so-far bookkeeping, abort
check and, for the slots whose binary-search step just ended, C&W's constant update and reset)
runs on the whole pool inside one `tf.function`-compiled `tf.while_loop` (XLA-compiled when the
model allows). The loop returns to Python only when some example has finished all its
binary-search steps; its slot is then refilled with the next example. A slot therefore never
waits for a slower neighbour, and when no examples are left to load the pool is compacted to
half its size whenever at most half of it is busy.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

import numpy as np
import tensorflow as tf
from cleverhans.tf2.attacks.carlini_wagner_l2 import clip_tanh, l2

LogitsFn = Callable[[tf.Tensor], tf.Tensor]
Progress = Callable[[int, int], None]

_ADAM_BETA1 = 0.9
_ADAM_BETA2 = 0.999
_ADAM_EPSILON = 1e-8
_NO_BOUND = 1e10
_TANH_SHRINK = 0.999999
_MIN_COMPACT_SIZE = 8  # pools are not shrunk below this many slots


@dataclasses.dataclass(frozen=True)
class CWOutput:
    """Raw output of the attack, one entry per example.

    adversarial: best (smallest-L2) successful adversarial image, or the original image.
    found: whether any iteration found a successful adversarial (checked on the logits of
        that iteration, with the confidence margin).
    l2_squared: squared L2 distance of `adversarial` as tracked during the search.
    best_const: smallest constant c for which an adversarial was found (1e10 if none).
    iterations: optimisation iterations run on the example, over all binary-search steps.
    """

    adversarial: np.ndarray
    found: np.ndarray
    l2_squared: np.ndarray
    best_const: np.ndarray
    iterations: np.ndarray


def to_tanh_space(x: tf.Tensor, clip_min: float, clip_max: float) -> tf.Tensor:
    """Map images in [clip_min, clip_max] to tanh space (upstream's `_attack` preamble)."""
    x = (x - clip_min) / (clip_max - clip_min)
    x = tf.clip_by_value(x, 0.0, 1.0) * 2.0 - 1.0
    return tf.atanh(x * _TANH_SHRINK)


def margin_to_success(logits: tf.Tensor, onehot: tf.Tensor, targeted: bool) -> tf.Tensor:
    """Per-example logit margin that must drop below -kappa for the attack to succeed.

    Untargeted: Z_y - max_{i != y} Z_i.  Targeted: max_{i != t} Z_i - Z_t.
    """
    real = tf.reduce_sum(onehot * logits, axis=1)
    lowest = tf.reduce_min(logits, axis=1, keepdims=True)
    # Mask the label/target with a value below every logit (upstream subtracts 10,000).
    other = tf.reduce_max(tf.where(onehot > 0, lowest - 1.0, logits), axis=1)
    return other - real if targeted else real - other


def next_constants(const, lower, upper, success):
    """One per-example binary-search update of C&W (returns const, lower, upper).

    Success: upper <- min(upper, c), c <- (lower + upper) / 2.  Failure: lower <- max(lower, c),
    c <- (lower + upper) / 2 if an upper bound is known, else c <- 10 c.
    """
    upper = tf.where(success, tf.minimum(upper, const), upper)
    lower = tf.where(success, lower, tf.maximum(lower, const))
    const = tf.where(upper < 1e9, (lower + upper) / 2.0, const * 10.0)
    return const, lower, upper


class _Pool:
    """The state of `size` slots; slot i optimises example `example[i]` (-1: empty)."""

    def __init__(self, attack: CarliniWagnerL2, size: int) -> None:
        self.attack = attack
        self.size = size
        image = (size, *attack.input_shape)

        def var(shape, dtype=tf.float32):
            return tf.Variable(tf.zeros(shape, dtype), trainable=False)

        # Every slot starts empty; `load` gives a slot its example and a fresh search state.
        # Per example:
        self.x_orig, self.x_tanh, self.best_adv = var(image), var(image), var(image)
        self.onehot = var((size, attack.num_classes))
        self.const, self.lower, self.upper = var((size,)), var((size,)), var((size,))
        self.best_const, self.best_l2 = var((size,)), var((size,))
        self.step, self.spent = var((size,), tf.int32), var((size,), tf.int32)
        self.example = tf.Variable(tf.fill([size], -1), trainable=False)
        self.finished = var((size,), tf.bool)
        # Per binary-search step (reset when a step ends):
        self.modifier, self.adam_m, self.adam_v = var(image), var(image), var(image)
        self.iteration = var((size,), tf.int32)
        self.step_success = var((size,), tf.bool)
        self.prev_loss = var((size,))
        # A closure per pool: each pool traces its own function (TensorFlow would otherwise
        # count the pools' traces of the one bound method as retracing).
        self.run = attack.compiled(lambda n: self._run_chunk(n))

    def variables(self) -> dict[str, tf.Variable]:
        return {k: v for k, v in vars(self).items() if isinstance(v, tf.Variable)}

    # ----------------------------------------------------------------- compiled loop
    def _run_chunk(self, n: tf.Tensor) -> tf.Tensor:
        """Up to `n` iterations; stops early once an example has finished its search or no
        slot is busy. Returns the number of iterations run."""

        def keep_going(i):
            return (i < n) & ~tf.reduce_any(self.finished) & tf.reduce_any(self._busy())

        def body(i):
            self._iteration()
            return (i + 1,)

        (done,) = tf.while_loop(keep_going, body, (tf.constant(0),))
        return done

    def _busy(self) -> tf.Tensor:
        return (self.example >= 0) & ~self.finished

    def _iteration(self) -> None:
        """One C&W iteration on every busy slot."""
        a = self.attack
        busy = self._busy()
        with tf.GradientTape() as tape:
            tape.watch(self.modifier)
            x_new = clip_tanh(self.modifier + self.x_tanh, a.clip_min, a.clip_max)
            logits = a.model_fn(x_new)
            l2_squared = l2(x_new, self.x_orig)
            margin = margin_to_success(logits, self.onehot, a.targeted)
            # C&W's code form max(margin + kappa, 0): same gradient as max(margin, -kappa),
            # and non-negative, which keeps the relative early-abort test meaningful.
            loss_per_example = l2_squared + self.const * tf.maximum(margin + a.confidence, 0.0)
            loss = tf.reduce_sum(tf.where(busy, loss_per_example, 0.0))
        grad = tape.gradient(loss, self.modifier)
        if a.success_fn is not None:
            margin = margin_to_success(a.success_fn(tf.stop_gradient(x_new)), self.onehot,
                                       a.targeted)
        self._record(x_new, l2_squared, busy & (margin < -a.confidence))
        self._adam_update(grad, busy)
        stalled = self._abort_check(loss_per_example, busy)
        self.iteration.assign(self.iteration + tf.cast(busy, tf.int32))
        self.spent.assign(self.spent + tf.cast(busy, tf.int32))
        self._end_steps(busy & (stalled | (self.iteration >= a.max_iterations)))

    def _record(self, x_new: tf.Tensor, l2_squared: tf.Tensor, success: tf.Tensor) -> None:
        self.step_success.assign(self.step_success | success)
        improved = success & (l2_squared < self.best_l2)
        self.best_l2.assign(tf.where(improved, l2_squared, self.best_l2))
        self.best_adv.assign(tf.where(self._expand(improved), x_new, self.best_adv))

    def _adam_update(self, grad: tf.Tensor, busy: tf.Tensor) -> None:
        t = tf.cast(self.iteration + 1, tf.float32)  # Adam restarts at every search step
        lr_t = self.attack.learning_rate * tf.sqrt(1.0 - _ADAM_BETA2**t) / (1.0 - _ADAM_BETA1**t)
        mask = self._expand(busy)
        m = _ADAM_BETA1 * self.adam_m + (1.0 - _ADAM_BETA1) * grad
        v = _ADAM_BETA2 * self.adam_v + (1.0 - _ADAM_BETA2) * tf.square(grad)
        step = self._expand(lr_t) * m / (tf.sqrt(v) + _ADAM_EPSILON)
        self.adam_m.assign(tf.where(mask, m, self.adam_m))
        self.adam_v.assign(tf.where(mask, v, self.adam_v))
        self.modifier.assign(tf.where(mask, self.modifier - step, self.modifier))

    def _abort_check(self, loss_per_example: tf.Tensor, busy: tf.Tensor) -> tf.Tensor:
        """C&W's early abort, per example: every max_iterations/10 iterations of a search step,
        stop the step if the loss is not below 99.99% of its value at the previous check."""
        if not self.attack.abort_early:
            return tf.zeros_like(busy)
        check = busy & tf.equal(self.iteration % self.attack.check_every, 0)
        stalled = check & (loss_per_example > self.prev_loss * 0.9999)
        self.prev_loss.assign(tf.where(check, loss_per_example, self.prev_loss))
        return stalled

    def _end_steps(self, ended: tf.Tensor) -> None:
        """C&W's binary-search update for the slots whose step ended; reset their step state."""
        a = self.attack
        success = self.step_success
        self.best_const.assign(
            tf.where(ended & success, tf.minimum(self.best_const, self.const), self.best_const))
        const, lower, upper = next_constants(self.const, self.lower, self.upper, success)
        step = self.step + tf.cast(ended, tf.int32)
        if a.binary_search_steps >= 10:  # C&W's "repeat": last step at the best upper bound
            const = tf.where(step == a.binary_search_steps - 1, upper, const)
        self.const.assign(tf.where(ended, const, self.const))
        self.lower.assign(tf.where(ended, lower, self.lower))
        self.upper.assign(tf.where(ended, upper, self.upper))
        self.step.assign(step)
        self.finished.assign(self.finished | (ended & (step >= a.binary_search_steps)))
        mask = self._expand(ended)
        for v in (self.modifier, self.adam_m, self.adam_v):
            v.assign(tf.where(mask, tf.zeros_like(v), v))
        self.iteration.assign(tf.where(ended, 0, self.iteration))
        self.step_success.assign(~ended & self.step_success)
        self.prev_loss.assign(tf.where(ended, np.inf, self.prev_loss))

    def _expand(self, per_slot: tf.Tensor) -> tf.Tensor:
        return tf.reshape(per_slot, [-1] + [1] * len(self.attack.input_shape))

    # ----------------------------------------------------------------- host-side slot moves
    def load(self, slots: np.ndarray, examples: np.ndarray, data: _Examples) -> None:
        """Start examples `examples` in slots `slots` (fresh search state)."""
        a = self.attack
        n = len(slots)
        rows = {
            "x_orig": data.x[examples], "x_tanh": data.x_tanh[examples],
            "best_adv": data.x[examples], "onehot": data.onehot[examples],
            "const": np.full(n, a.initial_const, np.float32), "lower": np.zeros(n, np.float32),
            "upper": np.full(n, _NO_BOUND, np.float32),
            "best_const": np.full(n, _NO_BOUND, np.float32),
            "best_l2": np.full(n, _NO_BOUND, np.float32), "step": np.zeros(n, np.int32),
            "spent": np.zeros(n, np.int32), "example": examples.astype(np.int32),
            "finished": np.zeros(n, bool),
            "iteration": np.zeros(n, np.int32), "step_success": np.zeros(n, bool),
            "prev_loss": np.full(n, np.inf, np.float32),
        }
        zeros = np.zeros((n, *a.input_shape), np.float32)
        rows.update(modifier=zeros, adam_m=zeros, adam_v=zeros)
        self.set_rows(slots, rows)

    def set_rows(self, slots: np.ndarray, rows: dict[str, np.ndarray]) -> None:
        index = tf.constant(np.asarray(slots, np.int32)[:, None])
        for name, values in rows.items():
            var = getattr(self, name)
            var.scatter_nd_update(index, tf.constant(values, var.dtype))

    def get_rows(self, slots: np.ndarray) -> dict[str, np.ndarray]:
        index = tf.constant(np.asarray(slots, np.int32))
        return {name: tf.gather(var, index).numpy() for name, var in self.variables().items()}

    def empty(self, slots: np.ndarray) -> None:
        n = len(slots)
        self.set_rows(slots, {"example": np.full(n, -1, np.int32),
                              "finished": np.zeros(n, bool)})


@dataclasses.dataclass
class _Examples:
    """Everything about the examples of one `attack` call, on the host."""

    x: np.ndarray
    x_tanh: np.ndarray
    onehot: np.ndarray


class CarliniWagnerL2:
    """Carlini-Wagner L2 attack on a pool of `batch_size` examples optimised together.

    Args:
        model_fn: maps a float32 batch [n, *input_shape] to logits [n, C]; it is called on the
            whole pool (`batch_size` rows, some of them idle) inside the compiled loop. It may
            be stochastic; success is checked on the logits of each iteration.
        success_fn: if given, success (and so the adversarial kept) is judged on its scores
            of each iterate instead of `model_fn`'s: for a stochastic model, an independent
            and larger-sample estimate of the predictive, so that the search cannot keep a
            point that only fooled one lucky draw. No gradient flows through it.
        input_shape: shape of one image.
        num_classes: number of logits C.
        targeted: minimise distance to reach `y` (targets) instead of leaving `y` (labels).
        compile: run the iteration loop as a `tf.function` (False: eager, for benchmarks).
        jit_compile: XLA-compile that loop (falls back to plain `tf.function`, with a
            warning, if `model_fn` has operations XLA cannot compile).
    """

    def __init__(
        self,
        model_fn: LogitsFn,
        input_shape: tuple[int, ...],
        num_classes: int,
        *,
        targeted: bool = False,
        batch_size: int = 100,
        clip_min: float = 0.0,
        clip_max: float = 1.0,
        binary_search_steps: int = 9,
        max_iterations: int = 10_000,
        abort_early: bool = True,
        confidence: float = 0.0,
        initial_const: float = 1e-3,
        learning_rate: float = 1e-2,
        compile: bool = True,
        jit_compile: bool = True,
        success_fn: LogitsFn | None = None,
    ) -> None:
        self.model_fn = model_fn
        self.success_fn = success_fn
        self.input_shape = tuple(int(d) for d in input_shape)
        self.num_classes = int(num_classes)
        self.targeted = bool(targeted)
        self.batch_size = int(batch_size)
        self.clip_min = float(clip_min)
        self.clip_max = float(clip_max)
        self.binary_search_steps = int(binary_search_steps)
        self.max_iterations = int(max_iterations)
        self.abort_early = bool(abort_early)
        self.confidence = float(confidence)
        self.initial_const = float(initial_const)
        self.learning_rate = float(learning_rate)
        self.compile = bool(compile)
        self.jit_compile = bool(jit_compile) and self.compile
        self.check_every = max(1, self.max_iterations // 10)
        self._pools: dict[int, _Pool] = {}
        self._xla_works: bool | None = None

    def compiled(self, fn: Callable[[tf.Tensor], tf.Tensor]) -> Callable[[tf.Tensor], tf.Tensor]:
        """`fn` as run by this attack: XLA, plain tf.function or eager. Whether XLA can compile
        the model is decided once per attack, on the first call of the first pool."""
        if not self.compile:
            return fn
        graph = tf.function(fn)
        if not self.jit_compile:
            return graph
        xla = tf.function(fn, jit_compile=True)

        def run(n: tf.Tensor) -> tf.Tensor:
            if self._xla_works is None:
                try:
                    out = xla(n)
                except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError) as err:
                    logging.warning("CW attack: XLA cannot compile the model (%s); running "
                                    "the loop as a plain tf.function", str(err).splitlines()[0])
                    self._xla_works = False
                    return graph(n)
                self._xla_works = True
                return out
            return xla(n) if self._xla_works else graph(n)

        return run

    def pool(self, size: int) -> _Pool:
        if size not in self._pools:
            self._pools[size] = _Pool(self, size)
        return self._pools[size]

    # ----------------------------------------------------------------- Python driver
    def attack(self, x: np.ndarray, y: np.ndarray, on_progress: Progress | None = None,
               chunk: int | None = None) -> CWOutput:
        """Attack `x` (float32 [N, *input_shape] in the box) with integer labels/targets `y`.

        `on_progress(examples_finished, adversarials_found)` is called whenever examples
        finish their search. `chunk` bounds the iterations between returns to Python
        (default: max_iterations).
        """
        x = np.asarray(x, np.float32)
        y = np.asarray(y, np.int64)
        if x.shape[1:] != self.input_shape or y.shape != (len(x),):
            raise ValueError(f"x {x.shape} / y {y.shape} do not match input {self.input_shape}")
        n = len(x)
        data = _Examples(x, to_tanh_space(tf.constant(x), self.clip_min, self.clip_max).numpy(),
                         np.eye(self.num_classes, dtype=np.float32)[y])
        out = CWOutput(x.copy(), np.zeros(n, bool), np.full(n, _NO_BOUND, np.float32),
                       np.full(n, _NO_BOUND, np.float32), np.zeros(n, np.int64))
        chunk = tf.constant(int(chunk or self.max_iterations), tf.int32)
        pool = self.pool(self.batch_size)
        pool.empty(np.arange(pool.size))
        start = min(pool.size, n)
        pool.load(np.arange(start), np.arange(start), data)
        pending, finished = start, 0
        while finished < n:
            pool.run(chunk)
            done_slots = np.flatnonzero(pool.finished.numpy())
            if len(done_slots):
                self._harvest(pool.get_rows(done_slots), out)
                finished += len(done_slots)
                refill = min(len(done_slots), n - pending)
                pool.load(done_slots[:refill], np.arange(pending, pending + refill), data)
                pool.empty(done_slots[refill:])
                pending += refill
                if on_progress is not None:
                    on_progress(finished, int(out.found.sum()))
            if pending == n:
                pool = self._maybe_compact(pool)
        return out

    def _harvest(self, rows: dict[str, np.ndarray], out: CWOutput) -> None:
        ids = rows["example"]
        found = rows["best_l2"] < _NO_BOUND
        out.found[ids] = found
        out.l2_squared[ids] = rows["best_l2"]
        out.best_const[ids] = rows["best_const"]
        out.iterations[ids] = rows["spent"]
        out.adversarial[ids[found]] = rows["best_adv"][found]

    def _maybe_compact(self, pool: _Pool) -> _Pool:
        """Move the busy slots into a pool of half the size once at most half are busy."""
        busy = np.flatnonzero(pool.example.numpy() >= 0)
        if pool.size < 2 * _MIN_COMPACT_SIZE or len(busy) == 0 or len(busy) > pool.size // 2:
            return pool
        smaller = self.pool(pool.size // 2)
        smaller.empty(np.arange(smaller.size))
        smaller.set_rows(np.arange(len(busy)), pool.get_rows(busy))
        return self._maybe_compact(smaller)
