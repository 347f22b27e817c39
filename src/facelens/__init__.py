"""facelens: a self-hosted face detection service, wire-compatible with the hosted API."""

__version__ = "0.1.0"
