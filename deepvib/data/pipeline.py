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
    repeat: bool = False,
) -> tf.data.Dataset:
    """Batches of (images float32 [B,H,W,C] in [0,1], labels int64 [B]); uint8 images (kept
    so in memory for large datasets) are converted per batch.

    Shuffling and batching act on example indices, and each batch is one vectorised gather
    from the arrays held in memory, so the pipeline costs a few microseconds per batch and
    never stalls a training step. Reshuffling each epoch is seeded: runs are reproducible.
    With `repeat`, the epochs follow each other in one endless dataset (each pass reshuffled,
    `len(split) // batch_size` batches per pass with `drop_remainder`), so training keeps one
    iterator for the whole run instead of building and tearing down one per epoch.
    """
    images = tf.constant(split.images)
    labels = tf.constant(split.labels)
    ds = tf.data.Dataset.range(len(split))
    if shuffle:
        ds = ds.shuffle(len(split), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if repeat:
        ds = ds.repeat()
    def gather(index):
        batch = tf.gather(images, index)
        if batch.dtype == tf.uint8:
            batch = tf.cast(batch, tf.float32) / 255.0
        return batch, tf.gather(labels, index)

    ds = ds.map(gather, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)
