"""TF Serving's model layout, `<export_dir>/<model_name>/<version>/`, written atomically.

TF Serving loads every directory whose name is an integer as a version of the model and
never expects one to change. So a version is staged in a hidden temporary directory beside
its target (`.tmp-export-<version>-*`, which TF Serving ignores), renamed into place only once
complete, removed if anything fails, and an existing version is never replaced.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator

_NAME_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_NAME_BAD_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")
TMP_PREFIX = ".tmp-export-"


class VersionExistsError(ValueError):
    """The requested version is already exported; versions are never overwritten."""


def default_model_name(model_dir: str) -> str:
    """The run directory's basename, reduced to the characters a model name may hold."""
    base = os.path.basename(os.path.normpath(os.path.abspath(model_dir)))
    name = _NAME_BAD_CHARS.sub("_", base).lstrip("._-")
    return name or "model"


def check_model_name(name: str) -> str:
    if not _NAME_OK.match(name):
        raise ValueError(
            f"--model_name={name!r} is not a valid model name: use letters, digits, '_', '-' "
            "and '.', starting with a letter or digit (it becomes a directory and a URL part)"
        )
    return name


def existing_versions(model_root: str) -> list[int]:
    """The versions TF Serving would see under `model_root`, ascending."""
    if not os.path.isdir(model_root):
        return []
    return sorted(
        int(entry)
        for entry in os.listdir(model_root)
        if entry.isdigit() and os.path.isdir(os.path.join(model_root, entry))
    )


def next_version(model_root: str) -> int:
    versions = existing_versions(model_root)
    return versions[-1] + 1 if versions else 1


def check_version(version: int) -> int:
    if version < 1:
        raise ValueError(f"--version must be >= 1, got {version}")
    return version


def check_version_free(model_root: str, version: int) -> str:
    """The version's directory, after making sure there is none yet."""
    if os.path.exists(model_root) and not os.path.isdir(model_root):
        raise ValueError(f"{model_root} exists and is not a directory")
    target = os.path.join(model_root, str(version))
    if os.path.exists(target):
        raise VersionExistsError(
            f"{target} already exists; exported versions are never overwritten: omit --version "
            f"to export version {next_version(model_root)}, or remove the old one first"
        )
    return target


@contextlib.contextmanager
def staged_version(model_root: str, version: int) -> Iterator[str]:
    """Yields an empty directory to write the version into; renames it into place on success.

    On any error the staging directory is removed, as is `model_root` if this call created it
    and it is left empty.
    """
    target = check_version_free(model_root, version)
    created_root = not os.path.exists(model_root)
    os.makedirs(model_root, exist_ok=True)
    staging = tempfile.mkdtemp(dir=model_root, prefix=f"{TMP_PREFIX}{version}-")
    try:
        yield staging
        os.chmod(staging, 0o755)  # mkdtemp makes it private; the server may run as another user
        _rename_no_replace(staging, target)
        _fsync_dir(model_root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created_root:
            with contextlib.suppress(OSError):
                os.rmdir(model_root)  # only if still empty
        raise


def _rename_no_replace(source: str, target: str) -> None:
    # rename(2) fails on a non-empty target directory, and a finished version never is empty,
    # so a concurrent export of the same version cannot be replaced either.
    check_version_free(os.path.dirname(target), int(os.path.basename(target)))
    try:
        os.rename(source, target)
    except OSError as e:
        if os.path.exists(target):
            raise VersionExistsError(f"{target} appeared while exporting; not replaced") from e
        raise


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
