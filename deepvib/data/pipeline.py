"""In-memory arrays to `tf.data` pipelines: shuffle, batch, prefetch."""

from __future__ import annotations

import tensorflow as tf

from deepvib.data.sources import Split


def make_dataset(
    split: Split,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int = 0,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """Batches of (images float32 [B,28,28,1] in [0,1], labels int64 [B]).

    The arrays live in memory as constants, so the pipeline never stalls a training step;
    reshuffling each epoch is seeded, hence runs are reproducible.
    """
    ds = tf.data.Dataset.from_tensor_slices((split.images, split.labels))
    if shuffle:
        ds = ds.shuffle(len(split), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)
