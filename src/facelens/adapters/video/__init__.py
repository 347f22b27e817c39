"""Video decoding (PyAV, Pillow for animated WebP) in a resource-limited child process.

The worker uses `VideoDecoder` (sandbox.py); everything that touches the file's bytes
(formats, demux, webp) runs only in the child (child.py).
"""

from facelens.adapters.video.sandbox import DecodeLimits, VideoDecoder, VideoSession
from facelens.core.video import VideoFrame, VideoPlan

__all__ = ["DecodeLimits", "VideoDecoder", "VideoFrame", "VideoPlan", "VideoSession"]
