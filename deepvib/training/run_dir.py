"""A run's output directory: config, checkpoints, progress, metrics, TensorBoard scalars.

    <output_dir>/config.json        the TrainConfig (also flags.txt: the flags as given)
    <output_dir>/checkpoints/       tf.train.CheckpointManager, one checkpoint per epoch
    <output_dir>/progress.jsonl     one line of metrics per finished epoch
    <output_dir>/metrics.json       final errors and information terms
    <output_dir>/tensorboard/       scalars per epoch

Every file is written atomically; a killed run resumes from its last checkpoint. While a run
trains, its directory is locked (`exclusive`): a second trainer pointed at it stops at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator

import tensorflow as tf

from deepvib.models import TrainableModel, build_model
from deepvib.training import atomic
from deepvib.training.config import TrainConfig

CONFIG = "config.json"
FLAGS_TEXT = "flags.txt"
METRICS = "metrics.json"
PROGRESS = "progress.jsonl"
CHECKPOINTS = "checkpoints"


class RunDirError(ValueError):
    """The output directory cannot be used for this run (or loaded as one)."""


@contextlib.contextmanager
def exclusive(path: str) -> Iterator[None]:
    """An exclusive lock on the run directory for the block (flock on the directory itself,
    so nothing is added to it; the kernel drops it when the process dies, so no stale lock).
    Two trainers in one directory would overwrite each other's checkpoints and progress."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise RunDirError(f"--output_dir={path} is a file, not a directory")
    os.makedirs(path, exist_ok=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunDirError(
                f"--output_dir={path} is being trained by another process right now; wait "
                "for it to finish (it resumes from there) or choose another --output_dir"
            ) from None
        yield
    finally:
        os.close(fd)


def prepare(config: TrainConfig, flags_text: str | None = None) -> bool:
    """Creates or validates the run directory; returns True when there is a run to resume.

    `flags_text` (the command line's flags, one per line) is saved as flags.txt.
    """
    resuming = _prepare(config)
    if flags_text is not None:
        atomic.write_text(os.path.join(config.output_dir, FLAGS_TEXT), flags_text)
    return resuming


def _prepare(config: TrainConfig) -> bool:
    path = config.output_dir
    config_path = os.path.join(path, CONFIG)
    if os.path.exists(config_path):
        saved = TrainConfig.from_dict(atomic.read_json(config_path))
        diff = config.differences(saved)
        if diff:
            raise RunDirError(
                f"--output_dir={path} holds a run with a different config (differs in: "
                f"{', '.join(diff)}); choose a new --output_dir or rerun with the same flags"
            )
        atomic.write_json(config_path, config.to_dict())  # epochs may have grown
        return True
    if os.path.isdir(path) and os.listdir(path):
        raise RunDirError(
            f"--output_dir={path} is not empty and holds no deepvib run ({CONFIG} missing); "
            "choose an empty or new directory"
        )
    os.makedirs(path, exist_ok=True)
    atomic.write_json(config_path, config.to_dict())
    return False


def checkpoint_manager(path: str, checkpoint: tf.train.Checkpoint) -> tf.train.CheckpointManager:
    return tf.train.CheckpointManager(checkpoint, os.path.join(path, CHECKPOINTS), max_to_keep=2)


def append_progress(path: str, record: dict) -> None:
    with open(os.path.join(path, PROGRESS), "a", encoding="utf-8") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")


def truncate_progress(path: str, epochs_done: int) -> None:
    """Drops progress lines of epochs that finished after the last checkpoint."""
    progress = os.path.join(path, PROGRESS)
    if not os.path.exists(progress):
        return
    with open(progress, encoding="utf-8") as f:
        lines = [line for line in f if line.strip()]
    kept = [line for line in lines if json.loads(line)["epoch"] <= epochs_done]
    atomic.write_text(progress, "".join(kept))


def read_progress(path: str) -> list[dict]:
    progress = os.path.join(path, PROGRESS)
    if not os.path.exists(progress):
        return []
    with open(progress, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def load_config(path: str) -> TrainConfig:
    config_path = os.path.join(path, CONFIG)
    if not os.path.exists(config_path):
        raise RunDirError(f"{path} is not a deepvib run directory ({CONFIG} missing)")
    return TrainConfig.from_dict(atomic.read_json(config_path))


def latest_checkpoint_name(path: str) -> str:
    """The base name of the run's latest checkpoint (e.g. 'ckpt-40'); none is an error."""
    latest = tf.train.latest_checkpoint(os.path.join(path, CHECKPOINTS))
    if latest is None:
        raise RunDirError(f"{path} has no checkpoint yet")
    return os.path.basename(latest)


def load_model(path: str, averaged: bool = True) -> tuple[TrainableModel, TrainConfig]:
    """The trained model (classifier or VAE) of a run, with its moving-average weights when
    the run kept them."""
    config = load_config(path)
    model = build_model(config.model)
    latest = os.path.join(path, CHECKPOINTS, latest_checkpoint_name(path))
    tf.train.Checkpoint(model=model).restore(latest).expect_partial()
    if averaged:
        model.keep_averaged_weights()  # from now on the model holds the averaged weights
    return model, config
