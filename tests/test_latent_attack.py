"""`deepvib.attacks.latent.latent_attack` (Kos et al. 2018, as in Sootla 2018 section 2.4).

With a linear encoder mean mu(x) = A x + b the problem min_r c ||r||_2 + ||mu(x + r) - mu_t||^2,
x + r in [0, 1]^m, is convex, so an independent solver (scipy's L-BFGS-B on the same box, from
several starts) gives its optimum; the attack must reach it within a relative 1e-3 and keep
the box. Batching must not change any row's result, and bad input must fail before the
encoder is ever differentiated.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf
from scipy.optimize import minimize

from deepvib.attacks.latent import LatentAttackResult, check_constants, latent_attack

IMAGE_SHAPE = (4, 4, 1)
LATENT_DIM = 3
OBJECTIVE_RTOL = 1e-3  # attack objective vs scipy's optimum, relative


def linear_problem(n: int = 4, seed: int = 0):
    """(A, b, sources, targets): random A [3, 16], sources with a black top half (pixels at the
    lower bound, which the optimum must keep or raise), uniform targets."""
    rng = np.random.default_rng(seed)
    m = int(np.prod(IMAGE_SHAPE))
    a = rng.normal(size=(LATENT_DIM, m)).astype(np.float32)
    b = rng.normal(size=LATENT_DIM).astype(np.float32)
    x = rng.uniform(size=(n,) + IMAGE_SHAPE).astype(np.float32)
    x[:, :2] = 0.0
    x_t = rng.uniform(size=(n,) + IMAGE_SHAPE).astype(np.float32)
    return a, b, x, x_t


def linear_encoder(a: np.ndarray, b: np.ndarray):
    def encoder(images: tf.Tensor) -> tf.Tensor:
        flat = tf.reshape(images, [tf.shape(images)[0], -1])
        return tf.matmul(flat, a, transpose_b=True) + b

    return encoder


def scipy_optimum(a, b, x0, mu_target, c, seed=0) -> tuple[float, np.ndarray]:
    """min over y in [0,1]^m of c ||y - x0|| + ||A y + b - mu_t||^2 (float64, best of 3 starts)."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    rng = np.random.default_rng(seed)

    def f(y):
        r = y - x0
        norm = np.sqrt(r @ r + 1e-30)
        d = a @ y + b - mu_target
        return c * norm + d @ d, c * r / norm + 2 * a.T @ d

    starts = [np.clip(x0 + 1e-3, 0, 1), rng.uniform(size=x0.size), np.clip(x0 + 0.1, 0, 1)]
    best = min((minimize(f, s, jac=True, method="L-BFGS-B", bounds=[(0, 1)] * x0.size,
                         options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 10_000})
                for s in starts), key=lambda o: o.fun)
    return float(best.fun), best.x


def test_linear_encoder_reaches_scipy_optimum_inside_the_box():
    a, b, x, x_t = linear_problem()
    constants = (0.1, 1.0, 10.0)
    result = latent_attack(linear_encoder(a, b), x, x_t, constants=constants,
                           max_iterations=4000, learning_rate=1e-2, abort_early=False)
    assert result.adversarial.shape == (3, 4) + IMAGE_SHAPE
    assert result.adversarial.min() >= 0.0 and result.adversarial.max() <= 1.0
    active = 0
    for k, c in enumerate(constants):
        for i in range(len(x)):
            x0 = x[i].ravel().astype(np.float64)
            mu_t = a.astype(np.float64) @ x_t[i].ravel() + b
            optimum, y = scipy_optimum(a, b, x0, mu_t, c)
            active += int(np.sum((y < 1e-9) | (y > 1 - 1e-9)))
            got = result.objective[k, i]
            assert got == pytest.approx(optimum, rel=OBJECTIVE_RTOL), (c, i)
            # The reported objective is the exact one at the returned image.
            adv = result.adversarial[k, i].ravel().astype(np.float64)
            exact = c * np.linalg.norm(adv - x0) + np.sum((a @ adv + b - mu_t) ** 2)
            assert got == pytest.approx(exact, rel=1e-5)
    assert active > 0  # the box constrains the optimum: the test checks the projection


def test_norms_and_latent_distances_are_of_the_returned_images():
    a, b, x, x_t = linear_problem(n=3, seed=1)
    result = latent_attack(linear_encoder(a, b), x, x_t, constants=(0.5, 5.0),
                           max_iterations=200, learning_rate=1e-2)
    delta = (result.adversarial - x[None]).reshape(2, 3, -1).astype(np.float64)
    np.testing.assert_allclose(result.l2, np.linalg.norm(delta, axis=2), rtol=1e-6)
    np.testing.assert_allclose(result.linf, np.abs(delta).max(axis=2), rtol=1e-6)
    np.testing.assert_array_equal(result.l0, np.sum(np.abs(delta) > 1e-5, axis=2))
    mu = lambda im: im.reshape(len(im), -1).astype(np.float64) @ a.T + b  # noqa: E731
    np.testing.assert_allclose(result.initial_latent_distance,
                               np.linalg.norm(mu(x) - mu(x_t), axis=1), rtol=1e-5)
    for k in range(2):
        np.testing.assert_allclose(result.latent_distance[k],
                                   np.linalg.norm(mu(result.adversarial[k]) - mu(x_t), axis=1),
                                   rtol=1e-4, atol=1e-5)
    # A larger c buys a smaller perturbation and leaves a larger latent distance.
    assert np.all(result.l2[1] < result.l2[0])
    assert np.all(result.latent_distance[1] > result.latent_distance[0])
    assert np.all(result.latent_distance < result.initial_latent_distance)


