"""The test error of the S-sample predictive over repeated draws (Alemi et al. 2017, §4.1.1).

The paper reports a VIB classifier's error under the predictive p(y|x) ≈ (1/S) Σ_s q(y|z_s),
z_s ~ p(z|x), with S = 12 ("12 samples"). That number is itself random: two evaluations of the
same weights with fresh draws of z differ by a few hundredths of a point on MNIST's 10,000 test
images. `predictive_errors` evaluates the same weights `draws` times for each S (the posterior
computed once per batch) and reports the mean, the standard deviation over draws and every
draw's error, so that a comparison with a published number is not decided by one lucky draw.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

FORMAT = "deepvib.predictive_errors/1"


def check_arguments(samples: Sequence[int], draws: int, seed: int) -> list[int]:
    """The distinct S values, in order; bad S, draws or seed raise ValueError."""
    samples = list(dict.fromkeys(int(s) for s in samples))
    if not samples or any(s < 1 for s in samples):
        raise ValueError(f"samples must be one or more integers >= 1, got {samples}")
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 1:
        raise ValueError(f"draws must be a positive integer, got {draws!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    return samples


def predictive_errors(
    model, images: np.ndarray, labels: np.ndarray, samples: Sequence[int], draws: int,
    seed: int = 0, batch_size: int = 500, stream: int = 0,
) -> dict[str, Any]:
    """{"samples": {"S": {"mean", "std", "errors"}}} for a VIB model (`posterior` and
    `predictive_log_probs_from_posterior`); errors are fractions, std is over draws (ddof 0).

    Deterministic for given (seed, stream, batch_size): every (S, draw, batch) sets its own
    global TF seed from them, so draws are independent of each other and of evaluation order;
    give each model its own `stream` so that two models are not evaluated on the same noise.
    The global TF seed is left set to the last of these."""
    samples = check_arguments(samples, draws, seed)
    if not hasattr(model, "posterior"):
        raise ValueError("predictive errors over draws need a stochastic (VIB) classifier; "
                         "a deterministic model's error has nothing to draw")
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    if len(images) != len(labels) or len(labels) == 0:
        raise ValueError(f"{len(images)} images and {len(labels)} labels: need equal, > 0")
    wrong = np.zeros((len(samples), draws), np.int64)
    for start in range(0, len(labels), batch_size):
        stop = min(start + batch_size, len(labels))
        posterior = model.posterior(tf.constant(images[start:stop]))
        for i, s in enumerate(samples):
            for d in range(draws):
                tf.random.set_seed(_draw_seed(seed, stream, s, d, start))
                log_probs = model.predictive_log_probs_from_posterior(posterior, s)
                predicted = np.argmax(log_probs.numpy(), axis=1)
                wrong[i, d] += int(np.sum(predicted != labels[start:stop]))
    errors = wrong / len(labels)
    return {"format": FORMAT, "seed": seed, "stream": stream, "batch_size": batch_size,
            "draws": draws, "num_examples": len(labels),
            "samples": {str(s): {"mean": float(errors[i].mean()),
                                 "std": float(errors[i].std()),
                                 "errors": [float(e) for e in errors[i]]}
                        for i, s in enumerate(samples)}}


def _draw_seed(seed: int, stream: int, samples: int, draw: int, start: int) -> int:
    return int(np.random.SeedSequence([seed, stream, samples, draw, start]).generate_state(1)[0]
               % (2**31 - 1))
