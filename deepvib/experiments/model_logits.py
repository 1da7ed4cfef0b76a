"""A trained classifier as the `logits_fn` of the attacks (Alemi et al. 2017, section 4.2.3).

VIB models are attacked through their predictive p(y|x) = (1/S) sum_s softmax(decoder(z_s)),
z_s ~ p(z|x), with S = 12 posterior samples as in the paper ("this helps ensure that the
adversaries can get a consistent gradient"): the attack sees log p(y|x), whose differences
between classes are what the Carlini & Wagner margin uses. S = 0 is the paper's "mean mode"
(z = mu, sigma forced to 0). Deterministic baselines are attacked through their logits.

The VIB's S-sample predictive is drawn in logit space (`deepvib.models.logit_gaussian`: the
decoder is affine, so the logits are Gaussian given x; same distribution as decoding S
posterior samples, with 10 normals per sample instead of K = 256). The returned functions are
plain TensorFlow code that XLA compiles (the CW attack compiles them into its iteration loop);
their draws are stateless normals keyed by `seed` and a call counter, so an attack is
reproducible.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tensorflow as tf

from deepvib.models import Classifier, DeterministicClassifier, ModelConfig, VIBClassifier
from deepvib.models.logit_gaussian import LogitSpacePredictive

ATTACK_SAMPLES = 12  # posterior samples of the VIB predictive under attack (paper: 12)

LogitsFn = Callable[[tf.Tensor], tf.Tensor]


def attack_logits_fn(
    model: Classifier, num_samples: int = ATTACK_SAMPLES, seed: int = 0
) -> LogitsFn:
    """`images [B, 28, 28, 1] in [0, 1] -> [B, C]` scores whose argmax is the prediction.

    VIB: log of the mean softmax over `num_samples` posterior samples (0: z = posterior mean).
    Deterministic baselines: their logits (`num_samples` is ignored).
    """
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 0:
        raise ValueError(f"attack samples must be an integer >= 0, got {num_samples!r}")
    if isinstance(model, VIBClassifier):
        return LogitSpacePredictive(model, num_samples, seed)
    if isinstance(model, DeterministicClassifier):
        return _deterministic_logits(model)
    raise ValueError(f"cannot attack a {type(model).__name__}: expected a VIB or deterministic "
                     "classifier")


def _deterministic_logits(model: DeterministicClassifier) -> LogitsFn:
    def deterministic_logits(images: tf.Tensor) -> tf.Tensor:
        return model.logits(images, training=False)

    return deterministic_logits


def describe_logits_fn(config: ModelConfig, num_samples: int) -> dict[str, Any]:
    """What `attack_logits_fn(model, num_samples)` computes, for the attack record."""
    if not config.stochastic:
        return {"kind": "logits", "num_samples": None}
    if num_samples == 0:
        return {"kind": "vib_mean_mode", "num_samples": 0}
    return {"kind": "vib_log_mean_softmax", "num_samples": num_samples,
            "sampling": "logit_space"}
