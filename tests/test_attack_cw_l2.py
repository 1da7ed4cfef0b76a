"""Carlini & Wagner (2017) L2 attack: correctness against closed-form minimal perturbations.

On affine models Z = A (x - c) + b the minimal L2 perturbation is known exactly (away from the
box edges: a margin divided by a weight norm; with the box active: a clipped line search), so
the attack must both succeed and come within a few percent of that minimum, and can never
beat it.
"""

from __future__ import annotations

import inspect
import json

import numpy as np
import pytest
import tensorflow as tf

from deepvib.attacks import cw_l2
from third_party.cleverhans_tf2 import CarliniWagnerL2

DIM = 16
SHAPE = (4, 4, 1)
CENTER = 0.5
FAST = {"max_iterations": 1000, "binary_search_steps": 9}


def affine_logits_fn(weights: np.ndarray, noise_std: float = 0.0, seed: int = 0):
    """Z = (x - CENTER) @ weights (+ Gaussian noise on the logits if noise_std > 0)."""
    w = tf.constant(weights, tf.float32)
    gen = tf.random.Generator.from_seed(seed)

    def logits_fn(x: tf.Tensor) -> tf.Tensor:
        z = tf.matmul(tf.reshape(x, [-1, DIM]) - CENTER, w)
        if noise_std:
            z += noise_std * gen.normal(tf.shape(z))
        return z

    return logits_fn


