"""Subprocess helper of tests/test_distribute.py: trains one epoch under a strategy on a host
CPU split into 2 logical devices and prints the per-step logs and final metrics as JSON.

Usage: python -m tests.helpers.distributed_run STRATEGY MODEL OUTPUT_DIR
(TF_CONFIG in the environment for multi_worker).
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

from deepvib.models import ModelConfig  # noqa: E402
from deepvib.training.config import TrainConfig  # noqa: E402
from deepvib.training.distribute import local_devices  # noqa: E402
from deepvib.training.trainer import train  # noqa: E402


class BatchLogs(keras.callbacks.Callback):
    """The logs Keras reports after every training step (running means of the metrics)."""

    def __init__(self):
        super().__init__()
        self.steps = []

    def on_train_batch_end(self, batch, logs=None):
        self.steps.append({k: float(v) for k, v in logs.items()})


def main(strategy: str, model: str, output_dir: str) -> None:
    if strategy == "mirrored":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    extra = {"beta": 1e-3, "eval_samples": 2} if model == "vib" else {}
    config = TrainConfig(
        model=ModelConfig(model=model, hidden_units=(32,), bottleneck_dim=8, ema_decay=0.9,
                          **extra),
        output_dir=output_dir, dataset="mnist_5k", epochs=1, batch_size=200,
        learning_rate=1e-3, adam_beta1=0.9, lr_decay_rate=1.0, jit_compile=False, seed=7,
        strategy=strategy,
    )
    batch_logs = BatchLogs()
    metrics = train(config, log=lambda _: None, callbacks=[batch_logs])
    print("RESULT " + json.dumps({"steps": batch_logs.steps, "metrics": metrics,
                                  "local_devices": len(local_devices())}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
