"""Adaptive robustness evaluation of a (possibly stochastic) classifier, with a sanity suite.

Follows the checklist of Carlini et al. (2019), "On Evaluating Adversarial Robustness", with
Expectation over Transformation for randomised models (Athalye et al. 2018), applied to the
VIB predictive of Alemi et al. (2017, section 4.2):

- every gradient attack (CW-L2, PGD-L2, PGD-Linf) optimises the EOT objective
  log (1/S) sum_s softmax(m(x) + eps_s F(x)) (`deepvib.attacks.eot`), with common random
  numbers by default;
- success is judged on an independent large-sample estimate of the expected predictive
  p(y|x), never on the draws the search optimised; the per-image expected accuracy of the
  paper's 12-sample classifier is reported beside it;
- SPSA (Uesato et al. 2018), which never differentiates the model, is the gradient-free check;
- accuracy-budget curves: per image, the smallest verified adversarial norm over all attacks
  (minimal-norm CW plus fixed-budget PGD/SPSA); robust accuracy at budget e is the fraction of
  images with no verified adversarial of norm <= e (misclassified clean images count as 0);
- the sanity suite (`sanity_checks`) prints pass/fail.

The model enters only through a `GaussianLogitsFn` (images -> logit mean and noise factor), so
the same code evaluates a VIB model, its mean mode (F = 0) and a deterministic model (F = 0).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

from deepvib.attacks.cw_l2 import cw_l2
from deepvib.attacks.eot import (
    GaussianLogitsFn,
    eot_scores,
    expected_probs,
    sampled_classifier_accuracy,
)
from deepvib.attacks.gradient import LOSSES, pgd
from deepvib.attacks.results import perturbation_norms
from third_party.cleverhans_tf2 import spsa

JUDGE_SEED_OFFSET = 7919  # final judge: draws independent of every attack's
SEARCH_JUDGE_SEED_OFFSET = 104_729  # CW/SPSA's in-search judge: independent of both
CLASSIFIER_SEED_OFFSET = 1_299_709
RESTART_SEED_STRIDE = 1000

Log = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class AdaptiveConfig:
    """Parameters of one adaptive evaluation (defaults: the reduced-cost MNIST setting)."""

    eot_samples: int = 1000  # S: posterior draws of the attacked predictive per iterate
    common_random_numbers: bool = True
    judge_samples: int = 1000  # draws of the independent expected-predictive judge
    classifier_samples: int = 12  # the paper's sampled classifier
    classifier_draws: int = 100  # draws of it per image for its expected accuracy
    seed: int = 0
    # Carlini & Wagner L2, minimal norm (on the EOT objective, success judged apart).
    cw_binary_search_steps: int = 5
    cw_max_iterations: int = 1000
    cw_learning_rate: float = 1e-2
    cw_initial_const: float = 1e-2
    # Margin kappa on the EOT scores (log-probabilities). With 0 (C&W's default), CW's iterates
    # sit on the S-sample objective's boundary, where an independent judge disagrees about
    # half the time, so CW keeps few of them (docs/robustness.md, adaptive results).
    cw_confidence: float = 0.1
    cw_batch_size: int = 100
    # Fixed-budget PGD (Madry et al. 2018): step = pgd_step_factor * eps / pgd_iterations.
    l2_budgets: tuple[float, ...] = (1.0, 1.5, 2.0)
    linf_budgets: tuple[float, ...] = (0.1, 0.2, 0.3)
    pgd_iterations: int = 100
    pgd_restarts: int = 1
    pgd_step_factor: float = 2.5
    # PGD's objective: "cross_entropy", "margin" (max_{i != y} s_i - s_y on the scores) or
    # "both" (every restart with each; an image is broken if either breaks it). Neither is
    # enough alone on MNIST: the cross-entropy's gradient vanishes on the confident
    # deterministic model, the margin is much weaker on the VIB's EOT objective and at L-inf
    # (docs/robustness.md).
    pgd_loss: str = "both"
    # SPSA (L-inf), gradient-free.
    spsa_eps: float = 0.3
    spsa_iterations: int = 100
    spsa_samples: int = 128
    spsa_learning_rate: float = 0.01
    spsa_delta: float = 0.01
    spsa_eot_samples: int = 100
    spsa_batch_size: int = 10
    # Sanity suite.
    sanity: bool = True
    sanity_l2_budget: float = 1.5  # budget of the iterations / restarts / EOT checks
    large_l2_budget: float = 10.0  # "accuracy reaches 0 at a large enough budget"
    small_l2_budget: float = 2.0  # "the deterministic model is broken at small budgets"
    broken_accuracy: float = 0.1  # ... i.e. its robust accuracy there is at most this
    tolerance: float = 0.0  # allowed rise of robust accuracy in the monotonicity checks
    # A rise above the tolerance fails a monotonicity check only if it is significant at this
    # level in a paired one-sided sign test on the images the two runs disagree on
    # (`raised_significantly`); 1 fails on any rise above the tolerance.
    significance: float = 0.05

    def __post_init__(self):
        for name in ("eot_samples", "judge_samples", "classifier_samples", "classifier_draws",
                     "cw_binary_search_steps", "cw_max_iterations", "cw_batch_size",
                     "pgd_iterations", "pgd_restarts", "spsa_iterations", "spsa_eot_samples",
                     "spsa_batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if self.spsa_samples < 2 or self.spsa_samples % 2:
            raise ValueError(f"spsa_samples must be even and >= 2, got {self.spsa_samples}")
        for name in ("cw_learning_rate", "cw_initial_const", "pgd_step_factor", "spsa_eps",
                     "spsa_learning_rate", "spsa_delta", "sanity_l2_budget", "large_l2_budget",
                     "small_l2_budget"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if self.pgd_loss not in (*LOSSES, "both"):
            raise ValueError(f"pgd_loss must be one of {', '.join(LOSSES)}, both; got "
                             f"{self.pgd_loss!r}")
        if not (np.isfinite(self.tolerance) and self.tolerance >= 0):
            raise ValueError(f"tolerance must be finite and >= 0, got {self.tolerance!r}")
        if not 0 < self.significance <= 1:
            raise ValueError(f"significance must be in (0, 1], got {self.significance!r}")
        if not self.cw_confidence >= 0:
            raise ValueError(f"cw_confidence must be >= 0, got {self.cw_confidence!r}")
        budgets = (*self.l2_budgets, *self.linf_budgets)
        if not budgets or min(budgets) <= 0:
            raise ValueError("budgets must be non-empty and > 0")
        if self.pgd_step_factor > self.pgd_iterations:
            raise ValueError("pgd_step_factor must be <= pgd_iterations (step <= eps)")

    def to_dict(self) -> dict[str, Any]:
        """The parameters; cw_confidence only when nonzero and pgd_loss only when not the
        cross-entropy, so records written before they existed (kappa = 0, cross-entropy)
        still match a run with those values."""
        out = {k: list(v) if isinstance(v, tuple) else v
               for k, v in dataclasses.asdict(self).items()}
        if not self.cw_confidence:
            del out["cw_confidence"]
        if self.pgd_loss == "cross_entropy":
            del out["pgd_loss"]
        return out


@dataclasses.dataclass
class Outcome:
    """One attack's per-image result, judged on the expected predictive."""

    name: str
    norm: str  # "l2" or "linf": the norm its budget (if any) is measured in
    budget: float | None
    success: np.ndarray  # judged on the independent expected predictive
    l2: np.ndarray
    linf: np.ndarray
    classifier_accuracy: np.ndarray  # expected accuracy of the 12-sample classifier
    seconds: float
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def accuracy(self) -> float:
        """Robust accuracy under this attack (success is never counted as correct)."""
        return float(np.mean(~self.success))

    def summary(self) -> dict[str, Any]:
        return {**self.measured(), **self.extra}

    def measured(self) -> dict[str, Any]:
        """The summary's own numbers (without `extra`)."""
        ok = self.success
        return {
            "attack": self.name, "norm": self.norm, "budget": self.budget,
            "robust_accuracy": self.accuracy,
            "classifier_expected_accuracy": float(np.mean(self.classifier_accuracy)),
            "n_success": int(ok.sum()),
            "median_l2_of_successes": float(np.median(self.l2[ok])) if ok.any() else None,
            "median_linf_of_successes": float(np.median(self.linf[ok])) if ok.any() else None,
            "seconds": round(self.seconds, 1),
        }

    def per_example(self) -> dict[str, list]:
        return {"success": self.success.tolist(), "l2": self.l2.tolist(),
                "linf": self.linf.tolist(),
                "classifier_accuracy": self.classifier_accuracy.tolist()}


