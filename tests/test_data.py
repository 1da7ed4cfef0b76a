"""Data sources: IDX reader/writer, the MNIST IDX loader's checks, the embedded default,
the no-data error and the tf.data pipeline. Nothing here reads ../shared or the network."""

import gzip
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from deepvib.data import (
    DataUnavailableError,
    IDXFormatError,
    Split,
    label_entropy_bits,
    load_splits,
    make_dataset,
    read_idx,
    sources,
    write_idx,
)

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("name", ["a-idx3-ubyte", "a-idx3-ubyte.gz"])
def test_idx_round_trip_plain_and_gzip(tmp_path, name):
    array = RNG.integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    path = tmp_path / name
    write_idx(path, array)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    np.testing.assert_array_equal(read_idx(path, expected_magic=2051), array)


def test_idx_header_is_lecuns_format(tmp_path):
    path = tmp_path / "labels-idx1-ubyte"
    write_idx(path, np.array([3, 1, 4], np.uint8))
    assert path.read_bytes() == b"\x00\x00\x08\x01\x00\x00\x00\x03\x03\x01\x04"


def _idx_bytes(array):
    return (b"\x00\x00\x08" + bytes([array.ndim])
            + b"".join(int(d).to_bytes(4, "big") for d in array.shape) + array.tobytes())


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda b: b[:-5], "truncated"),
        (lambda b: b + b"\x00", "trailing bytes"),
        (lambda b: b[:6], "truncated IDX header"),
        (lambda b: b"\x00\x01" + b[2:], "bad IDX magic"),
        (lambda b: b[:2], "too short"),
    ],
)
def test_corrupt_idx_is_a_clear_error_naming_the_file(tmp_path, corrupt, message):
    path = tmp_path / "broken-idx3-ubyte"
    path.write_bytes(corrupt(_idx_bytes(np.zeros((2, 3, 3), np.uint8))))
    with pytest.raises(IDXFormatError, match=message) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_truncated_gzip_is_a_clear_error(tmp_path):
    blob = gzip.compress(_idx_bytes(RNG.integers(0, 256, (50, 28, 28), dtype=np.uint8)))
    path = tmp_path / "x-idx3-ubyte.gz"
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(IDXFormatError, match="corrupt or truncated gzip") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_wrong_magic_for_the_role_is_rejected(tmp_path):
    path = tmp_path / "labels-idx1-ubyte"
    write_idx(path, np.zeros((4, 2, 2), np.uint8))  # an image file where labels are expected
    with pytest.raises(IDXFormatError, match="expected 2049"):
        read_idx(path, expected_magic=2049)


@pytest.fixture
def fake_mnist_dir(tmp_path, monkeypatch):
    """The four MNIST files with the real layout but small counts (gzip and plain mixed)."""
    monkeypatch.setattr(sources, "_IDX_FILES", {
        "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", 30),
        "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 20),
    })
    for prefix, n, suffix in (("train", 30, ".gz"), ("t10k", 20, "")):
        images = RNG.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte{suffix}", images)
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte{suffix}", np.arange(n) % 10)
    return tmp_path


def test_mnist_from_idx_dir_has_the_documented_format(fake_mnist_dir):
    splits = load_splits("mnist", str(fake_mnist_dir))
    assert len(splits["train"]) == 30 and len(splits["test"]) == 20
    images = splits["train"].images
    assert images.dtype == np.float32 and images.shape == (30, 28, 28, 1)
    assert 0.0 <= images.min() and images.max() <= 1.0 and images.max() > 0.9
    raw = read_idx(fake_mnist_dir / "train-images-idx3-ubyte.gz")
    np.testing.assert_allclose(images[..., 0] * 255.0, raw, atol=1e-4)
    assert splits["test"].labels.dtype == np.int64


@pytest.mark.parametrize(
    "swap, expected",
    [
        # an images file where the labels belong, and a labels file where the images belong
        (("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"), "number is 2051, expected 2049"),
        (("t10k-labels-idx1-ubyte", "t10k-images-idx3-ubyte"), "number is 2049, expected 2051"),
    ],
)
def test_mnist_loader_checks_each_file_has_the_magic_of_its_role(fake_mnist_dir, swap, expected):
    source, target = swap
    shutil.copyfile(fake_mnist_dir / source, fake_mnist_dir / target)
    with pytest.raises(IDXFormatError, match=expected) as info:
        load_splits("mnist", str(fake_mnist_dir))
    assert target in str(info.value)


