"""Datasets as `tf.data` pipelines: images float32 in [0, 1] (MNIST 28x28x1, CelebA 64x64x3),
int64 labels."""

from deepvib.data.idx import IDXFormatError, read_idx, write_idx
from deepvib.data.pipeline import make_dataset
from deepvib.data.sources import (
    DATASETS,
    DataUnavailableError,
    Split,
    label_entropy_bits,
    load_splits,
)
from deepvib.data.transforms import fit_split, resize_images, to_unit_float

__all__ = [
    "DATASETS",
    "DataUnavailableError",
    "IDXFormatError",
    "Split",
    "label_entropy_bits",
    "fit_split",
    "load_splits",
    "make_dataset",
    "read_idx",
    "resize_images",
    "to_unit_float",
    "write_idx",
]
