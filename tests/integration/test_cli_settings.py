"""An operator's mistake stops a command with one line, never a traceback: a bad
FACELENS_* setting (naming the variable, exit status 2), an unknown account or a debit
past the balance or a name two accounts share (exit status 1)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from facelens.adapters.store.migrate import upgrade
from facelens.entrypoints.admin import create_account
from facelens.entrypoints.config import load_settings

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
        ("FACELENS_DETECT_MODE", "turbo", "unknown mode; known: fast, balanced, accurate"),
        ("FACELENS_DETECT_BACKEND", "cuda", "unknown backend; known: auto, onnxruntime"),
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


async def test_an_unknown_or_ambiguous_account_or_an_overdraft_is_one_line(
    tmp_path: Path,
) -> None:
    settings = load_settings({}, data_dir=tmp_path)
    await upgrade(settings.resolved_database_url)
    for name in ("acme", "twin", "twin"):
        await create_account(settings, name, 5)
    for args, says in [
        (["credits", "add", "nobody", "5"], "no account 'nobody'"),
        (["credits", "add", "acme", "-999999"], "insufficient credits: 999999 needed"),
        (["keys", "create", "twin"], "several accounts are named 'twin' (ids 2, 3): give the id"),
    ]:
        done = facelens(tmp_path, *args)
        assert (done.returncode, done.stderr.strip()) == (1, f"facelens: {says}")
