"""Carlini-Wagner L2 attack: CleverHans 4.0.0's TF2 implementation with its bugs fixed.

Implements the L2 attack of Carlini & Wagner (2017), "Towards evaluating the robustness of
neural networks" (IEEE S&P), as used by Alemi et al. (2017, "Deep Variational Information
Bottleneck", section 4.2). The structure follows
`cleverhans.tf2.attacks.carlini_wagner_l2.CarliniWagnerL2` (cleverhans 4.0.0) and reuses its
sound helpers (`clip_tanh`, `l2`); the parts listed in third_party/cleverhans_tf2/README.md are
replaced:

* one constant c per example (upstream: c has the input's shape and mixes examples, #1205);
* `targeted` is honoured (upstream derives it from whether labels were given, #1228);
* labels are batched together with the images (upstream: #1241); the last batch is padded so
  the compiled step never retraces;
* the confidence kappa is applied to the label/target logit only (upstream shifts every logit,
  so kappa never changes the success check);
* the binary search uses this binary-search step's success (upstream uses the best-ever
  score and multiplies the constant of successful examples by 10 after halving it);
* Adam (TF1 `AdamOptimizer` maths, as in C&W's code) is implemented on per-batch state that is
  reset for every binary-search step (upstream: one Keras optimizer shared across batches whose
  `variables()` call fails under Keras 3);
* early abort is decided per example (an example stops when its own loss has not decreased by
  more than 0.01% over max_iterations/10 iterations), so results do not depend on which other
  examples share the batch;
* the defaults are C&W's (9 binary-search steps, 10,000 iterations, lr 1e-2, c0 1e-3).

The per-iteration step (forward pass, loss, gradient, Adam update, best-so-far bookkeeping and
the abort check) runs on the whole batch inside one `tf.function`-compiled `tf.while_loop` over
a chunk of iterations; between chunks Python only reads whether any example is still active.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import tensorflow as tf
from cleverhans.tf2.attacks.carlini_wagner_l2 import clip_tanh, l2

LogitsFn = Callable[[tf.Tensor], tf.Tensor]

_ADAM_BETA1 = 0.9
_ADAM_BETA2 = 0.999
_ADAM_EPSILON = 1e-8
_NO_BOUND = 1e10
_TANH_SHRINK = 0.999999


@dataclasses.dataclass(frozen=True)
class CWOutput:
    """Raw output of the attack, one entry per example.

    adversarial: best (smallest-L2) successful adversarial image, or the original image.
    found: whether any iteration found a successful adversarial (checked on the logits of
        that iteration, with the confidence margin).
    l2_squared: squared L2 distance of `adversarial` as tracked during the search.
    best_const: smallest constant c for which an adversarial was found (1e10 if none).
    """

    adversarial: np.ndarray
    found: np.ndarray
    l2_squared: np.ndarray
    best_const: np.ndarray


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


def next_constants(
    const: np.ndarray, lower: np.ndarray, upper: np.ndarray, success: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One per-example binary-search update of C&W (returns const, lower, upper).

    Success: upper <- min(upper, c), c <- (lower + upper) / 2.  Failure: lower <- max(lower, c),
    c <- (lower + upper) / 2 if an upper bound is known, else c <- 10 c.
    """
    upper = np.where(success, np.minimum(upper, const), upper)
    lower = np.where(success, lower, np.maximum(lower, const))
    const = np.where(upper < 1e9, (lower + upper) / 2.0, const * 10.0)
    return const, lower, upper


