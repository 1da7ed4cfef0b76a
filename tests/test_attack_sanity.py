"""The sanity suite of the adaptive evaluation (deepvib.attacks.adaptive; Carlini et al. 2019)
passes for a sound attack on a noisy affine model and fails for a deliberately broken one
(zero input gradients: the model's logits as stop_gradient(m) + 0 * m)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from deepvib.attacks.adaptive import (
    AdaptiveConfig,
    Outcome,
    accuracy_curve,
    all_passed,
    evaluate,
    format_checks,
    raised_significantly,
    recheck,
    sanity_checks,
    sign_test_p,
    zero_noise,
)

DIM = 16
SHAPE = (4, 4, 1)
CONFIG = AdaptiveConfig(
    eot_samples=40, judge_samples=200, classifier_draws=10, cw_binary_search_steps=2,
    cw_max_iterations=100, cw_batch_size=12, l2_budgets=(0.5,), linf_budgets=(0.06,),
    pgd_iterations=10, spsa_eps=0.06, spsa_iterations=30, spsa_samples=32,
    spsa_eot_samples=20, spsa_batch_size=12, sanity_l2_budget=0.5, large_l2_budget=3.0,
    small_l2_budget=0.5, broken_accuracy=0.2)


def problem(broken: bool, n: int = 12, seed: int = 0):
    rng = np.random.default_rng(seed)
    w = tf.constant(rng.normal(size=(DIM, 3)).astype(np.float32))
    factor = tf.constant(0.5 * rng.normal(size=(3, 3)).astype(np.float32))

    def gaussian_fn(images: tf.Tensor):
        mean = tf.matmul(tf.reshape(images, [-1, DIM]) - 0.5, w)
        if broken:  # same values, zero input gradient
            mean = tf.stop_gradient(mean) + 0.0 * mean
        return mean, tf.tile(factor[None], [tf.shape(mean)[0], 1, 1])

    x = rng.uniform(0.3, 0.7, size=(n, *SHAPE)).astype(np.float32)
    labels = np.argmax((x.reshape(n, -1) - 0.5) @ w.numpy(), 1)
    return gaussian_fn, x, labels


def checks_by_name(result):
    return {c["name"]: c["passed"] for c in result["sanity"]}


@pytest.fixture(scope="module")
def sound():
    gaussian_fn, x, labels = problem(broken=False)
    return evaluate(gaussian_fn, x, labels, CONFIG, log=lambda s: None)


@pytest.fixture(scope="module")
def broken():
    gaussian_fn, x, labels = problem(broken=True)
    return evaluate(gaussian_fn, x, labels, CONFIG, log=lambda s: None)


def test_sound_attack_passes(sound) -> None:
    checks = checks_by_name(sound)
    assert all_passed(sound["sanity"]), format_checks(sound["sanity"])
    assert checks["deterministic model broken at small budgets"] is None  # stochastic model
    assert sound["curves"]["never_broken"] == 0.0


def test_broken_attack_fails_the_suite(broken) -> None:
    checks = checks_by_name(broken)
    assert checks["accuracy reaches 0 at a large budget"] is False
    assert checks["gradient-free attack does not beat the gradient attack"] is False
    assert not all_passed(broken["sanity"])
    lines = format_checks(broken["sanity"])
    assert any(line.startswith("[FAIL]") for line in lines)


def test_curves_are_monotone_and_consistent(sound) -> None:
    l2 = sound["curves"]["l2"]
    assert all(a >= b for a, b in zip(l2["all_attacks"], l2["all_attacks"][1:], strict=False))
    # Every attack at least as strong as CW alone, per budget.
    assert all(a <= c for a, c in zip(l2["all_attacks"], l2["cw_only"], strict=True))
    assert l2["all_attacks"][0] == sound["attacks"]["clean"]["summary"]["robust_accuracy"]
    for row in sound["robust_accuracy"]:
        assert row["strongest"] <= row["cw"] + 1e-12
        if row["pgd"] is not None:
            assert row["strongest"] <= row["pgd"] + 1e-12


def test_accuracy_curve_counts_budgets() -> None:
    norms = np.array([0.0, 0.5, 1.0, np.inf])
    assert accuracy_curve(norms, (0.0, 0.5, 0.99, 1.0, 5.0)) == [0.75, 0.5, 0.5, 0.25, 0.25]


def test_deterministic_check_applies_to_a_deterministic_model() -> None:
    rng = np.random.default_rng(0)
    w = tf.constant(rng.normal(size=(DIM, 3)).astype(np.float32))

    def logits_fn(images):
        return tf.matmul(tf.reshape(images, [-1, DIM]) - 0.5, w)

    x = rng.uniform(0.3, 0.7, size=(8, *SHAPE)).astype(np.float32)
    labels = np.argmax(logits_fn(x).numpy(), 1)
    result = evaluate(zero_noise(logits_fn), x, labels, CONFIG, stochastic=False,
                      log=lambda s: None)
    checks = checks_by_name(result)
    assert checks["deterministic model broken at small budgets"] is True
    assert checks["more EOT samples do not raise robust accuracy"] is None
    # Another deterministic predictive (dropout, mean mode) is not the reference baseline.
    other = recheck({**result, "model_kind": "dropout"}, CONFIG)
    assert {c["name"]: c["passed"] for c in other}[
        "deterministic model broken at small budgets"] is None
    assert recheck({**result, "model_kind": "deterministic"}, CONFIG) == result["sanity"]


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="eot_samples"):
        AdaptiveConfig(eot_samples=0)
    with pytest.raises(ValueError, match="even"):
        AdaptiveConfig(spsa_samples=3)
    with pytest.raises(ValueError, match="cw_confidence"):
        AdaptiveConfig(cw_confidence=-0.1)
    with pytest.raises(ValueError, match="significance"):
        AdaptiveConfig(significance=0.0)
    with pytest.raises(ValueError, match="tolerance"):
        AdaptiveConfig(tolerance=float("nan"))


def test_cw_confidence_is_recorded_only_when_nonzero() -> None:
    """Records written before the parameter existed keep matching (resume)."""
    assert "cw_confidence" not in AdaptiveConfig(cw_confidence=0.0).to_dict()
    assert AdaptiveConfig().to_dict()["cw_confidence"] == 0.1


def test_sign_test_p_by_hand() -> None:
    assert sign_test_p(0, 5) == 1.0  # nothing broken by the weaker run alone
    assert sign_test_p(3, 0) == 1 / 8
    assert sign_test_p(2, 1) == 4 / 8  # C(3,2) + C(3,3) of 2^3
    assert sign_test_p(5, 5) == pytest.approx(638 / 1024)


def outcome(broken: range, n: int = 1000) -> Outcome:
    success = np.zeros(n, bool)
    success[list(broken)] = True
    zeros = np.zeros(n)
    return Outcome("pgd", "l2", 1.5, success, zeros, zeros, zeros, 0.0)


def test_monotonicity_check_tells_chance_from_a_real_rise() -> None:
    weaker = outcome(range(0, 500))
    strict = AdaptiveConfig(significance=1.0)
    # The same count, other images: no rise.
    assert raised_significantly(weaker, outcome(range(1, 501)), AdaptiveConfig())[0] is False
    # Two images fewer (p = 1/4): chance at the 5% level, a failure for the strict check.
    two_fewer = outcome(range(0, 498))
    assert raised_significantly(weaker, two_fewer, AdaptiveConfig())[0] is False
    assert raised_significantly(weaker, two_fewer, strict)[0] is True
    assert raised_significantly(weaker, two_fewer, AdaptiveConfig(tolerance=0.002,
                                                                  significance=1.0))[0] is False
    # Thirty fewer (p = 2^-30): a real rise.
    raised, detail = raised_significantly(weaker, outcome(range(0, 470)), AdaptiveConfig())
    assert raised is True and "weaker run only: 30, by the stronger only: 0" in detail


def test_recheck_decides_the_stored_outcomes_again(sound) -> None:
    assert recheck(sound, CONFIG) == sound["sanity"]
    # A deliberately failing decision: the large budget must leave accuracy <= tolerance.
    outcomes = dict(sound["attacks"])
    large = outcomes["large_budget"]
    unbroken = {**large["per_example"], "success": [False] * len(sound["labels"])}
    outcomes["large_budget"] = {**large, "per_example": unbroken}
    checks = {c["name"]: c["passed"] for c in recheck({**sound, "attacks": outcomes}, CONFIG)}
    assert checks["accuracy reaches 0 at a large budget"] is False


def monotonicity(base: range, more_iterations: range, more_restarts: range,
                 fewer_samples: range) -> dict[str, bool | None]:
    """The suite's verdicts on hand-made PGD outcomes (1,000 images; the ranges: broken)."""
    everything = range(0, 1000)
    outcomes = {"pgd_l2_1.5": outcome(base), "spsa_linf_0.3": outcome(everything),
                "pgd_linf_0.3": outcome(everything)}
    runs = {"more_iterations": outcome(more_iterations), "more_restarts": outcome(more_restarts),
            "large_budget": outcome(everything), "fewer_eot_samples": outcome(fewer_samples)}
    checks = sanity_checks(AdaptiveConfig(), outcomes, runs, {"never_broken": 0.0}, True)
    return {c["name"]: c["passed"] for c in checks}


