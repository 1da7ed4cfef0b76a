"""The deterministic baselines of Alemi et al. 2017 §4.1.1 (Table 1), same architecture as VIB:
z = f_mu(x) (a linear K-unit layer, no Gaussian), softmax decoder. Objectives:
maximum likelihood ("deterministic"), dropout on the hidden layers, the confidence penalty
(eq. 4, Pereyra et al. 2016) and label smoothing.
"""

from __future__ import annotations

import tensorflow as tf
import tf_keras as keras

from deepvib.models import objectives
from deepvib.models.base import Classifier
from deepvib.models.config import ModelConfig


class DeterministicClassifier(Classifier):
    def __init__(self, config: ModelConfig, **kwargs):
        super().__init__(config, **kwargs)
        self.embedding = keras.layers.Dense(config.bottleneck_dim, name="embedding")
        self._trackers = {n: keras.metrics.Mean(name=n) for n in ("loss", "ce", "error")}

    @property
    def metrics(self):
        return list(self._trackers.values())

    def embed(self, images: tf.Tensor, training: bool = False) -> tf.Tensor:
        return self.embedding(self.trunk(images, training=training))

    def logits(self, images: tf.Tensor, training: bool = False) -> tf.Tensor:
        return self.decoder(self.embed(images, training=training))

    def predictive_log_probs(self, images, num_samples=None):
        del num_samples  # deterministic: every sample is the same
        return tf.nn.log_softmax(self.logits(images))

    def per_example_loss(self, labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
        if self.config.confidence_penalty > 0:
            return objectives.confidence_penalty_loss(
                labels, logits, self.config.confidence_penalty
            )
        if self.config.label_smoothing > 0:
            return objectives.label_smoothing_loss(labels, logits, self.config.label_smoothing)
        return objectives.cross_entropy(labels, logits)

    def _step(self, data, training: bool) -> dict:
        images, labels = data
        with tf.GradientTape() as tape:
            logits = self.logits(images, training=training)
            loss = self.average(self.per_example_loss(labels, logits))
        if training:
            self.apply_gradients(tape, loss)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        self._trackers["loss"].update_state(loss * replicas)
        self._trackers["ce"].update_state(objectives.cross_entropy(labels, logits))
        self._trackers["error"].update_state(self.error(labels, logits))
        return {name: t.result() for name, t in self._trackers.items()}

    def progress_fields(self) -> list[tuple[str, str]]:
        return [("train_loss", "train loss"), ("test_error", "test err")]

    def headline_metrics(self, evaluation: dict) -> dict:
        return {"test_error": evaluation["error"]}

    def train_step(self, data):
        return self._step(data, training=True)

    def test_step(self, data):
        return self._step(data, training=False)