def test_mnist_with_wrong_count_names_the_file(fake_mnist_dir):
    write_idx(fake_mnist_dir / "t10k-labels-idx1-ubyte", np.zeros(19, np.uint8))
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.*expected"):
        load_splits("mnist", str(fake_mnist_dir))


def test_mnist_with_missing_file_says_which(fake_mnist_dir):
    os.remove(fake_mnist_dir / "t10k-images-idx3-ubyte")
    with pytest.raises(DataUnavailableError, match="no file t10k-images-idx3-ubyte"):
        load_splits("mnist", str(fake_mnist_dir))


def test_missing_data_dir_is_a_clear_error(tmp_path):
    with pytest.raises(DataUnavailableError, match="does not exist"):
        load_splits("mnist", str(tmp_path / "nowhere"))


def test_validation_split_holds_out_the_end_of_train(fake_mnist_dir):
    splits = load_splits("mnist", str(fake_mnist_dir), validation_size=10)
    assert len(splits["train"]) == 20 and len(splits["test"]) == 10
    assert len(splits["final_test"]) == 20
    full = load_splits("mnist", str(fake_mnist_dir))["train"]
    np.testing.assert_array_equal(splits["test"].images, full.images[20:])


def test_mnist_without_tfds_or_data_dir_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))  # no prepared copy there
    monkeypatch.setattr(sources, "_network_reachable", lambda *a, **k: False)
    with pytest.raises(DataUnavailableError) as info:
        load_splits("mnist")
    message = str(info.value)
    for hint in ("--data_dir", "../shared/data/mnist", "--dataset=mnist_5k", "tfds.load"):
        assert hint in message


def test_unknown_dataset_is_rejected():
    with pytest.raises(ValueError, match="unknown dataset 'cifar'"):
        load_splits("cifar")


def test_embedded_default_is_real_digits_split_deterministically():
    first, second = load_splits("mnist_5k"), load_splits("mnist_5k")
    assert len(first["train"]) == 4000 and len(first["test"]) == 1000
    np.testing.assert_array_equal(first["test"].labels, second["test"].labels)
    np.testing.assert_array_equal(first["train"].images, second["train"].images)
    for split in first.values():
        assert split.images.shape[1:] == (28, 28, 1) and split.images.dtype == np.float32
        assert 0.0 <= split.images.min() and split.images.max() == 1.0
        assert set(np.unique(split.labels)) == set(range(10))
    # Digits, not noise: most pixels are background, ink is a minority.
    assert 0.05 < (first["train"].images > 0.5).mean() < 0.3
    assert label_entropy_bits(first["train"].labels) == pytest.approx(np.log2(10), abs=0.01)


def test_pipeline_batches_shuffles_reproducibly_and_keeps_types():
    split = Split(RNG.uniform(size=(25, 28, 28, 1)).astype(np.float32), np.arange(25) % 10)
    ds = make_dataset(split, 10, shuffle=True, seed=3, drop_remainder=True)
    batches = list(ds)
    assert len(batches) == 2
    images, labels = batches[0]
    assert images.shape == (10, 28, 28, 1) and images.dtype == tf.float32
    assert labels.dtype == tf.int64
    again = [b[1].numpy() for b in make_dataset(split, 10, shuffle=True, seed=3,
                                                drop_remainder=True)]
    np.testing.assert_array_equal(labels.numpy(), again[0])
    unshuffled = np.concatenate([b[1].numpy() for b in make_dataset(split, 10, shuffle=False)])
    np.testing.assert_array_equal(unshuffled, split.labels)


def test_repeated_pipeline_is_the_per_epoch_pipeline_back_to_back():
    """`repeat=True` (what training uses: one iterator for the run) yields exactly the batches
    of a fresh iterator per epoch, epoch after epoch: each pass a new seeded shuffle of all
    examples, the remainder dropped within its own pass."""
    split = Split(np.zeros((10, 1, 1, 1), np.float32), np.arange(10))
    per_epoch = make_dataset(split, 3, shuffle=True, seed=5, drop_remainder=True)
    expected = [b[1].numpy().tolist() for _ in range(4) for b in per_epoch]
    repeated = make_dataset(split, 3, shuffle=True, seed=5, drop_remainder=True, repeat=True)
    got = [b[1].numpy().tolist() for b in repeated.take(12)]
    assert got == expected
    passes = [sum(got[i:i + 3], []) for i in range(0, 12, 3)]
    assert all(len(set(p)) == 9 for p in passes)  # 3 batches of distinct examples per pass
    assert len({tuple(p) for p in passes}) == 4  # reshuffled every pass
