"""Entrypoints: settings, wiring, the HTTP API and the CLI."""