class Evaluator:
    """Runs the attacks of an adaptive evaluation on fixed images against one model."""

    def __init__(self, gaussian_fn: GaussianLogitsFn, images: np.ndarray, labels: np.ndarray,
                 config: AdaptiveConfig, stochastic: bool = True, log: Log = print) -> None:
        self.gaussian_fn = gaussian_fn
        self.images = np.asarray(images, np.float32)
        self.labels = np.asarray(labels, np.int64)
        self.config = config
        self.stochastic = bool(stochastic)
        self.log = log
        c = config
        # A deterministic predictive needs no samples: one draw of F = 0 noise is exact.
        self.s = c.eot_samples if stochastic else 1
        self.search_judge = eot_scores(gaussian_fn, c.judge_samples if stochastic else 1,
                                       c.seed + SEARCH_JUDGE_SEED_OFFSET, common=True)

    # ------------------------------------------------------------------ judging
    def judge(self, images: np.ndarray) -> np.ndarray:
        """Predicted classes of the independent large-sample expected predictive."""
        c = self.config
        n = c.judge_samples if self.stochastic else 1
        return np.argmax(expected_probs(self.gaussian_fn, images, n,
                                        c.seed + JUDGE_SEED_OFFSET), axis=1)

    def classifier_accuracy(self, images: np.ndarray) -> np.ndarray:
        c = self.config
        return sampled_classifier_accuracy(self.gaussian_fn, images, self.labels,
                                           c.classifier_samples, c.classifier_draws,
                                           c.seed + CLASSIFIER_SEED_OFFSET)

    def outcome(self, name: str, norm: str, budget: float | None, adversarial: np.ndarray,
                started: float, **extra: Any) -> Outcome:
        adversarial = np.asarray(adversarial, np.float32).reshape(self.images.shape)
        success = self.judge(adversarial) != self.labels
        _, l2, linf = perturbation_norms(self.images, adversarial)
        out = Outcome(name, norm, budget, success, l2, linf,
                      self.classifier_accuracy(adversarial), time.time() - started, extra)
        self.log(f"  {name}: robust accuracy {out.accuracy:.3f} "
                 f"(12-sample classifier {np.mean(out.classifier_accuracy):.3f}), "
                 f"{out.seconds:.0f}s")
        return out

    def scores(self, samples: int | None = None, seed_offset: int = 0):
        c = self.config
        s = self.s if samples is None or not self.stochastic else samples
        return eot_scores(self.gaussian_fn, s, c.seed + seed_offset, c.common_random_numbers)

    # ------------------------------------------------------------------ attacks
    def clean(self) -> Outcome:
        return self.outcome("clean", "l2", 0.0, self.images, time.time())

    def cw(self) -> Outcome:
        c = self.config
        started = time.time()
        adversarial, result = cw_l2(
            self.scores(), self.images, self.labels,
            binary_search_steps=c.cw_binary_search_steps, max_iterations=c.cw_max_iterations,
            learning_rate=c.cw_learning_rate, initial_const=c.cw_initial_const,
            confidence=c.cw_confidence,
            batch_size=c.cw_batch_size, success_fn=self.search_judge)
        return self.outcome("cw_l2", "l2", None, adversarial, started,
                            search_found=int(np.sum(result.l2 > 0)),
                            total_iterations=int(result.iterations.sum()))

    def pgd(self, norm: str, eps: float, iterations: int | None = None,
            restarts: int | None = None, samples: int | None = None,
            seed_offset: int = 0, name: str | None = None) -> Outcome:
        """PGD at budget eps; an image counts as broken if any restart's final iterate, with
        any of the configured losses, is adversarial on the judge. The step is
        pgd_step_factor * eps / pgd_iterations, also when `iterations` differs (so more
        iterations extend the same trajectory)."""
        c = self.config
        iterations = iterations or c.pgd_iterations
        restarts = restarts or c.pgd_restarts
        started = time.time()
        scores = self.scores(samples, seed_offset)
        best = self.images.copy()
        broken = self.judge(best) != self.labels
        losses = LOSSES if c.pgd_loss == "both" else (c.pgd_loss,)
        for r in range(restarts):
            seed = c.seed + seed_offset + RESTART_SEED_STRIDE * r
            for loss in losses:
                adversarial, _ = pgd(scores, self.images, self.labels, eps,
                                     c.pgd_step_factor * eps / c.pgd_iterations, iterations,
                                     norm=np.inf if norm == "linf" else 2, rand_init=True,
                                     seed=seed, loss=loss)
                new = (self.judge(adversarial) != self.labels) & ~broken
                best[new] = adversarial[new]
                broken |= new
        name = name or f"pgd_{norm}_{eps:g}"
        return self.outcome(name, norm, eps, best, started, iterations=iterations,
                            restarts=restarts, eot_samples=scores.num_samples)

    def spsa(self) -> Outcome:
        c = self.config
        started = time.time()
        adversarial, found = spsa(
            self.scores(c.spsa_eot_samples), self.images, self.labels, c.spsa_eps,
            c.spsa_iterations, learning_rate=c.spsa_learning_rate, delta=c.spsa_delta,
            spsa_samples=c.spsa_samples, seed=c.seed, success_fn=self.search_judge,
            batch_size=c.spsa_batch_size)
        return self.outcome(f"spsa_linf_{c.spsa_eps:g}", "linf", c.spsa_eps, adversarial,
                            started, search_found=int(found.sum()),
                            eot_samples=self.s if not self.stochastic else c.spsa_eot_samples)


