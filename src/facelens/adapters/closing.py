"""`async with` for the adapters that hold an OS resource (connections, a child process):
one way to release it, `close()`, reached however the block ends."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class AsyncClosing:
    """`async with x:` gives `x` and awaits `x.close()` when the block ends."""

    async def close(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
