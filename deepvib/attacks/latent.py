"""Latent-space attack on a VAE encoder: Kos et al. (2018) and Tabacof et al. (2016), as used by
Sootla (2018, section 2.4 and Methods) to ask whether disentangled VAEs are less robust.

For a source image x and a target image x_t, find the perturbation r minimising

    c * ||r||_2 + ||mu(x + r) - mu(x_t)||_2^2     subject to  x + r in [clip_min, clip_max]^m,

the box-constrained problem of Szegedy et al. (2014; the thesis's Equation 2.15) with the
classification loss replaced by the squared L2 distance between encoder posterior means. The
encoder is any `encoder_fn: images [B, ...] -> [B, D]` (for a JointVAE, the continuous mean
concatenated with the discrete code's probabilities: see `docs/vae_robustness.md`); the caller
decodes the adversarial images (`model.reconstruct`) and scores them.

Optimisation: Adam (Kingma & Ba 2015; Kos et al. use Adam, as advocated by Carlini & Wagner)
on the adversarial image itself, projected onto the box after every step (projected Adam: its
fixed points are the problem's KKT points, and the box holds exactly, including pixels already
at 0 or 1, which a tanh change of variables can barely move). The norm is smoothed as
sqrt(||r||^2 + 1e-12) so that its gradient at r = 0 (the start) is 0 instead of NaN; the
objective that is reported and compared uses the exact norm. The point with the lowest
objective seen is returned (Adam with a constant step oscillates around the optimum).

The constant c is a fixed grid: every (pair, c) is an independent optimisation from r = 0, and
results are returned per c. A per-example search in the style of Carlini & Wagner's binary
search would need a success criterion, but success here is decided downstream (decoder, then an
independent classifier), outside this generic attack; the thesis does not say which c it used,
so results as a function of c are the honest report, with an operating point fixed in advance
(`OPERATING_CONSTANT`).

Batching: the (pair, c) rows are optimised `batch_size` at a time, each with its own Adam state,
constant and best point; the last batch is padded. A batch stops early (`abort_early`) once no
row's best objective has improved by more than a relative 1e-4 over `max_iterations // 10`
iterations.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from deepvib.attacks import validation as v
from deepvib.attacks.results import perturbation_norms

EncoderFn = Callable[[tf.Tensor], tf.Tensor]

# A half-decade grid over four decades, and the operating point fixed before any result was
# seen: the middle of the grid (see docs/vae_robustness.md).
DEFAULT_CONSTANTS = (0.01, 0.0316, 0.1, 0.316, 1.0, 3.16, 10.0)
OPERATING_CONSTANT = 0.316
NORM_SMOOTHING = 1e-12  # ||r|| ~ sqrt(||r||^2 + this): bias <= 1e-6, gradient 0 at r = 0
ADAM_BETA1, ADAM_BETA2, ADAM_EPSILON = 0.9, 0.999, 1e-8
ABORT_TOLERANCE = 1e-4


@dataclasses.dataclass(frozen=True)
class LatentAttackResult:
    """Outcome of `latent_attack`, per constant c (axis 0) and pair (axis 1).

    adversarial: [K, N, *image_shape] float32 images, the best point found per (c, pair).
    l0, l2, linf: [K, N] norms of adversarial - source (`perturbation_norms`).
    latent_distance: [K, N] ||mu(adversarial) - mu(target)||_2.
    initial_latent_distance: [N] ||mu(source) - mu(target)||_2 (r = 0).
    objective: [K, N] c * ||r||_2 + latent_distance^2 at the returned point (exact norm).
    iterations: [K, N] Adam steps run for that row's batch.
    """

    constants: np.ndarray
    adversarial: np.ndarray
    l0: np.ndarray
    l2: np.ndarray
    linf: np.ndarray
    latent_distance: np.ndarray
    initial_latent_distance: np.ndarray
    objective: np.ndarray
    iterations: np.ndarray
    params: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def num_pairs(self) -> int:
        return int(self.adversarial.shape[1])

    def index_of(self, constant: float) -> int:
        """Position of `constant` in the grid (relative tolerance 1e-6)."""
        hits = np.flatnonzero(np.isclose(self.constants, constant, rtol=1e-6, atol=0.0))
        if hits.size == 0:
            raise ValueError(f"c={constant} is not in the attacked grid "
                             f"{self.constants.tolist()}")
        return int(hits[0])

    def summary(self) -> list[dict[str, Any]]:
        """Per c: mean and median norms, latent distances and the fraction of the initial
        latent distance that is left (mean of per-pair ratios)."""
        rows = []
        initial = self.initial_latent_distance.astype(np.float64)
        for k, c in enumerate(self.constants):
            row: dict[str, Any] = {"c": float(c), "n": self.num_pairs}
            for name in ("l0", "l2", "linf", "latent_distance", "objective"):
                values = getattr(self, name)[k].astype(np.float64)
                row[f"mean_{name}"] = float(values.mean())
                row[f"median_{name}"] = float(np.median(values))
            ratio = self.latent_distance[k] / np.maximum(initial, 1e-12)
            row["mean_latent_distance_ratio"] = float(ratio.mean())
            row["total_iterations"] = int(self.iterations[k].sum())
            rows.append(row)
        return rows

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-serialisable: parameters, per-c summary and per-(c, pair) arrays (no images)."""
        per_constant = {name: getattr(self, name).tolist()
                        for name in ("l0", "l2", "linf", "latent_distance", "objective",
                                     "iterations")}
        return {
            "params": {k: (float(x) if isinstance(x, (float, np.floating)) else x)
                       for k, x in self.params.items()},
            "constants": self.constants.tolist(),
            "summary": self.summary(),
            "initial_latent_distance": self.initial_latent_distance.tolist(),
            "per_constant": per_constant,
        }


