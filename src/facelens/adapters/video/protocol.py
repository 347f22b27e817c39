"""The byte protocol between the decoding child and the worker: framed messages on a pipe.

Each message is an 8-byte prefix (JSON length, payload length, little-endian u32), a
JSON header and a raw payload (a frame's RGB bytes, or nothing). The worker reads the
child's output as untrusted: lengths are bounded before anything is allocated.
"""

from __future__ import annotations

import asyncio
import json
import struct
from typing import Any, BinaryIO

PREFIX = struct.Struct("<II")
MAX_HEADER = 1 << 20
"""A header is small JSON; the probe's list of up to a few thousand timestamps fits."""


class ProtocolError(Exception):
    """The child sent something that is not a well-formed message."""


def write_message(out: BinaryIO, header: dict[str, Any], payload: bytes | memoryview = b"") -> None:
    text = json.dumps(header, separators=(",", ":")).encode()
    out.write(PREFIX.pack(len(text), len(payload)))
    out.write(text)
    if len(payload):
        out.write(payload)
    out.flush()


async def read_message(
    reader: asyncio.StreamReader, max_payload: int
) -> tuple[dict[str, Any], bytes] | None:
    """The next message, or None at a clean end of stream (the child exited)."""
    try:
        prefix = await reader.readexactly(PREFIX.size)
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise ProtocolError("the decoder's output ended inside a message") from None
        return None
    header_len, payload_len = PREFIX.unpack(prefix)
    if header_len > MAX_HEADER or payload_len > max_payload:
        raise ProtocolError("the decoder sent an oversized message")
    try:
        header = json.loads(await reader.readexactly(header_len))
        payload = await reader.readexactly(payload_len) if payload_len else b""
    except asyncio.IncompleteReadError:
        raise ProtocolError("the decoder's output ended inside a message") from None
    except ValueError:
        raise ProtocolError("the decoder sent a malformed header") from None
    if not isinstance(header, dict):
        raise ProtocolError("the decoder sent a malformed header")
    return header, payload
