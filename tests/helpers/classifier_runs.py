"""Tiny classifier run directories as bin/train leaves them (config.json, checkpoints/), briefly
trained on the embedded mnist_5k: the models that tests/test_attack_cli.py and
tests/test_adaptive_cli.py attack (built once per session by the `tiny_classifier_runs` fixture
of tests/conftest.py; the tests only read them)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tf_keras as keras

from deepvib.data.sources import Split
from deepvib.models import ModelConfig, build_model
from deepvib.training import run_dir
from deepvib.training.config import TrainConfig


def tiny_model_config(model: str) -> ModelConfig:
    return ModelConfig(model=model, hidden_units=(16,), bottleneck_dim=4,
                       beta=1e-3 if model == "vib" else 0.0,
                       eval_samples=4 if model == "vib" else 1)


def make_run_dir(path: str, model: str, train: Split, steps: int = 60) -> str:
    """A run directory as bin/train leaves it (config.json, checkpoints/), briefly trained."""
    keras.utils.set_random_seed(0)
    config = TrainConfig(model=tiny_model_config(model), output_dir=path, dataset="mnist_5k",
                         epochs=1, jit_compile=False)
    run_dir.prepare(config)
    classifier = build_model(config.model)
    classifier.compile(optimizer=keras.optimizers.Adam(3e-3))
    step = tf.function(classifier.train_step)
    rng = np.random.default_rng(0)
    for _ in range(steps):
        batch = rng.integers(0, len(train), 200)
        step((tf.constant(train.images[batch]), tf.constant(train.labels[batch])))
    manager = run_dir.checkpoint_manager(path, tf.train.Checkpoint(model=classifier))
    manager.save(checkpoint_number=1)
    return path
