"""End-of-run numbers of a VAE on a held-out split: the importance-weighted bound on log p(x)
(Burda et al. 2016), active units (Var_x E_q[z_u] > 0.01, Burda et al.), and for a discrete
code over labelled data its unsupervised accuracy (Dupont 2018's MNIST number).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from deepvib.evaluation.cluster_accuracy import best_mapping_accuracy
from deepvib.evaluation.iwae import iwae_bound

BATCH = 100
ACTIVE_THRESHOLD = 0.01


def _batches(images: np.ndarray, batch: int = BATCH):
    for start in range(0, len(images), batch):
        yield tf.constant(images[start:start + batch])


def iwae_estimate(model, images: np.ndarray, num_samples: int) -> float:
    """Mean over `images` of the IWAE bound with `num_samples` samples (nats per image)."""
    bound = tf.function(lambda x: iwae_bound(model, x, num_samples))
    batch = max(1, 2000 // num_samples)  # images per call: about 2,000 decoder passes
    total = sum(float(tf.reduce_sum(bound(x))) for x in _batches(images, batch))
    return total / len(images)


def latent_statistics(model, images: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Posterior means [N, K] and each discrete variable's argmax category [N]."""
    means, categories = [], [[] for _ in model.discrete_dims]
    encode = tf.function(lambda x: (model.latent_mean(x)))
    for x in _batches(images):
        codes = encode(x).numpy()
        means.append(codes[:, :model.continuous_dim])
        start = model.continuous_dim
        for i, n in enumerate(model.discrete_dims):
            categories[i].append(codes[:, start:start + n].argmax(axis=-1))
            start += n
    return np.concatenate(means), [np.concatenate(c) for c in categories]


def final_evaluation(model, split) -> dict:
    means, categories = latent_statistics(model, split.images)
    variance = means.var(axis=0)
    results = {
        f"test_iwae_{model.config.iwae_samples}": iwae_estimate(
            model, split.images, model.config.iwae_samples),
        "posterior_mean_variance": variance.tolist(),
        "active_units": int((variance > ACTIVE_THRESHOLD).sum()),
    }
    labels = np.asarray(split.labels)
    if categories and labels.min() >= 0:
        accuracy, mapping = best_mapping_accuracy(
            categories[0], labels, model.discrete_dims[0], int(labels.max()) + 1)
        results["discrete_accuracy"] = accuracy
        results["discrete_mapping"] = {str(k): v for k, v in mapping.items()}
    return results
