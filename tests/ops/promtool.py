"""Run the real `promtool` (Debian's `prometheus` package; `.ci/run` installs it)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def promtool(*args: str, stdin: bytes | None = None, cwd: Path | None = None) -> str:
    """promtool's combined output; fails the test (with that output) on a non-zero exit."""
    binary = shutil.which("promtool")
    assert binary is not None, "promtool is missing: apt-get install prometheus (see .ci/run)"
    done = subprocess.run(
        [binary, *args], input=stdin, capture_output=True, cwd=cwd, timeout=60, check=False
    )
    output = (done.stdout + done.stderr).decode("utf-8", "replace")
    assert done.returncode == 0, f"promtool {' '.join(args)} failed:\n{output}"
    return output