ITERATIONS = "more iterations do not raise robust accuracy"
RESTARTS = "more restarts do not raise robust accuracy"
SAMPLES = "more EOT samples do not raise robust accuracy"


@pytest.mark.parametrize("runs, failing", [
    ((range(500), range(500), range(500), range(500)), set()),
    ((range(500), range(530), range(530), range(470)), set()),  # stronger runs break more
    ((range(500), range(470), range(500), range(500)), {ITERATIONS}),
    ((range(500), range(500), range(470), range(500)), {RESTARTS}),
    ((range(500), range(500), range(500), range(530)), {SAMPLES}),  # 10x samples break fewer
])
def test_each_monotonicity_check_compares_the_right_runs(runs, failing) -> None:
    verdicts = monotonicity(*runs)
    assert {name for name in (ITERATIONS, RESTARTS, SAMPLES) if verdicts[name] is False} \
        == failing


def test_recheck_without_a_sanity_suite_is_empty(sound) -> None:
    assert recheck(sound, dataclasses.replace(CONFIG, sanity=False)) == []


@pytest.mark.parametrize("loss, reaches_zero",
                         [("cross_entropy", False), ("margin", True), ("both", True)])
def test_suite_catches_a_saturated_cross_entropy(loss, reaches_zero) -> None:
    """A confident deterministic model (logits x1000: its softmax is one-hot in float32): PGD
    on the cross-entropy gets no gradient and leaves images unbroken at a large budget, which
    the suite flags; PGD on the margin breaks them all (as found on MNIST, docs/robustness.md)."""
    rng = np.random.default_rng(1)
    w = tf.constant(1000 * rng.normal(size=(DIM, 3)).astype(np.float32))

    def logits_fn(images):
        return tf.matmul(tf.reshape(images, [-1, DIM]) - 0.5, w)

    x = rng.uniform(0.3, 0.7, size=(8, *SHAPE)).astype(np.float32)
    labels = np.argmax(logits_fn(x).numpy(), 1)
    config = dataclasses.replace(CONFIG, pgd_loss=loss, pgd_step_factor=1.0)
    result = evaluate(zero_noise(logits_fn), x, labels, config, stochastic=False,
                      log=lambda s: None)
    assert checks_by_name(result)["accuracy reaches 0 at a large budget"] is reaches_zero


def test_both_losses_break_the_union_of_each() -> None:
    """pgd_loss="both" runs each restart with each loss (same starts, same draws): an image is
    broken exactly when the cross-entropy or the margin run breaks it."""
    from deepvib.attacks.adaptive import Evaluator

    gaussian_fn, x, labels = problem(broken=False, n=24, seed=3)
    success = {}
    for loss in ("cross_entropy", "margin", "both"):
        config = dataclasses.replace(CONFIG, pgd_loss=loss, pgd_iterations=3)
        ev = Evaluator(gaussian_fn, x, labels, config, log=lambda s: None)
        success[loss] = ev.pgd("l2", 0.05).success
    np.testing.assert_array_equal(success["both"],
                                  success["cross_entropy"] | success["margin"])
    assert (success["cross_entropy"] ^ success["margin"]).any()  # the union adds something
