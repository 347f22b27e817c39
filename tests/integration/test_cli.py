"""The `facelens` CLI against a real SQLite file (FACELENS_DATA_DIR=tmp_path)."""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from facelens.entrypoints.cli.main import LAZY_COMMANDS, app
from facelens.entrypoints.config import ENV_PREFIX, Settings
from tests.integration.conftest import FACE_IMAGES


@pytest.fixture
def cli(tmp_path: Path) -> CliRunner:
    return CliRunner(env={"FACELENS_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"})


def run(cli: CliRunner, *args: str, code: int = 0) -> tuple[str, str]:
    result = cli.invoke(app, list(args))
    assert result.exit_code == code, (args, result.stdout, result.stderr, result.exception)
    return result.stdout, result.stderr


def test_accounts_keys_and_credits(cli: CliRunner, tmp_path: Path) -> None:
    run(cli, "db", "upgrade")
    assert (tmp_path / "data" / "facelens.db").is_file()
    run(cli, "db", "upgrade")  # idempotent

    stdout, stderr = run(cli, "accounts", "create", "acme", "--credits", "5")
    lines = stdout.splitlines()
    assert len(lines) == 1, stdout  # ONLY the key: scripts capture it
    key = lines[0].strip()
    assert len(key) >= 20 and " " not in key
    assert "acme" in stderr

    listing, _ = run(cli, "accounts", "list")
    assert "acme" in listing and re.search(r"\b5\b", listing)

    second_out, _ = run(cli, "keys", "create", "acme")
    second = second_out.strip()
    assert len(second_out.splitlines()) == 1 and second != key
    run(cli, "keys", "revoke", second)
    run(cli, "keys", "revoke", second, code=1)  # no live key any more
    run(cli, "keys", "revoke", "fl_nope", code=1)

    balance, _ = run(cli, "credits", "add", "acme", "7")
    assert balance.strip() == "12"
    balance, _ = run(cli, "credits", "add", "1", "-2")
    assert balance.strip() == "10"
    listing, _ = run(cli, "accounts", "list")
    assert re.search(r"\b10\b", listing)


def test_detect_prints_json_and_draws(cli: CliRunner, tmp_path: Path, dev_images: Path) -> None:
    photo = dev_images / FACE_IMAGES[3]
    stdout, _ = run(cli, "detect", str(photo), "--json")
    (result,) = json.loads(stdout)
    assert (result["width"], result["height"]) == (1024, 683)
    assert len(result["result_list"]) >= 2
    assert {"x", "y", "width", "height", "score"} <= set(result["result_list"][0])

    out = tmp_path / "drawn.jpg"
    run(cli, "detect", str(photo), "--draw", str(out))
    with Image.open(out) as drawn:
        assert drawn.format == "JPEG"
        assert drawn.size == (1024, 683)
        drawn.load()


def test_serve_help_lists_every_setting(cli: CliRunner) -> None:
    stdout, _ = run(cli, "serve", "--help")
    flat = " ".join(stdout.split())
    for name in Settings.model_fields:
        assert f"{ENV_PREFIX}{name.upper()}" in flat, name


INFERENCE_STACK = ("onnxruntime", "openvino", "dlib", "PIL", "numpy", "onnx")

RUN_AND_LIST_MODULES = """
import json, sys
from facelens.entrypoints.cli.main import main
sys.argv = ["facelens", *sys.argv[1:]]
try:
    main()
except SystemExit as exit:
    assert not exit.code, exit.code
print(json.dumps(sorted(sys.modules)))
"""


def modules_after(tmp_path: Path, *args: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running `facelens ARGS`."""
    env = {**os.environ, "FACELENS_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, "-c", RUN_AND_LIST_MODULES, *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    loaded: list[str] = json.loads(done.stdout.splitlines()[-1])
    return {name.partition(".")[0] for name in loaded}


def test_admin_commands_and_help_load_no_inference_stack(tmp_path: Path) -> None:
    assert not set(INFERENCE_STACK) & modules_after(tmp_path, "db", "upgrade")
    assert not set(INFERENCE_STACK) & modules_after(tmp_path, "accounts", "list")
    assert not set(INFERENCE_STACK) & modules_after(tmp_path, "serve", "--help")
    assert not set(INFERENCE_STACK) & modules_after(tmp_path, "--help")
    # the detection commands still load it, when they run
    assert {"numpy", "PIL"} <= modules_after(tmp_path, "detect", "--help")


def test_help_lists_every_command_lazy_ones_by_their_docstring(cli: CliRunner) -> None:
    stdout, _ = run(cli, "--help")
    for name in ("serve", "worker", "db", "accounts", "keys", "credits", *LAZY_COMMANDS):
        assert re.search(rf"│ {name}\s", stdout), name
    for lazy in LAZY_COMMANDS.values():
        module, _, function = lazy.target.partition(":")
        doc = getattr(importlib.import_module(module), function).__doc__
        assert doc.splitlines()[0] == lazy.summary


@pytest.mark.parametrize(
    ("flags", "field"),
    [
        (["--threshold", "1.5"], "score_threshold"),
        (["--min-face-size", "0"], "min_face_size"),
        (["--landmarks", "17"], "landmarks"),
        (["--attributes", "pose,age"], "attributes"),
    ],
)
def test_detect_flags_follow_the_api_option_rules(
    cli: CliRunner, tmp_path: Path, flags: list[str], field: str
) -> None:
    """Refused before any model loads, naming the option as the API does."""
    _, stderr = run(cli, "detect", str(tmp_path / "absent.jpg"), *flags, code=2)
    assert field in stderr, stderr
