"""Input checks shared by the attacks (a clear `ValueError` before any optimisation), and the
batched model evaluation they rely on."""

from __future__ import annotations

import numbers

import numpy as np
import tensorflow as tf


def check_images(images: np.ndarray, clip_min: float, clip_max: float) -> np.ndarray:
    """Return `images` as float32 [N, ...]; require finite values inside [clip_min, clip_max]."""
    if not clip_min < clip_max:
        raise ValueError(f"clip_min ({clip_min}) must be < clip_max ({clip_max})")
    x = np.asarray(images, dtype=np.float32)
    if x.ndim < 2 or len(x) == 0:
        raise ValueError(f"images must be a non-empty batch [N, ...], got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("images contain NaN or inf")
    lo, hi = float(x.min()), float(x.max())
    if lo < clip_min or hi > clip_max:
        raise ValueError(
            f"images must lie in [clip_min, clip_max] = [{clip_min}, {clip_max}], "
            f"got values in [{lo}, {hi}]"
        )
    return x


def check_classes(name: str, values: np.ndarray, n: int) -> np.ndarray:
    """Return integer class ids of shape [n]."""
    arr = np.asarray(values)
    if arr.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},) to match images, got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must be integer class ids, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def check_class_range(name: str, values: np.ndarray, num_classes: int) -> None:
    if values.size and (values.min() < 0 or values.max() >= num_classes):
        raise ValueError(f"{name} must be in [0, {num_classes}), got "
                         f"[{values.min()}, {values.max()}]")


def check_targets(labels: np.ndarray, targets: np.ndarray | None) -> np.ndarray | None:
    if targets is None:
        return None
    targets = check_classes("targets", targets, len(labels))
    same = np.flatnonzero(targets == labels)
    if same.size:
        raise ValueError(f"targets equal labels at indices {same[:10].tolist()}")
    return targets


def check_positive_int(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return float(value)


def check_non_negative(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return float(value)


def check_logits(logits: np.ndarray, n: int) -> int:
    """Require logits [n, C] with C >= 2; return C."""
    if logits.ndim != 2 or logits.shape[0] != n or logits.shape[1] < 2:
        raise ValueError(f"logits_fn must return [N, C>=2] logits, got {logits.shape} for N={n}")
    return int(logits.shape[1])


def evaluate_logits(logits_fn, images: np.ndarray, batch_size: int) -> np.ndarray:
    """Logits of `images` in batches of exactly `batch_size` (the last one padded)."""
    out = []
    for i in range(0, len(images), batch_size):
        batch = images[i : i + batch_size]
        n = len(batch)
        padded = np.concatenate([batch, np.repeat(batch[:1], batch_size - n, axis=0)])
        out.append(np.asarray(logits_fn(tf.constant(padded)))[:n])
    return np.concatenate(out)