def evaluate(
    gaussian_fn: GaussianLogitsFn, images: np.ndarray, labels: np.ndarray,
    config: AdaptiveConfig = AdaptiveConfig(), *, stochastic: bool = True,
    reference: bool | None = None, log: Log = print,
) -> dict[str, Any]:
    """The full adaptive evaluation; returns a JSON-ready dict (see `docs/robustness.md`).

    `reference`: the model is the known non-robust baseline that "deterministic model broken
    at small budgets" checks (default: any deterministic predictive)."""
    ev = Evaluator(gaussian_fn, images, labels, config, stochastic, log)
    c = config
    started = time.time()
    outcomes = {"clean": ev.clean(), "cw_l2": ev.cw()}
    for eps in c.l2_budgets:
        out = ev.pgd("l2", eps)
        outcomes[out.name] = out
    for eps in c.linf_budgets:
        out = ev.pgd("linf", eps)
        outcomes[out.name] = out
    spsa_out = ev.spsa()
    outcomes[spsa_out.name] = spsa_out
    sanity_runs: dict[str, Outcome] = {}
    if c.sanity:
        sanity_runs = sanity_attacks(ev, outcomes)
    curves = budget_curves(ev.labels, [*outcomes.values(), *sanity_runs.values()],
                           [outcomes["clean"], outcomes["cw_l2"]])
    checks = (sanity_checks(c, outcomes, sanity_runs, curves, stochastic, reference)
              if c.sanity else [])
    return {
        "config": c.to_dict(), "stochastic": stochastic, "n": int(len(labels)),
        "labels": ev.labels.tolist(),
        "attacks": {k: {"summary": o.summary(), "per_example": o.per_example()}
                    for k, o in {**outcomes, **sanity_runs}.items()},
        "robust_accuracy": robust_accuracy_table(c, outcomes, curves),
        "curves": curves,
        "sanity": checks,
        "seconds": round(time.time() - started, 1),
    }


