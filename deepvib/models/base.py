"""What every model here shares (`TrainableModel`: the weight moving average, the gradient
step, the reports the trainer prints and saves) and what every classifier shares (the MLP
trunk, predictives).

The trunk is the encoder of Alemi et al. 2017 §4: two ReLU layers of 1024 units on the
flattened 28x28 image. Images always enter in [0, 1]; `input_scaling="symmetric"` maps them
to [-1, 1] inside the model, as the authors' demo code does, so callers (attacks, serving)
never see the internal scaling.
"""

from __future__ import annotations

import contextlib

import tensorflow as tf
import tf_keras as keras

from deepvib.models.config import ModelConfig


def mlp_trunk(config: ModelConfig) -> keras.Sequential:
    layers: list[keras.layers.Layer] = [keras.layers.Flatten(name="flatten")]
    if config.input_scaling == "symmetric":
        layers.append(keras.layers.Rescaling(2.0, offset=-1.0, name="to_symmetric"))
    for i, units in enumerate(config.hidden_units):
        layers.append(keras.layers.Dense(units, activation="relu", name=f"hidden_{i}"))
        if config.dropout_rate > 0:
            layers.append(keras.layers.Dropout(config.dropout_rate, name=f"dropout_{i}"))
    return keras.Sequential(layers, name="trunk")


class TrainableModel(keras.Model):
    """A model the trainer can fit, average, report and resume; subclasses define the objective.

    `config` needs `model` (its name), `ema_decay` and `input_shape` (one image's shape).
    """

    def __init__(self, config, **kwargs):
        super().__init__(name=config.model, **kwargs)
        self.config = config
        self._ema_weights: list[tf.Variable] = []

    # -- construction -------------------------------------------------------------------
    def build_for_images(self, image_shape=None) -> TrainableModel:
        """Creates every variable (and the moving-average copies) by one symbolic call."""
        image_shape = image_shape or self.config.input_shape
        self(tf.zeros((1, *image_shape)), training=False)
        if self.config.ema_decay > 0 and not self._ema_weights:
            with tf.init_scope():
                self._ema_weights = [
                    tf.Variable(v, trainable=False, name=f"ema/{v.name.replace(':', '_')}")
                    for v in self.trainable_variables
                ]
        return self

    # -- moving average of the weights (authors' demo: decay 0.999, used for evaluation) --
    @property
    def ema_variables(self) -> list[tf.Variable]:
        return self._ema_weights

    def update_ema(self) -> None:
        decay = self.config.ema_decay
        for avg, var in zip(self._ema_weights, self.trainable_variables, strict=True):
            avg.assign(decay * avg + (1.0 - decay) * var)

    @contextlib.contextmanager
    def averaged_weights(self):
        """Temporarily swaps the trainable weights with their moving averages."""
        if not self._ema_weights:
            yield
            return
        self.swap_averaged_weights()
        try:
            yield
        finally:
            self.swap_averaged_weights()

    def keep_averaged_weights(self) -> None:
        """Swaps the averages in for good: the model then holds the averaged weights and
        `averaged_weights()` is a no-op (for a model loaded to be used, not trained)."""
        if self._ema_weights:
            self.swap_averaged_weights()
            self._ema_weights = []

    def swap_averaged_weights(self) -> None:
        for avg, var in zip(self._ema_weights, self.trainable_variables, strict=True):
            saved = tf.identity(var)
            var.assign(avg)
            avg.assign(saved)

    # -- shared training plumbing ----------------------------------------------------------
    def apply_gradients(self, tape: tf.GradientTape, loss: tf.Tensor) -> None:
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables, strict=True))
        if self._ema_weights:
            self.update_ema()

    @staticmethod
    def average(per_example: tf.Tensor) -> tf.Tensor:
        """Mean over the global batch; correct under tf.distribute replication."""
        return tf.nn.compute_average_loss(per_example)

    # -- what the trainer reports (each family its own numbers) ----------------------------
    def progress_fields(self) -> list[tuple[str, str]]:
        """(metric, label) pairs of the per-epoch progress line, in order."""
        raise NotImplementedError

    def headline_metrics(self, evaluation: dict) -> dict:
        """The top-level numbers of metrics.json, from the evaluation of the held-out split."""
        raise NotImplementedError


class Classifier(TrainableModel):
    """Base of the VIB and deterministic classifiers; subclasses define the objective."""

    def __init__(self, config: ModelConfig, **kwargs):
        super().__init__(config, **kwargs)
        self.trunk = mlp_trunk(config)
        self.decoder = keras.layers.Dense(config.num_classes, name="decoder")

    # -- predictions with images in [0, 1] -------------------------------------------------
    def predictive_log_probs(self, images: tf.Tensor, num_samples: int | None = None) -> tf.Tensor:
        """log p(y|x), [B, C]. For VIB: mean of softmaxes over `num_samples` posterior samples
        (0 means z = posterior mean); deterministic models ignore `num_samples`."""
        raise NotImplementedError

    def call(self, images, training=False):
        return self.predictive_log_probs(images)

    @staticmethod
    def error(labels: tf.Tensor, log_probs: tf.Tensor) -> tf.Tensor:
        predicted = tf.argmax(log_probs, axis=-1, output_type=labels.dtype)
        return tf.cast(tf.not_equal(predicted, labels), tf.float32)
