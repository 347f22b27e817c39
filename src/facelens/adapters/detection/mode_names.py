"""The detection modes' names, apart from their definitions (`modes.py`).

Settings validate `FACELENS_DETECT_MODE` for every command, admin ones included, and
those must not import NumPy; `modes.py` needs the detection core (NumPy) for its
passes. A unit test keeps the two lists equal.
"""

from __future__ import annotations

MODE_NAMES: tuple[str, ...] = ("fast", "balanced", "accurate")
"""Fastest first."""
