"""Attack result format and perturbation norms (L0, L2, L-inf), as reported by Alemi et al.
(2017, section 4.2, Figure 4) for the Carlini & Wagner (2017) L2 attack."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

DEFAULT_L0_TOLERANCE = 1e-5


def perturbation_norms(
    images: np.ndarray, adversarial: np.ndarray, l0_tolerance: float = DEFAULT_L0_TOLERANCE
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-example L0, L2 and L-inf norms of `adversarial - images`.

    L0 counts entries with |delta| > l0_tolerance: the tanh change of variables of the C&W
    attack reconstructs untouched pixels only up to ~1e-6, which must not count as changed.
    """
    delta = (np.asarray(adversarial, np.float64) - np.asarray(images, np.float64))
    delta = delta.reshape(len(delta), -1)
    l0 = np.sum(np.abs(delta) > l0_tolerance, axis=1).astype(np.int64)
    return l0, np.linalg.norm(delta, axis=1), np.max(np.abs(delta), axis=1, initial=0.0)


@dataclasses.dataclass(frozen=True)
class AttackResult:
    """Per-example outcome of an attack.

    success: untargeted: predicted != label; targeted: predicted == target, evaluated on the
        returned adversarial images.
    l0, l2, linf: norms of the perturbation (adversarial - original).
    predicted: class of the returned adversarial image.
    iterations: optimisation iterations spent on each example (iterative attacks that report
        it, e.g. CW with early abort), else None.
    """

    attack: str
    labels: np.ndarray
    targets: np.ndarray | None
    success: np.ndarray
    predicted: np.ndarray
    l0: np.ndarray
    l2: np.ndarray
    linf: np.ndarray
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    iterations: np.ndarray | None = None

    @classmethod
    def from_images(
        cls,
        attack: str,
        images: np.ndarray,
        adversarial: np.ndarray,
        labels: np.ndarray,
        predicted: np.ndarray,
        targets: np.ndarray | None = None,
        params: dict[str, Any] | None = None,
        iterations: np.ndarray | None = None,
    ) -> AttackResult:
        """Build a result: success from `predicted` vs labels/targets, norms from the images."""
        success = predicted != labels if targets is None else predicted == targets
        l0, l2, linf = perturbation_norms(images, adversarial)
        return cls(attack, np.asarray(labels), None if targets is None else np.asarray(targets),
                   np.asarray(success, bool), np.asarray(predicted), l0, l2, linf,
                   dict(params or {}),
                   None if iterations is None else np.asarray(iterations, np.int64))

    @property
    def targeted(self) -> bool:
        return self.targets is not None

    def summary(self) -> dict[str, Any]:
        """Success rate, accuracy under attack, and mean/median norms over successful examples."""
        ok = self.success
        out: dict[str, Any] = {
            "attack": self.attack,
            "targeted": self.targeted,
            "n": int(len(ok)),
            "n_success": int(ok.sum()),
            "success_rate": float(ok.mean()) if len(ok) else float("nan"),
            "accuracy_under_attack": float(np.mean(self.predicted == self.labels))
            if len(ok) else float("nan"),
        }
        for name in ("l0", "l2", "linf"):
            values = getattr(self, name)[ok].astype(np.float64)
            out[f"mean_{name}"] = float(values.mean()) if values.size else float("nan")
            out[f"median_{name}"] = float(np.median(values)) if values.size else float("nan")
        if self.iterations is not None:
            out["total_iterations"] = int(self.iterations.sum())
        return out

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict: summary, parameters and the per-example arrays."""
        per_example = {
            "labels": self.labels.tolist(),
            "targets": None if self.targets is None else self.targets.tolist(),
            "success": self.success.tolist(),
            "predicted": self.predicted.tolist(),
            "l0": self.l0.tolist(),
            "l2": self.l2.tolist(),
            "linf": self.linf.tolist(),
        }
        if self.iterations is not None:
            per_example["iterations"] = self.iterations.tolist()
        return {"summary": self.summary(), "params": _jsonable(self.params),
                "per_example": per_example}


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    return {k: (float(v) if isinstance(v, (float, np.floating)) else v)
            for k, v in params.items()}