def test_batching_equals_attacking_each_pair_alone():
    a, b, x, x_t = linear_problem(n=3, seed=2)
    encoder = linear_encoder(a, b)
    constants = (0.3, 3.0)
    kwargs = dict(max_iterations=150, learning_rate=2e-2, abort_early=False)
    together = latent_attack(encoder, x, x_t, constants=constants, batch_size=4, **kwargs)
    for k, c in enumerate(constants):
        for i in range(len(x)):
            alone = latent_attack(encoder, x[i:i + 1], x_t[i:i + 1], constants=(c,),
                                  batch_size=1, **kwargs)
            # Equal up to float32 rounding (a batched matmul sums in another order), which
            # Adam's normalised steps can amplify on pixels whose gradient is near 0.
            np.testing.assert_allclose(together.adversarial[k, i], alone.adversarial[0, 0],
                                       atol=1e-3)
            assert together.objective[k, i] == pytest.approx(alone.objective[0, 0], rel=1e-5)


def test_abort_early_stops_a_converged_batch():
    a, b, x, x_t = linear_problem(n=2, seed=3)
    result = latent_attack(linear_encoder(a, b), x, x_t, constants=(1.0,),
                           max_iterations=20_000, learning_rate=1e-2)
    assert result.iterations.max() < 20_000
    assert np.all(result.iterations == result.iterations[0, 0])


def test_result_json_round_trips():
    a, b, x, x_t = linear_problem(n=2, seed=4)
    result = latent_attack(linear_encoder(a, b), x, x_t, constants=(0.1, 1.0),
                           max_iterations=20)
    assert isinstance(result, LatentAttackResult)
    data = json.loads(json.dumps(result.to_json_dict()))
    assert data["constants"] == [0.1, 1.0]
    assert [row["c"] for row in data["summary"]] == [0.1, 1.0]
    assert data["summary"][1]["mean_l2"] == pytest.approx(float(result.l2[1].mean()))
    assert np.shape(data["per_constant"]["latent_distance"]) == (2, 2)
    assert result.index_of(1.0) == 1
    with pytest.raises(ValueError, match="not in the attacked grid"):
        result.index_of(0.5)


class CountingEncoder:
    """A linear encoder that counts its calls and the calls made under a gradient tape."""

    def __init__(self, a, b):
        self.inner, self.calls = linear_encoder(a, b), 0

    def __call__(self, images):
        self.calls += 1
        return self.inner(images)


@pytest.mark.parametrize("constants, message", [
    ((0.0, 1.0), "finite and > 0"),
    ((-1.0,), "finite and > 0"),
    ((float("nan"),), "finite and > 0"),
    ((), "non-empty"),
    ((1.0, 1.0), "must not repeat"),
])
def test_bad_constants_fail_before_the_encoder_runs(constants, message):
    a, b, x, x_t = linear_problem(n=2)
    encoder = CountingEncoder(a, b)
    with pytest.raises(ValueError, match=message):
        latent_attack(encoder, x, x_t, constants=constants)
    assert encoder.calls == 0


@pytest.mark.parametrize("change, message", [
    (lambda x, t: (x, t[:1]), "same shape"),
    (lambda x, t: (x, t[..., :3, :]), "same shape"),
    (lambda x, t: (x + 1.5, t), r"\[clip_min, clip_max\]"),
    (lambda x, t: (x, np.where(t > 0.5, np.nan, t)), "NaN"),
    (lambda x, t: (x[:0], t[:0]), "non-empty"),
])
def test_bad_images_fail_before_the_encoder_runs(change, message):
    a, b, x, x_t = linear_problem(n=2)
    encoder = CountingEncoder(a, b)
    with pytest.raises(ValueError, match=message):
        latent_attack(encoder, *change(x, x_t))
    assert encoder.calls == 0


def test_bad_parameters_and_encoders_fail_before_optimising():
    a, b, x, x_t = linear_problem(n=2)
    for kwargs in ({"max_iterations": 0}, {"learning_rate": 0.0}, {"batch_size": 0}):
        with pytest.raises(ValueError):
            latent_attack(linear_encoder(a, b), x, x_t, **kwargs)
    flat = lambda im: tf.reshape(im, [-1])  # noqa: E731  (not [B, D])
    with pytest.raises(ValueError, match=r"posterior means \[B, D\]"):
        latent_attack(flat, x, x_t)
    nan = lambda im: linear_encoder(a, b)(im) * np.nan  # noqa: E731
    with pytest.raises(ValueError, match="NaN"):
        latent_attack(nan, x, x_t)


def test_check_constants_returns_the_grid():
    np.testing.assert_array_equal(check_constants([0.1, 1, 10]), [0.1, 1.0, 10.0])
    with pytest.raises(ValueError, match="numbers"):
        check_constants(["a"])
