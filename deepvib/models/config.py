"""The hyperparameters that define a classifier; saved with every run and export."""

from __future__ import annotations

import dataclasses

from deepvib.models.heads import COVARIANCES

MODELS = ("vib", "deterministic", "dropout", "confidence_penalty", "label_smoothing")
INPUT_SCALINGS = ("unit", "symmetric")
KL_ESTIMATORS = ("analytic", "sampled")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    model: str = "vib"
    bottleneck_dim: int = 256
    covariance: str = "diag"
    beta: float = 1e-3
    eval_samples: int = 12
    train_samples: int = 1  # z samples per example in training; CE is their mean
    kl_estimator: str = "analytic"  # VIB training: analytic KL, or log p(z|x) - log r(z) at z
    hidden_units: tuple[int, ...] = (1024, 1024)
    input_scaling: str = "symmetric"  # images in [0, 1] are fed to the MLP as 2x - 1
    dropout_rate: float = 0.0
    confidence_penalty: float = 0.0
    label_smoothing: float = 0.0
    ema_decay: float = 0.0
    num_classes: int = 10
    label_entropy_bits: float = 3.321928094887362  # H(Y) for uniform labels, log2(10)

    def __post_init__(self):
        object.__setattr__(self, "hidden_units", tuple(int(h) for h in self.hidden_units))
        self.validate()

    def validate(self) -> None:
        checks = [
            (self.model in MODELS, f"unknown model {self.model!r}; choose one of {MODELS}"),
            (self.covariance in COVARIANCES, f"covariance must be one of {COVARIANCES}"),
            (self.input_scaling in INPUT_SCALINGS, f"input_scaling must be in {INPUT_SCALINGS}"),
            (self.bottleneck_dim >= 1, f"bottleneck_dim must be >= 1, got {self.bottleneck_dim}"),
            (self.beta >= 0, f"beta must be >= 0, got {self.beta}"),
            (self.eval_samples >= 1, f"eval_samples must be >= 1, got {self.eval_samples}"),
            (self.kl_estimator in KL_ESTIMATORS,
             f"kl_estimator must be one of {KL_ESTIMATORS}, got {self.kl_estimator!r}"),
            (self.kl_estimator == "analytic" or self.model == "vib",
             f"kl_estimator={self.kl_estimator!r} applies to the VIB only, not {self.model!r}"),
            (self.train_samples >= 1, f"train_samples must be >= 1, got {self.train_samples}"),
            (all(h >= 1 for h in self.hidden_units), "hidden_units must be positive"),
            (0 <= self.dropout_rate < 1, f"dropout_rate must be in [0, 1): {self.dropout_rate}"),
            (self.confidence_penalty >= 0, "confidence_penalty must be >= 0"),
            (0 <= self.label_smoothing < 1, "label_smoothing must be in [0, 1)"),
            (0 <= self.ema_decay < 1, f"ema_decay must be in [0, 1), got {self.ema_decay}"),
            (self.num_classes >= 2, "num_classes must be >= 2"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    family = "classifier"
    input_shape = (28, 28, 1)  # one image as the models take it

    @property
    def stochastic(self) -> bool:
        return self.model == "vib"

    def with_data(self, train_labels) -> ModelConfig:
        """The config completed from the training data: H(Y) of its labels."""
        from deepvib.data import label_entropy_bits

        return dataclasses.replace(self, label_entropy_bits=label_entropy_bits(train_labels))

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["hidden_units"] = list(self.hidden_units)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - fields
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        return cls(**d)