# The keys the sanity suite's extra runs are stored under (`sanity_attacks`).
SANITY_RUNS = ("more_iterations", "more_restarts", "large_budget", "fewer_eot_samples")


def sanity_attacks(ev: Evaluator, outcomes: dict[str, Outcome]) -> dict[str, Outcome]:
    """The extra runs the sanity suite compares against the main ones."""
    c = ev.config
    b = c.sanity_l2_budget
    base = f"pgd_l2_{b:g}"
    if base not in outcomes:
        outcomes[base] = ev.pgd("l2", b)
    runs = {
        "more_iterations": ev.pgd("l2", b, iterations=2 * c.pgd_iterations,
                                  name=f"sanity_pgd_l2_{b:g}_iterations_x2"),
        "more_restarts": ev.pgd("l2", b, restarts=2 * c.pgd_restarts, seed_offset=1,
                                name=f"sanity_pgd_l2_{b:g}_restarts_x2"),
        "large_budget": ev.pgd("l2", c.large_l2_budget,
                               name=f"sanity_pgd_l2_{c.large_l2_budget:g}"),
    }
    if ev.stochastic:
        runs["fewer_eot_samples"] = ev.pgd("l2", b, samples=max(1, c.eot_samples // 10),
                                           name=f"sanity_pgd_l2_{b:g}_eot_div10")
    spsa_eps = f"pgd_linf_{c.spsa_eps:g}"
    if spsa_eps not in outcomes:
        outcomes[spsa_eps] = ev.pgd("linf", c.spsa_eps)
    return runs


def smallest_verified_norms(labels: np.ndarray, outcomes: list[Outcome]) -> dict[str, np.ndarray]:
    """Per image, the smallest L2 / L-inf norm of an adversarial verified on the judge (inf if
    none). A fixed-budget attack's adversarial counts at min(its norm, its budget), so float
    error cannot push it past its own budget; misclassified clean images count at 0."""
    best = {"l2": np.full(len(labels), np.inf), "linf": np.full(len(labels), np.inf)}
    for o in outcomes:
        for norm, values in (("l2", o.l2), ("linf", o.linf)):
            v = np.asarray(values, np.float64)
            if o.budget is not None and o.norm == norm:
                v = np.minimum(v, o.budget)
            best[norm] = np.where(o.success, np.minimum(best[norm], v), best[norm])
    return best


L2_GRID = tuple(np.round(np.arange(0.0, 5.0001, 0.1), 2).tolist())
LINF_GRID = tuple(np.round(np.arange(0.0, 0.5001, 0.01), 3).tolist())


def accuracy_curve(norms: np.ndarray, grid: tuple[float, ...]) -> list[float]:
    """Robust accuracy at each budget: fraction of images with no verified adversarial <= e."""
    return [float(np.mean(norms > e)) for e in grid]


def budget_curves(labels: np.ndarray, all_outcomes: list[Outcome],
                  minimal_norm: list[Outcome]) -> dict[str, Any]:
    """Accuracy-budget curves: from every attack, and from the minimal-norm CW alone."""
    every = smallest_verified_norms(labels, all_outcomes)
    cw = smallest_verified_norms(labels, minimal_norm)
    return {
        "l2": {"budgets": list(L2_GRID), "all_attacks": accuracy_curve(every["l2"], L2_GRID),
               "cw_only": accuracy_curve(cw["l2"], L2_GRID)},
        "linf": {"budgets": list(LINF_GRID),
                 "all_attacks": accuracy_curve(every["linf"], LINF_GRID),
                 "cw_only": accuracy_curve(cw["linf"], LINF_GRID)},
        "never_broken": float(np.mean(np.isinf(every["l2"]))),
        "smallest_l2": [None if np.isinf(v) else float(v) for v in every["l2"]],
        "smallest_linf": [None if np.isinf(v) else float(v) for v in every["linf"]],
    }


def robust_accuracy_at(curves: dict[str, Any], norm: str, eps: float) -> float:
    """Robust accuracy from the all-attacks curve's per-image norms at budget eps."""
    values = np.array([np.inf if v is None else v for v in curves[f"smallest_{norm}"]])
    return float(np.mean(values > eps))


def robust_accuracy_table(c: AdaptiveConfig, outcomes: dict[str, Outcome],
                          curves: dict[str, Any]) -> list[dict[str, Any]]:
    """Per budget: CW alone, PGD alone, and the strongest (every attack, per image)."""
    cw = outcomes["cw_l2"]
    rows = []
    for norm, budgets in (("l2", c.l2_budgets), ("linf", c.linf_budgets)):
        for eps in budgets:
            cw_norm = cw.l2 if norm == "l2" else cw.linf
            pgd_out = outcomes.get(f"pgd_{norm}_{eps:g}")
            row = {"norm": norm, "budget": eps,
                   "cw": float(np.mean(~(cw.success & (cw_norm <= eps)))),
                   "pgd": None if pgd_out is None else pgd_out.accuracy,
                   "strongest": robust_accuracy_at(curves, norm, eps)}
            if norm == "linf" and abs(eps - c.spsa_eps) < 1e-12:
                row["spsa"] = outcomes[f"spsa_linf_{c.spsa_eps:g}"].accuracy
            rows.append(row)
    return rows


def _check(name: str, passed: bool | None, detail: str) -> dict[str, Any]:
    return {"name": name, "passed": passed, "detail": detail}


def sign_test_p(only_weaker: int, only_stronger: int) -> float:
    """One-sided exact sign test: P(X >= only_weaker), X ~ Binomial(only_weaker +
    only_stronger, 1/2), i.e. how likely this many images broken by the weaker run alone are
    if neither run is stronger (only the images the two runs disagree on count)."""
    n = only_weaker + only_stronger
    return sum(math.comb(n, k) for k in range(only_weaker, n + 1)) / 2**n


def raised_significantly(weaker: Outcome, stronger: Outcome,
                         c: AdaptiveConfig) -> tuple[bool, str]:
    """Did the stronger run (more iterations, restarts or samples) leave a higher robust
    accuracy than the weaker one? Per-image outcomes of two runs differ by chance (other
    draws or starts, iterates that have not converged), so a rise counts only if it is
    above `tolerance` and significant at `significance` in a paired sign test."""
    rise = stronger.accuracy - weaker.accuracy
    only_weaker = int(np.sum(weaker.success & ~stronger.success))
    only_stronger = int(np.sum(stronger.success & ~weaker.success))
    p = sign_test_p(only_weaker, only_stronger)
    raised = rise > c.tolerance + 1e-12 and p < c.significance
    return raised, (f"broken by the weaker run only: {only_weaker}, by the stronger only: "
                    f"{only_stronger}; one-sided sign test p={p:.3g}")


def sanity_checks(c: AdaptiveConfig, outcomes: dict[str, Outcome],
                  runs: dict[str, Outcome], curves: dict[str, Any],
                  stochastic: bool, reference: bool | None = None) -> list[dict[str, Any]]:
    """Carlini et al. (2019)'s checks, each {name, passed (None: not applicable), detail}.
    `reference`: see `evaluate`."""
    reference = not stochastic if reference is None else reference
    tol = c.tolerance
    base = outcomes[f"pgd_l2_{c.sanity_l2_budget:g}"]
    large = runs["large_budget"]
    iterations_raised, iterations_test = raised_significantly(base, runs["more_iterations"], c)
    restarts_raised, restarts_test = raised_significantly(base, runs["more_restarts"], c)
    checks = [
        _check("accuracy reaches 0 at a large budget",
               large.accuracy <= tol and curves["never_broken"] <= tol,
               f"PGD-L2 at eps={c.large_l2_budget:g}: {large.accuracy:.3f}; images no attack "
               f"broke: {curves['never_broken']:.3f}"),
        _check("more iterations do not raise robust accuracy", not iterations_raised,
               f"PGD-L2 eps={c.sanity_l2_budget:g}: {base.accuracy:.3f} with "
               f"{c.pgd_iterations} iterations, {runs['more_iterations'].accuracy:.3f} with "
               f"{2 * c.pgd_iterations}; {iterations_test}"),
        _check("more restarts do not raise robust accuracy", not restarts_raised,
               f"PGD-L2 eps={c.sanity_l2_budget:g}: {base.accuracy:.3f} with "
               f"{c.pgd_restarts} restart(s), {runs['more_restarts'].accuracy:.3f} with "
               f"{2 * c.pgd_restarts} (other random starts); {restarts_test}"),
    ]
    if stochastic:
        fewer = runs["fewer_eot_samples"]
        samples_raised, samples_test = raised_significantly(fewer, base, c)
        checks.append(_check(
            "more EOT samples do not raise robust accuracy", not samples_raised,
            f"PGD-L2 eps={c.sanity_l2_budget:g}: {fewer.accuracy:.3f} with "
            f"{max(1, c.eot_samples // 10)} samples, {base.accuracy:.3f} with "
            f"{c.eot_samples}; {samples_test}"))
    else:
        checks.append(_check("more EOT samples do not raise robust accuracy", None,
                             "deterministic predictive: no samples"))
    spsa_out = outcomes[f"spsa_linf_{c.spsa_eps:g}"]
    pgd_linf = outcomes[f"pgd_linf_{c.spsa_eps:g}"]
    only_spsa = int(np.sum(spsa_out.success & ~pgd_linf.success))
    checks.append(_check(
        "gradient-free attack does not beat the gradient attack",
        spsa_out.accuracy >= pgd_linf.accuracy - tol,
        f"L-inf eps={c.spsa_eps:g}: SPSA {spsa_out.accuracy:.3f}, PGD {pgd_linf.accuracy:.3f}; "
        f"{only_spsa} image(s) broken by SPSA only"))
    if not reference:
        checks.append(_check("deterministic model broken at small budgets", None,
                             "applies to the deterministic baseline's evaluation"))
    else:
        at_small = robust_accuracy_at(curves, "l2", c.small_l2_budget)
        checks.append(_check(
            "deterministic model broken at small budgets", at_small <= c.broken_accuracy,
            f"robust accuracy at L2 eps={c.small_l2_budget:g}: {at_small:.3f} "
            f"(must be <= {c.broken_accuracy:g})"))
    return checks


def outcomes_of(result: dict[str, Any]) -> dict[str, Outcome]:
    """The per-image outcomes stored in an `evaluate` result (or an adaptive.json)."""
    out = {}
    for name, a in result["attacks"].items():
        s, pe = a["summary"], a["per_example"]
        o = Outcome(s["attack"], s["norm"], s["budget"], np.asarray(pe["success"], bool),
                    np.asarray(pe["l2"], np.float64), np.asarray(pe["linf"], np.float64),
                    np.asarray(pe["classifier_accuracy"], np.float64), s["seconds"])
        o.extra = {k: v for k, v in s.items() if k not in o.measured()}
        out[name] = o
    return out


def recheck(result: dict[str, Any], config: AdaptiveConfig) -> list[dict[str, Any]]:
    """The sanity checks of a stored result, decided again with `config`'s decision
    parameters (tolerance, significance, broken_accuracy) from its per-image outcomes; the
    attack parameters must be those the result was computed with."""
    if not config.sanity:
        return []
    outcomes = outcomes_of(result)
    runs = {key: outcomes.pop(key) for key in SANITY_RUNS if key in outcomes}
    reference = result["model_kind"] == "deterministic" if "model_kind" in result else None
    return sanity_checks(config, outcomes, runs, result["curves"], result["stochastic"],
                         reference)


def format_checks(checks: list[dict[str, Any]]) -> list[str]:
    """One line per check: PASS / FAIL / n/a, name, detail."""
    word = {True: "PASS", False: "FAIL", None: "n/a "}
    return [f"[{word[ch['passed']]}] {ch['name']}: {ch['detail']}" for ch in checks]


def all_passed(checks: list[dict[str, Any]]) -> bool:
    return all(ch["passed"] is not False for ch in checks)


def zero_noise(logits_fn: Callable[[tf.Tensor], tf.Tensor]) -> GaussianLogitsFn:
    """A deterministic `logits_fn` as a degenerate Gaussian (F = 0, rank 1)."""

    def gaussian(images: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        logits = logits_fn(images)
        return logits, tf.zeros_like(logits)[:, None, :]

    return gaussian
