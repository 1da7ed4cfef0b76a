"""Classifiers with TFP distribution heads; objectives live in their `train_step`."""

from deepvib.models.base import Classifier
from deepvib.models.config import INPUT_SCALINGS, MODELS, ModelConfig
from deepvib.models.deterministic import DeterministicClassifier
from deepvib.models.heads import COVARIANCES
from deepvib.models.vib import VIBClassifier


def build_model(config: ModelConfig) -> Classifier:
    """A classifier with all its variables created (including moving-average copies)."""
    cls = VIBClassifier if config.stochastic else DeterministicClassifier
    return cls(config).build_for_images()


__all__ = [
    "COVARIANCES",
    "INPUT_SCALINGS",
    "MODELS",
    "Classifier",
    "DeterministicClassifier",
    "ModelConfig",
    "VIBClassifier",
    "build_model",
]