class CarliniWagnerL2:
    """Batched Carlini-Wagner L2 attack on a fixed batch shape.

    Args:
        model_fn: maps a float32 batch [batch_size, *input_shape] to logits [batch_size, C].
            It may be stochastic; success is checked on the logits of each iteration.
        input_shape: shape of one image.
        num_classes: number of logits C.
        targeted: minimise distance to reach `y` (targets) instead of leaving `y` (labels).
        compile: run the iteration loop as a `tf.function` (False: eager, for benchmarks).
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
    ) -> None:
        self.model_fn = model_fn
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
        self.check_every = max(1, self.max_iterations // 10)
        self._build_state()
        self._run = tf.function(self._run_chunk) if compile else self._run_chunk

    def _build_state(self) -> None:
        image = (self.batch_size, *self.input_shape)
        per_example = (self.batch_size,)

        def var(shape: tuple[int, ...], dtype: tf.DType = tf.float32) -> tf.Variable:
            return tf.Variable(tf.zeros(shape, dtype), trainable=False)

        self.x_orig, self.x_tanh = var(image), var(image)
        self.onehot = var((self.batch_size, self.num_classes))
        self.modifier, self.adam_m, self.adam_v = var(image), var(image), var(image)
        self.adam_t = var((), tf.float32)
        self.iteration = var((), tf.int32)
        self.const = var(per_example)
        self.best_l2, self.best_adv = var(per_example), var(image)
        self.step_success, self.active = var(per_example, tf.bool), var(per_example, tf.bool)
        self.prev_loss = var(per_example)

    # ----------------------------------------------------------------- compiled step
    def _iteration(self) -> None:
        """One C&W iteration on the whole batch: loss, gradient, bookkeeping, Adam, abort."""
        with tf.GradientTape() as tape:
            tape.watch(self.modifier)
            x_new = clip_tanh(self.modifier + self.x_tanh, self.clip_min, self.clip_max)
            logits = self.model_fn(x_new)
            l2_squared = l2(x_new, self.x_orig)
            margin = margin_to_success(logits, self.onehot, self.targeted)
            # C&W's code form max(margin + kappa, 0): same gradient as max(margin, -kappa),
            # and non-negative, which keeps the relative early-abort test meaningful.
            loss_per_example = l2_squared + self.const * tf.maximum(margin + self.confidence, 0.0)
            loss = tf.reduce_sum(loss_per_example)
        grad = tape.gradient(loss, self.modifier)
        success = self.active & (margin < -self.confidence)
        self._record(x_new, l2_squared, success)
        self._adam_update(grad)
        self._abort_check(loss_per_example)
        self.iteration.assign_add(1)

    def _record(self, x_new: tf.Tensor, l2_squared: tf.Tensor, success: tf.Tensor) -> None:
        self.step_success.assign(self.step_success | success)
        improved = success & (l2_squared < self.best_l2)
        self.best_l2.assign(tf.where(improved, l2_squared, self.best_l2))
        self.best_adv.assign(tf.where(self._expand(improved), x_new, self.best_adv))

    def _adam_update(self, grad: tf.Tensor) -> None:
        t = self.adam_t + 1.0
        self.adam_t.assign(t)
        mask = self._expand(self.active)
        m = _ADAM_BETA1 * self.adam_m + (1.0 - _ADAM_BETA1) * grad
        v = _ADAM_BETA2 * self.adam_v + (1.0 - _ADAM_BETA2) * tf.square(grad)
        lr_t = self.learning_rate * tf.sqrt(1.0 - _ADAM_BETA2**t) / (1.0 - _ADAM_BETA1**t)
        step = lr_t * m / (tf.sqrt(v) + _ADAM_EPSILON)
        self.adam_m.assign(tf.where(mask, m, self.adam_m))
        self.adam_v.assign(tf.where(mask, v, self.adam_v))
        self.modifier.assign(tf.where(mask, self.modifier - step, self.modifier))

    def _abort_check(self, loss_per_example: tf.Tensor) -> None:
        if not self.abort_early:
            return
        check = tf.equal(self.iteration % self.check_every, 0)
        stalled = check & (loss_per_example > self.prev_loss * 0.9999)
        self.active.assign(self.active & ~stalled)
        self.prev_loss.assign(tf.where(check, loss_per_example, self.prev_loss))

    def _expand(self, mask: tf.Tensor) -> tf.Tensor:
        return tf.reshape(mask, [-1] + [1] * len(self.input_shape))

    def _run_chunk(self, n: tf.Tensor) -> tf.Tensor:
        """Run `n` iterations; return whether any example is still active."""
        for _ in tf.range(n):
            self._iteration()
        return tf.reduce_any(self.active)

    # ----------------------------------------------------------------- Python driver
    def attack(
        self, x: np.ndarray, y: np.ndarray,
        on_batch: Callable[[int, np.ndarray], None] | None = None,
    ) -> CWOutput:
        """Attack `x` (float32 [N, *input_shape] in the box) with integer labels/targets `y`.

        `on_batch(examples_done, found_so_far)` is called after each batch (progress reports).
        """
        x = np.asarray(x, np.float32)
        y = np.asarray(y, np.int64)
        if x.shape[1:] != self.input_shape or y.shape != (len(x),):
            raise ValueError(f"x {x.shape} / y {y.shape} do not match input {self.input_shape}")
        parts = []
        for i in range(0, len(x), self.batch_size):
            parts.append(self._attack_batch(x[i : i + self.batch_size],
                                            y[i : i + self.batch_size]))
            if on_batch is not None:
                on_batch(min(i + self.batch_size, len(x)), np.concatenate([p[1] for p in parts]))
        return CWOutput(*(np.concatenate(arrays) for arrays in zip(*parts, strict=True)))

    def _attack_batch(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
        n = len(x)
        pad = self.batch_size - n
        x_pad = np.concatenate([x, np.repeat(x[:1], pad, axis=0)])
        y_pad = np.concatenate([y, np.repeat(y[:1], pad)])
        self._load(x_pad, y_pad)
        const = np.full(self.batch_size, self.initial_const, np.float32)
        lower = np.zeros(self.batch_size, np.float32)
        upper = np.full(self.batch_size, _NO_BOUND, np.float32)
        best_const = np.full(self.batch_size, _NO_BOUND, np.float32)
        for step in range(self.binary_search_steps):
            if self.binary_search_steps >= 10 and step == self.binary_search_steps - 1:
                const = upper  # C&W's "repeat": last step at the best known upper bound
            success = self._binary_search_step(const)
            best_const = np.where(success, np.minimum(best_const, const), best_const)
            const, lower, upper = next_constants(const, lower, upper, success)
        found = self.best_l2.numpy() < _NO_BOUND
        adv = np.where(found.reshape((-1,) + (1,) * len(self.input_shape)),
                       self.best_adv.numpy(), x_pad)
        return adv[:n], found[:n], self.best_l2.numpy()[:n], best_const[:n]

    def _load(self, x: np.ndarray, y: np.ndarray) -> None:
        self.x_orig.assign(x)
        self.x_tanh.assign(to_tanh_space(tf.constant(x), self.clip_min, self.clip_max))
        self.onehot.assign(tf.one_hot(y, self.num_classes))
        self.best_l2.assign(tf.fill([self.batch_size], _NO_BOUND))
        self.best_adv.assign(x)

    def _binary_search_step(self, const: np.ndarray) -> np.ndarray:
        """Reset modifier and Adam state, run up to max_iterations; return step success."""
        for v in (self.modifier, self.adam_m, self.adam_v):
            v.assign(tf.zeros_like(v))
        self.adam_t.assign(0.0)
        self.iteration.assign(0)
        self.const.assign(const.astype(np.float32))
        self.step_success.assign(tf.zeros([self.batch_size], tf.bool))
        self.active.assign(tf.ones([self.batch_size], tf.bool))
        self.prev_loss.assign(tf.fill([self.batch_size], np.inf))
        # Chunks end on the abort checks (iterations 0, k, 2k, ...): 1, k, k, ..., rest.
        done = 0
        while done < self.max_iterations:
            n = min(1 if done == 0 else self.check_every, self.max_iterations - done)
            still_active = self._run(tf.constant(n, tf.int32))
            done += n
            if not bool(still_active):
                break
        return self.step_success.numpy()