def orthonormal(k: int, seed: int) -> np.ndarray:
    """[DIM, k] orthonormal columns."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(DIM, k)))
    return q


def images_along(direction: np.ndarray, offsets: np.ndarray, seed: int) -> np.ndarray:
    """Points CENTER + offset * direction + small noise orthogonal to `basis` directions."""
    rng = np.random.default_rng(seed)
    noise = 0.03 * rng.normal(size=(len(offsets), DIM))
    noise -= np.outer(noise @ direction, direction)
    x = CENTER + noise + np.outer(offsets, direction)
    return x.astype(np.float32).reshape(-1, *SHAPE)


def binary_problem(n: int = 12, seed: int = 0):
    """2-class model with margin Z0 - Z1 = 2 w.(x - c); distance to boundary w.(x - c)."""
    w = orthonormal(1, seed)[:, 0]
    offsets = np.linspace(0.05, 0.35, n)
    x = images_along(w, offsets, seed + 1)
    return affine_logits_fn(np.stack([w, -w], 1)), x, np.zeros(n, np.int64), offsets, w


def assert_in_box(adv: np.ndarray, lo: float = 0.0, hi: float = 1.0) -> None:
    assert adv.min() >= lo and adv.max() <= hi


def test_defaults_are_carlini_wagner() -> None:
    for fn in (cw_l2, CarliniWagnerL2.__init__):
        params = inspect.signature(fn).parameters
        assert params["binary_search_steps"].default == 9
        assert params["max_iterations"].default == 10_000
        assert params["learning_rate"].default == 1e-2
        assert params["initial_const"].default == 1e-3
        assert params["confidence"].default == 0.0
        assert params["abort_early"].default is True


def test_untargeted_binary_matches_closed_form() -> None:
    logits_fn, x, labels, distance, _ = binary_problem()
    adv, res = cw_l2(logits_fn, x, labels, **FAST)
    assert adv.shape == x.shape and adv.dtype == np.float32
    assert res.success.all() and (res.predicted == 1).all()
    ratio = res.l2 / distance
    assert ratio.min() >= 0.999, ratio  # can never beat the true minimum
    assert ratio.max() <= 1.03, ratio
    assert_in_box(adv)
    assert res.summary()["success_rate"] == 1.0
    assert res.summary()["accuracy_under_attack"] == 0.0


def multiclass_problem(n: int = 9, k: int = 4, seed: int = 3):
    """Z_k = q_k.(x - c), orthonormal q_k; x = c + a q_0, so Z_0 = a and Z_j = 0 (j > 0).

    Reaching any class t needs Z_t >= Z_0 along q_t - q_0: distance a / sqrt(2); the other
    classes stay at 0 < a / 2 and never interfere.
    """
    q = orthonormal(k, seed)
    a = np.linspace(0.1, 0.5, n)
    x = images_along(q[:, 0], a, seed + 1)
    residual = (x.reshape(n, DIM) - CENTER) @ q[:, 1:]
    x = (x.reshape(n, DIM) - residual @ q[:, 1:].T).astype(np.float32).reshape(x.shape)
    return affine_logits_fn(q), x, np.zeros(n, np.int64), a / np.sqrt(2.0), k


def test_targeted_multiclass_matches_closed_form() -> None:
    logits_fn, x, labels, distance, k = multiclass_problem()
    targets = 1 + np.arange(len(x)) % (k - 1)
    adv, res = cw_l2(logits_fn, x, labels, targets, **FAST)
    assert res.targeted and res.success.all()
    np.testing.assert_array_equal(res.predicted, targets)
    ratio = res.l2 / distance
    assert 0.999 <= ratio.min() and ratio.max() <= 1.03, ratio
    assert_in_box(adv)


def test_untargeted_multiclass_matches_closed_form() -> None:
    logits_fn, x, labels, distance, _ = multiclass_problem(seed=5)
    _, res = cw_l2(logits_fn, x, labels, **FAST)
    assert res.success.all() and (res.predicted != 0).all()
    ratio = res.l2 / distance
    assert 0.999 <= ratio.min() and ratio.max() <= 1.03, ratio


def test_examples_do_not_mix_across_batches() -> None:
    """Batched (batch_size 5 < N, last batch padded) == each example attacked alone."""
    logits_fn, x, labels, distance, _ = binary_problem(n=12)
    attack = CarliniWagnerL2(logits_fn, SHAPE, 2, batch_size=5, **FAST)
    batched = attack.attack(x, labels)
    assert batched.found.all()
    # Per-example constants: examples of different difficulty end with different c.
    assert len(np.unique(batched.best_const)) >= 3, batched.best_const
    single = CarliniWagnerL2(logits_fn, SHAPE, 2, batch_size=1, **FAST)
    for i in (0, 6, 11):
        alone = single.attack(x[i : i + 1], labels[i : i + 1])
        np.testing.assert_allclose(alone.l2_squared, batched.l2_squared[i], rtol=1e-3)
        np.testing.assert_allclose(alone.best_const, batched.best_const[i], rtol=1e-6)
    np.testing.assert_allclose(np.sqrt(batched.l2_squared) / distance, 1.0, atol=0.03)


def test_pool_refills_and_compacts_without_changing_results() -> None:
    """40 examples through a pool of 16 slots (returning to Python every 7 iterations):
    finished slots are refilled, the pool is halved once the queue is empty, and every
    example ends exactly as in one pool holding all 40 at once."""
    logits_fn, x, labels, distance, _ = binary_problem(n=40)
    attack = CarliniWagnerL2(logits_fn, SHAPE, 2, batch_size=16, **FAST)
    progress: list[tuple[int, int]] = []
    pooled = attack.attack(x, labels, chunk=7, on_progress=lambda done, found: progress.append(
        (done, found)))
    assert sorted(attack._pools) == [8, 16]  # compacted from 16 to 8 slots
    assert progress[-1] == (40, 40) and [d for d, _ in progress] == sorted(
        d for d, _ in progress)
    whole = CarliniWagnerL2(logits_fn, SHAPE, 2, batch_size=40, **FAST).attack(x, labels)
    for field in ("found", "l2_squared", "best_const", "iterations", "adversarial"):
        np.testing.assert_array_equal(getattr(pooled, field), getattr(whole, field), field)
    single = CarliniWagnerL2(logits_fn, SHAPE, 2, batch_size=1, **FAST)
    for i in (0, 17, 39):
        alone = single.attack(x[i : i + 1], labels[i : i + 1])
        np.testing.assert_allclose(alone.l2_squared, pooled.l2_squared[i], rtol=1e-3)
        np.testing.assert_allclose(alone.best_const, pooled.best_const[i], rtol=1e-6)
        np.testing.assert_array_equal(alone.iterations, pooled.iterations[i])
    np.testing.assert_allclose(np.sqrt(pooled.l2_squared) / distance, 1.0, atol=0.03)


def test_iterations_count_every_search_step() -> None:
    """Without early abort each example runs steps x max_iterations. With it, a search step
    whose loss cannot decrease (an input already misclassified: zero perturbation, zero loss)
    stops at its first possible check, after max_iterations / 10 + 1 iterations, as C&W's
    reference (which breaks after the update of iteration max_iterations / 10)."""
    logits_fn, x, labels, _, _ = binary_problem(n=3)
    short = {"max_iterations": 50, "binary_search_steps": 4}
    full = CarliniWagnerL2(logits_fn, SHAPE, 2, abort_early=False, **short).attack(x, labels)
    np.testing.assert_array_equal(full.iterations, 4 * 50)
    early = CarliniWagnerL2(logits_fn, SHAPE, 2, **short).attack(x, np.ones_like(labels))
    np.testing.assert_array_equal(early.iterations, 4 * (50 // 10 + 1))
    assert early.found.all()


def test_falls_back_from_xla_to_tf_function() -> None:
    """A model XLA cannot compile (a string op) runs as a plain tf.function, same results."""
    logits_fn, x, labels, _, _ = binary_problem(n=4)

    def not_for_xla(images: tf.Tensor) -> tf.Tensor:
        tag = tf.strings.length(tf.strings.as_string(tf.reduce_sum(images)))
        return logits_fn(images) + 0.0 * tf.cast(tag, tf.float32)

    short = {"max_iterations": 60, "binary_search_steps": 3}
    attack = CarliniWagnerL2(not_for_xla, SHAPE, 2, **short)
    fallback = attack.attack(x, labels)
    assert attack._xla_works is False
    graph = CarliniWagnerL2(not_for_xla, SHAPE, 2, jit_compile=False, **short).attack(x, labels)
    np.testing.assert_allclose(fallback.l2_squared, graph.l2_squared, rtol=1e-6)


def box_constrained_minimum(x: np.ndarray, g: np.ndarray, margin: np.ndarray) -> np.ndarray:
    """Exact min ||d|| s.t. margin + g.d <= 0, 0 <= x + d <= 1 (KKT: d = clip(-lam g))."""
    out = []
    for xi, mi in zip(x.reshape(len(x), -1), margin, strict=True):
        lo, hi = 0.0, 1e3
        for _ in range(200):
            lam = (lo + hi) / 2
            d = np.clip(-lam * g, -xi, 1.0 - xi)
            lo, hi = (lam, hi) if mi + g @ d > 0 else (lo, lam)
        out.append(np.linalg.norm(np.clip(-hi * g, -xi, 1.0 - xi)))
    return np.array(out)


def test_box_constraint_active_matches_clipped_solution() -> None:
    """Near the box corner the unconstrained minimum is infeasible; CW must find the
    box-constrained one and never leave [0, 1]."""
    w = orthonormal(1, 11)[:, 0]
    n = 6
    # The two most influential pixels sit 0.03 from the edge the perturbation pushes them
    # towards; the others lie on the far side of the centre, at varying distances.
    x = CENTER + np.outer(np.linspace(0.35, 0.45, n), np.sign(w))
    top = np.argsort(-np.abs(w))[:2]
    x[:, top] = CENTER - 0.47 * np.sign(w[top])
    x = x.astype(np.float32)
    g = 2.0 * w  # gradient of the margin Z0 - Z1 = 2 w.(x - c)
    margin = 2.0 * (x - CENTER) @ w
    assert (margin > 0).all()
    expected = box_constrained_minimum(x, g, margin)
    unconstrained = margin / np.linalg.norm(g)
    assert (expected > 1.05 * unconstrained).all()  # the box really is active
    adv, res = cw_l2(affine_logits_fn(np.stack([w, -w], 1)), x.reshape(n, *SHAPE),
                     np.zeros(n, np.int64), **FAST)
    assert res.success.all()
    ratio = res.l2 / expected
    assert 0.999 <= ratio.min() and ratio.max() <= 1.03, ratio
    assert_in_box(adv)


def test_confidence_applies_to_label_margin() -> None:
    """With kappa the margin 2 w.(x - c) must reach -kappa: distance grows by kappa / 2."""
    logits_fn, x, labels, distance, _ = binary_problem(n=6)
    kappa = 0.2
    _, res = cw_l2(logits_fn, x, labels, confidence=kappa, **FAST)
    assert res.success.all()
    ratio = res.l2 / (distance + kappa / 2.0)
    assert 0.999 <= ratio.min() and ratio.max() <= 1.03, ratio


def test_stochastic_logits_fn() -> None:
    """Noisy logits (like a VIB's sampled posterior). In-search success is judged on noisy
    logits, so CW may stop up to a few noise sigmas short of the deterministic distance; with
    kappa well above the noise the returned adversarials still succeed on fresh noise."""
    _, x, labels, distance, w = binary_problem(n=8)
    noise_std, kappa = 0.01, 0.2
    noisy = affine_logits_fn(np.stack([w, -w], 1), noise_std=noise_std, seed=1)
    adv, res = cw_l2(noisy, x, labels, confidence=kappa, **FAST)
    assert res.success.all()
    margin_noise = noise_std * np.sqrt(2.0)  # std of Z0 - Z1 noise; ||grad margin|| = 2
    assert (res.l2 >= distance + (kappa - 5 * margin_noise) / 2.0).all(), res.l2 - distance
    assert (res.l2 <= 1.03 * (distance + kappa / 2.0)).all(), res.l2 - distance
    assert_in_box(adv)


def test_success_fn_stops_keeping_lucky_draws() -> None:
    """With noisy logits and kappa = 0, C&W keeps the smallest perturbation at which one
    noisy draw crossed the boundary: it falls short of the true minimum (winner's curse).
    Judging success on the expected logits (`success_fn`) gives the true minimum back."""
    _, x, labels, distance, w = binary_problem(n=8)
    weights = np.stack([w, -w], 1)
    noisy = affine_logits_fn(weights, noise_std=0.05, seed=2)
    _, lucky = cw_l2(noisy, x, labels, **FAST)
    assert np.mean(lucky.l2 / distance) < 0.9, lucky.l2 / distance
    _, judged = cw_l2(noisy, x, labels, success_fn=affine_logits_fn(weights), **FAST)
    ratio = judged.l2 / distance
    assert 0.999 <= ratio.min() and ratio.max() <= 1.03, ratio


def test_misclassified_input_is_zero_perturbation_success() -> None:
    logits_fn, x, labels, distance, _ = binary_problem(n=6)
    labels = labels.copy()
    labels[[1, 4]] = 1  # the model predicts 0 for every input: these are misclassified
    adv, res = cw_l2(logits_fn, x, labels, **FAST)
    assert res.success.all()
    for i in (1, 4):
        np.testing.assert_array_equal(adv[i], x[i])
        assert res.l2[i] == 0 and res.l0[i] == 0 and res.linf[i] == 0
        assert res.predicted[i] != labels[i]
    others = np.array([0, 2, 3, 5])
    np.testing.assert_allclose(res.l2[others] / distance[others], 1.0, atol=0.03)


def test_compiled_step_equals_eager_step() -> None:
    logits_fn, x, labels, _, _ = binary_problem(n=4)
    short = {"max_iterations": 60, "binary_search_steps": 3, "initial_const": 1.0}
    _, compiled = cw_l2(logits_fn, x, labels, **short)
    _, eager = cw_l2(logits_fn, x, labels, compile=False, **short)
    np.testing.assert_array_equal(compiled.success, eager.success)
    np.testing.assert_allclose(compiled.l2, eager.l2, rtol=1e-4)


def test_result_summary_and_json() -> None:
    logits_fn, x, labels, distance, _ = binary_problem(n=4)
    _, res = cw_l2(logits_fn, x, labels, max_iterations=200, binary_search_steps=4)
    summary = res.summary()
    assert summary["n"] == 4 and summary["attack"] == "cw_l2" and not summary["targeted"]
    assert summary["mean_l2"] == pytest.approx(res.l2[res.success].mean())
    assert summary["median_l2"] == pytest.approx(np.median(res.l2[res.success]))
    decoded = json.loads(json.dumps(res.to_json_dict()))
    assert decoded["per_example"]["success"] == res.success.tolist()
    assert decoded["params"]["max_iterations"] == 200


class CountingLogits:
    """Logits function that counts its (Python-level) calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.inner = affine_logits_fn(np.stack([np.ones(DIM), -np.ones(DIM)], 1) / 4.0)

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        self.calls += 1
        return self.inner(x)


X_OK = np.full((3, *SHAPE), 0.5, np.float32)
Y_OK = np.zeros(3, np.int64)

BAD_INPUTS = {
    "above_box": ({"images": X_OK + 0.6}, "clip_min, clip_max"),
    "below_box": ({"images": X_OK - 0.6}, "clip_min, clip_max"),
    "nan": ({"images": np.where(X_OK > 0, np.nan, X_OK)}, "NaN"),
    "label_shape": ({"labels": np.zeros(2, np.int64)}, "labels must have shape"),
    "label_dtype": ({"labels": np.zeros(3)}, "integer"),
    "target_shape": ({"targets": np.ones((3, 1), np.int64)}, "targets must have shape"),
    "target_is_label": ({"targets": np.array([1, 0, 1])}, "targets equal labels"),
    "steps": ({"binary_search_steps": 0}, "binary_search_steps"),
    "iterations": ({"max_iterations": 2.5}, "max_iterations"),
    "lr": ({"learning_rate": -1e-2}, "learning_rate"),
    "const": ({"initial_const": 0.0}, "initial_const"),
    "confidence": ({"confidence": -1.0}, "confidence"),
    "batch": ({"batch_size": 0}, "batch_size"),
    "clip": ({"clip_min": 1.0, "clip_max": 0.0}, "clip_min"),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_input_raises_before_any_model_call(name: str) -> None:
    override, message = BAD_INPUTS[name]
    kwargs = {"images": X_OK, "labels": Y_OK, "targets": None, **override}
    fn = CountingLogits()
    with pytest.raises(ValueError, match=message):
        cw_l2(fn, kwargs.pop("images"), kwargs.pop("labels"), kwargs.pop("targets"), **kwargs)
    assert fn.calls == 0


@pytest.mark.parametrize("field", ["labels", "targets"])
def test_class_out_of_range_raises_before_optimisation(field: str) -> None:
    fn = CountingLogits()
    labels, targets = Y_OK, np.ones(3, np.int64)
    if field == "labels":
        labels = np.array([0, 2, 0])
    else:
        targets = np.array([1, 5, 1])
    with pytest.raises(ValueError, match=f"{field} must be in"):
        cw_l2(fn, X_OK, labels, targets)
    assert fn.calls == 1  # only the clean evaluation that tells the number of classes


def test_upstream_cleverhans_const_broadcast_mixes_examples() -> None:
    """Why the adapter exists: cleverhans 4.0.0 shapes c like the input, so on [N, H, W, 1]
    its loss multiplies every example's constant with every other example's margin (#1205)."""
    from cleverhans.tf2.attacks.carlini_wagner_l2 import clip_tanh, loss_fn

    n = 3
    x = tf.zeros((n, *SHAPE))
    onehot = tf.one_hot([0, 0, 0], 2)
    logits = tf.constant([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0]])  # margins 1, 2, 3
    const = tf.ones((n, *SHAPE)) * tf.reshape([1.0, 0.0, 0.0], [n, 1, 1, 1])  # upstream shape
    x_new = clip_tanh(x, 0.0, 1.0)  # unperturbed: the l2 term is 0
    loss, _ = loss_fn(x, x_new, onehot, logits, confidence=0.0, const=const)
    correct = 1.0 * 1 + 0.0 * 2 + 0.0 * 3 + 0.0  # sum_i c_i f_i
    mixed = float(np.prod(SHAPE)) * 1.0 * (1 + 2 + 3)  # H*W*C * sum_i c_i * sum_j f_j
    assert float(loss) == pytest.approx(mixed)
    assert float(loss) != pytest.approx(correct)


def test_upstream_cleverhans_cw_fails_under_keras3() -> None:
    """cleverhans 4.0.0 calls `optimizer.variables()`, a list property in Keras 3."""
    from cleverhans.tf2.attacks.carlini_wagner_l2 import carlini_wagner_l2

    fn = affine_logits_fn(np.stack([np.ones(DIM), -np.ones(DIM)], 1) / 4.0)
    with pytest.raises(TypeError, match="not callable"):
        carlini_wagner_l2(fn, X_OK, max_iterations=2, binary_search_steps=1)
