"""Provenance: what a run records about how its results were made.

Package versions, the time, and digests that recognise the same model file or
the same train/test split later.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import platform
from importlib import metadata
from pathlib import Path

from filtag import __version__

#: The packages whose versions can change the results.
PACKAGES = ("tensorflow", "keras", "numpy", "pillow")


def package_versions() -> dict[str, str]:
    """Return the versions of Python and the packages that shape the results."""
    versions = {"python": platform.python_version(), "filtag": __version__}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def now_utc() -> str:
    """Return the current UTC time, ISO 8601 to the second."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def file_digest(path: Path) -> str:
    """Return the SHA-256 of a file, hex."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def split_digest(train: list[list[str]], test: list[list[str]]) -> str:
    """Return the SHA-256 of a split's file lists, to recognise the same split later."""
    return hashlib.sha256(
        json.dumps([train, test]).encode("utf-8", "surrogateescape")
    ).hexdigest()
