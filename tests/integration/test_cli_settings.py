"""An operator's mistake stops a command with one line, never a traceback: a bad
FACELENS_* setting (naming the variable, exit status 2), an unknown account or a debit
past the balance (exit status 1)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # each case runs `python -m facelens` processes


def facelens(tmp_path: Path, *args: str, **environ: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FACELENS_DATA_DIR": str(tmp_path), **environ}
    return subprocess.run(
        [sys.executable, "-m", "facelens", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


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
    done = facelens(tmp_path, "accounts", "list", **{variable: value})
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"facelens: invalid setting {variable}={value!r}: "), line
    assert says in line


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["credits", "add", "nobody", "5"], "facelens: no account 'nobody'"),
        (["credits", "add", "acme", "-999999"], "facelens: insufficient credits: 999999 needed"),
    ],
)
def test_an_unknown_account_or_an_overdraft_is_one_line(
    tmp_path: Path, args: list[str], says: str
) -> None:
    assert facelens(tmp_path, "db", "upgrade").returncode == 0
    assert facelens(tmp_path, "accounts", "create", "acme", "--credits", "5").returncode == 0
    done = facelens(tmp_path, *args)
    assert (done.returncode, done.stderr.strip()) == (1, says)
