"""`async with` for the adapters that hold an OS resource (connections, a child process):
one way to release it, `close()`, reached however the block ends."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self


class AsyncClosing(ABC):
    """`async with x:` gives `x` and awaits `x.close()` when the block ends."""

    @abstractmethod
    async def close(self) -> None:
        """Release the resource; safe to call more than once."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
