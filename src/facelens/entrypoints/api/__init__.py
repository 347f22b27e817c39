"""The HTTP API (FastAPI lives only here)."""
