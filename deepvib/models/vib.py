"""The VIB classifier (Alemi et al. 2017): stochastic encoder p(z|x), softmax decoder q(y|z),
prior r(z) = N(0, I); `train_step` minimises eq. 17: the cross-entropy averaged over
`train_samples` reparameterised samples per example (1 in the paper; 12 in the authors' later JAX
remake), plus beta times the KL to the prior, either analytic (`kl_estimator="analytic"`) or
estimated at the same samples as log p(z|x) - log r(z) (`"sampled"`, the remake's "rate"; the
reported training loss is then that estimate's, the held-out loss stays analytic: the same
expectation).
Reported every epoch: loss, CE, the analytic KL in nats and bits (the upper bound on I(Z,X),
eq. 14), the lower bound on I(Z,Y) in bits (H(Y) - CE / ln 2, eq. 12 with eq. 11), and the
1-shot, S-sample (mean of softmaxes over S posterior samples, §4.1.1) and mean-mode (z = mu)
errors.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras as keras

from deepvib.models import objectives
from deepvib.models.base import Classifier
from deepvib.models.config import ModelConfig
from deepvib.models.heads import posterior_head, standard_normal_prior

tfd = tfp.distributions


class VIBClassifier(Classifier):
    def __init__(self, config: ModelConfig, **kwargs):
        super().__init__(config, **kwargs)
        self.posterior_layer = posterior_head(config.bottleneck_dim, config.covariance)
        self.prior = standard_normal_prior(config.bottleneck_dim)
        s = config.eval_samples
        names = ["loss", "ce", "kl_nats", "error_1shot", f"error_{s}sample", "error_mean"]
        self._trackers = {n: keras.metrics.Mean(name=n) for n in names}

    @property
    def metrics(self):
        return list(self._trackers.values())

    def posterior(self, images: tf.Tensor, training: bool = False) -> tfd.Distribution:
        """p(z|x) for images in [0, 1]."""
        return self.posterior_layer(self.trunk(images, training=training), training=training)

    def kl_to_prior(self, posterior: tfd.Distribution) -> tf.Tensor:
        """KL[p(z|x) || r(z)] per example, in nats, analytically."""
        return tfd.kl_divergence(posterior, self.prior)

    def sampled_kl_to_prior(self, posterior: tfd.Distribution, z: tf.Tensor) -> tf.Tensor:
        """log p(z|x) - log r(z) at samples z [S, B, K], in nats: [S, B] unbiased estimates of
        the KL, each differentiable through z and through p's parameters."""
        return posterior.log_prob(z) - self.prior.log_prob(z)

    def posterior_samples(self, posterior: tfd.Distribution, num_samples: int) -> tf.Tensor:
        return posterior.sample(num_samples)  # [S, B, K], reparameterised

    def predictive_log_probs(self, images, num_samples=None):
        return self.predictive_log_probs_from_posterior(self.posterior(images), num_samples)

    def predictive_log_probs_from_posterior(
        self, posterior: tfd.Distribution, num_samples: int | None = None
    ) -> tf.Tensor:
        """log p(y|x): mean of softmaxes over `num_samples` samples of p(z|x); 0: z = mean."""
        num_samples = self.config.eval_samples if num_samples is None else num_samples
        if num_samples == 0:
            return tf.nn.log_softmax(self.decoder(posterior.mean()))
        logits = self.decoder(self.posterior_samples(posterior, num_samples))
        return objectives.mean_softmax_log_probs(logits)

    def train_step(self, data):
        images, labels = data
        with tf.GradientTape() as tape:
            posterior = self.posterior(images, training=True)
            kl = self.kl_to_prior(posterior)
            # [S, B, K]: S = train_samples reparameterised samples per example
            z = self.posterior_samples(posterior, self.config.train_samples)
            logits = self.decoder(z)
            ce = tf.reduce_mean(objectives.cross_entropy(labels, logits), axis=0)
            rate = kl
            if self.config.kl_estimator == "sampled":
                rate = tf.reduce_mean(self.sampled_kl_to_prior(posterior, z), axis=0)
            loss = self.average(ce + self.config.beta * rate)
        self.apply_gradients(tape, loss)
        self._update(loss, ce, kl, error_1shot=self.error(labels, logits[0]))
        return self._results(["loss", "ce", "kl_nats", "error_1shot"])

    def test_step(self, data):
        images, labels = data
        s = self.config.eval_samples
        posterior = self.posterior(images)
        kl = self.kl_to_prior(posterior)
        logits = self.decoder(self.posterior_samples(posterior, s))  # [S, B, C]
        ce = objectives.cross_entropy(labels, logits[0])
        loss = self.average(ce + self.config.beta * kl)
        self._update(
            loss,
            ce,
            kl,
            error_1shot=self.error(labels, logits[0]),
            **{f"error_{s}sample": self.error(labels, objectives.mean_softmax_log_probs(logits))},
            error_mean=self.error(labels, self.decoder(posterior.mean())),
        )
        return self._results(list(self._trackers))

    def progress_fields(self) -> list[tuple[str, str]]:
        s = self.config.eval_samples
        return [
            ("train_loss", "train loss"),
            ("train_kl_bits", "I(Z;X)<= train"),
            ("test_kl_bits", "test"),
            (f"test_error_{s}sample", f"test err({s})"),
            ("test_error_1shot", "test err(1)"),
        ]

    def headline_metrics(self, evaluation: dict) -> dict:
        return {
            "test_error": evaluation[f"error_{self.config.eval_samples}sample"],
            "test_error_1shot": evaluation["error_1shot"],
            "test_error_mean": evaluation["error_mean"],
            "izx_upper_bits": evaluation["kl_bits"],
            "izy_lower_bits": evaluation["izy_lower_bits"],
        }

    def _update(self, loss, ce, kl, **errors):
        # `loss` is already averaged over the global batch, so weight it by the local share.
        self._trackers["loss"].update_state(loss * tf.cast(self._replicas(), loss.dtype))
        self._trackers["ce"].update_state(ce)
        self._trackers["kl_nats"].update_state(kl)
        for name, value in errors.items():
            self._trackers[name].update_state(value)

    @staticmethod
    def _replicas() -> int:
        return tf.distribute.get_strategy().num_replicas_in_sync

    def _results(self, names: list[str]) -> dict:
        results = {name: self._trackers[name].result() for name in names}
        kl_bits = self._trackers["kl_nats"].result() / objectives.LN2
        results["kl_bits"] = kl_bits
        results["izx_upper_bits"] = kl_bits
        results["izy_lower_bits"] = (
            self.config.label_entropy_bits - self._trackers["ce"].result() / objectives.LN2
        )
        return results
