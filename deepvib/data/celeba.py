"""CelebA through TFDS (`celeb_a`), as 64x64 RGB centre crops for the 64x64 VAEs (Dupont 2018).

Each 218x178 aligned face is centre-cropped to 140x140 (the crop common in the VAE literature)
and resized to 64x64 (bilinear, antialiased). Images are kept as uint8 in memory (2 GB for the
162,770 training faces) and converted to [0, 1] per batch. CelebA has no class labels; the
split's labels are -1. TFDS cannot download CelebA (its files sit behind a manual download),
so it must be prepared beforehand; without it the error says what to do.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from deepvib.data.sources import DataUnavailableError, Split

IMAGE_SIZE = 64
CROP = 140
_TFDS_SPLITS = {"train": "train", "test": "test"}

CELEBA_UNAVAILABLE = (
    "CelebA is not prepared for TFDS here. Prepare it once with "
    "`tfds build celeb_a` (or tfds.builder('celeb_a').download_and_prepare()) on a machine that "
    "can download it, optionally with --data_dir / TFDS_DATA_DIR pointing at where it is kept, "
    "then rerun; deepvib reads the prepared copy and never downloads it."
)


def crop_and_resize(image: tf.Tensor) -> tf.Tensor:
    """[218, 178, 3] uint8 -> [64, 64, 3] uint8: centre crop CROP x CROP, then resize."""
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    top, left = (height - CROP) // 2, (width - CROP) // 2
    crop = tf.image.crop_to_bounding_box(image, top, left, CROP, CROP)
    resized = tf.image.resize(crop, (IMAGE_SIZE, IMAGE_SIZE), antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)


def load_celeb_a(split: str, data_dir: str | None = None) -> Split:
    import tensorflow_datasets as tfds

    try:
        ds = tfds.load("celeb_a", split=_TFDS_SPLITS[split], data_dir=data_dir, download=False)
    except Exception as e:  # noqa: BLE001 - any failure to find the prepared data means the same
        raise DataUnavailableError(f"{CELEBA_UNAVAILABLE} (TFDS said: {e})") from e
    ds = ds.map(lambda example: crop_and_resize(example["image"]),
                num_parallel_calls=tf.data.AUTOTUNE).batch(1000)
    images = np.concatenate(list(tfds.as_numpy(ds)), axis=0)
    return Split(images, np.full(len(images), -1, dtype=np.int64))
