"""Commands imported when they run, not when the CLI starts.

Some commands live in modules that load the inference stack (ONNX Runtime, NumPy,
Pillow). A click group of this class lists them from a declared summary and imports
one only when it is the command being run, so `facelens --help` and the admin
commands never pay for (or depend on) that stack.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import typer
from typer import _click as click  # typer >= 0.28 vendors click: its groups take these types
from typer.core import TyperCommand, TyperGroup


@dataclass(frozen=True, slots=True)
class LazyCommand:
    target: str
    """`module:function`, a plain function with typer annotations."""
    summary: str
    """Its line in `facelens --help` (the first line of the function's docstring)."""


def load_command(name: str, command: LazyCommand) -> click.Command:
    """The real click command (imports its module)."""
    module, _, function = command.target.partition(":")
    single = typer.Typer(add_completion=False)
    single.command(name)(getattr(importlib.import_module(module), function))
    return typer.main.get_command(single)


class LazyGroup(TyperGroup):
    """A typer group with `lazy` commands besides its own: listed from their summary,
    loaded in `resolve_command` (the command being run), never for the listing."""

    lazy: ClassVar[Mapping[str, LazyCommand]] = {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        listed = super().list_commands(ctx)
        return listed + [name for name in self.lazy if name not in listed]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in self.lazy:
            return TyperCommand(cmd_name, help=self.lazy[cmd_name].summary)
        return command

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name in self.lazy and name not in self.commands:
            self.add_command(load_command(name, self.lazy[name]), name)
        return super().resolve_command(ctx, args)
