"""The decoding child: `python -m facelens.adapters.video.child`, one video, then exit.

It reads one JSON request line on stdin, sets its own resource limits BEFORE it
imports the decoders or opens the file (address space, CPU seconds, no file writes,
no core dumps, few descriptors), and writes framed messages (see `protocol`) to
stdout: `info` (the probed video and the times of every frame the sampling picks),
then one `frame` per analysed frame in the requested range, then `end`; or `error`
with a stable code. A crash, a limit or a hang shows up in the parent as a dead or
silent child and becomes VIDEO_DECODE_FAILED there; the worker itself is untouched.
"""

from __future__ import annotations

import json
import resource
import sys
from typing import Any, BinaryIO


def apply_limits(memory_bytes: int, cpu_seconds: int) -> None:
    """Kernel-enforced limits for the rest of this process's life (no way back up)."""
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    # SIGXCPU at the soft limit (default action: terminate), SIGKILL one second later.
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))


def run(request: dict[str, Any], out: BinaryIO) -> None:
    import av  # after the limits: importing is part of what they bound
    import numpy as np

    from facelens.adapters.video import demux, webp
    from facelens.adapters.video.protocol import write_message
    from facelens.core.video import Sampling

    av.logging.set_level(av.logging.PANIC)
    limits = demux.Limits(int(request["max_pixels"]), int(request["max_seconds"]))
    sampling = Sampling(**request["sampling"])
    lo_ms, hi_ms = int(request.get("lo_ms", 0)), request.get("hi_ms")
    container, opened = demux.open_video(str(request["path"]), limits)
    if opened is None:
        info, index = webp.scan(str(request["path"]), limits)
    else:
        demux.check_header(container, opened, limits)
        index = demux.build_index(opened, limits)
        info = demux.describe(container, opened, index)
    chosen = demux.wanted(index, sampling, 0, None)
    write_message(
        out,
        {
            "kind": "info",
            "video": info.stored(),
            "timestamps": [index.ms(p) for p in chosen],
        },
    )
    if request.get("probe_only"):
        write_message(out, {"kind": "end"})
        return
    targets = demux.wanted(index, sampling, lo_ms, None if hi_ms is None else int(hi_ms))
    if opened is None:
        frames = webp.decode_frames(str(request["path"]), index, targets)
    else:
        frames = demux.decode_frames(opened, index, targets, can_seek=container.label != "gif")
    for frame in frames:
        height, width = frame.pixels.shape[:2]
        header = {
            "kind": "frame",
            "index": frame.index,
            "timestamp_ms": frame.timestamp_ms,
            "width": width,
            "height": height,
        }
        pixels = np.ascontiguousarray(frame.pixels)
        write_message(out, header, pixels.data.cast("B"))
    write_message(out, {"kind": "end"})


def main() -> int:
    out = sys.stdout.buffer
    request = json.loads(sys.stdin.buffer.readline())
    apply_limits(int(request["memory_bytes"]), int(request["cpu_seconds"]))
    from facelens.adapters.video.protocol import write_message
    from facelens.core.errors import TaskFailure

    try:
        run(request, out)
    except TaskFailure as failure:
        write_message(
            out, {"kind": "error", "code": failure.error_code, "message": failure.message}
        )
    except (MemoryError, BlockingIOError):  # BlockingIOError: no memory for a thread
        message = "decoding needed more memory than the decoder's limit"
        write_message(out, {"kind": "error", "code": "VIDEO_DECODE_FAILED", "message": message})
    except BrokenPipeError:
        return 1  # the parent stopped listening (deadline, or it no longer needs frames)
    except Exception as exc:  # a decoder error we did not map: still a clean failure
        message = f"the video cannot be decoded ({type(exc).__name__})"
        write_message(out, {"kind": "error", "code": "VIDEO_DECODE_FAILED", "message": message})
    return 0


if __name__ == "__main__":
    sys.exit(main())
