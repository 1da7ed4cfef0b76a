"""Image transforms between what a dataset holds and what a model takes.

MNIST enters the VAEs as 32x32: the 28x28 digits are resized bilinearly (half-pixel centres,
no antialiasing), as torchvision's `Resize(32)` does in Dupont's JointVAE code; grey levels stay
in [0, 1].
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from deepvib.data.sources import Split

_CHUNK = 10000


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """[N, H, W, C] float images in [0, 1] -> [N, size, size, C] float32 (bilinear)."""
    out = [
        tf.image.resize(tf.constant(images[i:i + _CHUNK], tf.float32), (size, size),
                        method="bilinear", antialias=False).numpy()
        for i in range(0, len(images), _CHUNK)
    ]
    return np.clip(np.concatenate(out), 0.0, 1.0).astype(np.float32)


def to_unit_float(images: np.ndarray) -> np.ndarray:
    """Images as float32 in [0, 1], whether held as uint8 pixels or already as floats."""
    if images.dtype == np.uint8:
        return images.astype(np.float32) / 255.0
    return images.astype(np.float32, copy=False)


def fit_split(split: Split, shape: tuple[int, int, int]) -> Split:
    """`split` with its images at `shape` (H, W, C): as they are, or resized when only the size
    differs. A channel mismatch is an error."""
    have = tuple(split.images.shape[1:])
    if have == tuple(shape):
        return split
    if have[-1] != shape[-1] or have[0] != have[1] or shape[0] != shape[1]:
        raise ValueError(
            f"the dataset's images are {'x'.join(map(str, have))} but the model takes "
            f"{'x'.join(map(str, shape))}; only square images of the same channels are resized")
    return Split(resize_images(to_unit_float(split.images), shape[0]), split.labels)
