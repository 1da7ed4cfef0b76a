"""Everything that defines a training run; saved as `config.json` in its output directory."""

from __future__ import annotations

import dataclasses

from deepvib.data import DATASETS
from deepvib.models import ModelConfig, VAEConfig, config_from_dict

STRATEGIES = ("default", "mirrored", "multi_worker")
# Keys that may change when a run is resumed: more epochs, the same data moved elsewhere, or how
# many steps run per call of the train function (speed, not the objective).
RESUMABLE_KEYS = ("epochs", "data_dir", "output_dir", "steps_per_execution")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    model: ModelConfig | VAEConfig
    output_dir: str
    dataset: str = "mnist_5k"
    data_dir: str | None = None
    validation_size: int = 0
    epochs: int = 200
    batch_size: int = 100
    learning_rate: float = 1e-4
    adam_beta1: float = 0.5
    adam_epsilon: float = 1e-7  # Keras' default, added to sqrt(v) before bias correction
    lr_decay_rate: float = 0.97
    lr_decay_epochs: float = 2.0
    seed: int = 0
    jit_compile: bool = True
    steps_per_execution: int = 1
    strategy: str = "default"

    def __post_init__(self):
        checks = [
            (self.dataset in DATASETS, f"unknown dataset {self.dataset!r}; choose from {DATASETS}"),
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}"),
            (self.learning_rate > 0, f"learning_rate must be > 0, got {self.learning_rate}"),
            (0 <= self.adam_beta1 < 1, f"adam_beta1 must be in [0, 1), got {self.adam_beta1}"),
            (self.adam_epsilon > 0, f"adam_epsilon must be > 0, got {self.adam_epsilon}"),
            (0 < self.lr_decay_rate <= 1, f"lr_decay_rate must be in (0, 1]: {self.lr_decay_rate}"),
            (self.lr_decay_epochs > 0, f"lr_decay_epochs must be > 0: {self.lr_decay_epochs}"),
            (self.validation_size >= 0, "validation_size must be >= 0"),
            (self.steps_per_execution >= 1,
             f"steps_per_execution must be >= 1, got {self.steps_per_execution}"),
            (self.strategy in STRATEGIES, f"strategy must be one of {STRATEGIES}"),
            (bool(self.output_dir), "an --output_dir is required"),
            (self.strategy == "default" or not getattr(self.model, "uses_capacity", False),
             f"--model={self.model.model} takes |batch-mean KL - C| over the whole batch, which "
             "does not split across replicas: use --strategy=default"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["model"] = self.model.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        d = dict(d)
        d["model"] = config_from_dict(d["model"])
        return cls(**d)

    def differences(self, other: TrainConfig) -> list[str]:
        """Keys (dotted) on which two configs disagree, ignoring the resumable ones."""
        mine, theirs = _flatten(self.to_dict()), _flatten(other.to_dict())
        keys = sorted(set(mine) | set(theirs))
        return [k for k in keys if k not in RESUMABLE_KEYS and mine.get(k) != theirs.get(k)]


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out
