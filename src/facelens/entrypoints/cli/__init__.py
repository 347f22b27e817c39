"""The `facelens` command line (typer)."""
