"""Logit-space sampling of the VIB predictive equals decoding posterior samples of z.

Checked against independent computations: the logit covariance W^T Sigma W built in NumPy from
the posterior's own parameters, the moments of logits decoded from z samples drawn by TFP, and
the model's own S-sample predictive.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from deepvib.models import ModelConfig, build_model
from deepvib.models.heads import posterior_scale
from deepvib.models.logit_gaussian import (
    LogitSpacePredictive,
    log_mean_softmax,
    logit_gaussian,
    sample_logits,
)

CASES = [("diag", 256), ("diag", 4), ("full", 2), ("full", 12)]


def noisy_vib(covariance: str, k: int):
    """A small random VIB whose posterior noise matters (std ~ 1, not softplus(-5))."""
    config = ModelConfig(model="vib", bottleneck_dim=k, covariance=covariance,
                         hidden_units=(32,), ema_decay=0.0)
    model = build_model(config)
    params = model.posterior_layer.layers[0]
    params.bias.assign(params.bias + 4.0 if covariance == "diag" else params.bias)
    model.decoder.kernel.assign(model.decoder.kernel * 3.0)
    return model


def images(n: int = 6, seed: int = 0) -> tf.Tensor:
    return tf.constant(np.random.default_rng(seed).uniform(size=(n, 28, 28, 1)), tf.float32)


def z_covariance(model, x: tf.Tensor) -> np.ndarray:
    scale = posterior_scale(model.posterior(x)).numpy().astype(np.float64)
    if scale.ndim == 2:
        return np.stack([np.diag(s**2) for s in scale])
    return scale @ np.swapaxes(scale, 1, 2)


@pytest.mark.parametrize(("covariance", "k"), CASES)
def test_factor_reproduces_logit_covariance(covariance: str, k: int) -> None:
    model = noisy_vib(covariance, k)
    x = images()
    mean, factor = logit_gaussian(model, x)
    w = model.decoder.kernel.numpy().astype(np.float64)
    expected_cov = np.swapaxes(w, 0, 1)[None] @ z_covariance(model, x) @ w[None]
    f = factor.numpy().astype(np.float64)
    assert f.shape == (6, min(k, 10), 10)
    got = np.swapaxes(f, 1, 2) @ f
    np.testing.assert_allclose(got, expected_cov, rtol=1e-4, atol=1e-5 * expected_cov.max())
    mu = model.posterior(x).mean().numpy()
    np.testing.assert_allclose(mean.numpy(), mu @ w + model.decoder.bias.numpy(), rtol=1e-5,
                               atol=1e-5)


@pytest.mark.parametrize(("covariance", "k"), CASES)
def test_logit_samples_match_decoded_posterior_samples(covariance: str, k: int) -> None:
    """Moments of 20,000 logit-space draws vs 20,000 decoder(z) draws from TFP."""
    model = noisy_vib(covariance, k)
    x = images(3)
    n = 20_000
    mean, factor = logit_gaussian(model, x)
    direct = sample_logits(mean, factor, n, tf.constant([1, 2], tf.int64)).numpy()  # [B,S,C]
    decoded = model.decoder(model.posterior(x).sample(n)).numpy().transpose(1, 0, 2)
    spread = decoded.std(axis=1).max()
    assert spread > 0.5  # the posterior noise is not negligible
    np.testing.assert_allclose(direct.mean(1), decoded.mean(1), atol=0.05 * spread)
    for b in range(3):
        np.testing.assert_allclose(np.cov(direct[b].T), np.cov(decoded[b].T),
                                   atol=0.05 * spread**2)


def test_predictive_matches_model_predictive() -> None:
    """With many samples both S-sample predictives converge to the same log p(y|x)."""
    model = noisy_vib("diag", 256)
    x = images(8)
    ours = LogitSpacePredictive(model, 4000, seed=3)(x).numpy()
    theirs = model.predictive_log_probs(x, 4000).numpy()
    np.testing.assert_allclose(np.exp(ours), np.exp(theirs), atol=0.02)
    assert np.abs(np.exp(ours).sum(1) - 1.0).max() < 1e-5


def test_predictive_is_seeded_and_fresh_per_call() -> None:
    model = noisy_vib("diag", 16)
    x = images(4)
    a, b = LogitSpacePredictive(model, 12, seed=7), LogitSpacePredictive(model, 12, seed=7)
    first, second = a(x).numpy(), a(x).numpy()
    np.testing.assert_array_equal(first, b(x).numpy())
    assert not np.allclose(first, second)


def test_mean_mode_is_posterior_mean() -> None:
    model = noisy_vib("full", 2)
    x = images(4)
    np.testing.assert_allclose(LogitSpacePredictive(model, 0)(x).numpy(),
                               model.predictive_log_probs(x, 0).numpy(), rtol=1e-6)


@pytest.mark.parametrize("jit_compile", [True, False], ids=["xla", "eager"])
def test_compiles_under_xla_with_input_gradient(jit_compile: bool) -> None:
    """The input gradient (under XLA and eagerly) is the derivative of the predictive with its
    draws held fixed: it agrees with a central difference along a random direction, the
    three evaluations replaying the same draws (the call counter rewound)."""
    model = noisy_vib("diag", 16)  # K > C: the Cholesky factor of the logit covariance
    x = images(5)
    predictive = LogitSpacePredictive(model, 12, seed=4)
    direction = np.random.default_rng(1).standard_normal(x.shape).astype(np.float32)
    direction = tf.constant(direction / np.linalg.norm(direction))
    h = 0.05

    def replayed(x):
        predictive.calls.assign(0)
        return tf.reduce_sum(predictive(x)[:, 3])

    def evaluations(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = replayed(x)
        return out, tape.gradient(out, x), replayed(x + h * direction), replayed(x - h * direction)

    if jit_compile:
        evaluations = tf.function(evaluations, jit_compile=True)
    out, g, plus, minus = (t.numpy() for t in evaluations(x))
    assert np.isfinite(out) and np.abs(g).max() > 1e-3
    central = (plus - minus) / (2 * h)
    np.testing.assert_allclose(central, np.sum(g * direction.numpy()), rtol=0.02)
    assert not np.allclose(predictive(x).numpy(), predictive(x).numpy())  # fresh draws


def test_log_mean_softmax() -> None:
    logits = np.random.default_rng(0).normal(size=(2, 5, 3))
    expected = np.log(np.mean(np.exp(logits) / np.exp(logits).sum(-1, keepdims=True), axis=1))
    np.testing.assert_allclose(log_mean_softmax(tf.constant(logits), axis=1).numpy(), expected,
                               rtol=1e-10)
