"""Reader and writer for LeCun's IDX format (the original MNIST files), gzip or plain.

Header: two zero bytes, a type code (0x08 = uint8), the number of dimensions, then one
big-endian uint32 per dimension. MNIST images carry magic 2051 (0x00000803), labels 2049.
"""

from __future__ import annotations

import gzip
import os
import struct

import numpy as np

_UINT8 = 0x08


class IDXFormatError(ValueError):
    """A file that is not a well-formed IDX file (wrong magic, truncated, corrupt gzip)."""


def _read_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, gzip.BadGzipFile) as e:
            raise IDXFormatError(f"{path}: corrupt or truncated gzip stream ({e})") from e
    return raw


def read_idx(path: str | os.PathLike, expected_magic: int | None = None) -> np.ndarray:
    """Returns the uint8 array stored in an IDX file; raises IDXFormatError naming the file."""
    path = os.fspath(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise IDXFormatError(f"{path}: file too short for an IDX header ({len(data)} bytes)")
    zero, type_code, ndim = struct.unpack(">HBB", data[:4])
    magic = (type_code << 8) | ndim
    if zero != 0 or type_code != _UINT8 or ndim == 0:
        raise IDXFormatError(f"{path}: bad IDX magic number 0x{zero:04x}{magic:04x}")
    if expected_magic is not None and magic != expected_magic:
        raise IDXFormatError(
            f"{path}: IDX magic number is {magic}, expected {expected_magic}"
        )
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise IDXFormatError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", data[4:header_len])
    expected = int(np.prod(shape))
    payload = len(data) - header_len
    if payload != expected:
        kind = "truncated" if payload < expected else "has trailing bytes"
        raise IDXFormatError(
            f"{path}: {kind}: header says shape {shape} ({expected} bytes), "
            f"file holds {payload} bytes"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header_len).reshape(shape)


def write_idx(path: str | os.PathLike, array: np.ndarray, compress: bool | None = None) -> None:
    """Writes a uint8 array as IDX (gzip when `compress`, default: path ends in .gz)."""
    path = os.fspath(path)
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">HBB", 0, _UINT8, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    blob = header + array.tobytes()
    if compress if compress is not None else path.endswith(".gz"):
        blob = gzip.compress(blob)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(blob)
    os.replace(tmp, path)
