"""Fixtures for tests that run the real default model on real photos.

The photos are the WIDER FACE development subset beside the project
(`../shared/eval/widerface-dev`); the detector is built once per session.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from facelens.adapters.detection.face_detector import FaceDetector
from facelens.adapters.detection.factory import build_detector
from facelens.adapters.images import PillowDecoder
from facelens.adapters.widerface import WiderDataset, load_widerface

DEV_SET = Path(__file__).resolve().parents[2] / ".." / "shared" / "eval" / "widerface-dev"


@pytest.fixture(scope="session")
def widerface_dev() -> Path:
    """The dev subset's root folder (skips when this checkout has no shared/ beside it)."""
    if not (DEV_SET / "WIDER_val" / "images").is_dir():
        pytest.skip(f"WIDER FACE dev subset not found at {DEV_SET.resolve()}")
    return DEV_SET.resolve()


@pytest.fixture(scope="session")
def dev_dataset(widerface_dev: Path) -> WiderDataset:
    return load_widerface(widerface_dev)


@pytest.fixture(scope="session")
def detector() -> FaceDetector:
    return build_detector("centerface", threads=2)


@pytest.fixture(scope="session")
def decoder() -> PillowDecoder:
    return PillowDecoder()
