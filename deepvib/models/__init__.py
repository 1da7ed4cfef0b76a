"""Classifiers and VAEs with TFP distribution layers; objectives live in their `train_step`."""

from deepvib.models.base import Classifier, TrainableModel
from deepvib.models.config import INPUT_SCALINGS, KL_ESTIMATORS, MODELS, ModelConfig
from deepvib.models.deterministic import DeterministicClassifier
from deepvib.models.heads import COVARIANCES
from deepvib.models.vae import VAE
from deepvib.models.vae_config import VAE_MODELS, VAEConfig
from deepvib.models.vib import VIBClassifier

ALL_MODELS = MODELS + VAE_MODELS


def build_model(config: ModelConfig | VAEConfig) -> TrainableModel:
    """A model with all its variables created (including moving-average copies)."""
    if isinstance(config, VAEConfig):
        return VAE(config).build_for_images()
    cls = VIBClassifier if config.stochastic else DeterministicClassifier
    return cls(config).build_for_images()


def config_from_dict(d: dict) -> ModelConfig | VAEConfig:
    """The model config saved in a run's config.json, of either family."""
    cls = VAEConfig if d.get("model") in VAE_MODELS else ModelConfig
    return cls.from_dict(d)


__all__ = [
    "ALL_MODELS",
    "COVARIANCES",
    "INPUT_SCALINGS",
    "KL_ESTIMATORS",
    "MODELS",
    "VAE",
    "VAE_MODELS",
    "Classifier",
    "DeterministicClassifier",
    "ModelConfig",
    "TrainableModel",
    "VAEConfig",
    "VIBClassifier",
    "build_model",
    "config_from_dict",
]
