"""What `bin/attack` runs: the attack, its parameters, which test images and which targets.

The protocol is Alemi et al. (2017, section 4.2): the Carlini & Wagner L2 attack with C&W's
parameters (9 binary-search steps, 10,000 iterations, learning rate 1e-2, initial constant
1e-3, abort early) on the first 1,000 test images; targeted attacks aim at "a random target
label different from the source label"; Figure 3 pushes the first 10 zeros to class 1
(`source_class=0, target_class=1`). FGSM and PGD are offered as cheaper companions.

Everything here is plain Python and NumPy, so bad input is rejected before TensorFlow loads.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

ATTACKS = ("cw_l2", "fgsm", "pgd")
NORMS = {"fgsm": ("inf", "1", "2"), "pgd": ("inf", "2")}
NUM_CLASSES = 10


@dataclasses.dataclass(frozen=True)
class AttackConfig:
    """One attack experiment, applied identically to every model given to `bin/attack`."""

    attack: str = "cw_l2"
    targeted: bool = False
    num_images: int = 1000
    source_class: int | None = None  # attack only test images of this class (Figure 3: 0)
    target_class: int | None = None  # targeted: this target for all (Figure 3: 1), else random
    seed: int = 0
    attack_samples: int = 12  # VIB posterior samples of the attacked predictive; 0: mean mode
    # CW on a sampling VIB: judge success on an independent predictive with this many samples
    # (0: on the attacked scores themselves, as C&W do).
    success_samples: int = 0
    dataset: str | None = None  # None: the dataset the run was trained on
    data_dir: str | None = None
    # Carlini & Wagner L2 (defaults: C&W's reference parameters).
    binary_search_steps: int = 9
    max_iterations: int = 10_000
    learning_rate: float = 1e-2
    initial_const: float = 1e-3
    confidence: float = 0.0
    abort_early: bool = True
    cw_batch_size: int = 100
    # FGSM / PGD.
    eps: float = 0.3
    eps_iter: float = 0.01
    nb_iter: int = 40
    norm: str = "inf"
    rand_init: bool = True

    def __post_init__(self):
        problems = self.problems()
        if problems:
            raise ValueError("; ".join(problems))

    def problems(self) -> list[str]:
        """Every reason this configuration cannot run (empty when it can)."""
        checks = [
            (self.attack in ATTACKS,
             f"unknown attack {self.attack!r}; choose one of {', '.join(ATTACKS)}"),
            (_is_int(self.num_images) and self.num_images >= 1,
             f"--num_images must be an integer >= 1, got {self.num_images!r}"),
            (_is_int(self.attack_samples) and self.attack_samples >= 0,
             f"--attack_samples must be an integer >= 0 (0: VIB mean mode), "
             f"got {self.attack_samples!r}"),
            (self.source_class is None or 0 <= self.source_class < NUM_CLASSES,
             f"--source_class must be in [0, {NUM_CLASSES}), got {self.source_class}"),
            (self.target_class is None or 0 <= self.target_class < NUM_CLASSES,
             f"--target_class must be in [0, {NUM_CLASSES}), got {self.target_class}"),
            (self.target_class is None or self.targeted,
             "--target_class needs --targeted"),
            (self.target_class is None or self.target_class != self.source_class,
             "--target_class must differ from --source_class"),
            (self.data_dir is None or bool(self.data_dir), "--data_dir must not be empty"),
        ]
        if self.attack in ATTACKS:
            checks += self._attack_checks()
        return [message for ok, message in checks if not ok]

    def _attack_checks(self) -> list[tuple[bool, str]]:
        if self.attack == "cw_l2":
            return [
                (_is_int(self.binary_search_steps) and self.binary_search_steps >= 1,
                 f"--binary_search_steps must be >= 1, got {self.binary_search_steps}"),
                (_is_int(self.max_iterations) and self.max_iterations >= 1,
                 f"--max_iterations must be >= 1, got {self.max_iterations}"),
                (self.learning_rate > 0, f"--learning_rate must be > 0, got {self.learning_rate}"),
                (self.initial_const > 0, f"--initial_const must be > 0, got {self.initial_const}"),
                (self.confidence >= 0, f"--confidence must be >= 0, got {self.confidence}"),
                (_is_int(self.cw_batch_size) and self.cw_batch_size >= 1,
                 f"--cw_batch_size must be >= 1, got {self.cw_batch_size}"),
                (_is_int(self.success_samples) and self.success_samples >= 0,
                 f"--success_samples must be an integer >= 0, got {self.success_samples!r}"),
                (self.success_samples == 0 or self.attack_samples > 0,
                 "--success_samples needs a sampling predictive (--attack_samples > 0)"),
            ]
        checks = [
            (self.eps > 0, f"--eps must be > 0, got {self.eps}"),
            (self.norm in NORMS[self.attack],
             f"--norm={self.norm} is not available for {self.attack}; choose one of "
             f"{', '.join(NORMS[self.attack])}"),
        ]
        if self.attack == "pgd":
            checks += [
                (0 < self.eps_iter <= self.eps,
                 f"--eps_iter must be in (0, eps={self.eps}], got {self.eps_iter}"),
                (_is_int(self.nb_iter) and self.nb_iter >= 1,
                 f"--nb_iter must be >= 1, got {self.nb_iter}"),
            ]
        return checks

    @property
    def experiment_name(self) -> str:
        """e.g. 'cw_l2_targeted', 'cw_l2_untargeted', 'cw_l2_targeted_0to1'."""
        name = f"{self.attack}_{'targeted' if self.targeted else 'untargeted'}"
        if self.source_class is not None or self.target_class is not None:
            source = "all" if self.source_class is None else self.source_class
            target = "random" if self.target_class is None else self.target_class
            name += f"_{source}to{target}"
        return name

    def params(self) -> dict[str, Any]:
        """The parameters that define the experiment's outcome (saved in every attack.json).

        Only the chosen attack's own parameters are included, so two runs that differ only in
        an unused flag are the same experiment; `success_samples` only when set, so records
        written before it existed still match.
        """
        common = ("attack", "targeted", "num_images", "source_class", "target_class", "seed",
                  "attack_samples", "dataset", "data_dir")
        own = {
            "cw_l2": ("binary_search_steps", "max_iterations", "learning_rate", "initial_const",
                      "confidence", "abort_early", "cw_batch_size"),
            "fgsm": ("eps", "norm"),
            "pgd": ("eps", "eps_iter", "nb_iter", "norm", "rand_init"),
        }[self.attack]
        params = {name: getattr(self, name) for name in common + own}
        if self.attack == "cw_l2" and self.success_samples:
            params["success_samples"] = self.success_samples
        return params


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def select_indices(labels: np.ndarray, num_images: int, source_class: int | None) -> np.ndarray:
    """Indices of the first `num_images` test images (of `source_class` only, if given)."""
    labels = np.asarray(labels)
    candidates = (np.arange(len(labels)) if source_class is None
                  else np.flatnonzero(labels == source_class))
    if len(candidates) < num_images:
        which = "test images" if source_class is None else f"test images of class {source_class}"
        raise ValueError(f"--num_images={num_images} but the test set has only "
                         f"{len(candidates)} {which}")
    return candidates[:num_images].astype(np.int64)


def choose_targets(
    labels: np.ndarray, seed: int, target_class: int | None = None,
    num_classes: int = NUM_CLASSES,
) -> np.ndarray:
    """Target classes different from `labels`: `target_class` for all, or uniformly random.

    Random targets are drawn uniformly among the other `num_classes - 1` classes, from a
    generator seeded by `seed` alone, so every model is attacked with the same targets.
    """
    labels = np.asarray(labels, np.int64)
    if target_class is not None:
        same = np.flatnonzero(labels == target_class)
        if same.size:
            raise ValueError(
                f"--target_class={target_class} equals the label of {same.size} of the "
                "selected images; choose their --source_class too (e.g. --source_class=0 "
                "--target_class=1 for Figure 3)")
        return np.full(len(labels), target_class, np.int64)
    offsets = np.random.default_rng(seed).integers(1, num_classes, size=len(labels))
    return (labels + offsets) % num_classes
