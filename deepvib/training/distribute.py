"""`tf.distribute` strategies for `--strategy`: one device, MirroredStrategy over the local
devices, MultiWorkerMirroredStrategy over the workers named in TF_CONFIG.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf


def make_strategy(name: str) -> tuple[tf.distribute.Strategy, bool]:
    """The strategy and whether this process is the chief (the one that writes files)."""
    if name == "default":
        return tf.distribute.get_strategy(), True
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices=local_devices()), True
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError("--strategy=multi_worker needs the TF_CONFIG environment variable")
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        task = json.loads(os.environ["TF_CONFIG"]).get("task", {})
        is_chief = task.get("type") == "chief" or (
            task.get("type") == "worker" and task.get("index", 0) == 0
        )
        return strategy, is_chief
    raise ValueError(f"unknown strategy {name!r}; choose default, mirrored or multi_worker")


def local_devices() -> list[str]:
    """The GPUs, or when there are none every logical CPU device (MirroredStrategy's own
    default would take a single CPU even when the host is split into several)."""
    gpus = tf.config.list_logical_devices("GPU")
    return [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]


def shard_by_data(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """In-memory datasets have no files to shard by: shard workers by example."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)
