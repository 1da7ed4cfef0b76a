"""Carlini-Wagner L2 attack: the public API used by the robustness experiments.

Implements Carlini & Wagner (2017), "Towards evaluating the robustness of neural networks",
L2 attack, as used by Alemi et al. (2017), "Deep Variational Information Bottleneck",
section 4.2. The optimisation lives in `third_party.cleverhans_tf2` (CleverHans 4.0.0 with its
TF2 bugs fixed); this module validates inputs, applies the conventions below and builds the
`AttackResult`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf

from deepvib.attacks import validation as v
from deepvib.attacks.results import AttackResult
from third_party.cleverhans_tf2 import CarliniWagnerL2

LogitsFn = Callable[[tf.Tensor], tf.Tensor]


def cw_l2(
    logits_fn: LogitsFn,
    images: np.ndarray,
    labels: np.ndarray,
    targets: np.ndarray | None = None,
    *,
    binary_search_steps: int = 9,
    max_iterations: int = 10_000,
    learning_rate: float = 1e-2,
    initial_const: float = 1e-3,
    confidence: float = 0.0,
    abort_early: bool = True,
    batch_size: int = 100,
    clip_min: float = 0.0,
    clip_max: float = 1.0,
    compile: bool = True,
    jit_compile: bool = True,
    success_fn: LogitsFn | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, AttackResult]:
    """Carlini-Wagner L2 attack (untargeted if `targets is None`, else targeted).

    Minimises ||delta||_2^2 + c * f(x + delta) over delta in tanh space (so x + delta stays in
    [clip_min, clip_max]) with Adam, where with logits Z, label y, target t and kappa =
    `confidence`:  untargeted f = max(Z_y - max_{i!=y} Z_i, -kappa);  targeted
    f = max(max_{i!=t} Z_i - Z_t, -kappa). The constant c is binary-searched per example
    (success: c <- (lo + hi) / 2; failure: c <- 10 c until an upper bound is known), Adam state
    is reset at each binary-search step, and an example stops early when its loss has not
    decreased by more than 0.01% over max_iterations / 10 iterations. The per-example best
    (smallest-L2) adversarial found, judged on the logits of the iteration that produced it,
    is returned. Defaults are Carlini & Wagner's.

    Args:
        logits_fn: maps a float32 batch [n, *image_shape] in [clip_min, clip_max] to
            [n, C] logits. Inside the attack it is called on the pool of `batch_size` examples
            optimised together (idle slots included), inside a `tf.function` that is
            XLA-compiled if `jit_compile` and the function allows it; it may be stochastic
            (e.g. a VIB model's log mean softmax over posterior samples).
        images: [N, *image_shape] values in [clip_min, clip_max].
        labels: [N] true class ids.
        targets: [N] target class ids (each != its label) for a targeted attack, or None.
        batch_size: examples optimised together. Each has its own search state; a finished
            example's slot is refilled at once, so no example waits for another.
        compile / jit_compile: run the iteration loop as a `tf.function` / XLA-compile it.
        success_fn: judge success (which adversarial is kept) on these scores instead of
            `logits_fn`'s, e.g. an independent many-sample predictive of a stochastic model.
            Same contract as `logits_fn`; no gradient flows through it. None: C&W.
        on_progress: called as `on_progress(examples_finished, adversarials_found)` whenever
            examples finish their search.

    Returns:
        (adversarial, result): float32 images of the input shape, and an `AttackResult` whose
        `success` and `predicted` are re-evaluated with `logits_fn` on the returned images
        (for a stochastic model they can therefore differ from the in-search success).
        Examples for which no adversarial was found are returned unchanged.

    Conventions:
        Untargeted, an example the model already misclassifies counts as a success with zero
        perturbation: it is returned unchanged (L0 = L2 = L-inf = 0, `predicted` != label), as
        in C&W, where such an input is adversarial at the first iteration. Targeted attacks are
        always optimised (an input already classified as its target yields ~0 perturbation).

    Raises:
        ValueError: before any optimisation, for images outside [clip_min, clip_max],
            label/target shape mismatches, out-of-range classes, a target equal to its label,
            or invalid parameter values.
    """
    x = v.check_images(images, clip_min, clip_max)
    labels = v.check_classes("labels", labels, len(x))
    targets = v.check_targets(labels, targets)
    params = _check_params(binary_search_steps, max_iterations, learning_rate, initial_const,
                           confidence, batch_size)
    batch = min(int(params["batch_size"]), len(x))  # never pad beyond the data
    clean_logits = v.evaluate_logits(logits_fn, x, batch)
    num_classes = v.check_logits(clean_logits, len(x))
    v.check_class_range("labels", labels, num_classes)
    if targets is not None:
        v.check_class_range("targets", targets, num_classes)

    attack = CarliniWagnerL2(
        logits_fn, x.shape[1:], num_classes, targeted=targets is not None,
        clip_min=clip_min, clip_max=clip_max, abort_early=abort_early, compile=compile,
        jit_compile=jit_compile, success_fn=success_fn, **{**params, "batch_size": batch},
    )
    raw = attack.attack(x, labels if targets is None else targets, on_progress=on_progress)
    adversarial = np.clip(raw.adversarial, clip_min, clip_max).astype(np.float32)
    if targets is None:
        already_wrong = np.argmax(clean_logits, axis=1) != labels
        adversarial[already_wrong] = x[already_wrong]

    predicted = np.argmax(v.evaluate_logits(logits_fn, adversarial, batch), 1)
    params.update(abort_early=abort_early, clip_min=clip_min, clip_max=clip_max)
    result = AttackResult.from_images("cw_l2", x, adversarial, labels, predicted, targets, params,
                                      iterations=raw.iterations)
    return adversarial.reshape(np.shape(images)), result


def _check_params(
    binary_search_steps: int, max_iterations: int, learning_rate: float,
    initial_const: float, confidence: float, batch_size: int,
) -> dict[str, float | int]:
    return {
        "binary_search_steps": v.check_positive_int("binary_search_steps", binary_search_steps),
        "max_iterations": v.check_positive_int("max_iterations", max_iterations),
        "learning_rate": v.check_positive("learning_rate", learning_rate),
        "initial_const": v.check_positive("initial_const", initial_const),
        "confidence": v.check_non_negative("confidence", confidence),
        "batch_size": v.check_positive_int("batch_size", batch_size),
    }
