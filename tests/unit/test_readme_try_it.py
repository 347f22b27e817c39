"""README "Try it" is pasted into a shell as it stands: every variable its commands use
must be set by a line of the block itself, or the curl goes out as `Bearer ` and the
reader meets 100002 instead of a task."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def _try_it_shell() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("### Try it", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    # here-documents are Python, not shell: drop them
    return re.sub(r"<<'EOF'\n.*?\nEOF\n", "\n", block, flags=re.S)


def test_try_it_sets_every_variable_it_uses() -> None:
    shell = _try_it_shell()
    used = set(re.findall(r"\$\{?([A-Z_][A-Z0-9_]*)", shell))
    assigned = set(re.findall(r"^\s*([A-Z_][A-Z0-9_]*)=", shell, flags=re.M))
    assert "KEY" in used
    assert used <= assigned, f"used but never set: {sorted(used - assigned)}"
