"""A bad FACELENS_* setting stops any command with one line naming the variable (exit
status 2), never a pydantic traceback: what an operator sees first on a typo."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("FACELENS_LOG_FORMAT", "xml", "'text' or 'json'"),
        ("FACELENS_METRICS_PORT", "-5", "greater than or equal to 0"),
    ],
)
def test_a_bad_setting_is_one_line_naming_it(
    tmp_path: Path, variable: str, value: str, says: str
) -> None:
    env = {**os.environ, "FACELENS_DATA_DIR": str(tmp_path), variable: value}
    done = subprocess.run(
        [sys.executable, "-m", "facelens", "accounts", "list"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"facelens: invalid setting {variable}={value!r}: "), line
    assert says in line
