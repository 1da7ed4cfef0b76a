"""β-VAE, capacity-controlled β-VAE and JointVAE as one Keras model with TFP latent layers
(Sootla 2018 §2.2-2.4, eq. 2.8-2.14, Table 3.1; Dupont 2018; Alemi et al. 2017 Appendix A: the
unsupervised VIB is a β-VAE). The objective is chosen by `config.model`
(see `deepvib.models.vae_objectives`) and minimised in `train_step`.

Training draws z from q(z|x) and c from its Concrete relaxation at temperature tau.
Evaluation (`test_step`) estimates the ELBO with z ~ q(z|x) and c drawn from the exact
categorical q(c|x) (hard one-hot codes): with the analytic discrete KL that is a true lower
bound on log p(x), which the relaxed training objective is not (eq. 2.10's remark).
Reconstructions and latent traversals use the posterior mean and the argmax code.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras as keras

from deepvib.models import latents, vae_objectives
from deepvib.models.base import TrainableModel
from deepvib.models.conv_nets import decoder, encoder
from deepvib.models.vae_config import VAEConfig

tfd = tfp.distributions
# What `VAE.latent_mean` gives for a discrete variable: its category probabilities (the
# latent-space attack's default) or their logarithms.
DISCRETE_CODES = ("probabilities", "log_probabilities")


def check_discrete_code(discrete_code: str) -> None:
    if discrete_code not in DISCRETE_CODES:
        raise ValueError(f"discrete_code must be one of {', '.join(DISCRETE_CODES)}, "
                         f"got {discrete_code!r}")


class VAE(TrainableModel):
    def __init__(self, config: VAEConfig, **kwargs):
        super().__init__(config, **kwargs)
        self.encoder = encoder(config)
        self.continuous_posterior = latents.continuous_head(config.continuous_dim)
        self.discrete_posteriors = [
            latents.discrete_head(n, config.temperature, i)
            for i, n in enumerate(config.discrete_dims)
        ]
        self.decoder = decoder(config)
        self.prior = latents.standard_normal(config.continuous_dim)
        names = ["loss", "reconstruction_ll", "kl_z", "kl_c", "elbo"]
        names += [f"kl_z_{i}" for i in range(config.continuous_dim)]
        self._trackers = {n: keras.metrics.Mean(name=n) for n in names}

    # -- the model's parts -----------------------------------------------------------------
    @property
    def metrics(self):
        return list(self._trackers.values())

    @property
    def continuous_dim(self) -> int:
        return self.config.continuous_dim

    @property
    def discrete_dims(self) -> tuple[int, ...]:
        return self.config.discrete_dims

    @property
    def latent_dim(self) -> int:
        return self.continuous_dim + sum(self.discrete_dims)

    def posteriors(self, images: tf.Tensor, training: bool = False):
        """q(z|x) and the list of relaxed q(c_i|x), for images in [0, 1]."""
        features = self.encoder(images, training=training)
        return (
            self.continuous_posterior(features, training=training),
            [head(features, training=training) for head in self.discrete_posteriors],
        )

    def decoder_distribution(self, codes: tf.Tensor) -> tfd.Distribution:
        """p(x|z, c) for latent codes [..., K + sum n_i] (leading sample dims allowed)."""
        leading = tf.shape(codes)[:-1]
        flat = tf.reshape(codes, [-1, self.latent_dim])
        logits = self.decoder(flat)
        logits = tf.reshape(logits, tf.concat([leading, self.config.input_shape], axis=0))
        return latents.bernoulli_likelihood(logits)

    def call(self, images, training=False):
        del training  # no layer behaves differently in training
        return self.reconstruct(images)

    # -- what users and attacks call ---------------------------------------------------------
    def latent_mean(self, images: tf.Tensor, discrete_code: str = "probabilities") -> tf.Tensor:
        """[B, K + sum n_i]: the continuous posterior mean, then each discrete variable's
        category probabilities (JointVAE only), or their logarithms with
        `discrete_code="log_probabilities"` (which do not saturate as the softmax does)."""
        check_discrete_code(discrete_code)
        squash = tf.nn.softmax if discrete_code == "probabilities" else tf.nn.log_softmax
        z_posterior, c_posteriors = self.posteriors(images)
        codes = [squash(latents.categorical_logits(q)) for q in c_posteriors]
        return tf.concat([z_posterior.mean(), *codes], axis=-1)

    def mean_codes(self, images: tf.Tensor) -> tf.Tensor:
        """The evaluation-time code: posterior mean and the argmax one-hot of each variable."""
        z_posterior, c_posteriors = self.posteriors(images)
        hard = [latents.hard_one_hot(latents.categorical_logits(q)) for q in c_posteriors]
        return tf.concat([z_posterior.mean(), *hard], axis=-1)

    def decode(self, codes: tf.Tensor) -> tf.Tensor:
        """Pixel probabilities [B, H, W, C] of p(x|z, c) for codes [B, K + sum n_i]."""
        return tf.sigmoid(self.decoder(codes))

    def reconstruct(self, images: tf.Tensor) -> tf.Tensor:
        """Pixel probabilities at the posterior mean and the hard code."""
        return self.decode(self.mean_codes(images))

    def discrete_probabilities(self, images: tf.Tensor) -> list[tf.Tensor]:
        _, c_posteriors = self.posteriors(images)
        return [tf.nn.softmax(latents.categorical_logits(q)) for q in c_posteriors]

    def prior_codes(self, num: int, seed: int = 0) -> tf.Tensor:
        """Codes drawn from the prior: z ~ N(0, I), each c uniform one-hot."""
        z = tf.random.stateless_normal([num, self.continuous_dim], seed=[seed, 0])
        parts = [z]
        for i, n in enumerate(self.discrete_dims):
            idx = tf.random.stateless_uniform([num], [seed, i + 1], maxval=n, dtype=tf.int32)
            parts.append(tf.one_hot(idx, n))
        return tf.concat(parts, axis=-1)

    # -- the objective -----------------------------------------------------------------------
    def objective_terms(self, images: tf.Tensor, training: bool) -> dict:
        """Per-example reconstruction log-likelihood [B], KL_z per dimension [B, K], KL_c [B].

        Training samples c from the relaxed posteriors; evaluation from the exact categorical.
        """
        z_posterior, c_posteriors = self.posteriors(images, training=training)
        logits = [latents.categorical_logits(q) for q in c_posteriors]
        if training:
            codes = [tf.convert_to_tensor(q) for q in c_posteriors]  # relaxed, reparameterised
        else:
            codes = [latents.sample_one_hot(lg, 1)[0] for lg in logits]
        z = tf.convert_to_tensor(z_posterior)  # one reparameterised sample
        likelihood = self.decoder_distribution(tf.concat([z, *codes], axis=-1))
        kl_c = tf.add_n([latents.categorical_kl_to_uniform(lg) for lg in logits]) if logits \
            else tf.zeros(tf.shape(images)[:1])
        return {
            "reconstruction_ll": likelihood.log_prob(images),
            "kl_z_per_dim": latents.gaussian_kl_per_dimension(z_posterior),
            "kl_c": kl_c,
        }

    def capacities(self, step: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        c = self.config
        c_z = vae_objectives.capacity(step, *c.capacity_z, c.capacity_z_iterations)
        c_c = vae_objectives.capacity(step, *c.capacity_c, c.capacity_c_iterations,
                                      cap=c.max_discrete_kl)
        return c_z, c_c

    def loss_from_terms(self, terms: dict, step: tf.Tensor) -> tf.Tensor:
        """The configured objective on the batch means of `terms` (nats per image)."""
        c = self.config
        ll = self.average(terms["reconstruction_ll"])
        kl_z = self.average(tf.reduce_sum(terms["kl_z_per_dim"], axis=-1))
        kl_c = self.average(terms["kl_c"])
        if not c.uses_capacity:
            return vae_objectives.beta_vae_loss(ll, kl_z + kl_c, c.beta)
        c_z, c_c = self.capacities(step)
        parts = [(kl_z, c_z, c.gamma_z)]
        if c.discrete_dims:
            parts.append((kl_c, c_c, c.gamma_c))
        return vae_objectives.capacity_loss(ll, parts)

    def weight_penalty(self) -> tf.Tensor:
        kernels = [v for v in self.trainable_variables if "kernel" in v.name]
        return vae_objectives.l2_penalty(kernels, self.config.weight_decay)

    def train_step(self, data):
        images = data[0] if isinstance(data, tuple) else data
        step = tf.identity(self.optimizer.iterations)  # this step's t, before it is counted
        with tf.GradientTape() as tape:
            terms = self.objective_terms(images, training=True)
            loss = self.loss_from_terms(terms, step) + self.weight_penalty()
        self.apply_gradients(tape, loss)
        return self._update(terms, loss, step)

    def test_step(self, data):
        images = data[0] if isinstance(data, tuple) else data
        step = self.optimizer.iterations
        terms = self.objective_terms(images, training=False)
        return self._update(terms, self.loss_from_terms(terms, step), step)

    def _update(self, terms: dict, loss: tf.Tensor, step: tf.Tensor) -> dict:
        kl_z_dims = terms["kl_z_per_dim"]
        kl_z = tf.reduce_sum(kl_z_dims, axis=-1)
        t = self._trackers
        t["loss"].update_state(loss)
        t["reconstruction_ll"].update_state(terms["reconstruction_ll"])
        t["kl_z"].update_state(kl_z)
        t["kl_c"].update_state(terms["kl_c"])
        t["elbo"].update_state(terms["reconstruction_ll"] - kl_z - terms["kl_c"])
        for i in range(self.continuous_dim):
            t[f"kl_z_{i}"].update_state(kl_z_dims[:, i])
        results = {name: tracker.result() for name, tracker in t.items()}
        # The schedule's current value (at the last step), not an average over the epoch.
        results["capacity_z"], results["capacity_c"] = self.capacities(step)
        return results

    # -- reports -------------------------------------------------------------------------------
    def progress_fields(self) -> list[tuple[str, str]]:
        fields = [
            ("train_loss", "train loss"),
            ("train_reconstruction_ll", "log p(x|z) train"),
            ("test_reconstruction_ll", "test"),
            ("train_kl_z", "KL_z train"),
        ]
        if self.config.uses_capacity:
            fields.append(("train_capacity_z", "C_z"))
        if self.discrete_dims:
            fields += [("train_kl_c", "KL_c train"), ("train_capacity_c", "C_c")]
        return fields + [("test_elbo", "test ELBO")]

    def headline_metrics(self, evaluation: dict) -> dict:
        per_dim = [evaluation[f"kl_z_{i}"] for i in range(self.continuous_dim)]
        return {
            "test_elbo": evaluation["elbo"],
            "test_reconstruction_ll": evaluation["reconstruction_ll"],
            "test_kl_z": evaluation["kl_z"],
            "test_kl_c": evaluation["kl_c"],
            "test_kl_z_per_dim": per_dim,
        }