def latent_attack(
    encoder_fn: EncoderFn,
    images: np.ndarray,
    target_images: np.ndarray,
    *,
    constants: Sequence[float] = DEFAULT_CONSTANTS,
    max_iterations: int = 1000,
    learning_rate: float = 1e-2,
    batch_size: int = 128,
    abort_early: bool = True,
    clip_min: float = 0.0,
    clip_max: float = 1.0,
    jit_compile: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> LatentAttackResult:
    """Attack every (images[i], target_images[i]) pair at every constant c.

    Args:
        encoder_fn: maps float32 images [B, *image_shape] in [clip_min, clip_max] to the
            posterior means [B, D]; it must treat rows independently (no batch statistics).
            It is called inside a `tf.function` on batches of exactly `batch_size` rows
            (fewer if there are fewer rows in all).
        images, target_images: [N, *image_shape] sources and targets, values in the box.
        constants: the grid of c > 0; each (pair, c) is optimised independently from r = 0.
        max_iterations: Adam steps per row (fewer with `abort_early`).
        learning_rate: Adam's step size (in pixel units: the first steps move each pixel by
            about this much).
        batch_size: rows (pair, c) optimised together, each with its own Adam state.
        abort_early: stop a batch once its best objectives have stalled (see module doc).
        jit_compile: XLA-compile the iteration loop (see docs/vae_robustness.md for timings).
        on_progress: called as `on_progress(rows_done, rows_total)` after every batch.

    Raises:
        ValueError: before any optimisation, for mismatched shapes, images outside the box,
            non-finite values, c <= 0, invalid parameters, or an encoder that does not return
            [B, D] finite means.
    """
    x = v.check_images(images, clip_min, clip_max)
    xt = v.check_images(target_images, clip_min, clip_max)
    if xt.shape != x.shape:
        raise ValueError(f"images {x.shape} and target_images {xt.shape} must have the same "
                         "shape: one target per source")
    grid = check_constants(constants)
    max_iterations = v.check_positive_int("max_iterations", max_iterations)
    learning_rate = v.check_positive("learning_rate", learning_rate)
    batch = min(v.check_positive_int("batch_size", batch_size), len(x) * len(grid))

    mu_source = _encode(encoder_fn, x, batch)
    mu_target = _encode(encoder_fn, xt, batch)
    # Rows are (c, pair), c-major: row k * N + i is pair i at constant grid[k].
    n, k = len(x), len(grid)
    rows_x = np.tile(x, (k,) + (1,) * (x.ndim - 1))
    rows_mu = np.tile(mu_target, (k, 1))
    rows_c = np.repeat(grid, n).astype(np.float32)

    run = _make_runner(encoder_fn, learning_rate, clip_min, clip_max, jit_compile)
    check_every = max(1, max_iterations // 10) if abort_early else max_iterations
    best_x = np.empty_like(rows_x)
    steps = np.zeros(len(rows_x), np.int64)
    for start in range(0, len(rows_x), batch):
        stop = min(start + batch, len(rows_x))
        chosen = _pad(np.arange(start, stop), batch)
        best_x[start:stop], steps[start:stop] = _attack_batch(
            run, rows_x[chosen], rows_mu[chosen], rows_c[chosen], max_iterations, check_every,
            stop - start)
        if on_progress is not None:
            on_progress(stop, len(rows_x))

    adversarial = np.clip(best_x, clip_min, clip_max).astype(np.float32)
    mu_adv = _encode(encoder_fn, adversarial, batch)
    distance = np.linalg.norm(mu_adv.astype(np.float64) - rows_mu, axis=1)
    l0, l2, linf = perturbation_norms(rows_x, adversarial)
    objective = rows_c.astype(np.float64) * l2 + distance ** 2
    params = {"max_iterations": max_iterations, "learning_rate": learning_rate,
              "batch_size": batch, "abort_early": bool(abort_early), "clip_min": clip_min,
              "clip_max": clip_max, "optimizer": "projected_adam",
              "norm_smoothing": NORM_SMOOTHING}
    shape = (k, n)
    return LatentAttackResult(
        constants=grid, adversarial=adversarial.reshape(shape + x.shape[1:]),
        l0=l0.reshape(shape), l2=l2.reshape(shape), linf=linf.reshape(shape),
        latent_distance=distance.reshape(shape),
        initial_latent_distance=np.linalg.norm(
            mu_source.astype(np.float64) - mu_target, axis=1),
        objective=objective.reshape(shape), iterations=steps.reshape(shape), params=params)


def check_constants(constants: Sequence[float]) -> np.ndarray:
    """The grid of c as float64 [K]: non-empty, finite, > 0, no duplicates."""
    try:
        grid = np.asarray(constants, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"constants must be numbers, got {constants!r}") from e
    if grid.ndim != 1 or grid.size == 0:
        raise ValueError(f"constants must be a non-empty list of c > 0, got {constants!r}")
    if not np.all(np.isfinite(grid)) or np.any(grid <= 0):
        raise ValueError(f"every constant c must be finite and > 0, got {grid.tolist()}")
    if len(np.unique(grid)) != len(grid):
        raise ValueError(f"constants must not repeat, got {grid.tolist()}")
    return grid


def _encode(encoder_fn: EncoderFn, images: np.ndarray, batch: int) -> np.ndarray:
    means = v.evaluate_logits(encoder_fn, images, batch)
    if means.ndim != 2 or len(means) != len(images) or means.shape[1] < 1:
        raise ValueError(f"encoder_fn must return posterior means [B, D], got {means.shape} "
                         f"for {len(images)} images")
    if not np.all(np.isfinite(means)):
        raise ValueError("encoder_fn returned NaN or inf")
    return means.astype(np.float32)


def _pad(indices: np.ndarray, size: int) -> np.ndarray:
    """`indices` padded to `size` by repeating its first entry (one compiled batch shape)."""
    return np.concatenate([indices, np.repeat(indices[:1], size - len(indices))])


def _attack_batch(
    run, x: np.ndarray, mu_target: np.ndarray, c: np.ndarray, max_iterations: int,
    check_every: int, keep: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Projected Adam on one batch; returns the best points of the first `keep` rows and the
    steps run."""
    x_t, mu_t, c_t = tf.constant(x), tf.constant(mu_target), tf.constant(c)
    state = (x_t, tf.zeros_like(x_t), tf.zeros_like(x_t), tf.constant(0.0),
             tf.fill([len(x)], np.float32(np.inf)), x_t)
    done, previous = 0, np.inf * np.ones(len(x))
    while done < max_iterations:
        chunk = min(check_every, max_iterations - done)
        state = run(*state, x_t, mu_t, c_t, tf.constant(chunk))
        done += chunk
        best = state[4].numpy()
        stalled = np.all(best > previous * (1.0 - ABORT_TOLERANCE))
        if stalled and done < max_iterations:
            break
        previous = best
    return state[5].numpy()[:keep], np.full(keep, done, np.int64)


def _make_runner(
    encoder_fn: EncoderFn, learning_rate: float, clip_min: float, clip_max: float,
    jit_compile: bool,
):
    """A compiled function running `steps` projected-Adam steps from a state
    (x_adv, m, v, t, best_objective, best_x_adv), keeping each row's best point."""
    lr, low, high = np.float32(learning_rate), np.float32(clip_min), np.float32(clip_max)
    b1, b2, eps = np.float32(ADAM_BETA1), np.float32(ADAM_BETA2), np.float32(ADAM_EPSILON)

    def objective(x_adv, x, mu_target, c):
        r = tf.reshape(x_adv - x, [tf.shape(x)[0], -1])
        norm = tf.sqrt(tf.reduce_sum(r * r, axis=1) + NORM_SMOOTHING)
        diff = encoder_fn(x_adv) - mu_target
        return c * norm + tf.reduce_sum(diff * diff, axis=1)

    def keep_best(x_adv, obj, best, best_x):
        better = obj < best
        mask = tf.reshape(better, [-1] + [1] * (len(x_adv.shape) - 1))
        return tf.where(better, obj, best), tf.where(mask, x_adv, best_x)

    @tf.function(jit_compile=jit_compile, reduce_retracing=True)
    def run(x_adv, m, v2, t, best, best_x, x, mu_target, c, steps):
        for _ in tf.range(steps):
            with tf.GradientTape() as tape:
                tape.watch(x_adv)
                obj = objective(x_adv, x, mu_target, c)
            grad = tape.gradient(obj, x_adv)  # of the sum: rows are independent
            best, best_x = keep_best(x_adv, obj, best, best_x)
            t = t + 1.0
            m = b1 * m + (1.0 - b1) * grad
            v2 = b2 * v2 + (1.0 - b2) * grad * grad
            step = lr * (m / (1.0 - b1 ** t)) / (tf.sqrt(v2 / (1.0 - b2 ** t)) + eps)
            x_adv = tf.clip_by_value(x_adv - step, low, high)
        # Score the last iterate too (the next chunk's first step would, but there may be none).
        best, best_x = keep_best(x_adv, objective(x_adv, x, mu_target, c), best, best_x)
        return x_adv, m, v2, t, best, best_x

    return run
